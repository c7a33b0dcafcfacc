"""Ablation figures and tables (mfbo.analysis.ablation) from hand-made run logs of a sweep."""

from __future__ import annotations

import math

import pytest

from mfbo.analysis import load_study
from mfbo.analysis.ablation import ablation_members, ablation_table, parse_sweep_label, swept_options, write_ablations


def test_parse_sweep_label_reads_values_back():
    assert parse_sweep_label("hyperband:eta=2,r_min=3") == ("hyperband", {"eta": 2, "r_min": 3})
    assert parse_sweep_label("mf-kg:design=bracket,init_fraction=0.2") == ("mf-kg", {"design": "bracket", "init_fraction": 0.2})
    assert parse_sweep_label('hb:guard={"every": 5, "on_change": false}') == ("hb", {"guard": {"every": 5, "on_change": False}})
    assert parse_sweep_label("a:b:eta=2") == ("a:b", {"eta": 2})
    for plain in ("hyperband", "weird:label", ":eta=2"):
        assert parse_sweep_label(plain) is None


def _sweep_study(root, make_log):
    """Label hb:eta=<e>, seeds 0-1, on one problem (budget 10): the regret after each trial is
    ``rec_value`` (optimum 0); eta=2 reaches 0.5 after 4 of 10, eta=4 never; a decoy whose
    label says eta=3 but whose runs logged eta=5 is not a member."""
    runs = {2: ([(4, 1.0), (6, 0.5)], [(2, 2.0), (8, 0.25)]), 4: ([(5, 1.0), (5, 0.8)], [(10, 0.9)])}
    for eta, seeds in runs.items():
        for seed, trials in enumerate(seeds):
            label = f"hb:eta={eta}"
            make_log(root / f"toy__{label.replace(':', '_').replace('=', '_')}__seed{seed}.jsonl",
                     [{"cost": c, "rec_value": r} for c, r in trials], seed=seed, strategy="hyperband",
                     spec_extra={"label": label, "options": {"eta": float(eta), "r_min": 1}})
    make_log(root / "toy__decoy__seed0.jsonl", [{"cost": 10, "rec_value": 0.1}], strategy="hyperband",
             spec_extra={"label": "hb:eta=3", "options": {"eta": 5.0}})
    return root


def test_members_table_and_target(tmp_path, make_log):
    df = load_study(_sweep_study(tmp_path / "study", make_log))
    members = ablation_members(df)
    assert members == {"hb": {"hb:eta=2": {"eta": 2}, "hb:eta=4": {"eta": 4}}}  # the decoy's options say eta=5
    assert swept_options(members["hb"]) == ["eta"]
    table = ablation_table(df, members["hb"], "eta", target=0.5)
    assert list(table["value"]) == [2, 4] and list(table["n"]) == [2, 2]
    assert table["median"].tolist() == pytest.approx([0.375, 0.85])  # finals 0.5, 0.25 and 0.8, 0.9
    assert table["cost_median"].iloc[0] == pytest.approx(1.0) and list(table["reached"]) == [2, 0]  # at 10/10 and 10/10
    assert math.isinf(table["cost_median"].iloc[1])
    default = ablation_table(df, members["hb"], "eta")  # target: upper quartile of the finals 0.25, 0.5, 0.8, 0.9
    assert default["target"].iloc[0] == pytest.approx(0.825)
    assert default["target_rule"].iloc[0] == "upper quartile of the final regrets"


def test_write_ablations_and_report(tmp_path, make_log):
    root = _sweep_study(tmp_path / "study", make_log)
    written = write_ablations(load_study(root), tmp_path / "figs", target=0.5)
    assert sorted(p.name for p in written) == ["ablation__hb__eta.md", "ablation__hb__eta.pdf", "ablation__hb__eta.png"]
    text = (tmp_path / "figs" / "ablation__hb__eta.md").read_text()
    assert "| toy | regret | 2 | - | 2 | 0.375 | [0.3125, 0.4375] | 0.5 | 1 | 2/2 |" in text


def test_no_sweep_no_ablation(tmp_path, make_log):
    make_log(tmp_path / "s" / "a.jsonl", [{"cost": 10, "rec_value": 1.0}], spec_extra={"label": "gp-ei"})
    assert write_ablations(load_study(tmp_path / "s"), tmp_path / "figs") == []

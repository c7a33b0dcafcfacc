"""``mfbo plot``: the files it writes, calibration files, errors; the style and the figures."""

import json

import numpy as np
import pytest

from mfbo.analysis import load_study
from mfbo.analysis.metrics import fidelity_allocation
from mfbo.analysis.plots import calibration_series, plot_calibration, plot_cd_diagram, plot_fidelity_allocation
from mfbo.analysis.style import KNOWN_COLOURS, OKABE_ITO, save_figure, strategy_styles
from mfbo.cli import main

FIGURES = ["regret_vs_cost", "simple_regret_vs_cost", "rank_vs_cost", "critical_difference", "fidelity_allocation", "overhead"]
TABLES = ["final_regret.md", "final_regret.tex", "log_regret_auc.md", "log_regret_auc.tex", "statistics.md"]


def calibration_dict():
    """The layout of CalibrationReport.to_dict (the fields plot_calibration reads)."""
    return {"problem": "toy", "n_configs": 20, "metrics": [
        {"fidelity": 1, "cost_fraction": 0.1, "spearman": 0.2, "precision": {"10%": 0.0, "25%": 0.4}},
        {"fidelity": 3, "cost_fraction": 0.3, "spearman": 0.6, "precision": {"10%": 0.5, "25%": 0.6}},
        {"fidelity": 10, "cost_fraction": 1.0, "spearman": 1.0, "precision": {"10%": 1.0, "25%": 1.0}}]}


def test_mfbo_plot_writes_every_figure_and_table(small_study, tmp_path, capsys):
    (small_study / "calibration").mkdir()
    (small_study / "calibration" / "toy__calibration__n20__seed0.json").write_text(json.dumps(calibration_dict()))
    out = tmp_path / "figs"
    assert main(["plot", str(small_study), "--out", str(out), "--target", "1.0"]) == 0
    printed = capsys.readouterr().out.split()
    expected = [f"{name}.{ext}" for name in FIGURES + ["calibration__toy__calibration__n20__seed0"] for ext in ("pdf", "png")]
    expected += TABLES + ["cost_to_target.md", "cost_to_target.tex"]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert sorted(printed) == sorted(str(out / name) for name in expected)
    for name in FIGURES:
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "final_regret.md").read_text()
    assert "| p1 | **0.15 [0.125, 0.175]** | 1.5 [1.25, 1.75] | 15 [12.5, 17.5] |" in table
    stats = (out / "statistics.md").read_text()
    assert "Friedman chi2 = 4.000" in stats and "CD = 2.344" in stats  # k = 3, N = 2: every block ranks a < b < c


def test_mfbo_plot_adds_wall_clock_figures_when_runs_had_asynchronous_workers(small_study, tmp_path, make_log, capsys):
    trials = [{"cost": 4.0, "worker": 0, "start": 0.0, "end": 4.0, "rec_value": 3.0},
              {"cost": 4.0, "worker": 1, "start": 0.0, "end": 4.0, "rec_value": 2.0},
              {"cost": 2.0, "worker": 0, "start": 4.0, "end": 6.0, "rec_value": 1.0}]
    for strategy in ("a", "b"):
        make_log(tmp_path / "async" / f"{strategy}.jsonl", trials, strategy=strategy,
                 header_extra={"execution": {"workers": 2, "stop": "cost"}})
    assert main(["plot", str(tmp_path / "async"), "--out", str(tmp_path / "figs")]) == 0
    written = {p.name for p in (tmp_path / "figs").iterdir()}
    for name in ("regret_vs_wall_clock", "simple_regret_vs_wall_clock", "rank_vs_wall_clock", *FIGURES[:3]):
        assert {f"{name}.pdf", f"{name}.png"} <= written
    # one worker per run: the clock is the cumulative cost, so no second set of figures
    assert main(["plot", str(small_study), "--out", str(tmp_path / "figs1")]) == 0
    assert not any("wall_clock" in p.name for p in (tmp_path / "figs1").iterdir())


def test_mfbo_plot_default_out_and_stat_mean(small_study, capsys):
    assert main(["plot", str(small_study), "--stat", "mean"]) == 0
    assert (small_study / "figures" / "regret_vs_cost.png").is_file()
    assert "Mean ± standard error" in (small_study / "figures" / "final_regret.md").read_text()
    assert load_study(small_study)["run"].nunique() == 12  # the figures directory holds no run logs


def test_mfbo_plot_errors_name_the_directory(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert f"no such study directory: {tmp_path / 'missing'}" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty")]) == 2
    assert f"no run logs (*.jsonl) under {tmp_path / 'empty'}" in capsys.readouterr().err


def test_strategy_styles_are_fixed_and_distinct():
    styles = strategy_styles(["mf-kg", "random", "my-method", "other"])
    assert styles["mf-kg"].colour == KNOWN_COLOURS["mf-kg"] and styles["random"].colour == OKABE_ITO["black"]
    assert strategy_styles(["mf-kg", "zzz"])["mf-kg"] == strategy_styles(["mf-kg", "random"])["mf-kg"]
    colours = [s.colour for s in styles.values()]
    assert len(set(colours)) == 4 and set(colours) <= set(OKABE_ITO.values())
    many = strategy_styles([f"s{i}" for i in range(12)])
    assert len({(s.colour, s.linestyle) for s in many.values()}) == 12


def test_calibration_series_reads_both_layouts():
    title, x, series = calibration_series(calibration_dict())
    assert title == "toy  (N=20)" and x.tolist() == [0.1, 0.3, 1.0]
    assert series["precision@10%"].tolist() == [0.0, 0.5, 1.0] and series["Spearman $\\rho$"].tolist() == [0.2, 0.6, 1.0]
    flat = {"levels": [{"cost_fraction": 0.5, "precision@10%": 0.3, "precision@25%": 0.5, "spearman": None},
                       {"cost_fraction": 1.0, "precision@10%": 1.0, "precision@25%": 1.0, "spearman": 1.0}]}
    _, x, series = calibration_series(flat)
    assert x.tolist() == [0.5, 1.0] and list(series) == ["precision@10%", "precision@25%", "Spearman $\\rho$"]
    assert np.isnan(series["Spearman $\\rho$"][0])
    with pytest.raises(ValueError, match="'metrics'.*'levels'"):
        calibration_series({"problem": "toy"})


def test_figures_have_the_paper_sizes(small_study, tmp_path):
    fig = plot_calibration(calibration_dict())
    assert tuple(fig.get_size_inches()) == pytest.approx((3.3, 2.4))
    pdf, png = save_figure(fig, tmp_path / "cal.png")
    assert pdf.name == "cal.pdf" and png.name == "cal.png" and png.stat().st_size > 0
    cd = plot_cd_diagram({"a": 1.2, "b": 2.0, "c": 2.8}, [(0, 1)], cd=1.0, title="test")
    assert cd.get_size_inches()[0] == pytest.approx(3.3)
    allocation = plot_fidelity_allocation(fidelity_allocation(load_study(small_study)))
    assert allocation.get_size_inches()[0] == pytest.approx(3.3)  # two problems: one column
    with pytest.raises(ValueError, match="at least 2 strategies"):
        plot_cd_diagram({"a": 1.0}, [])

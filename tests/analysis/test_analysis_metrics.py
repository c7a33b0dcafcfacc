"""Metrics: step interpolation, regrets (simple, inference, normalised), cost to target, AUC,
fidelity allocation and overhead, each against a hand computation."""

import math

import numpy as np
import pytest

from mfbo.analysis import (cost_to_target, fidelity_allocation, final_values, load_study, log_auc, metric_curves,
                           overhead_by_observations, run_summaries, step_values)
from mfbo.analysis.metrics import fidelity_categories, resolve_metric

inf = math.inf


def test_step_values_hold_the_last_record_and_are_inf_before_the_first():
    x = [0.1, 0.3, 0.3, 0.7]
    y = [5.0, 4.0, 3.0, 1.0]
    grid = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
    assert step_values(x, y, grid).tolist() == [inf, inf, 5.0, 5.0, 3.0, 3.0, 1.0, 1.0]
    assert np.isnan(step_values(x, y, [0.0], before=math.nan)[0])
    with pytest.raises(ValueError, match="non-decreasing"):
        step_values([0.3, 0.1], [1.0, 2.0], grid)


def test_curves_on_a_hand_made_log(tmp_path, make_log):
    # budget 10; trials end at cost 2, 5, 10 -> fractions 0.2, 0.5, 1.0
    make_log(tmp_path / "r.jsonl", [{"cost": 2.0, "rec_value": 4.0}, {"cost": 3.0, "rec_value": 2.0}, {"cost": 5.0, "rec_value": 1.0}],
             optimum=0.5)
    curves = metric_curves(load_study(tmp_path), "regret", grid=[0.0, 0.1, 0.2, 0.4, 0.5, 0.99, 1.0])
    assert curves["value"].tolist() == [inf, inf, 3.5, 3.5, 1.5, 1.5, 0.5]
    assert set(curves["metric"]) == {"regret"}


def test_simple_inference_and_normalised_regret(tmp_path, make_log):
    # seed 0: no recommendation and no target observation at first
    make_log(tmp_path / "s0.jsonl", [{"cost": 1.0}, {"cost": 1.0, "rec_value": 3.0}, {"cost": 1.0, "rec_value": 2.0, "best_value": 2.5}],
             optimum=1.0, seed=0)
    make_log(tmp_path / "s1.jsonl", [{"cost": 1.0, "rec_value": 5.0, "best_value": 5.0}], optimum=1.0, seed=1)
    df = load_study(tmp_path)
    s0 = df[df["seed"] == 0]
    assert s0["regret"].tolist() == [inf, 2.0, 1.0]
    assert s0["simple_regret"].tolist() == [inf, inf, 1.5]
    # exact optimum: ref_low = 1; ref_high = median of the first recommendations (3 and 5) = 4
    assert set(df["ref_low"]) == {1.0} and set(df["ref_high"]) == {4.0}
    assert s0["norm_regret"].tolist() == [inf, 2 / 3, 1 / 3]
    assert s0["norm_simple_regret"].tolist() == [inf, inf, 0.5]


def test_reference_optimum_normalises_against_the_best_value_seen(tmp_path, make_log):
    reference = {"optimum_kind": "reference: best of 100 random configurations (seed 0)"}
    make_log(tmp_path / "a.jsonl", [{"cost": 1.0, "rec_value": 2.0}, {"cost": 1.0, "rec_value": -1.0}], optimum=0.0, seed=0,
             problem_extra=reference)
    make_log(tmp_path / "b.jsonl", [{"cost": 1.0, "rec_value": 4.0}, {"cost": 1.0, "rec_value": 1.0}], optimum=0.0, seed=1,
             problem_extra=reference)
    df = load_study(tmp_path)
    assert set(df["ref_low"]) == {-1.0} and set(df["ref_high"]) == {3.0}  # min(ref 0, seen -1); median(2, 4)
    assert df["norm_regret"].tolist() == [0.75, 0.0, 1.25, 0.5]
    column, label = resolve_metric(df, "regret")
    assert column == "norm_regret" and label == "normalised inference regret"
    assert set(final_values(df)["metric"]) == {"norm_regret"}
    with pytest.raises(ValueError, match="metric must be one of"):
        resolve_metric(df, "regrets")


def test_cost_to_target_and_log_auc_on_known_curves():
    x, y = [0.2, 0.5], [10.0, 0.1]
    assert cost_to_target(x, y, 1.0) == 0.5
    assert cost_to_target(x, y, 10.0) == 0.2
    assert cost_to_target(x, y, 0.01) == inf
    # [0, 0.2): fill 100 -> 2; [0.2, 0.5): 10 -> 1; [0.5, 1]: 0.1 -> -1
    assert math.isclose(log_auc(x, y, fill=100.0), 0.2 * 2 + 0.3 * 1 + 0.5 * -1)
    # a regret of 0 is floored; a non-finite value is charged the fill
    assert math.isclose(log_auc([0.0, 0.5], [inf, 0.0], fill=10.0, floor=1e-4), 0.5 * 1 + 0.5 * -4)
    with pytest.raises(ValueError, match="fill"):
        log_auc(x, y, fill=0.0)


def test_run_summaries_final_auc_and_cost_to_target(small_study):
    summaries = run_summaries(load_study(small_study), "regret", target=0.5)
    row = summaries[(summaries["problem"] == "p1") & (summaries["label"] == "a") & (summaries["seed"] == 0)].iloc[0]
    assert math.isclose(row["final"], 0.1)
    assert row["cost_to_target"] == 1.0  # regret 10, 1, 0.1 at fractions 0.2, 0.5, 1
    # fill = ref_high - ref_low: the median first recommendation of p1 is the median of
    # 100 x {0.1, 0.2, 1, 2, 10, 20} = 150; [0, 0.2): 150, [0.2, 0.5): 10, [0.5, 1): 1, and the
    # final 0.1 at c = 1 has zero width
    expected = 0.2 * math.log10(150) + 0.3 * math.log10(10) + 0.5 * math.log10(1)
    assert math.isclose(row["auc"], expected)


def test_fidelity_categories_of_discrete_and_continuous_fidelities():
    ladder = fidelity_categories({"name": "level", "low": 1, "high": 5, "target": 5, "levels": [1, 2, 3, 4, 5], "integer": True})
    assert [c["name"] for c in ladder] == ["level=1", "level=2", "level=3", "level=4", "level=5 (target)"]
    continuous = fidelity_categories({"name": "z", "low": 0.0, "high": 1.0, "target": 1.0}, n_bins=2)
    assert [c["name"] for c in continuous] == ["s in [0, 0.5)", "s in [0.5, 1)", "target"]
    epochs = fidelity_categories({"name": "epochs", "low": 1, "high": 52, "target": 52, "integer": True}, n_bins=4)
    assert len(epochs) == 5  # too many levels: binned
    assert [c["name"] for c in fidelity_categories(None)] == ["target"]


def test_fidelity_allocation_matches_a_hand_count(tmp_path, make_log):
    z = {"name": "z", "low": 0.0, "high": 1.0, "target": 1.0}
    # seed 0: cost 1 at z=0.1, 2 at z=0.3, 1 at z=0.9, 4 at the target (total 8)
    make_log(tmp_path / "a0.jsonl", [{"cost": 1.0, "fidelity": 0.1}, {"cost": 2.0, "fidelity": 0.3}, {"cost": 1.0, "fidelity": 0.9},
                                     {"cost": 4.0, "fidelity": 1.0}], fidelity=z, seed=0, strategy="mf")
    # seed 1: everything at the target
    make_log(tmp_path / "a1.jsonl", [{"cost": 5.0, "fidelity": 1.0}], fidelity=z, seed=1, strategy="mf")
    allocation = fidelity_allocation(load_study(tmp_path), n_bins=4).set_index("category")["share"]
    expected = {"s in [0, 0.25)": 1 / 16, "s in [0.25, 0.5)": 2 / 16, "s in [0.5, 0.75)": 0.0, "s in [0.75, 1)": 1 / 16,
                "target": (0.5 + 1.0) / 2}
    assert allocation.to_dict() == pytest.approx(expected)
    assert math.isclose(allocation.sum(), 1.0)


def test_allocation_shares_sum_to_one_per_problem_and_label(small_study):
    allocation = fidelity_allocation(load_study(small_study))
    sums = allocation.groupby(["problem", "label"])["share"].sum()
    assert len(sums) == 6 and np.allclose(sums, 1.0)
    assert (allocation.loc[allocation["category"] == "target", "share"] == 1.0).all()  # no fidelity: all at the target


def test_overhead_by_observations_bins_and_medians(tmp_path, make_log):
    make_log(tmp_path / "a.jsonl", [{"cost": 1.0, "overhead": 0.1 * (i + 1)} for i in range(8)], budget=8.0, strategy="a", seed=0)
    make_log(tmp_path / "b.jsonl", [{"cost": 1.0, "overhead": 0.3 * (i + 1)} for i in range(8)], budget=8.0, strategy="a", seed=1)
    out = overhead_by_observations(load_study(tmp_path), n_bins=3)
    assert out["count"].sum() == 16
    assert out["n_low"].iloc[0] == 1 and out["n_high"].iloc[-1] > 8
    first = out.iloc[0]  # n = 1 only: overheads 0.1 and 0.3
    assert first["n_high"] == 2 and math.isclose(first["median"], 0.2) and math.isclose(first["mean"], 0.2)

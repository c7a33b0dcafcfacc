"""load_study: tidy rows, labels, problem keys, the budget axis, incomplete and duplicate runs."""

import json
import math

import numpy as np
import pytest

import mfbo
from mfbo.analysis import load_study


def test_load_study_on_real_logs_matches_load_runs(tmp_path):
    for seed in (0, 1):
        mfbo.minimize("forrester", "random", budget=4, seed=seed, log_path=tmp_path / "runs" / f"forrester__random__seed{seed}.jsonl")
    df = load_study(tmp_path)
    plain = mfbo.load_runs(tmp_path)
    assert len(df) == len(plain) == 8
    assert set(df["label"]) == {"random"} and set(df["run"]) == {"runs/forrester__random__seed0", "runs/forrester__random__seed1"}
    assert sorted(df["value"]) == sorted(plain["value"])
    assert df["optimum_exact"].all()
    assert np.allclose(df["regret"], df["rec_value"] - df["optimum"])
    assert (df["budget_frac"] == df["cum_cost"] / 4).all()
    assert list(df.groupby("run")["n_obs"].apply(list).iloc[0]) == [0, 1, 2, 3]


def test_labels_come_from_spec_then_study_header_then_strategy(tmp_path, make_log):
    t = [{"cost": 1.0, "rec_value": 1.0}]
    make_log(tmp_path / "a.jsonl", t, strategy="mf-kg", spec_extra={"label": "mf-kg-fast"})
    make_log(tmp_path / "b.jsonl", t, strategy="mf-kg", header_extra={"study": {"label": "mf-kg-slow", "problem_label": "toy-hard"}})
    make_log(tmp_path / "c.jsonl", t, strategy="random")
    df = load_study(tmp_path).set_index("run")
    assert df.loc["a", "label"] == "mf-kg-fast" and df.loc["b", "label"] == "mf-kg-slow" and df.loc["c", "label"] == "random"
    assert df.loc["b", "problem"] == "toy-hard" and df.loc["a", "problem"] == "toy"
    assert df.loc[["a", "b", "c"], "strategy"].tolist() == ["mf-kg", "mf-kg", "random"]


def test_problem_options_make_distinct_problems(tmp_path, make_log):
    t = [{"cost": 1.0, "rec_value": 1.0}]
    make_log(tmp_path / "a.jsonl", t, spec_extra={"problem_options": {"noise": 0.1}})
    make_log(tmp_path / "b.jsonl", t)
    assert sorted(set(load_study(tmp_path)["problem"])) == ["toy", "toy[noise=0.1]"]


def test_two_logs_for_one_problem_label_seed_is_an_error_naming_both(tmp_path, make_log):
    t = [{"cost": 1.0, "rec_value": 1.0}]
    make_log(tmp_path / "x1.jsonl", t, strategy="mf-kg")
    make_log(tmp_path / "x2.jsonl", t, strategy="mf-kg")
    with pytest.raises(ValueError, match=r"x1.jsonl and .*x2.jsonl.*distinct strategy labels"):
        load_study(tmp_path)


def test_incomplete_runs_are_left_out_with_a_warning_or_kept(tmp_path, make_log):
    t = [{"cost": 1.0, "rec_value": 1.0}]
    make_log(tmp_path / "done.jsonl", t, seed=0)
    make_log(tmp_path / "partial.jsonl", t, seed=1, complete=False)
    with pytest.warns(RuntimeWarning, match="left out 1 incomplete run"):
        df = load_study(tmp_path)
    assert set(df["run"]) == {"done"} and df.attrs["incomplete"] == [str(tmp_path / "partial.jsonl")]
    assert set(load_study(tmp_path, complete_only=False)["run"]) == {"done", "partial"}


def test_missing_or_empty_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        load_study(tmp_path / "no_such_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no run logs \(\*.jsonl\) under .*empty"):
        load_study(tmp_path / "empty")


def test_wall_clock_runs_use_the_simulated_clock_as_budget_axis(tmp_path, make_log):
    # two workers: cost accumulates twice as fast as the clock
    trials = [{"cost": 4.0, "worker": 0, "start": 0.0, "end": 4.0, "rec_value": 3.0},
              {"cost": 4.0, "worker": 1, "start": 0.0, "end": 4.0, "rec_value": 2.0},
              {"cost": 2.0, "worker": 0, "start": 4.0, "end": 6.0, "rec_value": 1.0}]
    make_log(tmp_path / "w.jsonl", trials, budget=8.0, header_extra={"execution": {"workers": 2, "stop": "wall_clock"}})
    df = load_study(tmp_path)
    assert df["spent"].tolist() == [4.0, 4.0, 6.0]
    assert df["budget_frac"].tolist() == [0.5, 0.5, 0.75]
    assert df["budget_axis"].iloc[0] == "end" and df["worker"].tolist() == [0, 1, 0]


def test_the_wall_clock_axis_puts_cost_stopped_runs_on_the_problems_latest_end_time(tmp_path, make_log):
    # two cost-stopped runs of one problem: 2 async workers (clock 6 for cost 10) and 1 worker (clock 10)
    two = [{"cost": 4.0, "worker": 0, "start": 0.0, "end": 4.0, "rec_value": 3.0},
           {"cost": 4.0, "worker": 1, "start": 0.0, "end": 4.0, "rec_value": 2.0},
           {"cost": 2.0, "worker": 0, "start": 4.0, "end": 6.0, "rec_value": 1.0}]
    one = [{"cost": 5.0, "worker": 0, "start": 0.0, "end": 5.0, "rec_value": 3.0},
           {"cost": 5.0, "worker": 0, "start": 5.0, "end": 10.0, "rec_value": 2.0}]
    make_log(tmp_path / "two.jsonl", two, strategy="a", header_extra={"execution": {"workers": 2, "stop": "cost"}})
    make_log(tmp_path / "one.jsonl", one, strategy="b", header_extra={"execution": {"workers": 1, "stop": "cost"}})
    by_cost = load_study(tmp_path).set_index(["run", "n_obs"])
    assert by_cost.loc["two", "budget_frac"].tolist() == [0.4, 0.8, 1.0]
    by_clock = load_study(tmp_path, axis="wall_clock").set_index(["run", "n_obs"])
    assert by_clock.loc["two", "budget_frac"].tolist() == [0.4, 0.4, 0.6]  # the end times over 10, the latest end
    assert by_clock.loc["one", "budget_frac"].tolist() == [0.5, 1.0]
    assert set(by_clock["budget"]) == {10.0} and set(by_clock["budget_axis"]) == {"end"}
    assert by_clock.loc["two", "workers"].tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="axis must be one of 'budget', 'wall_clock', got 'time'"):
        load_study(tmp_path, axis="time")


def test_the_wall_clock_axis_needs_simulated_end_times(tmp_path, make_log):
    make_log(tmp_path / "r.jsonl", [{"cost": 1.0, "rec_value": 1.0}])
    with pytest.raises(ValueError, match=r"r.jsonl: axis='wall_clock' was asked for but the trials have no simulated 'end' time"):
        load_study(tmp_path, axis="wall_clock")


def test_overshooting_last_trial_counts_at_the_budget(tmp_path, make_log):
    make_log(tmp_path / "o.jsonl", [{"cost": 6.0, "rec_value": 1.0}, {"cost": 6.0, "rec_value": 0.5}], budget=10.0)
    assert load_study(tmp_path)["budget_frac"].tolist() == [0.6, 1.0]


def test_normalised_fidelity_column(tmp_path, make_log):
    levels = {"name": "level", "low": 1, "high": 5, "target": 5, "levels": [1, 2, 3, 4, 5], "integer": True}
    log_scale = {"name": "z", "low": 1, "high": 100, "target": 100, "integer": True, "log": True}
    make_log(tmp_path / "a.jsonl", [{"cost": 1.0, "fidelity": 1}, {"cost": 1.0, "fidelity": 3}, {"cost": 1.0, "fidelity": 5}],
             problem="ladder", fidelity=levels)
    make_log(tmp_path / "b.jsonl", [{"cost": 1.0, "fidelity": 10}, {"cost": 1.0, "fidelity": 100}], problem="logz", fidelity=log_scale)
    df = load_study(tmp_path)
    assert df.loc[df["problem"] == "ladder", "fidelity_s"].tolist() == [0.0, 0.5, 1.0]
    assert np.allclose(df.loc[df["problem"] == "logz", "fidelity_s"], [0.5, 1.0])
    assert json.loads(df["fidelity_spec"].iloc[0]) in (levels, log_scale)


def test_reference_optimum_is_not_exact(tmp_path, make_log):
    make_log(tmp_path / "y.jsonl", [{"cost": 1.0, "rec_value": -0.5}], optimum=0.0,
             problem_extra={"optimum_kind": "reference: best of 1000 random configurations (seed 0)"})
    df = load_study(tmp_path)
    assert not df["optimum_exact"].iloc[0]
    assert math.isclose(df["regret"].iloc[0], -0.5)  # as logged: a reference value can be beaten

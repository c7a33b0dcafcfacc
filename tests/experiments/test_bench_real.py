"""experiments/bench_real.py: the regret at budget fractions read from trial records, the budget,
the store (one row per run, stored runs skipped, ``--rerun``) and the tables, on a tiny run of
``random`` on ``digits-mlp-table`` (a recorded table shipped with mfbo)."""

import math

import bench_real
import pytest

import mfbo
from mfbo.loop import TIMING_FIELDS
from mfbo.problems.base import Problem
from mfbo.runlog import read_run
from mfbo.space import Fidelity, Float, Space


def trial(cum_cost, regret):
    return {"cum_cost": cum_cost, "regret": regret}


def test_regret_at_a_fraction_is_the_last_record_within_that_share_of_the_budget():
    trials = [trial(1.0, None), trial(2.0, 3.0), trial(5.0, 2.0), trial(9.0, 1.5), trial(10.0 * (1 + 1e-12), 1.0)]
    assert bench_real.regret_at_fractions(trials, 10.0) == [3.0, 2.0, 1.0]
    assert bench_real.regret_at_fractions(trials, 10.0, [0.05, 0.1, 0.15]) == [math.inf, math.inf, math.inf]  # nothing yet, then no recommendation
    assert bench_real.regret_at_fractions(trials[:3], 10.0) == [3.0, 2.0, 2.0]  # a run that stopped early keeps its last value


def test_the_budget_is_the_mean_target_cost_of_a_fixed_sample():
    problem = mfbo.problems.get("digits-mlp-table")
    mean, how = bench_real.mean_full_cost(problem)
    assert mean == bench_real.mean_full_cost(problem)[0] and 0.5 < mean < 3 and "cost model" in how
    unknown = Problem.from_function(lambda config, z: (config["x"] * z, 2.0), Space({"x": Float(0.0, 1.0)}), Fidelity("z", 1, 4, integer=True))
    assert bench_real.mean_full_cost(unknown) == (2.0, f"no cost model: mean measured cost of {bench_real.MEASURED_SAMPLE} target evaluations")


def test_a_tiny_benchmark_stores_one_row_per_run_skips_stored_runs_and_tabulates(tmp_path, capsys):
    store, out = tmp_path / "store.csv", tmp_path / "logs"
    argv = ["--problems", "digits-mlp-table", "--strategies", "random", "--seeds", "1", "--seed-offset", "100",
            "--budget-evals", "3", "--workers", "1", "--out", str(out), "--store", str(store)]
    bench_real.main(argv)
    rows = bench_real.read_store(store)
    assert len(rows) == 1 and list(rows[0]) == list(bench_real.STORE_COLUMNS)
    row = rows[0]
    assert (row["problem"], row["strategy"], row["seed"], float(row["budget_evals"])) == ("digits-mlp-table", "random", "100", 3.0)
    assert float(row["regret_100"]) <= float(row["regret_50"]) <= float(row["regret_25"]) and float(row["share_target"]) == 1.0
    assert float(row["simple_regret_100"]) == float(row["regret_100"])  # random recommends its best observed target value
    first = capsys.readouterr().out
    assert "1 runs to do" in first and "| digits-mlp-table | **" in first and "rank at 100 %" in first

    bench_real.main(argv)
    assert "0 runs to do" in capsys.readouterr().out and len(bench_real.read_store(store)) == 1
    bench_real.main(argv + ["--table-only"])
    assert "1 stored runs at 3 x the mean full-fidelity cost, seeds 100..100" in capsys.readouterr().out
    bench_real.main(argv + ["--rerun", "random"])
    rerun = capsys.readouterr().out
    assert "dropped 1 stored rows and 1 run logs of random" in rerun and "1 runs to do" in rerun
    again = bench_real.read_store(store)
    assert len(again) == 1 and {k: v for k, v in again[0].items() if k not in ("seconds", "overhead", "recommend_seconds")} == \
        {k: v for k, v in row.items() if k not in ("seconds", "overhead", "recommend_seconds")}


def test_the_verdict_names_the_best_mf_strategy_and_each_opponent():
    pd = pytest.importorskip("pandas")
    ranks = {1.0: pd.Series({"gp-ei": 2.0, "mf-kg": 1.5, "mf-ei": 3.0, "dehb": 4.0}),
             0.5: pd.Series({"gp-ei": 1.0, "mf-kg": 2.0, "mf-ei": 3.0, "dehb": 4.0})}
    line = bench_real.verdict({f: {"ranks": r} for f, r in ranks.items()}, ["gp-ei", "mf-kg", "mf-ei", "dehb"])
    assert line == "best mf-* strategy: mf-kg, rank at 100 %: 1.50, at 50 %: 2.00, beats gp-ei/dehb: no (gp-ei: no, dehb: yes)"


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(SystemExit, match=r"--strategies: unknown \['hyperband'\]; known: .*dehb.*optuna-tpe-hb"):
        bench_real.main(["--strategies", "hyperband", "--table-only"])


@pytest.mark.slow
def test_a_smac_run_reproduces_in_a_new_worker_process(tmp_path):
    pytest.importorskip("smac")
    logs = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        bench_real.main(["--problems", "digits-mlp-table", "--strategies", "smac-mf", "--seeds", "1", "--budget-evals", "4",
                         "--workers", "1", "--out", str(out), "--store", str(tmp_path / f"{attempt}.csv")])
        run = read_run(next(out.glob("*.jsonl")))
        logs.append([{k: v for k, v in t.items() if k not in TIMING_FIELDS} for t in run.trials])
    assert logs[0] == logs[1] and len(logs[0]) > 20

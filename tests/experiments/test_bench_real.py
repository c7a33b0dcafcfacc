"""experiments/bench_real.py: the regret at budget fractions read from trial records, the budget,
the store (one row per run, stored runs skipped, ``--rerun``) and the tables, on a tiny run of
``random`` on ``digits-mlp-table`` (a recorded table shipped with mfbo)."""

import json
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


def test_the_verdict_names_the_best_complete_mf_strategy_and_each_opponent():
    pd = pytest.importorskip("pandas")

    def duel(at_full: dict, at_half: dict, blocks: int) -> dict:
        summaries = {1.0: pd.Series(at_full), 0.5: pd.Series(at_half), 0.25: pd.Series(at_half)}
        return {f: {"ranks": r, "n_blocks": blocks} for f, r in summaries.items()}

    duels = {
        "mf-kg": duel({"mf-kg": 1.5, "gp-ei": 2.0, "dehb-ref": 2.5}, {"mf-kg": 2.0, "gp-ei": 1.0, "dehb-ref": 3.0}, 6),
        "mf-ei": duel({"mf-ei": 1.0, "gp-ei": 2.5, "dehb-ref": 2.5}, {"mf-ei": 1.0, "gp-ei": 2.5, "dehb-ref": 2.5}, 2),
    }
    line = bench_real.verdict(duels, complete=["mf-kg", "gp-ei", "dehb-ref"])  # mf-ei ranks first on its two blocks only
    assert line == ("best mf-* strategy: mf-kg, ranked with the opponents over 6 blocks: rank at 100 %: 1.50, at 50 %: 2.00, "
                    "beats gp-ei/dehb-ref: no (gp-ei: no, dehb-ref: yes)")
    assert bench_real.verdict(duels, complete=["gp-ei"]) == "best mf-* strategy: none has a run in every block (mf-kg, mf-ei): no verdict"


def test_a_strategy_with_missing_runs_is_ranked_on_its_own_blocks(tmp_path, capsys):
    pytest.importorskip("pandas")
    rows = []
    for problem in ("p1", "p2"):
        for seed in range(3):
            for strategy, regret in (("gp-ei", 0.2), ("dehb-ref", 0.3), ("mf-ucb", 0.1), ("mf-kg", 0.4)):
                if strategy == "mf-kg" and seed > 0:
                    continue  # one seed of six blocks
                rows.append({"problem": problem, "strategy": strategy, "seed": str(seed), "budget_evals": "20",
                             **{bench_real.regret_column(f): str(regret + 0.01 * seed) for f in bench_real.FRACTIONS},
                             "simple_regret_100": "0.1", "share_target": "0.5", "overhead": "1", "recommend_seconds": "0",
                             "seconds": "2", "n_trials": "10", "commit": "abc"})
    bench_real.table(rows, ["p1", "p2"], ["gp-ei", "mf-kg", "mf-ucb", "dehb-ref"], range(3), 20.0)
    out = capsys.readouterr().out
    assert "Over 6 (problem, seed) blocks with a run of every strategy" in out  # mf-kg's gaps do not shrink the table
    assert "Not in this table, runs missing: mf-kg (2 of 6)" in out
    assert "| mf-kg | 2 | 3.00 | 3.00 | 3.00 | gp-ei 1.00 | gp-ei 1.00 |" in out
    assert "| mf-ucb | 6 | 1.00 | 1.00 | 1.00 | gp-ei 2.00 | gp-ei 2.00 |" in out
    assert "best mf-* strategy: mf-ucb, ranked with the opponents over 6 blocks" in out and "beats gp-ei/dehb-ref: yes" in out


def test_a_variant_label_runs_the_strategy_with_its_options_and_is_stored_under_the_label(tmp_path):
    assert bench_real.parse_label("mf-ucb") == ("mf-ucb", {})
    assert bench_real.parse_label("mf-ucb:init_fraction=0.2,fidelity_levels=ladder") == ("mf-ucb", {"init_fraction": 0.2, "fidelity_levels": "ladder"})
    with pytest.raises(SystemExit, match=r"options must read name:option=value,option=value, got 'init_fraction'"):
        bench_real.parse_label("mf-ucb:init_fraction")
    store, out = tmp_path / "store.csv", tmp_path / "logs"
    bench_real.main(["--problems", "digits-mlp-table", "--strategies", "gp-ei:n_init=2", "--seeds", "1", "--budget-evals", "3",
                     "--workers", "1", "--out", str(out), "--store", str(store)])
    row, = bench_real.read_store(store)
    assert row["strategy"] == "gp-ei:n_init=2" and json.loads(row["options"])["n_init"] == 2
    assert (out / "digits-mlp-table__gp-ei_n_init_2__seed0.jsonl").exists()


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(SystemExit, match=r"--strategies: unknown \['hyperbnad'\]; known: .*dehb-ref.*optuna-tpe-hb"):
        bench_real.main(["--strategies", "hyperbnad", "--table-only"])
    with pytest.raises(SystemExit, match=r"--strategies: \['dehb-ref:eta=2'\]: the reference methods take no options here"):
        bench_real.main(["--strategies", "dehb-ref:eta=2", "--table-only"])


def test_the_held_out_set_is_disjoint_from_the_development_set_and_names_expand():
    assert not set(bench_real.HELD_OUT) & set(bench_real.PROBLEMS)
    names = bench_real.resolve_names(["held-out", "development", "lcbench/3945"], ["gp-ei"])
    assert names == [*bench_real.HELD_OUT, *bench_real.PROBLEMS]  # in order, repeats dropped
    with pytest.raises(SystemExit, match="--problems"):
        bench_real.resolve_names(["held_out"], ["gp-ei"])


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


def test_stored_runs_under_different_recommendation_rules_are_named():
    def row(strategy, options):
        return {"strategy": strategy, "options": json.dumps(options)}

    rows = [row("mf-kg", {"recommendation": "evaluated"})] * 2 + [row("mf-kg", {"recommendation": "auto"})]
    rows += [row("gp-ei", {"n_init": 8}), row("gp-ei", {"recommendation": "auto"}), row("dehb-ref", {}), row("mf-ucb", {"recommendation": "auto"})]
    assert bench_real.recommendation_rules(rows) == "gp-ei: (not an option) 1, auto 1; mf-kg: auto 1, evaluated 2"
    assert bench_real.recommendation_rules(rows[-2:]) == ""

"""experiments/bench_quality.py: variant labels are run with their options and stored under the
label, seeds start at ``--seed-offset``, and the table reads only the requested seeds."""

import json

import bench_quality
import pytest


def test_a_variant_label_runs_with_its_options_and_is_stored_under_the_label(tmp_path, capsys):
    store, out = tmp_path / "store.csv", tmp_path / "logs"
    argv = ["--problems", "forrester", "--strategies", "random", "gp-ei:n_init=3", "--seeds", "2", "--seed-offset", "100",
            "--evals", "4", "--workers", "1", "--out", str(out), "--store", str(store)]
    bench_quality.main(argv)
    rows = bench_quality.read_store(store)
    assert sorted((r["strategy"], r["seed"]) for r in rows) == [("gp-ei:n_init=3", "100"), ("gp-ei:n_init=3", "101"), ("random", "100"), ("random", "101")]
    variant = next(r for r in rows if r["strategy"] == "gp-ei:n_init=3")
    assert json.loads(variant["options"])["n_init"] == 3
    printed = capsys.readouterr().out
    assert "4 runs to do" in printed and "4 stored runs at 4 target evaluations, seeds 100-101" in printed

    never_run = ["--problems", "forrester", "--strategies", "random", "gp-ei:n_init=3", "--seeds", "1", "--evals", "4", "--store", str(store)]
    bench_quality.main(never_run + ["--table-only"])  # seed 0 (the default offset) was never run
    assert "0 stored runs at 4 target evaluations, seeds 0-0 (2 of the 2 runs of 1 seed(s) missing)" in capsys.readouterr().out


def test_unknown_strategies_and_negative_seeds_are_refused_before_any_run(tmp_path, capsys):
    base = ["--problems", "forrester", "--store", str(tmp_path / "store.csv"), "--out", str(tmp_path / "logs")]
    with pytest.raises(SystemExit):
        bench_quality.main(base + ["--strategies", "mf-nope:x=1"])
    assert "unknown ['mf-nope:x=1']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_quality.main(base + ["--seed-offset", "-1"])
    assert "--seed-offset >= 0" in capsys.readouterr().err
    assert not (tmp_path / "store.csv").exists()

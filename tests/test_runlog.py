"""The JSON Lines trial log: layout, load_runs, and tolerance of a truncated last line."""

import json

import pytest

import mfbo
from mfbo.runlog import read_run

pd = pytest.importorskip("pandas")


@pytest.fixture
def run_dir(tmp_path):
    for seed in (0, 1):
        mfbo.minimize("forrester", "random", budget=4, seed=seed, log_path=tmp_path / f"forrester_{seed}.jsonl")
    return tmp_path


def test_file_layout(run_dir):
    lines = (run_dir / "forrester_0.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["type"] == "header" and records[-1]["type"] == "footer"
    header = records[0]
    assert header["spec"] == {"problem": "forrester", "problem_options": {}, "strategy": "random", "options": {}, "seed": 0, "budget": 4.0}
    assert {"mfbo", "torch", "gpytorch", "botorch"} <= set(header["versions"])
    trials = [r for r in records if r["type"] == "trial"]
    assert len(trials) == 4
    expected = {"id", "config", "fidelity", "value", "cost", "cum_cost", "eval_time", "overhead", "recommendation", "rec_value", "regret", "status", "error", "best_value"}
    assert expected <= set(trials[0])


def test_load_runs_is_tidy(run_dir):
    df = mfbo.load_runs(run_dir)
    assert len(df) == 8
    assert set(df["seed"]) == {0, 1} and set(df["problem"]) == {"forrester"}
    assert "config.x" in df.columns and df["complete"].all()
    assert df.attrs["truncated"] == []
    single = mfbo.load_runs(run_dir / "forrester_1.jsonl")
    assert len(single) == 4 and (single["seed"] == 1).all()


def test_result_to_frame_matches_log(run_dir):
    result = mfbo.minimize("forrester", "random", budget=4, seed=0)
    frame = result.to_frame()
    logged = mfbo.load_runs(run_dir / "forrester_0.jsonl")
    assert frame["value"].tolist() == logged["value"].tolist()
    assert frame["config.x"].tolist() == logged["config.x"].tolist()


def test_truncated_last_line_is_tolerated_and_reported(run_dir):
    path = run_dir / "forrester_0.jsonl"
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # header, 2 trials, half a trial
    with pytest.warns(RuntimeWarning, match=r"forrester_0.jsonl: the last line \(4\) is truncated"):
        run = read_run(path)
    assert run.truncated and len(run.trials) == 2 and not run.complete
    with pytest.warns(RuntimeWarning):
        df = mfbo.load_runs(run_dir)
    assert df.attrs["truncated"] == [str(path)]
    assert len(df) == 6
    assert not df.loc[df["seed"] == 0, "complete"].any()


def test_unterminated_but_valid_last_line_is_reported(run_dir):
    path = run_dir / "forrester_0.jsonl"
    path.write_text(path.read_text().rstrip("\n"))
    with pytest.warns(RuntimeWarning, match="has no line end"):
        run = read_run(path)
    assert run.truncated and run.footer is None


def test_corruption_in_the_middle_is_an_error(run_dir):
    path = run_dir / "forrester_0.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:10] + "\n"
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"forrester_0.jsonl:3: corrupt record"):
        read_run(path)


def test_missing_path():
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        mfbo.load_runs("/nonexistent/dir")

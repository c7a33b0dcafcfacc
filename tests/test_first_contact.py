"""What a new user hits in the first hour (issue 18): Ctrl-C on a study, user bugs reported
in one clear line, honest progress and figures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfbo.runlog import read_run
from mfbo.study import load_study, run_study, study_states

INTERRUPTIBLE = """
name = "interrupt"
seeds = [0, 1, 2]
budget = { target_evaluations = 6 }
problems = ["forrester"]
[[strategies]]
name = "gp-ei"
options = { n_init = 2, num_restarts = 2, raw_samples = 16 }
"""


def default_sigint() -> None:
    """In the child before exec: SIGINT as at a terminal. A shell that starts a job in the
    background without job control (``cmd &`` in a script) ignores SIGINT for it, children
    inherit that, and Python then installs no KeyboardInterrupt handler: Ctrl-C tests would
    see the study run on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive_in_group(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are alive (zombies, already dead, left out)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_until(condition, timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (a guard against a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to list the process group")
def test_one_sigint_stops_a_study_with_workers_and_it_resumes(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(f'output = "{(tmp_path / "out").as_posix()}"\n' + INTERRUPTIBLE)
    study = load_study(path)
    logs = [study.output / run.file_name for run in study.runs]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mfbo.cli", "study", "run", str(path), "--workers", "2", "--threads", "1", "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=default_sigint,
    )
    try:
        started = wait_until(lambda: sum(p.exists() and p.read_text().count('"type": "trial"') >= 1 for p in logs) >= 2, 300)
        assert started, "no run started"
        os.kill(proc.pid, signal.SIGINT)  # one SIGINT, to the main process only
        _, err = proc.communicate(timeout=120)  # generous: a guard against a hang
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    assert wait_until(lambda: not alive_in_group(proc.pid), 30), f"pool processes survived: {alive_in_group(proc.pid)}"
    assert not list(study.output.glob("*.lock"))  # every interrupted run released its lock
    states = [s.state for s in study_states(study)]
    assert "done" not in states[2:] and set(states) <= {"done", "partial", "missing"} and "partial" in states

    report = run_study(study, threads=1, progress=False)  # resume: finishes every run
    assert report.ok and all(s.state == "done" for s in study_states(study))
    assert sum(o.replayed for o in report.outcomes) >= 2  # the interrupted runs' evaluations were kept
    assert all(len(read_run(p).trials) == 6 for p in logs)


def test_a_stop_file_stops_a_run_at_a_trial_boundary_resumable(tmp_path):
    """The Dask path of Ctrl-C: a running task stops after its trial once the stop file exists."""
    from mfbo.study.execute import execute_run

    path = tmp_path / "study.toml"
    path.write_text(f'output = "{(tmp_path / "out").as_posix()}"\n' + INTERRUPTIBLE.split("[[strategies]]")[0] + 'strategies = ["random"]\n')
    study = load_study(path)
    run = study.runs[0]
    stop = tmp_path / "stop"
    stop.touch()
    outcome = execute_run(run, study.output, study.name, stop_file=str(stop))
    assert outcome.status == "interrupted" and "after trial 0" in outcome.error
    log = read_run(study.output / run.file_name)
    assert len(log.trials) == 1 and not log.complete
    assert not list(study.output.glob("*.lock"))
    stop.unlink()
    outcome = execute_run(run, study.output, study.name, stop_file=str(stop))
    assert outcome.status == "done" and outcome.replayed == 1 and outcome.n_trials == 6


def test_an_unreachable_dask_scheduler_is_one_line_at_once():
    import socket

    from mfbo.study.execute import connect_dask

    pytest.importorskip("dask.distributed")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ValueError, match=rf"cannot reach a Dask scheduler at 'tcp://127.0.0.1:{port}': start one with `dask scheduler`"):
        connect_dask(f"tcp://127.0.0.1:{port}")


# -- user bugs: one clear message ---------------------------------------------------------------------
def _problem(fn):
    from mfbo import Fidelity, Float, Problem, Space

    return Problem.from_function(fn, Space(x=Float(0.0, 1.0)), Fidelity("epochs", 1, 9, integer=True),
                                 cost=lambda epochs: epochs / 9, name="first-contact")


def test_an_objective_with_the_wrong_signature_stops_the_run_naming_it(tmp_path):
    import mfbo
    from mfbo.loop import SAME_ERROR_LIMIT, ObjectiveError

    def train(config):  # forgot the fidelity argument
        return config["x"]

    with pytest.raises(ObjectiveError, match=r"objective .*train \(called as fn\(config, fidelity\)\) raised the same error "
                                             r"in each of the first 3 trials: TypeError: .*train\(\) takes 1 positional argument"):
        mfbo.minimize(_problem(train), "random", budget=10, seed=0, log_path=tmp_path / "run.jsonl")
    log = read_run(tmp_path / "run.jsonl")
    assert len(log.trials) == SAME_ERROR_LIMIT and log.footer["stop_reason"] == "problem error"
    assert "fix the objective" in log.footer["error"]


def test_repeated_runtime_failures_and_later_bugs_are_still_failed_trials():
    import mfbo

    def flaky(config, epochs):  # a legitimate failure mode: the run goes on
        raise RuntimeError("CUDA out of memory")

    assert mfbo.minimize(_problem(flaky), "random", budget=3, seed=0).stop_reason.startswith("budget")
    calls = []

    def late_bug(config, epochs):  # worked first: the bug is in some configurations only
        calls.append(1)
        if len(calls) > 1:
            raise KeyError("lr")
        return config["x"]

    result = mfbo.minimize(_problem(late_bug), "random", budget=5, seed=0)
    assert result.stop_reason.startswith("budget") and sum(t.status == "failed" for t in result.trials) == 4


def test_a_numeric_string_is_a_failed_trial_saying_so():
    import mfbo

    result = mfbo.minimize(_problem(lambda config, epochs: "0.5"), "random", budget=2, seed=0, max_trials=2)
    assert [t.status for t in result.trials] == ["failed", "failed"]
    assert "returned '0.5' (str), not a number: return a float" in result.trials[0].error


def test_an_unknown_problem_option_lists_the_allowed_ones(capsys):
    from mfbo.cli import main

    argv = ["run", "--problem", "hartmann6", "--strategy", "random", "--budget", "1", "--quiet", "--problem-option", "foo=1"]
    assert main(argv) == 2
    assert capsys.readouterr().err == "mfbo: error: problem 'hartmann6': unknown option(s) foo; its options: none\n"
    assert main([*argv[:2], "digits-mlp", *argv[3:]]) == 2  # options inherited through **kwargs are listed
    err = capsys.readouterr().err
    assert "unknown option(s) foo; its options: seed: int = 0, max_epochs: int | None = None, cost: str = 'wall'" in err
    assert "TrainingProblem" not in err and "__init__" not in err


def test_list_into_a_closed_pipe_is_quiet():
    proc = subprocess.run(f"{sys.executable} -m mfbo.cli list | head -1", shell=True, capture_output=True, text=True, check=False)
    assert proc.stdout == "problems:\n" and proc.stderr == ""


def test_list_strategies_shows_types_and_defaults(capsys):
    from mfbo.cli import main

    assert main(["list", "strategies"]) == 0
    out = capsys.readouterr().out
    assert "mf-kg  - " in out and "kernel: str = 'autoregressive'" in out and "eta: float = 3.0" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_tests_skipped_for_missing_data_are_named_in_the_summary(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "conftest.py").write_text(f"exec(open({str(repo / 'tests' / 'conftest.py')!r}).read())\n")
    (tmp_path / "test_data.py").write_text(
        "import pytest\n"
        "@pytest.mark.skipif(True, reason='data not found (set MFBO_DATA_DIR)')\n"
        "def test_needs_data(): pass\n"
        "def test_plain(): pass\n"
    )
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, check=False).stdout
    assert "1 tests skipped for missing data (test_data.py: 1); to run them, " in out and "set MFBO_DATA_DIR=" in out


def test_the_progress_bar_estimates_the_time_left():
    import io

    from mfbo.progress import ProgressBar, format_duration

    clock = iter([0.0, 1.0, 30.0, 90.0, 120.0]).__next__
    stream = io.StringIO()
    bar = ProgressBar(10, stream=stream, min_interval=0.0, clock=clock)  # starts at t = 0
    bar.update(1)  # t = 1 s: too early for an estimate
    bar.update(2.5, "trial 3")  # t = 30 s, a quarter done: 90 s left
    bar.update(7.5)  # t = 90 s, three quarters: 30 s left
    bar.update(10)  # t = 120 s: done
    lines = stream.getvalue().splitlines()
    assert "left" not in lines[0]
    assert lines[1].endswith("2.5/10 cost  ~1 min 30 s left  trial 3") and "~30 s left" in lines[2]
    assert "took 2 min 00 s" in lines[3]
    assert format_duration(7265) == "2 h 01 min"


# -- figures and tables that do not mislead -------------------------------------------------------------
def test_a_target_nobody_reached_is_not_bold_and_says_so():
    pd = pytest.importorskip("pandas")
    import math

    from mfbo.analysis.tables import results_table

    inf = math.inf
    values = pd.DataFrame({
        "problem": ["p"] * 6 + ["q"] * 6,
        "label": ["a", "a", "a", "b", "b", "b"] * 2,
        "cost_to_target": [inf, inf, inf, inf, inf, inf, 0.5, inf, 0.3, inf, inf, 0.9],
    })
    md = results_table(values, value="cost_to_target", quantity="budget fraction", inf_text="not reached").to_markdown()
    row_p = next(line for line in md.splitlines() if line.startswith("| p |"))
    row_q = next(line for line in md.splitlines() if line.startswith("| q |"))
    assert row_p == "| p | not reached (0/3) | not reached (0/3) |"  # no bold: nobody reached it
    assert row_q.startswith("| q | **0.5 [0.4, inf]** (2/3) | not reached (1/3) |")
    assert "(k/n): k of the cell's n runs have a finite value" in md
    assert "| *average rank* | **1.00** | 2.00 |" in md  # from q only: p, where nobody reached it, ranks nobody


def test_figure_helpers_draw_runs_log_bands_chance_levels_and_start_ranks_where_they_differ():
    pd = pytest.importorskip("pandas")
    import numpy as np

    from mfbo.analysis import plots
    from mfbo.analysis.stats import summarise

    a, b = 0.02, 0.5  # two runs: their values are recovered exactly from either summary
    s = summarise([a, b])
    for stat in ("median", "mean"):
        low, high = plots._two_runs(pd.DataFrame([s]), stat)
        assert low[0] == pytest.approx(a) and high[0] == pytest.approx(b)
    low, high = plots._band(pd.DataFrame([summarise([1e-4, 1e-4, 1.0])]), "mean")  # mean - se < 0
    mean = summarise([1e-4, 1e-4, 1.0])["mean"]
    assert 0 < low[0] < mean < high[0] and low[0] * high[0] == pytest.approx(mean**2)  # symmetric in log space
    assert plots._chance_level("precision@10%") == 0.1 and plots._chance_level("Spearman $\\rho$") is None
    assert plots._seeds(np.array([3, 5, 5])) == "3-5" and plots._seeds(np.array([2, 2])) == "2"

    ranks = pd.DataFrame({"label": ["a", "b"] * 3, "frac": [0, 0, 0.1, 0.1, 0.2, 0.2],
                          "rank": [1.5, 1.5, 1, 2, 2, 1], "n_blocks": [2] * 6})
    styles = {lab: plots.LineStyle(colour="k", linestyle="-", marker="o") for lab in "ab"}
    fig = plots.plot_rank_vs_cost(ranks, styles)
    starts = [line.get_xdata()[0] for line in fig.axes[0].get_lines()]
    assert starts == [0.1, 0.1]  # not the tie at budget 0

    data = {"problem": "p", "metrics": [{"cost_fraction": 0.1, "fidelity": 3, "spearman": 0.5, "precision": {"10%": 0.3}},
                                        {"cost_fraction": 1.0, "fidelity": 27, "spearman": 1.0, "precision": {"10%": 1.0}}]}
    fig = plots.plot_calibration(data)
    ax = fig.axes[0]
    assert any(np.allclose(line.get_ydata(), 0.1) for line in ax.get_lines())  # the chance level of prec@10%
    top = next(child for child in ax.get_children() if type(child).__name__ == "SecondaryAxis")
    assert [t.get_text() for t in top.get_xticklabels()] == ["3", "27"]


def test_show_says_where_the_budget_went():
    from mfbo.cli import budget_by_fidelity

    trials = [{"fidelity": 1, "cost": 0.2}] * 5 + [{"fidelity": 5, "cost": 1.0}]
    assert budget_by_fidelity(trials, {"name": "level", "target": 5}) == [
        "budget by fidelity (level; target 5):",
        "  1                       5 trials   50% of cost",
        "  5 (target)              1 trials   50% of cost",
    ]
    continuous = [{"fidelity": 0.01 * k, "cost": 0.1} for k in range(9)] + [{"fidelity": 1.0, "cost": 0.1}]
    lines = budget_by_fidelity(continuous, {"name": "z", "target": 1.0})
    assert lines[1].startswith("  0-0.02 ") and lines[-1].startswith("  1 (target)") and len(lines) == 6
    assert budget_by_fidelity([{"fidelity": None, "cost": 1.0}], {}) == []

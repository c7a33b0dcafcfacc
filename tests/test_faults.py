"""Fault injection (issue #13): concurrent study processes, interrupted and dying workers, files
left half-written by a kill, diverging replays, broken cost callables, unwritable folders and
loose input checks. Each test is one numbered probe of the issue; SIGKILL, Ctrl-C and
concurrency use real processes, as the resume test of ``test_study.py`` does."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_study import GP_EI, logs, write_study

import mfbo
from mfbo import Categorical, Fidelity, Float, Int, Problem, Space
from mfbo.cli import main
from mfbo.loop import ProblemError
from mfbo.runlog import read_run
from mfbo.study import DamagedRunError, EvaluationCache, StudyConfigError, load_study, run_study
from mfbo.study.execute import execute_run
from mfbo.study.lock import lock_path
from mfbo.study.resume import cache_path

GUARD = 300  # seconds: a guard against a hang, not a performance limit

QUICK = """
seeds = [0, 1]
budget = { target_evaluations = 4 }
problems = ["forrester"]
strategies = ["random"]
"""

SLOW = f"""
seeds = [0, 1, 2]
budget = {{ target_evaluations = 8 }}
problems = ["forrester"]
[[strategies]]
name = "gp-ei"
options = {GP_EI}
"""


def default_sigint() -> None:
    """In the child before exec: SIGINT as at a terminal. A shell that starts a job in the
    background without job control (``cmd &`` in a script) ignores SIGINT for it, children
    inherit that, and Python then installs no KeyboardInterrupt handler: Ctrl-C tests would
    see the study run on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(path: Path, *args: str, **popen) -> subprocess.Popen:
    """``mfbo study run`` on ``path`` in a real process."""
    return subprocess.Popen([sys.executable, "-m", "mfbo.cli", "study", "run", str(path), "--quiet", *args],
                            cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_for(condition, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert proc is None or proc.poll() is None, proc.communicate()
        time.sleep(0.01)


def partial_run(study, n_trials: int, threads: int | None = None) -> Path:
    """The files of a run of ``study`` interrupted after ``n_trials`` evaluations: its cache, and
    a log without a footer. Returns the log path."""
    run = study.runs[0]
    log = study.output / run.file_name
    with EvaluationCache(cache_path(log), run.spec_hash, threads=threads) as cache:
        mfbo.minimize(run.problem, run.strategy, run.budget, seed=run.seed, log_path=log, max_trials=n_trials,
                      evaluation_cache=cache, log_header={"study": {"spec_hash": run.spec_hash}})
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-1]))  # drop the footer: interrupted
    return log


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def fake_lock(log: Path, pid: int) -> Path:
    path = lock_path(log)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": "earlier"}))
    return path


# -- 1. two processes on one study share the work --------------------------------------------------
def test_1_two_processes_share_the_runs_and_pay_each_evaluation_once(tmp_path):
    path = write_study(tmp_path, SLOW)
    study = load_study(path)
    first = cli(path, "--threads", "1")
    wait_for(lambda: list(study.output.glob("*.jsonl")), first)  # its first run is under way
    second = cli(path, "--threads", "1")
    out1, out2 = first.communicate(timeout=GUARD), second.communicate(timeout=GUARD)
    assert first.returncode == 0 and second.returncode == 0, (out1, out2)
    done = [int(o[0].split(" runs in ")[1].split(": ")[1].split(" done")[0]) for o in (out1, out2) if " runs in " in o[0]]
    assert sum(done) == 3  # every run was run by exactly one of them: nothing paid twice
    assert "corrupt" not in out1[0] + out2[0] and "FAILED" not in out1[0] + out2[0]
    assert not list(study.output.glob("*.ndjson")) and not list(study.output.glob("*.lock"))
    assert run_study(study.with_output(tmp_path / "alone"), progress=False, threads=1).ok
    assert logs(study.output) == logs(tmp_path / "alone")


def test_1_a_run_held_by_a_live_process_is_left_to_it_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    path = write_study(tmp_path, QUICK)
    study = load_study(path)
    held, stale = (study.output / r.file_name for r in study.runs)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        fake_lock(held, holder.pid)
        fake_lock(stale, dead_pid())
        assert main(["study", "run", str(path), "--quiet"]) == 0
        out = capsys.readouterr().out
        assert "1 done, 0 failed, 1 held by other processes" in out
        assert f"running   forrester / random / seed 0: held by pid {holder.pid} on {socket.gethostname()}" in out
        assert not held.exists() and read_run(stale).complete and not lock_path(stale).exists()
        assert main(["study", "status", str(path)]) == 0
        assert "running" in capsys.readouterr().out
    finally:
        holder.kill()
        holder.wait()
    assert main(["study", "run", str(path), "--quiet"]) == 0  # the holder is gone: its lock is stale now
    assert read_run(held).complete


# -- 2. Dask: a still-running task of an interrupted client is not doubled --------------------------
def test_2_dask_leaves_a_run_whose_task_still_runs_elsewhere_alone(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    study = load_study(write_study(tmp_path, QUICK))
    still_running = study.output / study.runs[0].file_name
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        fake_lock(still_running, holder.pid)  # the task of the interrupted client, on a worker
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
            with distributed.Client(cluster) as client:
                report = run_study(study, client=client, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(o.status for o in report.outcomes) == ["done", "held"]
    assert not still_running.exists()  # untouched: nothing written beside the running task


def test_2_ctrl_c_cancels_the_dask_futures(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    from mfbo.study import execute

    study = load_study(write_study(tmp_path, QUICK))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            cancelled = []
            monkeypatch.setattr(client, "cancel", lambda futures, **kw: cancelled.extend(futures))
            monkeypatch.setattr(execute, "_drain", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
            with pytest.raises(KeyboardInterrupt):
                run_study(study, client=client, progress=False)
    assert len(cancelled) == 2


# -- 3. labels that give one file name --------------------------------------------------------------
def test_3_labels_mapping_to_one_file_name_are_refused_naming_both(tmp_path):
    path = write_study(tmp_path, """
budget = { cost = 2 }
problems = ["forrester"]
strategies = [{ name = "random", label = "rs/a" }, { name = "random", label = "rs_a" }]
""")
    with pytest.raises(StudyConfigError) as info:
        load_study(path)
    assert info.value.errors == [
        "strategies[1].label: labels 'rs/a' and 'rs_a' give the same log file name 'forrester__rs_a__seed<k>.jsonl' "
        "(characters other than letters, digits, '_', '.', '-' become '_'); rename one of them"
    ]


# -- 4.-6. files a kill leaves behind ------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b'{"type": "hea'])
def test_4_a_log_without_header_is_an_empty_run_restarted_with_its_cache(tmp_path, content):
    study = load_study(write_study(tmp_path, QUICK.replace("[0, 1]", "[0]")))
    log = partial_run(study, 3)
    log.write_bytes(content)  # killed, or the disk was full, before the header was written
    report = run_study(study, progress=False)
    assert [o.status for o in report.outcomes] == ["done"] and report.outcomes[0].replayed == 3
    assert run_study(study.with_output(tmp_path / "clean"), progress=False).ok
    assert logs(study.output) == logs(tmp_path / "clean")


def test_5_a_complete_runs_leftover_cache_is_removed(tmp_path):
    study = load_study(write_study(tmp_path, QUICK.replace("[0, 1]", "[0]")))
    log = partial_run(study, 2)
    assert run_study(study, progress=False).ok
    with EvaluationCache(cache_path(log), study.runs[0].spec_hash):
        pass  # killed after the footer, before the cache was deleted
    report = run_study(study, progress=False)
    assert report.caches_removed == 1 and not cache_path(log).exists() and read_run(log).complete


def test_6_a_damaged_log_is_refused_saying_what_is_wrong_and_what_to_do(tmp_path):
    study = load_study(write_study(tmp_path, QUICK.replace("[0, 1]", "[0]")))
    log = partial_run(study, 3)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text(lines[0] + lines[1][:20] + "".join(lines[2:]))  # two writers interleaved: a record cut short
    with pytest.raises(DamagedRunError) as info:
        run_study(study, progress=False)
    message = str(info.value)
    assert "different spec" not in message and "the spec is the same" in message
    assert "damaged run log, not a change of spec" in message and ":2: corrupt record" in message
    assert f"Move or delete {log.name}; the run then restarts and reuses the 3 evaluations of its cache" in message
    log.unlink()  # doing what it says loses nothing
    report = run_study(study, progress=False)
    assert report.ok and report.outcomes[0].replayed == 3


# -- 7. thread counts and diverging replays ----------------------------------------------------------
def test_7_a_resume_uses_the_thread_count_the_run_started_with(tmp_path, capsys):
    path = write_study(tmp_path, QUICK.replace("[0, 1]", "[0]"))
    study = load_study(path)
    log = partial_run(study, 2, threads=3)
    assert main(["study", "run", str(path), "--quiet", "--threads", "1"]) == 0
    assert "resumed with 3 torch thread(s), as the run started (not 1)" in capsys.readouterr().out
    assert read_run(log).header["environment"] == {"torch_threads": 3}


def test_7_a_diverged_replay_reuses_evaluations_by_configuration_and_keeps_the_rest(tmp_path):
    study = load_study(write_study(tmp_path, QUICK.replace("[0, 1]", "[0]")))
    log = partial_run(study, 3)
    cache = cache_path(log)
    header, *entries = cache.read_text().splitlines()
    first, second, third = map(json.loads, entries)
    first["id"], second["id"] = 1, 0  # the replay asks them in another order
    stranger = {**third, "id": 9, "config": {"x": 0.123}}  # an evaluation the replay never asks for
    cache.write_text("\n".join([header] + [json.dumps(e) for e in (first, second, third, stranger)]) + "\n")
    outcome = execute_run(study.runs[0], study.output)
    assert outcome.status == "done" and outcome.replayed == 3, outcome.error
    kept = log.with_name(log.stem + ".unused-evals.ndjson")
    assert [json.loads(line)["config"] for line in kept.read_text().splitlines()[1:]] == [{"x": 0.123}]
    assert not cache.exists() and read_run(log).complete
    assert outcome.notes == [f"the replay diverged from the interrupted run (trial 0: the replay asked {first['config']} at fidelity "
                             f"{first['fidelity']!r}, the interrupted run had {second['config']} at {second['fidelity']!r}); 1 cached "
                             f"evaluation(s) of total cost {stranger['observation']['cost']:.4g} were not asked for again and are kept in {kept.name}"]


# -- 8. cost and target_value callables that fail -----------------------------------------------------
@pytest.mark.parametrize("cost, what", [(lambda z: -1.0, "returned -1.0"), (lambda z: math.nan, "returned nan"),
                                        (lambda z: 1 / 0, "raised ZeroDivisionError: division by zero")])
def test_8_a_bad_cost_callable_stops_the_run_before_evaluating_with_a_complete_log(tmp_path, cost, what):
    calls = []
    problem = Problem.from_function(lambda c, z: calls.append(c) or c["x"], Space(x=Float(0, 1)), Fidelity("z", 0.1, 1), cost=cost)
    with pytest.raises(ProblemError, match=f"the cost= callable .*<lambda> {what}"):
        mfbo.minimize(problem, "random", 3, log_path=tmp_path / "run.jsonl")
    assert not calls  # nothing was evaluated (and so nothing paid) for the trial
    footer = read_run(tmp_path / "run.jsonl").footer
    assert footer["stop_reason"] == "problem error" and what in footer["error"]


def test_8_a_raising_target_value_stops_the_run_naming_it(tmp_path, capsys):
    problem = Problem.from_function(lambda c, z: c["x"], Space(x=Float(0, 1)), Fidelity("z", 0.1, 1), cost=lambda z: z,
                                    target_value=lambda c: 1 / 0)
    with pytest.raises(ProblemError, match="target_value failed .* the target_value= callable .*<lambda> raised ZeroDivisionError"):
        mfbo.minimize(problem, "random", 3, log_path=tmp_path / "run.jsonl")
    assert read_run(tmp_path / "run.jsonl").footer["stop_reason"] == "problem error"


def test_8_a_trial_whose_recommendation_cannot_be_scored_is_still_logged(tmp_path):
    calls = []

    def target_value(config):
        if len(calls) >= 3:
            raise ZeroDivisionError("division by zero")
        return config["x"]

    problem = Problem.from_function(lambda c, z: calls.append(c) or -len(calls), Space(x=Float(0, 1)), Fidelity("z", 0.1, 1),
                                    cost=lambda z: z, target_value=target_value)  # each new trial is the best: a new recommendation
    with pytest.raises(ProblemError, match="target_value failed"):
        mfbo.minimize(problem, "random", 10, log_path=tmp_path / "run.jsonl")
    run = read_run(tmp_path / "run.jsonl")
    assert [t["config"] for t in run.trials] == calls and len(calls) == 3  # the paid evaluation is in the log
    last = run.trials[-1]
    assert last["rec_value"] is None and last["regret"] is None and last["value"] == -3
    assert any("rec_value and regret unknown" in note and "target_value= callable" in note for note in last["notes"])
    assert run.footer["stop_reason"] == "problem error" and run.footer["n_trials"] == 3


def test_8_evaluations_running_when_the_cost_fails_are_completed_and_logged(tmp_path):
    calls, broken = [], []

    def cost(z):
        if broken:
            raise ValueError("cost table missing")
        return z

    def objective(c, z):
        calls.append(c)
        broken.extend([True] * (len(calls) == 3))
        return c["x"], z

    problem = Problem.from_function(objective, Space(x=Float(0, 1)), Fidelity("z", 0.1, 1), cost=cost)
    with pytest.raises(ProblemError, match="cost failed .* raised ValueError: cost table missing"):
        mfbo.minimize(problem, "random", 10, workers=2, log_path=tmp_path / "run.jsonl")
    run = read_run(tmp_path / "run.jsonl")
    assert sorted(t["id"] for t in run.trials) == [0, 1, 2] and len(calls) == 3  # two were still running
    assert run.footer["stop_reason"] == "problem error"


#: The test problem of the study below: its cost callable fails once 3 evaluations were made, while
#: FLAKY["broken"]; FLAKY["calls"] counts the objective's evaluations.
FLAKY = {"broken": True, "calls": 0}


def flaky_problem() -> Problem:
    def objective(c, z):
        FLAKY["calls"] += 1
        return c["x"], z

    def cost(z):
        if FLAKY["broken"] and FLAKY["calls"] >= 3:
            raise RuntimeError("price list unavailable")
        return z

    return Problem.from_function(objective, Space(x=Float(0, 1)), Fidelity("z", 0.1, 1), cost=cost, name="test-faults-flaky")


if "test-faults-flaky" not in mfbo.problems.names():
    mfbo.problems.register("test-faults-flaky", flaky_problem)


@pytest.mark.parametrize("lose_cache", [False, True])
def test_8_a_run_stopped_by_a_problem_error_is_failed_and_resumed_once_fixed(tmp_path, capsys, lose_cache):
    path = write_study(tmp_path, QUICK.replace("[0, 1]", "[0]").replace("4", "6").replace('"forrester"', '"test-faults-flaky"'))
    study = load_study(path)
    FLAKY.update(broken=True, calls=0)
    report = run_study(study, progress=False)
    assert [o.status for o in report.outcomes] == ["failed"] and "price list unavailable" in report.outcomes[0].error
    log = study.output / study.runs[0].file_name
    assert len(read_run(log).trials) == 3 and cache_path(log).exists()  # the cache is kept
    if lose_cache:  # deleted by hand, or by an older mfbo that took the run for complete
        cache_path(log).unlink()
    FLAKY["broken"] = False  # the user fixes the problem (loading the study asks its cost too)
    assert main(["study", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  failed  " in out and "price list unavailable" in out and "1 failed" in out
    report = run_study(study, progress=False)
    assert [o.status for o in report.outcomes] == ["done"] and report.outcomes[0].replayed == 3, report.outcomes[0].error
    assert ("3 evaluation(s) missing from the cache were taken from the run log" in report.outcomes[0].notes) == lose_cache
    run = read_run(log)
    assert sorted(t["id"] for t in run.trials) == list(range(len(run.trials))) and run.footer["stop_reason"] == "budget"
    assert FLAKY["calls"] == len(run.trials) == 6  # nothing evaluated twice over both runs
    assert not cache_path(log).exists()
    assert run_study(study.with_output(tmp_path / "clean"), progress=False).ok
    assert logs(study.output) == logs(tmp_path / "clean")


# -- 9. unwritable folders and huge seed counts: one line, no traceback ------------------------------
def unwritable(tmp_path: Path) -> Path:
    """A folder that cannot be written: read-only, or (as root, who writes anyway) under a file."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        (tmp_path / "a-file").write_text("")
        return tmp_path / "a-file" / "out"
    return folder


def test_9_unwritable_output_folders_and_a_billion_seeds_end_in_one_error_line(tmp_path, capsys):
    out = unwritable(tmp_path)
    runs = tmp_path / "runs"
    mfbo.minimize("forrester", "random", 2, log_path=runs / "forrester__random__seed0.jsonl")
    commands = [
        ["run", "--problem", "forrester", "--strategy", "random", "--budget", "2", "--out", str(out), "--quiet"],
        ["plot", str(runs), "--out", str(out)],
        ["calibrate", "forrester", "--configs", "10", "--out", str(out), "--quiet"],
    ]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"mfbo: error: cannot write to --out {out}: ") and err.count("\n") == 1, err
    path = write_study(tmp_path, 'seeds = 1000000000\nbudget = { cost = 1 }\nproblems = ["forrester"]\nstrategies = ["random"]\n')
    assert main(["study", "run", str(path)]) == 2
    assert "seeds: a number of seeds must be in [1, 10000], got 1000000000" in capsys.readouterr().err


# -- 10.-12. bad input ----------------------------------------------------------------------------------
def test_10_every_bad_option_of_an_entry_is_reported(tmp_path):
    path = write_study(tmp_path, """
budget = { cost = 3 }
problems = ["forrester"]
[[strategies]]
name = "gp-ei"
options = { n_init = -1, foo = 1, num_restarts = 0 }
""")
    with pytest.raises(StudyConfigError) as info:
        load_study(path)
    assert [e.split(": ")[0] for e in info.value.errors] == [
        "strategies[0].options.foo", "strategies[0].options.n_init", "strategies[0].options.num_restarts"]


def test_11_a_binary_log_is_named_in_the_error(tmp_path, capsys):
    path = tmp_path / "binary.jsonl"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match=f"{path}: not an mfbo run log \\(not UTF-8 text"):
        mfbo.load_runs(tmp_path)
    assert main(["show", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda: Space(x=Float(0, 1)).validate({"x": "0.5"}), "parameter 'x': expected a number in [0.0, 1.0], got '0.5'"),
    (lambda: Space(n=Int(1, 5)).validate({"n": "2"}), "parameter 'n': expected an integer in [1, 5], got '2'"),
    (lambda: Fidelity("z", 0, 1).validate("0.5"), "fidelity 'z': value must be a number, got '0.5'"),
    (lambda: Float(True, "3"), "Float: low must be a number, got True (bool)"),
    (lambda: Float(0, "3"), "Float: high must be a number, got '3' (str)"),
    (lambda: Categorical([[1], [2]]), "Categorical: each choice must be a str, int, float or bool, got [1] (list)"),
    (lambda: mfbo.strategies.make("random", mfbo.problems.get("forrester"), seed=1.5), "strategy 'random': seed must be an integer >= 0, got 1.5"),
    (lambda: mfbo.minimize("forrester", "random", 2, seed=1.5), "strategy 'random': seed must be an integer >= 0, got 1.5"),
])
def test_12_loose_values_are_refused_naming_the_parameter(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


# -- 13. Ctrl-C and a dying process with --workers 2 ---------------------------------------------------
def started_runs(output: Path) -> set[str]:
    return {p.name.split(".")[0] for p in output.glob("*") if p.suffix in (".lock", ".jsonl")}


def pool_processes(parent: int) -> list[int]:
    """The pids of the process pool of ``parent`` (its ``spawn`` children other than the
    resource tracker)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def test_13_after_ctrl_c_no_new_run_starts(tmp_path):
    path = write_study(tmp_path, SLOW)
    output = load_study(path).output
    proc = cli(path, "--workers", "2", "--threads", "1", start_new_session=True, preexec_fn=default_sigint)
    wait_for(lambda: len(list(output.glob("*.jsonl"))) == 2, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    started = started_runs(output)
    _, err = proc.communicate(timeout=GUARD)
    assert proc.returncode == 130 and "interrupted" in err, err
    time.sleep(0.5)
    assert started_runs(output) == started and len(started) == 2
    assert not list(output.glob("*.lock"))  # released on the way out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the pool processes in /proc")
def test_13_a_dead_pool_process_restarts_the_pool_and_its_run_resumes(tmp_path):
    path = write_study(tmp_path, SLOW)
    output = load_study(path).output
    proc = cli(path, "--workers", "2", "--threads", "1")
    wait_for(lambda: any(p.read_text().count("\n") >= 2 for p in output.glob("*.jsonl")), proc)  # a run is under way
    os.kill(pool_processes(proc.pid)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=GUARD)
    assert proc.returncode == 0, out + err
    assert "3 done, 0 failed" in out
    assert all(read_run(p).complete for p in output.glob("*.jsonl")) and len(list(output.glob("*.jsonl"))) == 3

"""Studies: config validation, groups, budgets, executors (serial, processes, Dask), resume after
SIGKILL, refusal of a changed spec, status, unavailable studies and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo import problems as problem_registry
from mfbo import strategies as strategy_registry
from mfbo.cli import main
from mfbo.loop import TIMING_FIELDS
from mfbo.runlog import read_run
from mfbo.study import SpecMismatchError, StudyConfigError, load_study, run_study, study_states
from mfbo.study.resume import cache_path

REPO = Path(__file__).resolve().parents[1]
GP_EI = '{ n_init = 3, num_restarts = 2, raw_samples = 32 }'


def write_study(tmp_path: Path, body: str, name: str = "study.toml", output: str = "out") -> Path:
    path = tmp_path / name
    path.write_text(f'output = "{(tmp_path / output).as_posix()}"\n' + body)
    return path


def comparable(path: Path) -> dict:
    """Everything of a run log that must not depend on timing or on interruptions."""
    run = read_run(path)
    header = {k: v for k, v in run.header.items() if k not in ("started", "versions", "environment")}
    trials = [{k: v for k, v in t.items() if k not in TIMING_FIELDS} for t in run.trials]
    footer = None if run.footer is None else {k: v for k, v in run.footer.items() if k not in ("wall_time", "finished")}
    return {"header": header, "trials": trials, "footer": footer}


def logs(directory: Path) -> dict[str, dict]:
    return {p.name: comparable(p) for p in sorted(Path(directory).glob("*.jsonl"))}


# -- config -------------------------------------------------------------------------------------------
class CostlyByConfig(Problem):
    """Cost depends on the configuration (1 + x at the target), as a surrogate's runtime does."""

    def __init__(self):
        super().__init__("test-study-costly", Space(x=Float(0.0, 1.0)), Fidelity("z", 0.0, 1.0))

    def _evaluate(self, config, fidelity):
        return Observation(value=config["x"], cost=self.cost(config, fidelity))

    def cost(self, config, fidelity=None):
        return (1.0 + config["x"]) * (0.5 + 0.5 * (1.0 if fidelity is None else fidelity))


def measured_cost_problem():
    return Problem.from_function(lambda c, z: c["x"], Space(x=Float(0.0, 1.0)), Fidelity("z", 0.0, 1.0), name="test-study-measured")


for _name, _factory in (("test-study-costly", CostlyByConfig), ("test-study-measured", measured_cost_problem)):
    if _name not in problem_registry.names():
        problem_registry.register(_name, _factory)
if "test-study-pair" not in problem_registry.groups():
    problem_registry.register_group("test-study-pair", ["forrester", "currin"])


def test_every_mistake_is_reported_with_its_key(tmp_path):
    path = write_study(tmp_path, """
seed = 3
seeds = [0, 0]
budget = { cost = -1 }
workers = 0
stop = "time"
problems = ["forrester", "hartman6", { name = "currin", options = { bogus = 1 } }, { name = "park", target_cost = "one" }]

[[strategies]]
name = "gp-ei"
options = { n_init = "four", num_restarts = 2 }

[[strategies]]
name = "mf-kg"
options = { kernel = "rbf", nonsense = 1 }

[[strategies]]
name = "random"
label = "gp-ei"

[[strategies]]
name = "gpei"
""")
    with pytest.raises(StudyConfigError) as info:
        load_study(path)
    keys = [e.split(": ", 1)[0] for e in info.value.errors]
    assert keys == [
        "seed", "seeds[1]", "budget.cost", "workers", "stop", "problems[1].name", "problems[2].options", "problems[3].target_cost",
        "strategies[0].options.n_init", "strategies[1].options.nonsense", "strategies[1].options.kernel", "strategies[2].label",
        "strategies[3].name",
    ]
    message = str(info.value)
    assert isinstance(info.value, ValueError) and message.startswith(f"invalid study {path} (13 errors)")
    assert "unknown key; allowed keys: name, description, output" in message
    assert "did you mean 'hartmann6'" in message and "did you mean 'gp-ei'" in message
    assert "stop: must be one of 'cost', 'wall_clock'" in message
    # a bad value of a known option is reported beside the unknown one (issue #13, item 10)
    assert any(e.startswith("strategies[1].options.kernel: strategy 'mf-kg': option kernel must be one of") for e in info.value.errors)


def test_problem_dependent_option_errors_name_the_problem(tmp_path):
    path = write_study(tmp_path, """
budget = { cost = 2 }
problems = ["quadratic-ladder", "currin"]
[[strategies]]
name = "mf-ei"
options = { kernel = "icm" }
""")
    with pytest.raises(StudyConfigError) as info:
        load_study(path)
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith("strategies[0].options: strategy 'mf-ei' cannot run on problem 'currin' (problems[1])")
    assert "discrete fidelity" in info.value.errors[0]


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("budget = {cost = \n")
    with pytest.raises(ValueError, match=r"bad.toml is not valid TOML"):
        load_study(bad)
    with pytest.raises(ValueError, match=r"no such study file: .*nothere.toml"):
        load_study(tmp_path / "nothere.toml")


def test_groups_labels_and_the_run_grid(tmp_path):
    path = write_study(tmp_path, """
seeds = [3, 1]
budget = { target_evaluations = 2 }
problems = ["test-study-pair", { name = "forrester", label = "forrester-noisy-twin" }]
[[strategies]]
name = "random"
[[strategies]]
name = "gp-ei"
label = "gp-ei-small"
options = { n_init = 2 }
""")
    study = load_study(path)
    assert [p.label for p in study.problems] == ["forrester", "currin", "forrester-noisy-twin"]
    assert len(study.runs) == 2 * 3 * 2
    assert [(r.seed, r.problem_label, r.label) for r in study.runs[:3]] == [(3, "forrester", "random"), (3, "forrester", "gp-ei-small"), (3, "currin", "random")]
    assert study.runs[-1].file_name == "forrester-noisy-twin__gp-ei-small__seed1.jsonl"
    assert study.runs[-1].problem == "forrester" and study.runs[-1].options == {"n_init": 2}
    assert len({r.spec_hash for r in study.runs}) == len(study.runs) - 4  # the twin differs only by its label
    path.write_text(path.read_text().replace(', label = "forrester-noisy-twin"', ""))
    with pytest.raises(StudyConfigError, match=r"problems\[1\]: problem 'forrester' appears twice \(also in problems\[0\]\); give one of them a label"):
        load_study(path)


def test_an_entry_runs_on_the_problems_it_names(tmp_path):
    path = write_study(tmp_path, """
budget = { target_evaluations = 2 }
problems = ["test-study-pair", "quadratic-ladder", { name = "forrester", label = "forrester-twin" }]
[[strategies]]
name = "random"
[[strategies]]
name = "mf-ei"
problems = ["quadratic-ladder"]
[[strategies]]
name = "gp-ei"
problems = ["test-study-pair", "forrester-twin"]
""")
    study = load_study(path)
    grid = [(r.problem_label, r.label) for r in study.runs]
    assert [p for p, s in grid if s == "mf-ei"] == ["quadratic-ladder"]  # currin etc. would fail mf-ei's check
    assert [p for p, s in grid if s == "gp-ei"] == ["forrester", "currin", "forrester-twin"]  # a group stands for its members
    assert len([p for p, s in grid if s == "random"]) == 4
    path.write_text(path.read_text().replace('problems = ["quadratic-ladder"]', 'problems = ["quadratic-ladder", "branin"]'))
    with pytest.raises(StudyConfigError, match=r"strategies\[1\]\.problems: 'branin' is not one of the study's problems; allowed: currin, forrester, forrester-twin, quadratic-ladder, test-study-pair"):
        load_study(path)
    path.write_text(path.read_text().replace('problems = ["quadratic-ladder", "branin"]', "problems = []"))
    with pytest.raises(StudyConfigError, match=r"strategies\[1\]\.problems: must be a non-empty array of problem labels or names, got \[\]"):
        load_study(path)


def test_budget_in_target_evaluations(tmp_path):
    body = """
budget = { target_evaluations = 4 }
problems = ["forrester", "augmented-branin", "quadratic-ladder", "test-study-costly", { name = "test-study-measured", target_cost = 2.5 }]
strategies = ["random"]
"""
    study = load_study(write_study(tmp_path, body))
    x = [c["x"] for c in Space(x=Float(0.0, 1.0)).sample(np.random.default_rng(0), 64)]
    expected = [4 * 1.0, 4 * 6.0, 4 * 0.5, 4 * float(np.mean([1 + v for v in x])), 4 * 2.5]
    assert [r.budget for r in study.runs] == pytest.approx(expected, rel=1e-12)
    assert study.runs[0].hashed()["budget"] == {"target_evaluations": 4.0}
    # a problem that only knows its cost after evaluating needs an explicit target_cost
    with pytest.raises(StudyConfigError) as info:
        load_study(write_study(tmp_path, body.replace(", target_cost = 2.5", "")))
    assert len(info.value.errors) == 1 and info.value.errors[0].startswith("problems[4]: problem 'test-study-measured' does not know its cost")
    assert "set problems[4].target_cost" in info.value.errors[0]
    # a budget in cost units is the same for every problem
    study = load_study(write_study(tmp_path, body.replace("target_evaluations = 4", "cost = 3.5")))
    assert {r.budget for r in study.runs} == {3.5}


def test_shipped_studies_are_valid():
    compare = load_study(REPO / "experiments" / "compare_acquisitions.toml")
    assert compare.available
    assert {s.name for s in compare.strategies} == {"mf-kg", "mf-mes", "mf-gibbon", "mf-ei", "mf-ucb", "gp-ei", "random"}
    smoke = load_study(REPO / "experiments" / "smoke.toml")
    assert smoke.available and len(smoke.runs) <= 8


# -- execution ------------------------------------------------------------------------------------------
SMALL = f"""
seeds = [1]
budget = {{ target_evaluations = 4 }}
workers = 2
problems = ["forrester", "park"]
[[strategies]]
name = "random"
[[strategies]]
name = "gp-ei"
options = {GP_EI}
"""


def test_serial_and_process_execution_write_identical_logs(tmp_path):
    serial = load_study(write_study(tmp_path, SMALL, output="serial"))
    report = run_study(serial, progress=False)
    assert report.ok and [o.status for o in report.outcomes] == ["done"] * 4
    parallel = serial.with_output(tmp_path / "processes")
    report = run_study(parallel, workers=2, threads=1, progress=False)
    assert report.ok and len(report.outcomes) == 4
    a, b = logs(tmp_path / "serial"), logs(tmp_path / "processes")
    assert len(a) == 4 and a == b
    assert not list((tmp_path / "serial").glob("*.ndjson"))  # caches go once the logs are complete
    header = read_run(tmp_path / "serial" / "park__gp-ei__seed1.jsonl").header
    assert header["study"]["label"] == "gp-ei" and header["study"]["spec_hash"] == serial.runs[-1].spec_hash
    assert header["study"]["run_spec"]["workers"] == 2 and header["execution"]["workers"] == 2
    df = mfbo.load_runs(tmp_path / "serial")
    assert len(df) == 4 * 4 and {"start", "end", "worker"} <= set(df.columns)


def test_dask_local_cluster(tmp_path, capsys):
    distributed = pytest.importorskip("dask.distributed")
    path = write_study(tmp_path, SMALL.replace('"forrester", "park"', '"forrester"'), output="dask")
    study = load_study(path)
    reference = run_study(study.with_output(tmp_path / "serial"), progress=False)
    assert reference.ok
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            report = run_study(study, client=client, progress=False)
        assert report.ok and len(report.outcomes) == 2
        assert logs(tmp_path / "dask") == logs(tmp_path / "serial")
        # the CLI connects to the scheduler by address
        assert main(["study", "run", str(path), "--scheduler", cluster.scheduler_address, "--quiet", "--out", str(tmp_path / "cli")]) == 0
    assert "2 runs in" in capsys.readouterr().out
    assert logs(tmp_path / "cli") == logs(tmp_path / "serial")


def test_a_one_worker_study_run_equals_minimize(tmp_path):
    study = load_study(write_study(tmp_path, f"""
seeds = [5]
budget = {{ target_evaluations = 5 }}
problems = ["currin"]
[[strategies]]
name = "gp-ei"
options = {GP_EI}
"""))
    assert run_study(study, progress=False).ok
    run = study.runs[0]
    direct = tmp_path / "direct.jsonl"
    mfbo.minimize("currin", "gp-ei", run.budget, seed=5, strategy_options=run.options, log_path=direct)
    a, b = comparable(study.output / run.file_name), comparable(direct)
    assert a["trials"] == b["trials"] and a["footer"] == b["footer"] and len(a["trials"]) == 5
    assert a["header"]["spec"] == b["header"]["spec"] and a["header"]["execution"] == {"workers": 1, "stop": "cost"}


RESUMABLE = f"""
name = "resume"
seeds = [0]
budget = {{ target_evaluations = 10 }}
workers = 2
problems = ["forrester"]
[[strategies]]
name = "random"
[[strategies]]
name = "gp-ei"
options = {GP_EI}
"""


def test_resume_after_sigkill_is_identical_and_pays_nothing_twice(tmp_path):
    path = write_study(tmp_path, RESUMABLE)
    study = load_study(path)
    killed_log = study.output / "forrester__gp-ei__seed0.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mfbo.cli", "study", "run", str(path), "--quiet", "--threads", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a performance limit
        while time.monotonic() < deadline and proc.poll() is None:
            if killed_log.exists() and killed_log.read_text().count('"type": "trial"') >= 3:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    interrupted = read_run(killed_log)
    assert not interrupted.complete and len(interrupted.trials) >= 3
    cached = len(cache_path(killed_log).read_text().splitlines()) - 1  # minus its header line
    assert cached >= len(interrupted.trials)
    assert [s.state for s in study_states(study)] == ["done", "partial"]

    report = run_study(study, progress=False)  # resume: skips the complete run, replays the other
    assert report.already_done == 1 and [o.status for o in report.outcomes] == ["done"]
    assert report.outcomes[0].replayed == cached  # every cached evaluation was used, none paid again
    assert not cache_path(killed_log).exists()
    assert run_study(study.with_output(tmp_path / "uninterrupted"), progress=False).ok
    resumed, clean = logs(study.output), logs(tmp_path / "uninterrupted")
    assert resumed == clean and len(clean["forrester__gp-ei__seed0.jsonl"]["trials"]) == 10


def test_a_changed_spec_is_refused_with_the_fields_that_changed(tmp_path):
    path = write_study(tmp_path, """
budget = { target_evaluations = 3 }
problems = ["forrester"]
strategies = ["random"]
""")
    assert run_study(load_study(path), progress=False).ok
    old_hash = load_study(path).runs[0].spec_hash
    path.write_text(path.read_text().replace("target_evaluations = 3", "target_evaluations = 4") + "workers = 2\n")
    changed = load_study(path)
    with pytest.raises(SpecMismatchError) as info:
        run_study(changed, progress=False)
    message = str(info.value)
    assert "forrester / random / seed 0: forrester__random__seed0.jsonl" in message
    assert f"spec hash {old_hash} (in the file) != {changed.runs[0].spec_hash} (this study)" in message
    assert "budget {'target_evaluations': 3.0} -> {'target_evaluations': 4.0}" in message and "workers 1 -> 2" in message
    assert read_run(tmp_path / "out" / "forrester__random__seed0.jsonl").footer["n_trials"] == 3  # untouched
    # a log written outside a study is refused too
    other = tmp_path / "other"
    mfbo.minimize("forrester", "random", 3, log_path=other / "forrester__random__seed0.jsonl")
    with pytest.raises(SpecMismatchError, match="was not written by a study run"):
        run_study(changed.with_output(other), progress=False)


def test_status_lists_done_partial_and_missing_runs(tmp_path, capsys):
    path = write_study(tmp_path, """
seeds = 3
budget = { target_evaluations = 3 }
problems = ["forrester"]
strategies = ["random"]
""")
    assert main(["study", "run", str(path), "--quiet"]) == 0
    out = tmp_path / "out"
    (out / "forrester__random__seed2.jsonl").unlink()
    partial = out / "forrester__random__seed1.jsonl"
    partial.write_text("".join(partial.read_text().splitlines(keepends=True)[:3]))  # header + 2 trials
    capsys.readouterr()
    assert main(["study", "status", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("forrester__")}
    assert rows == {
        "forrester__random__seed0.jsonl": ["done", "3", "-"],
        "forrester__random__seed1.jsonl": ["partial", "2", "-"],
        "forrester__random__seed2.jsonl": ["missing", "-", "-"],
    }
    assert lines[-1] == "3 runs: 1 done, 1 partial, 1 missing"


def test_mf_vs_bandits_names_only_strategies_that_exist(capsys):
    """The study lists what mfbo has (FABOLAS and BOIL join it with issue #15); it runs where
    the YAHPO files are, and is skipped with a note naming them where they are not."""
    path = REPO / "experiments" / "mf_vs_bandits.toml"
    study = load_study(path)
    assert {"sh", "hyperband", "asha", "bohb", "dehb"} <= {s.name for s in study.strategies}
    assert {s.name for s in study.strategies} <= set(strategy_registry.names())
    if study.available:
        assert study.runs
        return
    assert not study.runs and all("yahpo" in piece.lower() or "lcbench" in piece.lower() for piece in study.unavailable)
    assert main(["study", "run", str(path)]) == 0
    assert capsys.readouterr().out.startswith("skipped study 'mf_vs_bandits'")


def test_cli_run_errors_and_nothing_to_do(tmp_path, capsys):
    path = write_study(tmp_path, """
budget = { target_evaluations = 2 }
problems = ["forrester"]
strategies = ["random"]
""")
    assert main(["study", "run", str(path)]) == 0
    captured = capsys.readouterr()
    assert "1 runs in" in captured.out and "1 done, 0 failed" in captured.out
    assert "1/1 runs" in captured.err  # the progress line
    assert main(["study", "run", str(path)]) == 0
    assert "nothing to run: all 1 runs are complete" in capsys.readouterr().out
    bad = write_study(tmp_path, 'budget = { cost = 1 }\nproblems = ["forrester"]\nstrategies = [{ name = "random", options = { n = 1 } }]\n', name="bad.toml")
    assert main(["study", "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mfbo: error: invalid study") and "strategies[0].options.n: unknown option of strategy 'random'" in err
    assert main(["study", "run", str(path), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err


def test_without_dask_the_scheduler_option_says_what_to_install(tmp_path, capsys, monkeypatch):
    path = write_study(tmp_path, 'budget = { cost = 1 }\nproblems = ["forrester"]\nstrategies = ["random"]\n')
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if dask were not installed
    assert main(["study", "run", str(path), "--scheduler", "tcp://127.0.0.1:1", "--quiet"]) == 2
    assert "pip install 'mfbo[dask]'" in capsys.readouterr().err


def test_a_failing_run_is_reported_and_resumed_later(tmp_path, capsys, monkeypatch):
    path = write_study(tmp_path, """
seeds = 2
budget = { target_evaluations = 3 }
problems = ["forrester"]
strategies = ["random"]
""")
    original = strategy_registry.make

    def unlucky_with_seed_1(name, problem, seed=0, **options):
        if seed == 1:
            raise RuntimeError("no luck")
        return original(name, problem, seed=seed, **options)

    monkeypatch.setattr(strategy_registry, "make", unlucky_with_seed_1)
    assert main(["study", "run", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "1 done, 1 failed" in out and "FAILED    forrester / random / seed 1: RuntimeError: no luck" in out
    monkeypatch.setattr(strategy_registry, "make", original)
    assert main(["study", "run", str(path), "--quiet"]) == 0
    assert "1 done, 0 failed; 1 were complete before" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "forrester__random__seed1.jsonl").read_text().splitlines()[-1])["type"] == "footer"

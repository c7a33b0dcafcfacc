"""What every bandit strategy must do (issue #14), for each class in
:data:`mfbo.strategies.bandits.BANDIT_STRATEGIES`: beat random search on an easy problem at a
small budget, give identical logs for identical seeds with 1 and 4 simulated workers, resume an
interrupted study run to the same log, and refuse bad options with one error naming them."""

from __future__ import annotations

import statistics

import pytest
from test_study import logs, write_study  # tests/ is on the path (tests/conftest.py)

import mfbo
from mfbo import Float, Problem, Space
from mfbo.loop import TIMING_FIELDS
from mfbo.strategies import make
from mfbo.strategies.bandits import BANDIT_STRATEGIES
from mfbo.study import EvaluationCache, load_study
from mfbo.study.execute import execute_run
from mfbo.study.resume import cache_path

NAMES = [cls.name for cls in BANDIT_STRATEGIES]
EASY = "mfhartmann3-good"  # fidelity z in 1..100 (integer, log); a target evaluation costs 1


def regrets(name: str, budget: float, seeds=range(5)) -> list[float]:
    return [mfbo.minimize(EASY, name, budget=budget, seed=seed).regret for seed in seeds]


@pytest.fixture(scope="module")
def random_median() -> float:
    return statistics.median(regrets("random", 20))


@pytest.mark.parametrize("name", NAMES)
def test_beats_random_search_on_an_easy_problem(name, random_median):
    """Median final regret over seeds 0-4 at a budget of 20 target evaluations (random: 0.85;
    sh, hyperband and asha: 0.29, 0.23 and 0.21 when written)."""
    assert statistics.median(regrets(name, 20)) < random_median


def trial_log(name: str, seed: int, workers: int) -> list[dict]:
    result = mfbo.minimize(EASY, name, budget=6, seed=seed, workers=workers)
    return [{k: v for k, v in t.to_dict().items() if k not in TIMING_FIELDS} for t in result.trials]


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("name", NAMES)
def test_identical_logs_for_identical_seeds(name, workers):
    first = trial_log(name, 3, workers)
    assert first == trial_log(name, 3, workers)
    assert first != trial_log(name, 4, workers)
    assert any(t["continues"] is not None for t in first)  # promotions happened
    if workers == 4:
        assert len({t["worker"] for t in first}) == 4


STUDY = """
name = "bandit-resume"
seeds = [0]
budget = {{ target_evaluations = 4 }}
workers = 4
problems = ["{problem}"]
strategies = ["{name}"]
"""


def interrupt(study, n_trials: int):
    """A run of ``study`` stopped after ``n_trials`` evaluations, as a kill leaves it: its
    evaluation cache, and a log without a footer (tests/test_faults.py does the same serially)."""
    run = study.runs[0]
    log = study.output / run.file_name
    with EvaluationCache(cache_path(log), run.spec_hash) as cache:
        mfbo.minimize(run.problem, run.strategy, run.budget, seed=run.seed, log_path=log, max_trials=n_trials,
                      workers=run.workers, evaluation_cache=cache, log_header={"study": {"spec_hash": run.spec_hash}})
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))  # the footer is lost
    return len(cache_path(log).read_text().splitlines()) - 1  # evaluations cached (minus the header)


@pytest.mark.parametrize("name", NAMES)
def test_a_run_resumed_after_a_kill_gives_the_same_log(name, tmp_path):
    study = load_study(write_study(tmp_path, STUDY.format(problem=EASY, name=name)))
    cached = interrupt(study, 12)
    outcome = execute_run(study.runs[0], study.output)
    assert outcome.status == "done" and outcome.replayed == cached >= 12, (outcome.error, outcome.notes)
    assert execute_run(study.runs[0], tmp_path / "uninterrupted").status == "done"
    assert logs(study.output) == logs(tmp_path / "uninterrupted")


SINGLE = Problem.from_function(lambda config: config["x"], Space(x=Float(0.0, 1.0)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("options, problem, message", [
    ({"eta": 1}, EASY, "option eta must be"),
    ({"eta": 0.5}, EASY, "option eta must be"),
    ({"r_min": 101}, EASY, "option r_min must be"),  # the target is 100
    ({}, SINGLE, "needs a multi-fidelity problem"),
])
def test_bad_options_raise_one_error_naming_them(name, options, problem, message):
    problem = mfbo.problems.get(problem) if isinstance(problem, str) else problem
    with pytest.raises(ValueError, match=f"strategy {name!r}.*{message}") as err:
        make(name, problem, **options)
    assert str(err.value).count("\n") == 0

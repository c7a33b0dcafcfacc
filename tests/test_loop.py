"""The run loop: budget arithmetic, failure handling, determinism, strategy errors."""

import math

import numpy as np
import pytest

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo.loop import TIMING_FIELDS, StrategyError
from mfbo.runlog import read_run
from mfbo.strategies import make
from mfbo.strategies.base import Strategy


def sphere_problem(fail_when=None):
    """1-D quadratic with a fidelity: cost is 0.25 at z=0 ... 1.0 at z=1, optimum 0 at x=0.3."""
    space = Space(x=Float(0.0, 1.0))

    def fn(config, z):
        if fail_when is not None:
            outcome = fail_when(config)
            if isinstance(outcome, Exception):
                raise outcome
            if outcome is not None:
                return outcome
        return (config["x"] - 0.3) ** 2 + (1 - z) * 0.1

    return Problem.from_function(
        fn, space, Fidelity("z", 0.0, 1.0), cost=lambda z: 0.25 + 0.75 * z, optimum=0.0,
        name="sphere", target_value=lambda c: (c["x"] - 0.3) ** 2,
    )


def strip_times(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def test_budget_is_never_exceeded_with_a_known_cost():
    result = mfbo.minimize(sphere_problem(), "random", budget=10.5, seed=0)
    assert len(result.trials) == 10  # target-fidelity trials cost 1.0 each
    assert result.total_cost == pytest.approx(10.0)
    assert result.stop_reason.startswith("budget")
    assert [t.cum_cost for t in result.trials] == pytest.approx(np.arange(1, 11))


def test_exact_budget_fits_despite_round_off():
    p = Problem.from_function(lambda c, z: c["x"], Space(x=Float(0, 1)), Fidelity("z", 0, 1), cost=lambda z: 0.1)
    result = mfbo.minimize(p, "random", budget=3.0, seed=0)
    assert len(result.trials) == 30  # 30 x 0.1 sums to 3.0000000000000013, still within budget


def test_unknown_cost_may_overshoot_by_the_last_trial():
    p = Problem.from_function(lambda c, z: (c["x"], 0.75), Space(x=Float(0, 1)), Fidelity("z", 0, 1))
    result = mfbo.minimize(p, "random", budget=2.0, seed=0)
    assert [t.cum_cost for t in result.trials] == [0.75, 1.5, 2.25]


def test_records_carry_recommendation_value_and_regret():
    result = mfbo.minimize(sphere_problem(), "random", budget=5, seed=3)
    for t in result.trials:
        assert t.status == "ok"
        assert t.rec_value == pytest.approx((t.recommendation["x"] - 0.3) ** 2)
        assert t.regret == pytest.approx(t.rec_value)
        assert t.best_value <= t.value + 1e-12 or t.best_value is not None
    assert [t.id for t in result.trials] == list(range(5))
    assert result.regret == result.trials[-1].regret
    assert all(b >= a for a, b in zip([t.best_value for t in result.trials][1:], [t.best_value for t in result.trials]))


@pytest.mark.parametrize(
    "failure, message",
    [
        (ValueError("diverged"), "ValueError: diverged"),
        (math.nan, "non-finite value (nan)"),
        (math.inf, "non-finite value (inf)"),
        (Observation.failure("out of memory"), "out of memory"),
    ],
)
def test_failures_are_recorded_and_the_run_continues(tmp_path, failure, message):
    problem = sphere_problem(fail_when=lambda c: failure if c["x"] < 0.5 else None)
    result = mfbo.minimize(problem, "random", budget=12, seed=1, log_path=tmp_path / "run.jsonl")
    failed = [t for t in result.trials if t.status == "failed"]
    ok = [t for t in result.trials if t.status == "ok"]
    assert failed and ok
    assert all(message in t.error and t.value is None for t in failed)
    assert all(t.cost == pytest.approx(1.0) for t in failed)  # charged the known cost
    assert len(result.trials) == 12
    assert result.recommendation["x"] >= 0.5  # failures never become the recommendation
    run = read_run(tmp_path / "run.jsonl")
    assert run.complete and run.footer["n_failed"] == len(failed)


def test_all_failures_stop_after_the_limit():
    problem = sphere_problem(fail_when=lambda c: RuntimeError("boom"))
    result = mfbo.minimize(problem, "random", budget=1000, seed=0, max_consecutive_failures=5)
    assert result.stop_reason == "failures" and len(result.trials) == 5
    assert result.recommendation is None and result.regret is None


def test_gp_ei_survives_failures():
    problem = sphere_problem(fail_when=lambda c: math.nan if c["x"] > 0.8 else None)
    result = mfbo.minimize(problem, "gp-ei", budget=10, seed=0, strategy_options={"n_init": 4, "num_restarts": 2, "raw_samples": 32})
    assert len(result.trials) == 10 and result.regret < 0.05


class ExplodingStrategy(Strategy):
    name = "exploding"

    def _suggest(self):
        if self._next_id == 3:
            raise RuntimeError("internal bug")
        return self.space.sample(self.rng), self.target_fidelity


def test_strategy_error_ends_the_run_and_keeps_the_log(tmp_path):
    problem = sphere_problem()
    path = tmp_path / "run.jsonl"
    with pytest.raises(StrategyError, match=r"strategy 'exploding' raised in ask\(\) after 3 trials: RuntimeError: internal bug"):
        mfbo.minimize(problem, ExplodingStrategy(problem.space, problem.fidelity, seed=0), budget=10, log_path=path)
    run = read_run(path)
    assert len(run.trials) == 3 and not run.complete


@pytest.mark.parametrize("strategy, options", [("random", {}), ("gp-ei", {"n_init": 3, "num_restarts": 2, "raw_samples": 32})])
def test_same_seed_same_log(tmp_path, strategy, options):
    paths = [tmp_path / f"{i}.jsonl" for i in range(3)]
    for path, seed in zip(paths, (5, 5, 6)):
        mfbo.minimize(sphere_problem(), strategy, budget=6, seed=seed, strategy_options=options, log_path=path)
    a, b, c = (strip_times(read_run(p).trials) for p in paths)
    assert a == b
    assert a != c
    assert read_run(paths[0]).header["spec"] == read_run(paths[1]).header["spec"]


def test_determinism_on_a_registered_problem():
    opts = {"n_init": 4, "num_restarts": 2, "raw_samples": 64}
    runs = [mfbo.minimize("hartmann3", "gp-ei", budget=6, seed=11, strategy_options=opts) for _ in range(2)]
    a, b = (strip_times(t.to_dict() for t in r.trials) for r in runs)
    assert a == b and len(a) == 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"budget": -1}, r"budget must be a finite number > 0"),
        ({"budget": math.inf}, r"budget must be a finite number > 0"),
        ({"budget": 5, "max_trials": 0}, r"max_trials must be a positive integer"),
        ({"budget": 5, "strategy_options": {"bogus": 1}}, r"unknown option\(s\) \['bogus'\]"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mfbo.minimize(sphere_problem(), "random", **kwargs)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown problem 'hartman6' \(did you mean 'hartmann6'.*known problems: .*forrester"):
        mfbo.minimize("hartman6", "random", budget=1)
    with pytest.raises(ValueError, match=r"unknown strategy 'gpei'.*known strategies: .*gp-ei, .*hyperband, .*mf-ei, .*random"):
        mfbo.minimize("forrester", "gpei", budget=1)


def test_pending_trials_get_distinct_suggestions():
    problem = sphere_problem()
    strategy = make("gp-ei", problem, seed=0, n_init=3, num_restarts=2, raw_samples=64)
    for _ in range(4):
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    batch = [strategy.ask() for _ in range(3)]
    xs = [t.config["x"] for t in batch]
    assert len(strategy.pending) == 3
    assert min(abs(a - b) for i, a in enumerate(xs) for b in xs[i + 1:]) > 1e-3
    for t in batch:
        strategy.tell(t, problem.evaluate(t.config, t.fidelity))
    assert not strategy.pending
    with pytest.raises(ValueError, match="trial 4 is not pending"):
        strategy.tell(batch[0], Observation(0.0, 1.0))

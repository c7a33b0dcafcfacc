"""mf-pdoo and kometo (mfbo.strategies.tree): budget, concentration near the optimum, the quadratic
ladder, reproducibility, option errors, and several asynchronous workers (one worker's log is the
serial search's; the loop lets a strategy wait for a pending result)."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

import mfbo
from mfbo.problems.synthetic import SyntheticProblem
from mfbo.space import Fidelity, Float, Space
from mfbo.strategies.tree import Partition

METHODS = ["mf-pdoo", "kometo"]


class Bowl1D(SyntheticProblem):
    """``(x - 0.37)^2 + 0.1 (1 - s) (1 - cos(8 (x - 0.37)))`` on ``[0, 1]``: biased everywhere but
    at ``x*``, known bias ``zeta(s) = 0.2 (1 - s)``; cost ``0.1 + 0.9 s^2`` (the default)."""

    def __init__(self) -> None:
        super().__init__("bowl-1d", Space(x=Float(0.0, 1.0)), Fidelity("z", 0.0, 1.0), optimum=0.0, optimizer={"x": 0.37})

    def _values(self, X: np.ndarray, s: np.ndarray) -> np.ndarray:
        return (X[:, 0] - 0.37) ** 2 + 0.1 * (1.0 - s) * (1.0 - np.cos(8.0 * (X[:, 0] - 0.37)))

    def bias_bound(self, fidelity) -> float:
        return 0.2 * (1.0 - float(self.fidelity.normalize(fidelity)))


def run(method: str, problem, budget: float, seed: int = 0, **options):
    strategy = mfbo.strategies.make(method, problem, seed=seed, **options)
    return strategy, mfbo.minimize(problem, strategy, budget=budget)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("budget", [3.3, 12.0])
def test_budget_is_respected_and_candidates_are_checked_at_the_target(method, budget):
    problem = mfbo.problems.get("currin")
    strategy, result = run(method, problem, budget)
    assert result.total_cost <= budget + 1e-9
    assert sum(t.cost for t in result.trials) == pytest.approx(result.total_cost)
    assert strategy.validated  # the cross-validation ran inside the budget
    found = [c for c in strategy.candidates if c is not None]
    assert found and all(strategy.known(cell, 1.0) is not None for cell, _ in found)
    best = strategy.best_observed()
    assert result.recommendation == best[0].config
    # what is left cannot pay for one more target evaluation
    assert budget - result.total_cost < problem.cost(None, 1.0) + 1e-9


@pytest.mark.parametrize("method", METHODS)
def test_the_tree_concentrates_near_the_optimum(method):
    problem = Bowl1D()
    strategy, result = run(method, problem, 20.0)
    deep = [cell for cell, _, _ in strategy.evaluated if cell.depth >= 7]  # cells of width <= 1/128
    near = [cell for cell in deep if abs(cell.center[0] - 0.37) <= 0.05]
    assert len(deep) >= 5
    assert len(near) / len(deep) >= 0.8
    assert result.regret < 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_quadratic_ladder_optimum_at_the_target_level(method):
    problem = mfbo.problems.get("quadratic-ladder")
    for seed in range(3):
        strategy, result = run(method, problem, 50.0, seed=seed)
        assert result.recommendation["bs"] == 64
        assert result.regret < 1e-4
        assert strategy.best_observed()[0].fidelity == 5
        assert {t.fidelity for t in result.trials} > {5}  # lower levels were used


def trial_log(result):
    return [(t.id, sorted(t.config.items()), t.fidelity, t.value, t.cost) for t in result.trials]


@pytest.mark.parametrize("method", METHODS)
def test_identical_logs_for_identical_seeds(method):
    problem = mfbo.problems.get("mfhartmann3-moderate")
    first, second = (run(method, problem, 8.0, seed=4)[1] for _ in range(2))
    assert trial_log(first) == trial_log(second)
    others = [trial_log(run(method, problem, 8.0, seed=s)[1]) for s in (5, 6, 7)]
    assert any(log != trial_log(first) for log in others)  # the seed orients the partition


def test_mf_pdoo_fidelity_follows_the_bias_bound():
    """A cell of depth h is evaluated at the cheapest level whose bias is at most nu rho^h."""
    problem = mfbo.problems.get("quadratic-ladder")  # bias 0.5 (5 - level)
    strategy, _ = run("mf-pdoo", problem, 5.0, nu=1.0, rho=0.5, n_instances=1)
    assert strategy.z_for(1.0) == 3 and strategy.z_for(0.5) == 4 and strategy.z_for(0.25) == 5
    for cell, fidelity, _ in strategy.evaluated:
        if fidelity != 5 or cell.depth >= 2:  # the cross-validation re-evaluates at the target
            assert fidelity == strategy.z_for(1.0 * 0.5**cell.depth)


def test_mf_pdoo_instances_follow_the_paper():
    problem = mfbo.problems.get("currin")  # lambda(target) = 1
    strategy = mfbo.strategies.make("mf-pdoo", problem, rho=0.9)
    d_max = int(math.log(2) / math.log(1 / 0.9))
    assert strategy._n_instances(100.0) == int(0.5 * d_max * math.log(100 / math.log(100)))
    assert strategy._n_instances(2.0) == 1
    assert mfbo.strategies.make("mf-pdoo", problem, n_instances=40)._n_instances(30.0) == 15


def test_partition_splits_the_longest_side():
    part = Partition(3, k=2)
    cell = part.root
    for depth in range(6):
        cell = part.children(cell)[0]
    assert np.allclose(cell.high - cell.low, [0.25, 0.25, 0.25])
    assert part.children(cell)[1].low[0] == pytest.approx(0.125)
    three = Partition(1, k=3).children(Partition(1, k=3).root)
    assert [c.path for c in three] == [(0,), (1,), (2,)] and three[2].low[0] == pytest.approx(2 / 3)


@pytest.mark.parametrize("options, message", [
    ({"rho": 1.5}, "option rho must be a number in (0, 1)"),
    ({"nu": 0.0}, "option nu must be a number > 0"),
    ({"bias": "wrong"}, "option bias must be 'problem' or a number C >= 0"),
    ({"bias": -1.0}, "option bias must be 'problem' or a number C >= 0"),
    ({"n_instances": 0}, "option n_instances must be an integer >= 1"),
    ({"k": 1}, "option k (the partition's arity) must be an integer >= 2"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        mfbo.strategies.make("mf-pdoo", mfbo.problems.get("currin"), **options)


def test_refusals():
    with pytest.raises(ValueError, match="must have a fidelity"):
        mfbo.strategies.make("kometo", mfbo.problems.get("currin").space)
    plain = mfbo.Problem.from_function(lambda c, z: c["x"] ** 2, Space(x=Float(0, 1)), Fidelity("z", 0.0, 1.0), cost=lambda z: 0.1 + z)
    with pytest.raises(ValueError, match="bias='problem' needs a problem that knows its bias function"):
        mfbo.strategies.make("mf-pdoo", plain)
    assert mfbo.strategies.make("mf-pdoo", plain, bias=0.5).zeta(0.0) == 0.5
    strategy = mfbo.strategies.make("kometo", mfbo.problems.get("currin"))
    with pytest.raises(ValueError, match="plans with the run's budget"):
        strategy.ask()
    strategy.set_budget(5.0)
    assert strategy.ask() is not None


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("method", METHODS)
def test_failed_evaluations_are_never_recommended(method, workers):
    base = Bowl1D()

    def fn(config, z):
        if abs(config["x"] - 0.37) < 0.1 and z < 1.0:
            return float("nan")
        return float(base.values([[config["x"]]], z, noise=False)[0])

    problem = mfbo.Problem.from_function(fn, base.space, base.fidelity, cost=lambda z: 0.1 + 0.9 * z**2, name="holes")
    strategy = mfbo.strategies.make(method, problem, **({"bias": 0.2} if method == "mf-pdoo" else {}))
    result = mfbo.minimize(problem, strategy, budget=6.0, workers=workers)
    assert result.total_cost <= 6.0 + 1e-9 and strategy.validated
    assert result.recommendation is not None
    assert any(t.status == "failed" for t in result.trials)
    assert math.isfinite(strategy.best_observed()[1].value)


@pytest.mark.parametrize("method", METHODS)
def test_wall_clock_budget_with_one_worker(method):
    """With one worker the simulated clock is the cost spent: the plan is the same budget."""
    problem = mfbo.problems.get("currin")
    strategy = mfbo.strategies.make(method, problem, seed=1)
    result = mfbo.minimize(problem, strategy, budget=6.0, stop="wall_clock")
    assert result.total_cost <= 6.0 + 1e-9 and strategy.validated


# One worker: the trial sequences of the serial searches (before they could run in parallel):
# (number of trials, total cost, fidelities of the first 20 trials) on the ladder, budget 25, seed 0.
SERIAL_LADDER = {
    "kometo": (75, 24.7, [5, 5, 5, 5, 3, 3, 5, 5, 5, 5, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5]),
    "mf-pdoo": (70, 24.8, [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3]),
}


@pytest.mark.parametrize("method", METHODS)
def test_one_worker_log_is_the_serial_search(method):
    _, result = run(method, mfbo.problems.get("quadratic-ladder"), 25.0)
    n, cost, fidelities = SERIAL_LADDER[method]
    assert len(result.trials) == n and result.total_cost == pytest.approx(cost, abs=1e-9)
    assert [t.fidelity for t in result.trials[:20]] == fidelities
    assert all(t.worker == 0 for t in result.trials)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stop", ["cost", "wall_clock"])
def test_four_workers_run_to_the_end_within_the_budget(method, stop):
    problem = mfbo.problems.get("mfhartmann3-good")
    logs = []
    for _ in range(2):
        strategy = mfbo.strategies.make(method, problem, seed=3)
        result = mfbo.minimize(problem, strategy, budget=20.0, workers=4, stop=stop)
        logs.append([(*row, t.worker, t.start) for row, t in zip(trial_log(result), result.trials)])
        assert strategy.validated and result.recommendation is not None
        ends = sorted(t.end for t in result.trials)
        assert ends[-1] <= 20.0 + 1e-9
        if stop == "cost":
            assert result.total_cost <= 20.0 + 1e-9
        else:  # the search plans with the 4 workers' capacity
            assert result.total_cost > 2 * 20.0 and strategy.left() >= -1e-9
        assert len({t.worker for t in result.trials}) == 4
        assert result.total_cost > 1.3 * ends[-1]  # evaluations ran at once
    assert logs[0] == logs[1]


@pytest.mark.parametrize("method", METHODS)
def test_four_workers_ask_each_evaluation_once(method):
    """While a result is pending, a cell asked for by several instances is not asked again, and
    ``ask`` returns None when every search waits for a pending result."""
    problem = mfbo.problems.get("quadratic-ladder")
    strategy = mfbo.strategies.make(method, problem, seed=0)
    strategy.set_budget(25.0)
    asked = [strategy.ask() for _ in range(40)]
    trials = [t for t in asked if t is not None]
    assert trials and asked[-1] is None
    keys = [(tuple(sorted(t.config.items())), t.fidelity) for t in trials]
    assert len(keys) == len(set(keys))
    assert sum(problem.cost(t.config, t.fidelity) for t in trials) <= 25.0 + 1e-9


def test_kometo_with_four_workers_finds_the_ladder_optimum():
    problem = mfbo.problems.get("quadratic-ladder")
    for seed in range(3):
        strategy = mfbo.strategies.make("kometo", problem, seed=seed)
        result = mfbo.minimize(problem, strategy, budget=50.0, workers=4)
        assert result.recommendation["bs"] == 64 and result.regret < 1e-4
        assert strategy.best_observed()[0].fidelity == 5 and result.total_cost <= 50.0 + 1e-9


def test_mf_pdoo_with_four_workers_reaches_the_target_level_of_the_ladder():
    problem = mfbo.problems.get("quadratic-ladder")
    strategy = mfbo.strategies.make("mf-pdoo", problem, seed=0)
    result = mfbo.minimize(problem, strategy, budget=50.0, workers=4)
    assert result.regret < 0.01 and strategy.best_observed()[0].fidelity == 5


def test_a_strategy_that_waits_with_nothing_pending_is_an_error():
    problem = mfbo.problems.get("currin")
    strategy = mfbo.strategies.make("kometo", problem)
    strategy._suggest = lambda: None
    with pytest.raises(ValueError, match="proposed nothing with no trial pending"):
        strategy.ask()


@pytest.mark.parametrize("name", ["currin", "park", "hartmann3", "mfhartmann3-moderate", "quadratic-ladder", "forrester"])
def test_bias_bound_is_zero_at_the_target_decreasing_and_bounds_the_bias(name):
    problem = mfbo.problems.get(name)
    fid = problem.fidelity
    levels = list(fid.grid()) if fid.is_discrete else list(np.linspace(fid.low, fid.high, 11))
    zetas = [problem.bias_bound(v) for v in levels]
    assert zetas[-1] == 0.0 and all(a >= b for a, b in itertools.pairwise(zetas))
    lows = np.array([float(problem.space[n].low) for n in problem.space])
    highs = np.array([float(problem.space[n].high) for n in problem.space])
    X = lows + np.random.default_rng(7).random((500, len(lows))) * (highs - lows)
    for v, zeta in zip(levels[::3], zetas[::3]):
        gap = np.abs(problem.values(X, v, noise=False) - problem.values(X, None, noise=False))
        assert gap.max() <= zeta + 1e-9


def test_bias_bound_of_the_ladder_and_of_unknown_problems():
    assert [mfbo.problems.get("quadratic-ladder").bias_bound(v) for v in (1, 3, 5)] == [2.0, 1.0, 0.0]
    plain = mfbo.Problem.from_function(lambda c, z: c["x"], Space(x=Float(0, 1)), Fidelity("z", 0.0, 1.0))
    assert plain.bias_bound(0.5) is None


def test_kometo_schedules_are_a_geometric_grid_of_cost_rates():
    problem = mfbo.problems.get("quadratic-ladder")  # cost 0.1 * level, target 0.5
    strategy = mfbo.strategies.make("kometo", problem)
    assert strategy._n_instances(25.0) == 1 + math.ceil(math.log2(50))
    assert strategy.horizons == [0, 1, 2, 4, 8, 16, 32]
    assert [strategy.fidelity_at(h, 0) for h in (1, 5)] == [5, 5]  # H = 0: SequOOL at the target
    assert [strategy.fidelity_at(h, 4) for h in range(6)] == [1, 2, 3, 4, 5, 5]  # cost 0.1 * 5^(h/4), rounded up
    assert strategy.fidelity_at(0, 32) == 1 and strategy.fidelity_at(32, 32) == 5


class Curve(mfbo.Problem):
    """Resumable: loss ``(x - 0.3)^2 + (1 - x) / epoch`` at epochs ``1..27``, one cost unit per epoch,
    resuming charges the new epochs only."""

    resumable = True

    def __init__(self) -> None:
        super().__init__("curve", Space(x=Float(0.0, 1.0)), Fidelity("epoch", 1, 27, integer=True), optimum=None)

    def _evaluate(self, config, fidelity):
        return mfbo.Observation(value=(config["x"] - 0.3) ** 2 + (1 - config["x"]) / fidelity, cost=float(fidelity))

    def _resume(self, config, fidelity, resume_from):
        return mfbo.Observation(value=self._evaluate(config, fidelity).value, cost=float(fidelity - resume_from))

    def cost(self, config, fidelity=None):
        return float(27 if fidelity is None else fidelity)


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("method, options", [("mf-pdoo", {"bias": 0.5, "nu": 0.3, "k": 3}), ("kometo", {})])
def test_resumable_problems_are_continued(method, options, workers):
    problem = Curve()
    strategy = mfbo.strategies.make(method, problem, **options)
    result = mfbo.minimize(problem, strategy, budget=400.0, workers=workers)
    continued = [t for t in result.trials if t.continues is not None]
    assert continued and result.total_cost <= 400.0 + 1e-9
    fidelity = {t.id: t.fidelity for t in result.trials}
    assert all(t.cost == t.fidelity - fidelity[t.continues] for t in continued)
    assert strategy.validated


class CostlyRight(Bowl1D):
    """:class:`Bowl1D` whose evaluations cost ``(0.1 + 0.9 s^2) (0.2 + 3 x)``: up to 3.2 times the
    cube centre's cost, which the shares are planned with."""

    def _evaluate(self, config, fidelity):
        obs = super()._evaluate(config, fidelity)
        return mfbo.Observation(value=obs.value, cost=obs.cost * (0.2 + 3 * config["x"]))

    def cost(self, config=None, fidelity=None):
        return super().cost(config, fidelity) * (0.2 + 3 * (0.5 if config is None else config["x"]))


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("method", METHODS)
def test_costs_that_depend_on_the_configuration(method, workers):
    problem = CostlyRight()
    strategy = mfbo.strategies.make(method, problem)
    result = mfbo.minimize(problem, strategy, budget=15.0, workers=workers)
    assert result.total_cost <= 15.0 + 1e-9
    assert strategy.validated and result.recommendation is not None


class OneAtATime(mfbo.strategies.base.Strategy):
    """Random search that waits for each result (``ask`` returns None while a trial is pending)."""

    name = "one-at-a-time"

    def _suggest(self):
        return None if self.pending else (self.space.sample(self.rng), None)


@pytest.mark.parametrize("stop", ["cost", "wall_clock"])
def test_the_loop_lets_a_strategy_wait_for_a_result(stop):
    problem = mfbo.Problem.from_function(lambda c: c["x"] ** 2, Space(x=Float(-1.0, 1.0)), cost=lambda c, z=None: 1.0)
    result = mfbo.minimize(problem, OneAtATime(problem.space, problem=problem), budget=5.0, workers=3, stop=stop)
    assert [(t.start, t.end, t.worker) for t in result.trials] == [(float(i), float(i + 1), 0) for i in range(5)]


def test_a_bias_guard_passes_the_wait_through():
    problem = mfbo.problems.get("currin")
    strategy = mfbo.strategies.make("kometo", problem, seed=0)
    result = mfbo.minimize(problem, strategy, budget=10.0, workers=4, guard=5)
    assert result.total_cost <= 10.0 + 1e-9 and len({t.worker for t in result.trials}) == 4
    assert any(t.guard is not None for t in result.trials)

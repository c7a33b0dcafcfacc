"""Proposals within what the budget has left: :meth:`Strategy.budget_left`, the optimiser's
``max_cost`` and the model-based strategies that use them (issue #12: runs that stopped with a
third of the budget unspent because the next proposal would have exceeded it)."""

import math

import numpy as np
import pytest
import torch

import mfbo
from mfbo import Fidelity, Float, Space
from mfbo.acquisition.base import AcquisitionContext
from mfbo.acquisition.optimize import optimize_joint, within_budget
from mfbo.problems.base import Problem
from mfbo.strategies import make
from mfbo.trial import Observation

EPOCHS = 27


class CostlyCurveProblem(Problem):
    """A resumable learning-curve problem whose best configurations are the expensive ones:
    loss ``(x - 0.8)^2 + (1 - x) / epoch``, cost ``epoch * (1 + 9 x)`` (known in advance, and
    depending on the configuration, so the strategies learn it)."""

    resumable = True

    def __init__(self):
        super().__init__("costly-curve", Space(x=Float(0.0, 1.0)), Fidelity("epoch", 1, EPOCHS, integer=True))
        self.optimum = float(min(self.target_value({"x": x}) for x in np.linspace(0, 1, 100001)))

    def _curve(self, config, epochs):
        x = config["x"]
        return [(x - 0.8) ** 2 + (1 - x) / e for e in range(1, epochs + 1)]

    def _evaluate(self, config, fidelity):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=self.cost(config, fidelity), curve=curve)

    def _resume(self, config, fidelity, resume_from):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=self.cost(config, fidelity) - self.cost(config, resume_from), curve=curve)

    def cost(self, config, fidelity=None):
        epochs = self.target_fidelity if fidelity is None else fidelity
        return float(epochs * (1 + 9 * config["x"]))

    def target_value(self, config):
        return (config["x"] - 0.8) ** 2 + (1 - config["x"]) / EPOCHS


def test_budget_left_counts_told_and_pending_trials_and_continuations():
    problem = CostlyCurveProblem()
    strategy = make("random", problem, seed=0)
    assert strategy.budget_left() is None  # no budget yet
    strategy.set_budget(1000.0)
    first = strategy.ask()
    pending_cost = problem.cost(first.config, first.fidelity)
    assert strategy.budget_left() == pytest.approx(1000.0 - pending_cost)
    strategy.tell(first, problem.evaluate(first.config, first.fidelity))
    assert strategy.budget_left() == pytest.approx(1000.0 - pending_cost)
    told = strategy.add_observation({"x": 0.5}, 3, problem.evaluate({"x": 0.5}, 3))
    continuation = strategy._continuation_trial(mfbo.strategies.base.Continuation(told.id, 9))
    strategy.pending[continuation.id] = continuation
    increment = problem.cost({"x": 0.5}, 9) - problem.cost({"x": 0.5}, 3)
    assert strategy.budget_left() == pytest.approx(1000.0 - pending_cost - problem.cost({"x": 0.5}, 3) - increment)
    strategy.set_budget(1000.0, stop="wall_clock")  # a budget of time, not of summed cost
    assert strategy.budget_left() is None


def _context(max_cost):
    def cost(X):
        return 1.0 + 9.0 * X[..., -1]

    return AcquisitionContext(
        model=None, cost=cost, dim=1, fidelities=torch.linspace(0, 1, 5, dtype=torch.double),
        train_X=torch.zeros(1, 2, dtype=torch.double), train_Y=torch.zeros(1, 1, dtype=torch.double),
        X_pending=None, seed=0, project=lambda X: X, max_cost=max_cost,
    )


def test_joint_search_proposes_the_best_point_within_the_budget_left():
    def prefers_the_target(X):  # (b, 1, 2) -> (b,): the higher the fidelity the better
        return X[..., 0, -1] - 0.01 * (X[..., 0, 0] - 0.5) ** 2

    point, _ = optimize_joint(prefers_the_target, _context(None), num_restarts=2, raw_samples=16)
    assert point[0, -1] == 1.0
    point, _ = optimize_joint(prefers_the_target, _context(6.0), num_restarts=2, raw_samples=16)
    assert point[0, -1] == 0.5  # cost 5.5 fits 6; the level above (7.75) does not
    point, _ = optimize_joint(prefers_the_target, _context(0.5), num_restarts=2, raw_samples=16)
    assert point[0, -1] == 1.0  # nothing fits: the scores are left as they are
    point, _ = optimize_joint(prefers_the_target, _context(6.0), num_restarts=2, raw_samples=16, fixed_s=1.0)
    assert point[0, -1] == 1.0  # a search at a fixed fidelity finds a point of the model, not a proposal


def test_within_budget_masks_only_what_exceeds_it():
    X = torch.tensor([[[0.3, 0.0]], [[0.3, 0.5]], [[0.3, 1.0]]], dtype=torch.double)
    scores = torch.tensor([1.0, 2.0, 3.0], dtype=torch.double)
    assert within_budget(scores, X, _context(6.0)).tolist() == [1.0, 2.0, -math.inf]
    assert within_budget(scores, X, _context(None)).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "strategy, cheapest",
    [
        ("mf-kg", {"x": 0.0}),  # one epoch of the cheapest configuration
        ("mf-ei", {"x": 0.0}),
        ("mf-ucb", {"x": 1.0}),  # BOCA picks x first, then the fidelity: one epoch at the chosen x
        ("gp-ei", {"x": 0.0}),  # full training only
    ],
)
def test_model_based_runs_spend_the_budget_down_to_what_nothing_fits(strategy, cheapest):
    """The best configurations are the most expensive, so an acquisition that ignores the
    budget asks for one near the end that the loop refuses (34 % of this budget was left so
    by mf-ucb before the rule). Within the budget, the run ends only when less is left than
    about the cheapest evaluation the strategy could still choose (twice it, for the
    strategies' discretisation)."""
    problem = CostlyCurveProblem()
    budget = 8 * EPOCHS * (1 + 9 * 0.5)
    result = mfbo.minimize(problem, strategy, budget=budget, seed=0)
    unspent = budget - result.trials[-1].cum_cost
    epochs = EPOCHS if strategy == "gp-ei" else 1
    assert 0 <= unspent < 2 * problem.cost(cheapest, epochs), (unspent, result.stop_reason)


def test_the_cost_model_and_the_gp_never_refit_on_the_same_step():
    """A step pays for at most one hyperparameter fit (issue #12's overhead target): the learned
    cost model waits one step when the main GP refits. With ``refit_growth=0`` the main GP
    refits at every step, so the cost model refits every other step."""
    problem = CostlyCurveProblem()  # a configuration-dependent cost: learned
    strategy = make("mf-ei", problem, seed=0, refit_growth=0.0, continuation=False)
    strategy.set_budget(40 * EPOCHS)
    fits = []
    while len(fits) < 6:
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
        if strategy._ready():
            fits.append((strategy._last_cost.report is not None, strategy._fitted_at))
    fitted_at = [n for _, n in fits]
    assert all(b > a for a, b in zip(fitted_at, fitted_at[1:]))  # the main GP refits at every step
    assert [cost for cost, _ in fits] == [True, False, True, False, True, False]  # the first: no model yet


class OneCostlyCornerProblem(Problem):
    """A problem that cannot resume, whose configurations ``x >= 0.875`` cost a million times
    the others at any fidelity (known in advance): a design of at least 8 scrambled Sobol points
    has one there, and no budget of this test affords it even at the cheapest level."""

    def __init__(self):
        super().__init__("costly-corner", Space(x=Float(0.0, 1.0)), Fidelity("s", 0.1, 1.0))
        self.optimum = 0.0

    def _evaluate(self, config, fidelity):
        return Observation(value=(config["x"] - 0.3) ** 2 + 0.1 * (1 - fidelity), cost=self.cost(config, fidelity))

    def cost(self, config, fidelity=None):
        s = self.target_fidelity if fidelity is None else fidelity
        return float(s * (1e6 if config["x"] >= 0.875 else 1.0))

    def target_value(self, config):
        return (config["x"] - 0.3) ** 2


@pytest.mark.parametrize("strategy, options", [("mf-ucb", {}), ("mf-kg", {}), ("gp-ei", {"n_init": 8})])
def test_design_points_beyond_the_budget_left_are_dropped_not_the_run(strategy, options):
    """A planned evaluation the budget cannot afford would end the run (the loop refuses it and
    stops); the strategy drops it, notes why, and the run spends its budget."""
    problem = OneCostlyCornerProblem()
    budget = 30.0
    result = mfbo.minimize(problem, make(strategy, problem, seed=0, **options), budget=budget)
    notes = [note for trial in result.trials for note in trial.notes]
    assert any(note.startswith("planned trial dropped: its known cost") for note in notes)
    assert result.trials[-1].cum_cost > budget - 1.0, result.stop_reason
    assert all(trial.config["x"] < 0.875 for trial in result.trials)


def test_a_proposal_over_the_budget_left_is_lowered_to_the_highest_rung_that_fits():
    """When the cost model underestimated a proposal (the loop would end the run at it), the
    strategy asks for the same configuration at the highest rung whose known cost fits, never
    at or below the fidelity its run already reached; unchanged when no rung fits."""
    problem = CostlyCurveProblem()  # cost epoch * (1 + 9 x): 10 per epoch at x = 1
    strategy = make("mf-ucb", problem, seed=0)
    strategy.set_budget(130.0)
    config = {"x": 1.0}
    strategy.add_observation(config, 3, problem.evaluate(config, 3))  # 30 spent, 100 left
    left = strategy.budget_left()
    assert left == pytest.approx(100.0)
    rungs = sorted(strategy.fidelity.denormalize(s) for s in strategy._rungs)
    fitting = [e for e in rungs if 3 < e and problem.cost(config, e) - problem.cost(config, 3) <= left]
    assert fitting and max(fitting) < EPOCHS  # the test needs a rung between the run and the target
    lowered = strategy._highest_affordable(config, EPOCHS, left)
    assert lowered == (config, max(fitting))
    assert any(note.startswith("proposal at fidelity 27") for note in strategy.drain_notes())
    assert strategy._highest_affordable(config, EPOCHS, 5.0) == (config, EPOCHS)  # nothing fits
    assert strategy._highest_affordable(config, max(fitting), left) == (config, max(fitting))  # fits as it is

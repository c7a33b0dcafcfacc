"""BOIL (Nguyen, Schulze & Osborne, NeurIPS 2020): the curve compression, the joint learning of
(m0, g0), the selective augmentation, continuations and reproducibility (issue #15)."""

import math

import numpy as np
import pytest
import torch

import mfbo
from mfbo import Fidelity, Float, Space
from mfbo.models.curve_compression import (
    compress,
    fit_compressed_gp,
    fixed_fit,
    logistic_weights,
    pad_curves,
)
from mfbo.problems.base import Problem
from mfbo.strategies import make
from mfbo.trial import Observation

EPOCHS = 27


def sigmoid(u):
    return 1.0 / (1.0 + math.exp(-u))


class CurveProblem(Problem):
    """Resumable: error ``e(x) + (1 - x) / (1 + epoch)`` after each epoch, one cost unit per epoch."""

    resumable = True

    def __init__(self, curves=True):
        super().__init__("boil-curve", Space(x=Float(0.0, 1.0)), Fidelity("epoch", 1, EPOCHS, integer=True))
        self.curves = curves

    def _curve(self, config, epochs):
        x = config["x"]
        return [0.3 * (x - 0.3) ** 2 + 0.05 + (1 - x) / (1 + e) * 0.5 for e in range(1, epochs + 1)]

    def _evaluate(self, config, fidelity):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=float(fidelity), curve=curve if self.curves else None)

    def _resume(self, config, fidelity, resume_from):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=float(fidelity - resume_from), curve=curve)

    def cost(self, config, fidelity=None):
        return float(self.target_fidelity if fidelity is None else fidelity)


# -- compression --------------------------------------------------------------------------------
def test_compression_of_known_curves():
    # u = (-6, -3, 0, 3, 6); m0 = 0, g0 = 1: w = sigmoid(u), symmetric about 1/2
    w = [sigmoid(u) for u in (-6, -3, 0, 3, 6)]
    assert logistic_weights(5, 0.0, 1.0).tolist() == pytest.approx(w)
    R, lengths = pad_curves([[1.0] * 5, [1.0, 1.0, 1.0], [0.2, 0.4, 0.6, 0.8, 1.0]], t_max=5)
    scores = compress(R, lengths, 0.0, 1.0)
    assert scores[0] == pytest.approx(0.5)  # the mean of a symmetric sigmoid over [-6, 6]
    assert scores[1] == pytest.approx(sum(w[:3]) / 3)  # a prefix: the first three weights, averaged over 3 epochs
    assert scores[2] == pytest.approx(sum(wi * r for wi, r in zip(w, (0.2, 0.4, 0.6, 0.8, 1.0))) / 5)
    # the paper's average starts at epoch 1 (the authors' code would drop the first int((m0 + 4) t / 12) epochs)
    m0, g0 = 3.0, 2.0
    w2 = logistic_weights(5, m0, g0)
    assert compress(R[:1], lengths[:1], m0, g0).item() == pytest.approx(float(w2.mean()))
    with pytest.raises(ValueError, match="curve 0 is empty"):
        pad_curves([[]], t_max=5)


def _two_shapes(n=40, T=30, cut=20, seed=0):
    """A: epochs before ``cut`` are noise, the later ones a smooth function of x; B: the reverse."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 1, n))
    smooth, noise = np.sin(6 * x), 3 * rng.normal(size=n)
    A, B = np.zeros((n, T)), np.zeros((n, T))
    A[:, :cut], A[:, cut:] = noise[:, None], smooth[:, None]
    B[:, :cut], B[:, cut:] = smooth[:, None], noise[:, None]
    X = torch.tensor(np.c_[x, np.ones(n)], dtype=torch.double)
    return X, A, B


def test_m0_and_g0_are_learned_from_the_curves():
    """Late epochs informative: the likelihood puts the weight late (high m0, steep g0); early
    epochs informative: as early and as flat as the bounds allow."""
    X, A, B = _two_shapes()
    fits = {}
    for name, curves in (("late", A), ("early", B)):
        R, lengths = pad_curves(list(curves), 30)
        fits[name] = fit_compressed_gp(X, R, lengths, np.random.default_rng(1))
    assert fits["late"].m0 > 2.0 and fits["late"].g0 > 1.5
    assert fits["early"].m0 < -1.0 and fits["early"].g0 < 1.0
    assert fits["late"].noise < fits["early"].noise  # the smooth scores are explained, the noisy ones are noise
    # the fit is at least as good as the authors' default (m0, g0) = (0, 1)
    R, lengths = pad_curves(list(A), 30)
    assert fits["late"].nll <= fixed_fit(X, R, lengths).nll


# -- the strategy ---------------------------------------------------------------------------------
def test_problems_without_curves_are_refused():
    message = "strategy 'boil' needs a problem that reports learning curves over an integer epoch fidelity"
    with pytest.raises(ValueError, match=message):
        make("boil", mfbo.problems.get("currin"))  # a continuous fidelity
    with pytest.raises(ValueError, match=message):
        make("boil", mfbo.problems.get("hartmann6"))  # no fidelity
    strategy = make("boil", CurveProblem(curves=False))
    trial = strategy.ask()
    with pytest.raises(ValueError, match=message + r".*'boil-curve' returned an observation without a curve"):
        strategy.tell(trial, CurveProblem(curves=False).evaluate(trial.config, trial.fidelity))


@pytest.mark.parametrize("option, value, message", [
    ("n_init", 0, "option n_init must be an integer >= 1, got 0"),
    ("log_cond_max", -1.0, "option log_cond_max must be a number > 0, got -1.0"),
    ("continuation", "yes", "option continuation must be bool, got 'yes'"),
])
def test_bad_options(option, value, message):
    with pytest.raises(ValueError, match=message):
        make("boil", CurveProblem(), **{option: value})


def _augmented_after_one_run(log_cond_max):
    problem = CurveProblem()
    strategy = make("boil", problem, seed=0, log_cond_max=log_cond_max)
    strategy.add_observation({"x": 0.4}, EPOCHS, problem.evaluate({"x": 0.4}, EPOCHS))
    return strategy, [row for row in strategy._rows if not row[4]]


def test_augmentation_stops_on_the_condition_number():
    strategy, augmented = _augmented_after_one_run(1e9)
    assert 1 <= len(augmented) <= math.ceil(10 * 1.0)  # at most ceil(10 t*) points from the curve
    epochs = [row[1] for row in augmented]
    assert len(set(epochs)) == len(epochs) and EPOCHS not in epochs  # no repeated epoch
    for x, e, curve, cost, real, tid in augmented:
        assert len(curve) == e and cost == pytest.approx(EPOCHS * (e - 1) / (EPOCHS - 1))  # the prefix, interpolated cost
    X, R, lengths = strategy._tensors()
    unlimited = fixed_fit(X, R, lengths).gp.log_condition_number()
    # a threshold between the log condition numbers reached after k and k + 1 points stops after k
    limit = 0.5 * (unlimited + fixed_fit(X[:-1], R[:-1], lengths[:-1]).gp.log_condition_number())
    strategy, fewer = _augmented_after_one_run(limit)
    assert len(fewer) == len(augmented) - 1
    X, R, lengths = strategy._tensors()
    assert fixed_fit(X, R, lengths).gp.log_condition_number() <= limit
    assert _augmented_after_one_run(1e-3)[1] == []  # even one point would exceed it


@pytest.fixture(scope="module")
def runs():
    problem = CurveProblem()
    return [mfbo.minimize(problem, make("boil", problem, seed=3, raw_samples=64, num_restarts=3), budget=5 * EPOCHS, seed=0) for _ in range(2)], problem


def test_identical_seeds_give_identical_logs(runs):
    (first, second), _ = runs
    log = [(t.config, t.fidelity, t.continues, t.value, t.cost) for t in first.trials]
    assert log == [(t.config, t.fidelity, t.continues, t.value, t.cost) for t in second.trials]
    assert len(log) >= 5


def test_a_continuation_is_charged_the_extra_epochs_only(runs, monkeypatch):
    (result, _), _ = runs
    assert result.trials[0].fidelity == result.trials[2].fidelity == EPOCHS  # the initial design at T_max
    problem = CurveProblem()
    strategy = make("boil", problem, seed=0, raw_samples=64, num_restarts=3)
    for x in (0.2, 0.6):
        strategy.add_observation({"x": x}, 3, problem.evaluate({"x": x}, 3))
    strategy._design = []
    real = strategy._best_continuation  # the acquisition's choice, forced to be a continuation
    monkeypatch.setattr(strategy, "_best_continuation", lambda *args: (math.inf, *real(*args)[1:]))
    reached = {t.id: t.fidelity for t, _ in strategy.history}
    for _ in range(3):
        trial = strategy.ask()
        assert trial.continues is not None and trial.fidelity in (9, EPOCHS) and trial.fidelity > reached[trial.continues]
        observation = problem.evaluate(trial.config, trial.fidelity, resume_from=reached[trial.continues])
        assert observation.cost == trial.fidelity - reached[trial.continues]  # the extra epochs only
        strategy.tell(trial, observation)
        reached[trial.id] = trial.fidelity
        row = next(r for r in strategy._rows if r[5] == trial.id)
        assert row[3] == trial.fidelity  # the cost model learns the cost from scratch


def test_the_recommendation_is_the_best_compressed_real_observation():
    problem = CurveProblem()
    strategy = make("boil", problem, seed=0)
    for x, e in ((0.1, EPOCHS), (0.35, 9), (0.9, EPOCHS)):
        strategy.add_observation({"x": x}, e, problem.evaluate({"x": x}, e))
    assert len(strategy._rows) > 3  # augmented points, which are never recommended
    m0, g0 = 0.0, 1.0  # no fit yet: the default weights
    scores = {x: compress(*pad_curves([[1 - v for v in problem._curve({"x": x}, e)]], EPOCHS), m0, g0).item()
              for x, e in ((0.1, EPOCHS), (0.35, 9), (0.9, EPOCHS))}
    assert strategy.recommend() == {"x": max(scores, key=scores.get)}
    assert strategy.other_recommendations() == {"best-at-target": {"x": 0.1}}


def test_the_condition_bound_agrees_with_the_eigenvalues():
    X, A, _ = _two_shapes(n=30)
    R, lengths = pad_curves(list(A), 30)
    gp = fixed_fit(X, R, lengths).gp
    exact = gp.log_condition_number()
    assert gp.log_condition_exceeds(exact - 0.01) and not gp.log_condition_exceeds(exact + 0.01)


def test_asynchronous_asks_do_not_repeat_a_proposal():
    problem = CurveProblem()
    strategy = make("boil", problem, seed=0, raw_samples=64, num_restarts=3)
    for x in (0.1, 0.5, 0.9):
        strategy.add_observation({"x": x}, EPOCHS, problem.evaluate({"x": x}, EPOCHS))
    strategy._design = []
    asked = [strategy.ask() for _ in range(3)]
    assert len({(t.config["x"], t.fidelity, t.continues) for t in asked}) == 3

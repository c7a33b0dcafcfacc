"""FABOLAS (issue #15): the basis kernels, the cost GP, the cost division, the fidelity check,
seeded reproducibility and a short run on a synthetic data-subset problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mfbo
from mfbo.models.fabolas_gp import (
    COST_BASIS,
    LOSS_BASIS,
    MarginalisedGP,
    blr_kernel,
    log_prior,
    matern52_product,
    sample_prior,
    subset_decoding,
    subset_encoding,
)
from mfbo.problems.base import Problem
from mfbo.space import Fidelity, Float, Space
from mfbo.strategies import make
from mfbo.strategies.fabolas import Fabolas

pytest.importorskip("emcee")

SMALL = {"n_init": 3, "n_hypers": 4, "burnin": 30, "chain_length": 10, "n_representer": 12, "n_innovations": 40, "n_candidates": 60}
S_MIN = 1.0 / 64


def subset_problem() -> Problem:
    """``value = (0.02 + (x - 0.3)² + (y - 0.7)²) · exp((1 - s̃)²)``, cost ``0.01 + s``:
    optimum 0.02 at ``(0.3, 0.7)``, ``s = 1``."""
    def fn(config, s):
        st = subset_encoding(s, S_MIN, 1.0)
        return (0.02 + (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2) * math.exp((1.0 - st) ** 2)

    space = Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0))
    return Problem.from_function(fn, space, Fidelity("subset", S_MIN, 1.0, log=True), cost=lambda s: 0.01 + s, optimum=0.02,
                                 name="subset-quadratic", target_value=lambda c: fn(c, 1.0))


# Encoding and kernels -------------------------------------------------------------------------------
def test_subset_encoding_is_log2_scaled_and_inverted():
    assert subset_encoding(S_MIN, S_MIN, 1.0) == pytest.approx(0.0)
    assert subset_encoding(1.0, S_MIN, 1.0) == pytest.approx(1.0)
    assert subset_encoding(1.0 / 8, S_MIN, 1.0) == pytest.approx(0.5)  # 3 of 6 octaves
    assert subset_decoding(0.5, S_MIN, 1.0) == pytest.approx(1.0 / 8)


def test_basis_functions_values():
    np.testing.assert_allclose(LOSS_BASIS(np.array([0.0, 0.5, 1.0])), [[1, 1], [1, 0.25], [1, 0]])
    np.testing.assert_allclose(COST_BASIS(np.array([0.0, 0.5, 1.0])), [[1, 0], [1, 0.5], [1, 1]])


def test_blr_kernel_values_and_rank():
    phi = torch.as_tensor(LOSS_BASIS(np.array([0.0, 0.5, 1.0])))
    K = blr_kernel(phi, phi, torch.log(torch.tensor([[2.0, 3.0]], dtype=torch.double)))[0]
    # k(s, s') = 2 + 3 (1 - s)² (1 - s')²
    expected = [[5.0, 2.75, 2.0], [2.75, 2.1875, 2.0], [2.0, 2.0, 2.0]]
    np.testing.assert_allclose(K.numpy(), expected)
    assert np.linalg.matrix_rank(K.numpy()) == 2


def test_full_kernel_is_positive_definite_and_matern_values():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.uniform(size=(30, 2)))
    assert matern52_product(X[:1], X[:1], torch.zeros(1, 2)).item() == pytest.approx(1.0)
    r = 0.5  # one dimension at distance 0.5, length scale 1: (1 + √5 r + 5r²/3) e^{-√5 r}
    one = matern52_product(torch.tensor([[0.0, 0.0]], dtype=torch.double), torch.tensor([[0.5, 0.0]], dtype=torch.double), torch.zeros(1, 2))
    assert one.item() == pytest.approx((1 + math.sqrt(5) * r + 5 * r * r / 3) * math.exp(-math.sqrt(5) * r))
    gp = MarginalisedGP(LOSS_BASIS, 2)
    theta = torch.as_tensor(sample_prior(rng, 6, 2))
    P = torch.as_tensor(LOSS_BASIS(rng.uniform(size=30)))
    K = gp.kernel(theta, X, P, X, P).numpy()
    np.testing.assert_allclose(K, K.transpose(0, 2, 1), atol=1e-12)
    assert all(np.linalg.eigvalsh(k).min() > -1e-9 * np.abs(k).max() for k in K)


def test_prior_is_minus_infinity_outside_the_top_hat():
    theta = np.zeros((2, 6))
    theta[1, 1] = 2.5  # log ℓ² above 2
    lp = log_prior(theta, 2)
    assert np.isfinite(lp[0]) and lp[1] == -np.inf


def test_cost_gp_recovers_a_known_log_linear_cost():
    """log c = -5 + 4 s̃ (independent of x): the cost GP's sample-averaged mean at unseen
    configurations and subsets recovers it."""
    rng = np.random.default_rng(1)
    X, st = rng.uniform(size=(24, 2)), rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=24)
    gp = MarginalisedGP(COST_BASIS, 2, n_hypers=12, burnin=400, chain_length=100)
    gp.fit(X, st, -5.0 + 4.0 * st, np.random.default_rng(3))
    Xq, sq = rng.uniform(size=(5, 2)), np.array([0.1, 0.4, 0.6, 0.9, 1.0])
    mean = gp.predict(Xq, sq)[0].mean(axis=0)
    np.testing.assert_allclose(mean, -5.0 + 4.0 * sq, atol=0.1)


# The strategy -----------------------------------------------------------------------------------------
def test_refuses_a_fidelity_that_is_not_a_subset_fraction():
    space = Space(x=Float(0.0, 1.0))
    for fidelity in (None, Fidelity("epochs", 1, 50, integer=True), Fidelity("subset", 0.1, 2.0), Fidelity("subset", levels=[0.25, 0.5, 1.0])):
        with pytest.raises(ValueError, match="needs a continuous data-subset fidelity"):
            Fabolas(space, fidelity)
    with pytest.raises(ValueError, match="n_hypers must be even"):
        make("fabolas", subset_problem(), n_hypers=5)


def test_initial_design_on_small_subsets():
    assert Fabolas._initial_subsets(1.0 / 1024, 1.0) == pytest.approx((1 / 256, 1 / 128, 1 / 64))  # RoBO's
    assert Fabolas._initial_subsets(S_MIN, 1.0) == pytest.approx((1 / 64, 1 / 32, 1 / 16))  # moved up to s_min
    strategy = make("fabolas", subset_problem(), seed=0, **SMALL)
    asked = [strategy.ask() for _ in range(9)]
    assert [t.fidelity for t in asked] == pytest.approx([1 / 64, 1 / 32, 1 / 16] * 3)
    assert len({tuple(t.config.values()) for t in asked}) == 3


def test_acquisition_divides_the_information_gain_by_the_predicted_cost(monkeypatch):
    problem = subset_problem()
    strategy = make("fabolas", problem, seed=0, **SMALL)
    for _ in range(9):
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    strategy._fit()
    candidates = np.random.default_rng(0).uniform(size=(7, 3))
    S = len(strategy.loss_gp.theta)
    assert S == 12  # n_hypers = 4 raised to emcee's minimum 2 P, P = d + 4
    gains = np.random.default_rng(1).uniform(size=(7, S))
    monkeypatch.setattr("mfbo.strategies.fabolas.information_gain", lambda *args, **kw: gains)
    got = strategy._acquisition(candidates, np.zeros(S))
    log_cost = strategy.cost_gp.predict(candidates[:, :2], candidates[:, 2])[0].T  # (C, S)
    np.testing.assert_allclose(got, (gains / np.exp(log_cost)).mean(axis=1))
    assert np.exp(log_cost).mean(axis=1)[np.argmax(candidates[:, 2])] > np.exp(log_cost).mean(axis=1)[np.argmin(candidates[:, 2])]


def test_identical_seeds_give_identical_trials():
    logs = []
    for _ in range(2):
        problem = subset_problem()
        strategy = make("fabolas", problem, seed=3, **SMALL)
        trials = []
        for _ in range(11):
            trial = strategy.ask()
            strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
            trials.append((tuple(trial.config.values()), trial.fidelity))
        logs.append((trials, strategy.recommend()))
    assert logs[0] == logs[1]


def test_short_run_finds_the_optimum_region():
    problem = subset_problem()
    result = mfbo.minimize(problem, make("fabolas", problem, seed=0, **SMALL), budget=4.0)
    recommended = result.recommendation
    assert problem.target_value(recommended) < 0.05  # random configurations: median ≈ 0.19


# The YAHPO scenarios: a training-set fraction of 0.03..1 on mixed, conditional spaces ------------------
@pytest.mark.parametrize("name", ["rbv2_xgboost/1501", "rbv2_rpart/14", "iaml_glmnet/40981"])
def test_runs_on_the_yahpo_trainsize_scenarios(name, yahpo_data_dir):
    problem = mfbo.problems.get(name, data_dir=yahpo_data_dir)
    strategy = make("fabolas", problem, seed=0, **SMALL)
    for _ in range(3 * SMALL["n_init"]):  # the design: s_min = 0.03 moves the ladder up to 0.03, 0.06, 0.12
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    assert sorted({round(t.fidelity, 6) for t, _ in strategy.history}) == [0.03, 0.06, 0.12]
    trial = strategy.ask()  # the first Entropy Search step, on a space with categoricals (and conditions)
    assert 0.03 <= trial.fidelity <= 1.0 and problem.space.validate(trial.config) == trial.config
    observation = problem.evaluate(trial.config, trial.fidelity)
    strategy.tell(trial, observation)
    recommended = strategy.recommend()
    assert problem.space.validate(recommended) == recommended

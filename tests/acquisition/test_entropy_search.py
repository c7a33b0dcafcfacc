"""Entropy Search pieces (issue #15): p_min by EP against Monte Carlo, EP's gradient, the
information gain (zero at a certain point), log EI, and the representer sampler."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from mfbo.acquisition.entropy_search import (
    entropy,
    information_gain,
    log_expected_improvement,
    sample_representers,
)
from mfbo.acquisition.epmgp import pmin_ep, pmin_monte_carlo


def gaussian(N: int, seed: int, length: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(size=N))
    Sigma = np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / length**2) + 1e-6 * np.eye(N)
    return 0.5 * rng.normal(size=N), Sigma


@pytest.mark.parametrize("N,seed,length", [(6, 0, 0.3), (12, 1, 0.2), (20, 2, 0.1)])
def test_ep_pmin_matches_monte_carlo(N, seed, length):
    mu, Sigma = gaussian(N, seed, length)
    log_p, _ = pmin_ep(mu[None], Sigma[None])
    mc = pmin_monte_carlo(mu, Sigma, 200_000, np.random.default_rng(seed))
    assert np.exp(log_p[0]).sum() == pytest.approx(1.0)
    assert np.abs(np.exp(log_p[0]) - mc).max() < 0.015  # MC standard error <= 0.0011


def test_ep_is_batched_and_its_gradient_matches_finite_differences():
    (mu1, S1), (mu2, S2) = gaussian(8, 3), gaussian(8, 4)
    log_p, grad = pmin_ep(np.stack([mu1, mu2]), np.stack([S1, S2]))
    np.testing.assert_allclose(log_p[1], pmin_ep(mu2[None], S2[None])[0][0])
    # ∇_μ log p_k = g_k - Σ_j p_j g_j  against central differences of the converged EP
    eps, fd = 1e-5, np.empty((8, 8))
    for i in range(8):
        up, down = mu1.copy(), mu1.copy()
        up[i] += eps
        down[i] -= eps
        fd[:, i] = (pmin_ep(up[None], S1[None], tol=1e-10, max_sweeps=500)[0][0] - pmin_ep(down[None], S1[None], tol=1e-10, max_sweeps=500)[0][0]) / (2 * eps)
    analytic = grad[0] - np.exp(log_p[0]) @ grad[0]
    np.testing.assert_allclose(analytic, fd, atol=1e-3 * np.abs(fd).max())


def test_information_gain_is_zero_at_a_certain_point_and_positive_elsewhere():
    mu, Sigma = gaussian(10, 5)
    log_p, grad = pmin_ep(mu[None], Sigma[None])
    lmb = np.zeros((1, 10))
    certain = np.zeros((1, 1, 10))  # posterior variance 0 at x: zero covariance with every representer
    informative = Sigma[None, None, int(np.argmax(log_p[0]))]  # observe the likeliest minimiser itself
    gain = information_gain(log_p, grad, lmb, np.concatenate([certain, informative]), np.array([[0.01], [Sigma.max() + 0.01]]), n_innovations=200)
    assert gain[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert gain[1, 0] > 0.05
    assert entropy(log_p, lmb)[0] > 0


def test_log_expected_improvement_is_exact_and_finite_in_the_tail():
    mean, var, best = np.array([0.0, 1.0, 3.0, 40.0]), np.array([1.0, 0.25, 1.0, 1.0]), 0.5
    sd = np.sqrt(var)
    u = (best - mean) / sd
    direct = sd * (norm.pdf(u) + u * norm.cdf(u))
    got = log_expected_improvement(mean, var, best)
    np.testing.assert_allclose(np.exp(got[:3]), direct[:3], rtol=1e-10)
    assert np.isfinite(got[3]) and got[3] < got[2]  # EI underflows at u = -39.5; its log does not
    for u in (-9.0, -29.9, -30.1, -200.0):  # the asymptotic series h(u) ≈ φ(u)/u² (1 - 3/u² + 15/u⁴ - 105/u⁶ + 945/u⁸)
        series = norm.logpdf(u) - 2 * np.log(-u) + np.log1p(-3 / u**2 + 15 / u**4 - 105 / u**6 + 945 / u**8)
        assert log_expected_improvement(np.array([-u]), np.array([1.0]), 0.0)[0] == pytest.approx(series, abs=1e-5)


def test_representer_sampler_follows_the_density_and_is_seeded():
    def log_density(x):  # (S, m, d): sample s peaks at 0.2 + 0.5 s
        centre = 0.2 + 0.5 * np.arange(x.shape[0])[:, None, None]
        return -0.5 * ((x - centre) ** 2).sum(-1) / 0.05**2

    x, lp = sample_representers(log_density, 2, 40, 2, steps=30, rng=np.random.default_rng(0))
    again, _ = sample_representers(log_density, 2, 40, 2, steps=30, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(x, again)
    assert ((x >= 0) & (x <= 1)).all()
    np.testing.assert_allclose(np.median(x, axis=1), [[0.2, 0.2], [0.7, 0.7]], atol=0.05)
    np.testing.assert_allclose(lp, log_density(x))

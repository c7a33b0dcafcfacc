"""Entropy Search (Hennig & Schuler, JMLR 2012): the expected information gain about the location
of the minimum from one more observation, on a set of representer points; batched over GP
hyperparameter samples and candidates.

Pieces (used by :mod:`mfbo.strategies.fabolas`; shapes: ``S`` hyperparameter samples, ``N``
representer points, ``C`` candidates):

- :func:`log_expected_improvement`: ``log EI`` for minimisation, stable far into the tail; the
  density the representer points are drawn from.
- :func:`sample_representers`: ``N`` points per sample by an affine-invariant ensemble
  ("stretch move", Goodman & Weare 2010) MCMC on a log density, ``N`` walkers per sample, all
  samples advanced as one batch (RoBO runs emcee once per sample with the same move: 50 walkers,
  20 steps, uniform start).
- :func:`information_gain`: ``H[p_min] - E_y[H[p_min | y]]``, the innovation of Hennig & Schuler.

p_min on the representers ``z_1..z_N`` (drawn from a density ``b``, ``λ_i = log b(z_i)``) comes
from EP (:func:`mfbo.acquisition.epmgp.pmin_ep`), and its entropy relative to the uniform measure
is ``H = -Σ_i P_i (log P_i + λ_i)`` (the ``λ`` term undoes the non-uniform discretisation).

An observation ``y`` at a candidate ``x`` with latent posterior variance ``v_f``, noise ``σ_n²``
and posterior cross-covariance ``σ = Cov(f(z), f(x)) (N,)`` moves the joint posterior at the
representers to ``μ + σ ω / √v`` and ``Σ - σσᵀ / v``, ``v = v_f + σ_n²``, ``ω ~ N(0, 1)``.
Hennig & Schuler (and RoBO) predict the new ``log P`` by a Taylor expansion of ``log Z_k`` (the
unnormalised EP p_min) to first order in ``Σ`` and second order in ``μ``, the quadratic term
averaged over ``ω``. For EP's Gaussian form of ``Z_k`` (sites fixed), ``∂Z/∂Σ = ½ ∂²Z/∂μ∂μᵀ``,
so ``∂ log Z/∂Σ = ½ (g gᵀ + H)`` with ``g = ∇_μ log Z_k`` and ``H`` its Hessian, and the
expansion collapses to::

    log P_k(ω) = log P_k - (g_kᵀσ)² / (2 v) + (g_kᵀσ) ω / √v  + (terms equal for all k)

renormalised over ``k``: the ``H`` (``-A`` in EPMGP) terms cancel exactly. This is the same
prediction as RoBO's ``dlogPdSigma``/``dlogPdMudMu`` expression (without its element-wise
``Zm * Zm`` where the normalisation needs an outer product), at ``O(N)`` per candidate and sample
after one ``O(N²)`` product instead of ``O(N³)``. ``ω`` runs over ``n_innovations`` quantiles
``Φ^{-1}(i / (n + 1))`` (RoBO: 400). The information gain is zero where ``σ = 0`` (a point whose
value is already certain, or uncorrelated with the minimum).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import erfcx, ndtri

__all__ = ["entropy", "information_gain", "log_expected_improvement", "sample_representers"]


def log_expected_improvement(mean: np.ndarray, var: np.ndarray, best: np.ndarray | float) -> np.ndarray:
    """``log E[max(best - f, 0)]`` for ``f ~ N(mean, var)`` (minimisation), any broadcastable
    shapes. ``EI = σ h(u)``, ``u = (best - mean) / σ``, ``h(u) = φ(u) + u Φ(u)
    = φ(u) (1 + u √(π/2) erfcx(-u/√2))`` (the cancellation in ``1 + ...`` ≈ ``1/u²`` costs
    ``log10 u²`` digits); for ``u < -30`` the asymptotic series
    ``h(u) ≈ φ(u) / u² (1 - 3/u² + 15/u⁴ - 105/u⁶)`` (relative error < 2e-9)."""
    sd = np.sqrt(np.maximum(var, 1e-300))
    u = (np.asarray(best) - mean) / sd
    log_phi = -0.5 * u * u - 0.5 * math.log(2 * math.pi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inner = np.log1p(u * math.sqrt(math.pi / 2) * erfcx(-u / math.sqrt(2)))
        u2 = u * u
        tail = -np.log(u2) + np.log1p(-3.0 / u2 + 15.0 / (u2 * u2) - 105.0 / (u2 * u2 * u2))
    return np.log(sd) + log_phi + np.where(u < -30.0, tail, inner)


def sample_representers(log_density: Callable[[np.ndarray], np.ndarray], S: int, N: int, d: int, steps: int, rng: np.random.Generator, a: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """``N`` walkers per sample on ``[0, 1]^d``, uniform start, ``steps`` stretch moves of each
    half of the ensemble against the other half (Goodman & Weare 2010, scale ``a = 2``).

    Args:
        log_density: ``(S, m, d) -> (S, m)``, sample ``s``'s log density at its own points;
            ``-inf`` outside the cube is applied here.
    Returns:
        the walkers' final positions ``(S, N, d)`` and their log densities ``(S, N)``.
    """
    def logp(x: np.ndarray) -> np.ndarray:
        inside = ((x >= 0.0) & (x <= 1.0)).all(axis=-1)
        out = np.full(x.shape[:2], -np.inf)
        if inside.any():
            out = np.where(inside, log_density(np.clip(x, 0.0, 1.0)), -np.inf)
        return out

    x = rng.uniform(size=(S, N, d))
    lp = logp(x)
    halves = (np.arange(N) < N // 2, np.arange(N) >= N // 2)
    for _ in range(steps):
        for move, other in (halves, halves[::-1]):
            mine, theirs = x[:, move], x[:, other]
            z = ((a - 1.0) * rng.uniform(size=mine.shape[:2]) + 1.0) ** 2 / a
            pick = rng.integers(theirs.shape[1], size=mine.shape[:2])
            partner = np.take_along_axis(theirs, pick[..., None], axis=1)
            proposal = partner + z[..., None] * (mine - partner)
            lp_new = logp(proposal)
            with np.errstate(invalid="ignore"):
                accept = np.log(rng.uniform(size=z.shape)) < (d - 1) * np.log(z) + lp_new - lp[:, move]
            x[:, move] = np.where(accept[..., None], proposal, mine)
            lp[:, move] = np.where(accept, lp_new, lp[:, move])
    return x, lp


def entropy(log_p: np.ndarray, lmb: np.ndarray) -> np.ndarray:
    """``-Σ_k P_k (log P_k + λ_k)`` over the last axis."""
    return -(np.exp(log_p) * (log_p + lmb)).sum(axis=-1)


def information_gain(log_p: np.ndarray, grad: np.ndarray, lmb: np.ndarray, sigma: np.ndarray, v: np.ndarray, n_innovations: int = 400, chunk: int = 2_000_000) -> np.ndarray:
    """Expected entropy reduction of p_min per candidate and sample.

    Args:
        log_p: ``log p_min (S, N)``; grad: ``∇_μ log Z_k (S, N, N)`` (:func:`pmin_ep`);
        lmb: ``log b (S, N)`` at the representers; sigma: ``Cov(f(z), f(x)) (C, S, N)``;
        v: predictive variance of the observation, noise included, ``(C, S)``.
    Returns:
        ``(C, S)``.
    """
    omega = ndtri(np.arange(1, n_innovations + 1) / (n_innovations + 1.0))  # (W,)
    h0 = entropy(log_p, lmb)  # (S,)
    a = np.einsum("skn,csn->csk", grad, sigma) / np.sqrt(v)[..., None]  # (C, S, N)
    base = log_p[None] - 0.5 * a * a  # (C, S, N)
    C, S, N = a.shape
    out = np.empty((C, S))
    step = max(1, chunk // (S * N * n_innovations))
    for i in range(0, C, step):
        out[i : i + step] = h0[None] - _mean_entropy(base[i : i + step], a[i : i + step], omega, lmb)
    return out


def _mean_entropy(base: np.ndarray, a: np.ndarray, omega: np.ndarray, lmb: np.ndarray) -> np.ndarray:
    """``mean_ω H[softmax(u)]`` with ``u = base + a ω`` (``(c, S, N)`` each, ``ω (W,)``), by
    ``H = log Σ e^{u'} - Σ e^{u'} (u' + λ) / Σ e^{u'}``, ``u' = u - max u``: one ``exp`` per
    element and reductions over the contiguous last axis; returns ``(c, S)``."""
    u = a[:, :, None, :] * omega[None, None, :, None]  # (c, S, W, N)
    u += base[:, :, None, :]
    u -= u.max(axis=-1, keepdims=True)
    e = np.exp(u)
    Z = e.sum(axis=-1)
    weighted = np.einsum("cswn,cswn->csw", e, u) + np.einsum("cswn,sn->csw", e, lmb)
    return (np.log(Z) - weighted / Z).mean(axis=-1)

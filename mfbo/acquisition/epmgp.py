"""``p_min``, the probability of each of ``N`` jointly Gaussian values to be the smallest, by
expectation propagation (EPMGP), batched.

Cunningham, Hennig & Lacoste-Julien, *Gaussian Probabilities and Expectation Propagation*
(arXiv:1111.6832, 2011); used for Entropy Search by Hennig & Schuler (JMLR 2012) and in RoBO
(``robo/util/epmgp.py``), whose conventions (site parametrisation, damping floors, the
``|z| > 6`` rules, 50 sweeps, tolerance 1e-3) this follows.

For ``f ~ N(μ, Σ)`` (``N`` values) and each ``k``::

    Z_k = P(f_k <= f_l for all l != k) = ∫ N(f; μ, Σ) Π_{l != k} 1[c_lᵀ f >= 0] df,   c_l = (e_l - e_k) / √2

EP replaces each step function by a Gaussian site ``s_l exp(-p_l (c_lᵀf)² / 2 + m_l c_lᵀf)`` and
iterates moment matching over ``l`` until the sites stop moving; then, with ``R = C diag(√p)``,
``r = C m``, ``b = μ + Σ r`` and ``A = R (I + RᵀΣR)^{-1} Rᵀ``::

    log Z_k = ½ (rᵀΣr - bᵀAb - log|I + RᵀΣR|) + μᵀr + Σ_l log s_l - ½ Σ_l m_l² / p_l
    ∇_μ log Z_k = r - A b                      (sites held fixed)

``log p_min = log Z - logsumexp(log Z)``. Everything is vectorised over a batch ``B`` (the MCMC
hyperparameter samples) and over ``k``: one EP step updates all ``B·N`` rank-one posteriors at
once, so the cost is ``O(sweeps · N · B N · N²)`` array work and no Python loop over ``k`` or
``B``. Where a site's cavity puts ``z < -6`` (RoBO's failure branch), ``Z_k`` is set to
``e^{-500}`` and its gradient to zero, as RoBO does after the fact.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import log_ndtr

__all__ = ["pmin_ep", "pmin_monte_carlo"]

_EPS = float(np.finfo(np.float32).eps)
_LOG_FAIL = -500.0


def _site_update(cVc, cM, p, mp):
    """One moment-matching step for a batch of sites (RoBO's ``lt_factor``): returns
    ``(dp, dmp, logS, ok)``, the damped changes of the site precision and precision-mean, the
    new log site normaliser, and False where ``z < -6``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cVnic = np.maximum(cVc / (1.0 - p * cVc), 0.0)
        cmni = cM + cVnic * (p * cM - mp)
        z = np.where(cVnic > 0, cmni / np.sqrt(cVnic), np.where(cmni > 0, np.inf, -np.inf))
        zc = np.clip(z, -6.0, 6.0)
        log_cdf = log_ndtr(zc)
        e = np.exp(-0.5 * zc * zc - 0.5 * math.log(2 * math.pi) - log_cdf)
        alpha = e / np.sqrt(cVnic)
        beta = alpha * (alpha * cVnic + cmni)
        r = beta / (1.0 - beta)
        pnew = r / cVnic
        mpnew = r * (alpha + cmni / cVnic) + alpha
        logS = log_cdf - 0.5 * (np.log(beta) - np.log(pnew) - np.log(cVnic)) + alpha * alpha * cVnic / (2.0 * beta)
    inner = (z >= -6.0) & (z <= 6.0)
    dp = np.where(inner, np.maximum(-p + _EPS, pnew - p), -p)  # z > 6: the site is removed
    dmp = np.where(inner, np.maximum(-mp + _EPS, mpnew - mp), -mp)
    return np.where(inner, dp, np.where(z > 6.0, -p, 0.0)), np.where(inner, dmp, np.where(z > 6.0, -mp, 0.0)), np.where(inner, logS, 0.0), z >= -6.0


def _sweep(V: np.ndarray, M: np.ndarray, p: np.ndarray, mp: np.ndarray, logS: np.ndarray, kk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One EP pass over the sites ``l = 0..N-1`` of the rows ``(b, k)`` given (``kk``: each
    row's ``k``), updating ``V (R, N, N)``, ``M (R, N)`` and the sites in place; returns the
    summed site changes ``(R,)`` and the rows that failed ``(R,)``."""
    R, N = M.shape
    rows = np.arange(R)
    Vt = torch.from_numpy(V)
    diff, failed = np.zeros(R), np.zeros(R, bool)
    for l in range(N):
        use = kk != l
        Vc = (V[:, :, l] - V[rows, :, kk]) / math.sqrt(2.0)  # (R, N)
        cVc = (V[:, l, l] - 2.0 * V[rows, kk, l] + V[rows, kk, kk]) / 2.0
        cM = (M[:, l] - M[rows, kk]) / math.sqrt(2.0)
        dp, dmp, ls, ok = _site_update(cVc, cM, p[:, l], mp[:, l])
        failed |= use & ~ok
        use &= ok
        dp, dmp = np.where(use, dp, 0.0), np.where(use, dmp, 0.0)
        coef = dp / (1.0 + dp * cVc)
        Vt.baddbmm_(torch.from_numpy(Vc[:, :, None]), torch.from_numpy((-coef[:, None] * Vc)[:, None, :]))  # V -= coef Vc Vcᵀ
        M += ((dmp - cM * dp) / (1.0 + dp * cVc))[:, None] * Vc
        p[:, l] += dp
        mp[:, l] += dmp
        logS[:, l] = np.where(use, ls, logS[:, l])
        diff += np.abs(np.maximum(dmp, dp))
    return diff, failed


def _ep_sweeps(mu: np.ndarray, Sigma: np.ndarray, max_sweeps: int, tol: float):
    """Run EP for every row ``(b, k)`` until its sites move less than ``tol`` in a sweep (only
    the rows still moving are swept); returns ``p, mp, logS (B N, N)`` and the failures."""
    B, N = mu.shape
    kk = np.tile(np.arange(N), B)
    M, V = np.repeat(mu, N, axis=0), np.repeat(Sigma, N, axis=0)  # (R, N), (R, N, N)
    p, mp, logS = np.zeros_like(M), np.zeros_like(M), np.zeros_like(M)
    active, failed = np.ones(len(kk), bool), np.zeros(len(kk), bool)
    for _ in range(max_sweeps):
        idx = np.flatnonzero(active)
        sub = [V[idx], M[idx], p[idx], mp[idx], logS[idx]]
        diff, fail = _sweep(*sub, kk[idx])
        V[idx], M[idx], p[idx], mp[idx], logS[idx] = sub
        failed[idx] |= fail
        active[idx] = ~fail & (diff >= tol)
        if not active.any():
            break
    return p, mp, logS, failed


def pmin_ep(mu: np.ndarray, Sigma: np.ndarray, *, max_sweeps: int = 50, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """EP estimate of ``log p_min`` for ``mu (B, N)``, ``Sigma (B, N, N)``.

    Returns:
        ``log_p (B, N)`` (normalised over ``N``) and ``grad (B, N, N)`` with
        ``grad[b, k] = ∇_μ log Z_k`` (unnormalised ``Z``), which
        :func:`mfbo.acquisition.entropy_search.information_gain` needs.
    """
    mu, Sigma = np.atleast_2d(np.asarray(mu, float)), np.asarray(Sigma, float)
    if Sigma.ndim == 2:
        Sigma = Sigma[None]
    B, N = mu.shape
    p, mp, logS, failed = _ep_sweeps(mu, Sigma, max_sweeps, tol)
    k = np.tile(np.arange(N), B)
    C = (np.eye(N)[None, :, :] - np.eye(N)[k][:, :, None]) / math.sqrt(2.0)  # (R, N, N): column l = c_l, column k = 0
    S_rep, mu_rep = np.repeat(Sigma, N, axis=0), np.repeat(mu, N, axis=0)
    Rm = C * np.sqrt(p)[:, None, :]
    r = np.einsum("ril,rl->ri", C, mp)
    IRSR = np.eye(N)[None] + Rm.transpose(0, 2, 1) @ S_rep @ Rm
    L = np.linalg.cholesky(IRSR + 1e-10 * np.eye(N)[None])
    A = Rm @ np.linalg.solve(IRSR, Rm.transpose(0, 2, 1))
    A = 0.5 * (A + A.transpose(0, 2, 1))
    b = mu_rep + np.einsum("rij,rj->ri", S_rep, r)
    Ab = np.einsum("rij,rj->ri", A, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        mpm = np.where(p > 0, mp * mp / np.where(p > 0, p, 1.0), 0.0).sum(-1)
    log_Z = (0.5 * (np.einsum("ri,rij,rj->r", r, S_rep, r) - (b * Ab).sum(-1) - 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1))
             + (mu_rep * r).sum(-1) + logS.sum(-1) - 0.5 * mpm)
    grad = r - Ab
    log_Z = np.where(failed | ~np.isfinite(log_Z), _LOG_FAIL, log_Z).reshape(B, N)
    grad = np.where(failed[:, None], 0.0, grad).reshape(B, N, N)
    top = log_Z.max(axis=1, keepdims=True)
    log_p = log_Z - (top + np.log(np.exp(log_Z - top).sum(axis=1, keepdims=True)))
    return log_p, grad


def pmin_monte_carlo(mu: np.ndarray, Sigma: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``p_min (N,)`` of ``N(mu (N,), Sigma (N, N))`` from ``n`` joint draws (the check of
    :func:`pmin_ep`)."""
    N = len(mu)
    L = np.linalg.cholesky(Sigma + 1e-10 * np.eye(N))
    f = mu[None] + rng.standard_normal((n, N)) @ L.T
    return np.bincount(f.argmin(axis=1), minlength=N) / n

"""FABOLAS's GP over ``(x, s̃)``: a Matérn-5/2 product kernel times a Bayesian-linear-regression
kernel on the data-subset fraction, hyperparameters marginalised by MCMC.

Klein, Falkner, Bartels, Hennig & Hutter, *Fast Bayesian Optimization of Machine Learning
Hyperparameters on Large Datasets*, AISTATS 2017, Sec. 3.1 and 3.4; the authors' code is RoBO
(``robo/models/fabolas_gp.py``, ``robo/priors/env_priors.py``). The strategy that uses it is
:mod:`mfbo.strategies.fabolas`, whose docstring lists the deviations.

Kernel, for ``x`` in the unit cube (``d`` columns) and the encoded subset ``s̃ in [0, 1]``::

    k((x, s̃), (x', s̃')) = θ0 · Π_d m52(|x_d - x'_d| / ℓ_d) · φ(s̃)ᵀ diag(σ_1, σ_2) φ(s̃')
    m52(r) = (1 + √5 r + 5 r² / 3) exp(-√5 r)

with the basis ``φ(s̃) = (1, (1 - s̃)²)`` for the loss and ``(1, s̃)`` for the cost
(:data:`LOSS_BASIS`, :data:`COST_BASIS`). The second factor is the covariance of the Bayesian
linear model ``f(s̃) = wᵀ φ(s̃)``, ``w ~ N(0, diag σ)``: the loss is modelled as falling towards
``s̃ = 1`` like ``(1 - s̃)²`` and the log cost as linear in ``log s``.

Hyperparameters (all in log space), the vector ``θ = (log θ0, log ℓ_1², ..., log ℓ_d²,
log σ_1, log σ_2, log σ_n²)`` of size ``P = d + 4``, with priors (RoBO's ``EnvPrior``):

- ``log θ0 ~ N(0, 1)`` (log-normal amplitude, on standardised targets);
- ``log ℓ_d² ~ U[-10, 2]`` (top-hat);
- ``log σ_1, log σ_2 ~ N(0, 1)``;
- noise variance ``σ_n²``: horseshoe with scale 0.001, ``log p = log log(1 + 3 (0.001 / σ_n²)²)``.

MCMC: emcee's affine-invariant ensemble sampler with ``n_hypers`` walkers, ``burnin`` steps the
first time and ``chain_length`` steps on every refit, each refit starting from the walkers'
last positions; the samples are the walkers' final positions (RoBO's ``GaussianProcessMCMC``).
All ``S`` samples share the training inputs, so the Gram matrices and their Cholesky factors
are computed as one ``S x n x n`` batch (``torch.linalg.cholesky_ex``; a sample whose matrix is
not positive definite gets log-likelihood ``-inf``), and the factors are cached for prediction.

Targets are standardised (``(y - mean) / std``) before fitting, and predictions are returned on
the original scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["COST_BASIS", "LOSS_BASIS", "MarginalisedGP", "blr_kernel", "log_prior", "matern52_from_distances", "matern52_product", "sample_prior", "subset_decoding", "subset_encoding"]

DTYPE = torch.double
Basis = Callable[[np.ndarray], np.ndarray]


def _loss_basis(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    return np.stack([np.ones_like(s), (1.0 - s) ** 2], axis=-1)


def _cost_basis(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    return np.stack([np.ones_like(s), s], axis=-1)


#: ``φ(s̃) = (1, (1 - s̃)²)``: ``(...,) -> (..., 2)``, the loss model's basis.
LOSS_BASIS: Basis = _loss_basis
#: ``φ_c(s̃) = (1, s̃)``: ``(...,) -> (..., 2)``, the cost model's basis.
COST_BASIS: Basis = _cost_basis


def subset_encoding(s: np.ndarray | float, s_min: float, s_max: float) -> np.ndarray:
    """``s̃ = (log2 s - log2 s_min) / (log2 s_max - log2 s_min)``: 0 at ``s_min``, 1 at ``s_max``."""
    return (np.log2(s) - math.log2(s_min)) / (math.log2(s_max) - math.log2(s_min))


def subset_decoding(st: np.ndarray | float, s_min: float, s_max: float) -> np.ndarray:
    """The inverse of :func:`subset_encoding`."""
    return np.exp2(np.asarray(st) * (math.log2(s_max) - math.log2(s_min)) + math.log2(s_min))


def matern52_product(X1: torch.Tensor, X2: torch.Tensor, log_ls2: torch.Tensor) -> torch.Tensor:
    """``Π_d m52(|x_d - x'_d| / ℓ_d)`` for ``X1 (n1, d)`` or ``(S, n1, d)``, ``X2`` likewise, and
    log squared length scales ``log_ls2 (S, d)``; returns ``(S, n1, n2)``."""
    return matern52_from_distances((X1.transpose(-1, -2)[..., :, :, None] - X2.transpose(-1, -2)[..., :, None, :]).abs(), log_ls2)


def matern52_from_distances(dist: torch.Tensor, log_ls2: torch.Tensor) -> torch.Tensor:
    """:func:`matern52_product` from the per-dimension distances ``dist (d, n1, n2)`` or
    ``(S, d, n1, n2)`` (a loop over the ``d`` dimensions of contiguous ``(S, n1, n2)`` arrays,
    the fastest layout)."""
    inv_ls = math.sqrt(5.0) * torch.exp(-0.5 * log_ls2)  # (S, d)
    out = None
    for j in range(dist.shape[-3]):
        r = dist.select(-3, j) * inv_ls[:, j, None, None]
        factor = (1.0 + r + r * r / 3.0) * torch.exp(-r)
        out = factor if out is None else out * factor
    return out


def blr_kernel(phi1: torch.Tensor, phi2: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """``φ(s̃)ᵀ diag(exp log_sigma) φ(s̃')`` for bases ``phi1 (n1, b)`` or ``(S, n1, b)``,
    ``phi2`` likewise, and ``log_sigma (S, b)``; returns ``(S, n1, n2)`` (positive
    semi-definite, rank ``b``)."""
    return (phi1 * torch.exp(log_sigma)[:, None, :]) @ phi2.transpose(-1, -2)


def log_prior(theta: np.ndarray, d: int) -> np.ndarray:
    """Log prior density (up to a constant) of ``theta (W, d + 4)``; ``-inf`` outside the top-hat."""
    theta = np.atleast_2d(theta)
    lp = -0.5 * theta[:, 0] ** 2  # log θ0 ~ N(0, 1)
    ls = theta[:, 1 : d + 1]
    lp = lp + np.where(((ls < -10.0) | (ls > 2.0)).any(axis=1), -np.inf, 0.0)
    lp = lp - 0.5 * (theta[:, d + 1 : d + 3] ** 2).sum(axis=1)  # log σ_1, log σ_2 ~ N(0, 1)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        lp = lp + np.log(np.log1p(3.0 * (0.001 / np.exp(theta[:, -1])) ** 2))  # horseshoe on σ_n²
    return np.where(np.isnan(lp), -np.inf, lp)  # -inf (top-hat) + inf (zero noise): outside the support


def sample_prior(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """``n`` draws from :func:`log_prior`'s distribution, ``(n, d + 4)`` (the walkers' start)."""
    theta = np.empty((n, d + 4))
    theta[:, 0] = rng.normal(size=n)
    theta[:, 1 : d + 1] = rng.uniform(-10.0, 2.0, size=(n, d))
    theta[:, d + 1 : d + 3] = rng.normal(size=(n, 2))
    lam = np.abs(rng.standard_cauchy(size=n))  # horseshoe: σ_n ~ |N(0, (λ·0.001)²)|, λ half-Cauchy
    theta[:, -1] = np.log(np.abs(rng.normal(size=n) * lam * 0.001) + 1e-300)
    return theta


@dataclass
class _Fit:
    """What one refit leaves behind: the samples and their cached factors."""

    theta: torch.Tensor  # (S, P)
    L: torch.Tensor  # (S, n, n) Cholesky factors of K + σ_n² I
    alpha: torch.Tensor  # (S, n)  (K + σ_n² I)^{-1} y_std


class MarginalisedGP:
    """A GP on ``(x, s̃)`` with :func:`matern52_product` · :func:`blr_kernel`, hyperparameters
    marginalised by MCMC; every prediction is per hyperparameter sample (leading ``S`` axis),
    and callers average what they compute from it (the acquisition, the incumbent's mean).

    Args:
        basis: ``φ``, :data:`LOSS_BASIS` or :data:`COST_BASIS`.
        d: number of configuration columns.
        n_hypers: MCMC walkers = hyperparameter samples ``S``, raised to ``2 P`` (emcee's
            minimum for its ensemble move; RoBO raises it to ``3 (P - 1)``) where smaller.
        burnin: steps of the first chain (RoBO: 100).
        chain_length: steps of every later chain (RoBO: 100).
    """

    def __init__(self, basis: Basis, d: int, *, n_hypers: int = 12, burnin: int = 100, chain_length: int = 100, jitter: float = 1e-8):
        self.basis, self.d = basis, int(d)
        self.n_hypers = max(int(n_hypers), 2 * (self.d + 4))
        self.burnin, self.chain_length, self.jitter = int(burnin), int(chain_length), float(jitter)
        self.walkers: np.ndarray | None = None  # (W, P) where the chains stand
        self._fit: _Fit | None = None

    # Data and kernel ---------------------------------------------------------------------------
    def _inputs(self, X: np.ndarray, st: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(np.asarray(X, dtype=float), dtype=DTYPE), torch.as_tensor(self.basis(np.asarray(st, dtype=float)), dtype=DTYPE)

    def kernel(self, theta: torch.Tensor, X1: torch.Tensor, P1: torch.Tensor, X2: torch.Tensor, P2: torch.Tensor) -> torch.Tensor:
        """``k`` for samples ``theta (S, P)`` between inputs ``X1 (n1, d)`` with basis rows
        ``P1 (n1, 2)`` and ``X2, P2``; ``(S, n1, n2)`` (standardised scale)."""
        d = self.d
        amplitude = torch.exp(theta[:, 0])[:, None, None]
        return amplitude * matern52_product(X1, X2, theta[:, 1 : d + 1]) * blr_kernel(P1, P2, theta[:, d + 1 : d + 3])

    def _factor(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cholesky factors ``(S, n, n)`` of ``K + (σ_n² + jitter) I`` and a bool ``(S,)`` of the
        samples whose matrix was positive definite."""
        d = self.d
        K = torch.exp(theta[:, 0])[:, None, None] * matern52_from_distances(self._dist, theta[:, 1 : d + 1]) * blr_kernel(self._P, self._P, theta[:, d + 1 : d + 3])
        noise = torch.exp(theta[:, -1]) + self.jitter
        K = K + noise[:, None, None] * torch.eye(K.shape[-1], dtype=DTYPE)
        L, info = torch.linalg.cholesky_ex(K)
        return L, info == 0

    def log_likelihood(self, theta: np.ndarray) -> np.ndarray:
        """Log marginal likelihood of the standardised targets for ``theta (W, P)``: ``(W,)``."""
        th = torch.as_tensor(np.atleast_2d(theta), dtype=DTYPE)
        L, ok = self._factor(th)
        L = torch.where(ok[:, None, None], L, torch.eye(L.shape[-1], dtype=DTYPE))
        z = torch.linalg.solve_triangular(L, self._y.expand(len(th), -1).unsqueeze(-1), upper=False).squeeze(-1)
        ll = -0.5 * (z * z).sum(-1) - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) - 0.5 * len(self._y) * math.log(2 * math.pi)
        ll = torch.where(ok & torch.isfinite(ll), ll, torch.full_like(ll, -math.inf))
        return ll.numpy()

    def _log_posterior(self, theta: np.ndarray) -> np.ndarray:
        lp = log_prior(theta, self.d)
        out = np.full(len(lp), -np.inf)
        finite = np.isfinite(lp)
        if finite.any():
            out[finite] = lp[finite] + self.log_likelihood(theta[finite])
        return out

    # Fitting -----------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, st: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """Condition on ``X (n, d)``, ``st (n,)``, ``y (n,)`` and advance the MCMC chains
        (burn-in on the first call), all randomness from ``rng``."""
        import emcee  # the ``mcmc`` extra

        y = np.asarray(y, dtype=float)
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) if y.std() > 0 else 1.0
        self._X, self._P = self._inputs(X, st)
        self._dist = (self._X.T[:, :, None] - self._X.T[:, None, :]).abs()  # (d, n, n)
        self._y = torch.as_tensor((y - self.y_mean) / self.y_std, dtype=DTYPE)
        P = self.d + 4
        sampler = emcee.EnsembleSampler(self.n_hypers, P, self._log_posterior, vectorize=True)
        sampler.random_state = np.random.RandomState(int(rng.integers(2**31 - 1))).get_state()
        start, steps = self.walkers, self.chain_length
        if start is None:
            start, steps = sample_prior(rng, self.n_hypers, self.d), self.burnin + self.chain_length
        state = sampler.run_mcmc(start, steps, skip_initial_state_check=True)
        self.walkers = np.array(state.coords)
        self._condition(torch.as_tensor(self.walkers, dtype=DTYPE))

    def _condition(self, theta: torch.Tensor) -> None:
        L, ok = self._factor(theta)
        if not bool(ok.all()):  # a walker that never left an infeasible start: add jitter
            eye = torch.eye(L.shape[-1], dtype=DTYPE)
            K = self.kernel(theta, self._X, self._P, self._X, self._P) + (torch.exp(theta[:, -1]) + 1e-6)[:, None, None] * eye
            L = torch.linalg.cholesky(K + 1e-6 * K.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye)
        alpha = torch.cholesky_solve(self._y.expand(len(theta), -1).unsqueeze(-1), L).squeeze(-1)
        self._fit = _Fit(theta=theta, L=L, alpha=alpha)

    # Prediction (original scale) -----------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """The hyperparameter samples, ``(S, P)``."""
        return self._fit.theta.numpy()

    @property
    def noise(self) -> np.ndarray:
        """Noise variance per sample, ``(S,)``, original scale."""
        return np.exp(self._fit.theta[:, -1].numpy()) * self.y_std**2

    def _cross(self, X: np.ndarray, st: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Basis rows ``(m, 2)``, ``K(q, X) (S, m, n)`` and ``V = L^{-1} K(X, q) (S, n, m)``."""
        Xq, Pq = self._inputs(X, st)
        Kq = self.kernel(self._fit.theta, Xq, Pq, self._X, self._P)
        V = torch.linalg.solve_triangular(self._fit.L, Kq.transpose(-1, -2), upper=False)
        return Pq, Kq, V

    def _prior_var(self, Pq: torch.Tensor) -> torch.Tensor:
        th = self._fit.theta  # the Matérn factor is 1 on the diagonal
        return torch.exp(th[:, 0])[:, None] * (Pq * Pq * torch.exp(th[:, self.d + 1 : self.d + 3])[:, None, :]).sum(-1)

    def predict(self, X: np.ndarray, st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent posterior mean and variance at ``X (m, d)``, ``st (m,)`` (or per sample
        ``(S, m, d)``, ``(S, m)``): two ``(S, m)``."""
        Pq, Kq, V = self._cross(X, st)
        mean = (Kq @ self._fit.alpha.unsqueeze(-1)).squeeze(-1)
        var = (self._prior_var(Pq) - (V * V).sum(-2)).clamp_min(1e-12)
        return (self.y_mean + self.y_std * mean).numpy(), (self.y_std**2 * var).numpy()

    def joint(self, Xa: np.ndarray, sa: np.ndarray, Xb: np.ndarray, sb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Posterior of the latent function at the points ``a`` (``ma``) and ``b`` (``mb``),
        each ``(m, d)`` with ``(m,)`` subsets or per sample ``(S, m, d)``, ``(S, m)``:
        mean at ``a`` ``(S, ma)``, covariance among ``a`` ``(S, ma, ma)``, cross-covariance
        ``(S, ma, mb)`` and variance at ``b`` ``(S, mb)``; original scale."""
        Xat, Pa = self._inputs(Xa, sa)
        Xbt, Pb = self._inputs(Xb, sb)
        _, Ka, Va = self._cross(Xa, sa)
        _, _, Vb = self._cross(Xb, sb)
        th = self._fit.theta
        prior_aa = self.kernel(th, Xat, Pa, Xat, Pa)
        prior_ab = self.kernel(th, Xat, Pa, Xbt, Pb)
        cov_aa = prior_aa - Va.transpose(-1, -2) @ Va
        cov_ab = prior_ab - Va.transpose(-1, -2) @ Vb
        var_b = (self._prior_var(Pb) - (Vb * Vb).sum(-2)).clamp_min(1e-12)
        mean_a = (Ka @ self._fit.alpha.unsqueeze(-1)).squeeze(-1)
        s2 = self.y_std**2
        return (self.y_mean + self.y_std * mean_a).numpy(), (s2 * cov_aa).numpy(), (s2 * cov_ab).numpy(), (s2 * var_b).numpy()

"""BOIL's learning-curve compression and the GP whose marginal likelihood learns it.

Nguyen, Schulze & Osborne, "Bayesian Optimization for Iterative Learning", NeurIPS 2020
(Sections 3.1-3.2). A learning curve ``r(1), ..., r(t)`` (a performance, larger is better; see
:mod:`mfbo.strategies.boil` for how mfbo's minimised curves become one) of a run planned for at
most ``T_max`` epochs is compressed into one score

    y(t | m0, g0) = (1 / t) * sum_{i=1..t} w_i r(i),     w_i = 1 / (1 + exp(-g0 (u_i - m0))),

with ``u_1, ..., u_{T_max}`` evenly spaced on ``[-6, 6]`` (:func:`logistic_weights`): early
epochs, where every run looks poor, weigh little; the mean over the epochs rewards stable curves
as well as good final values. ``(m0, g0)`` (midpoint in ``[-2, 3]``, growth in ``[0.5, 2]``) are
not set by hand: they are learned **jointly with the GP's hyperparameters** by maximising the
GP's log marginal likelihood, the scores being recomputed from the stored curves for every
candidate ``(m0, g0)`` (:func:`fit_compressed_gp`).

The surrogate (:class:`ProductSEGP`) is a zero-mean GP on the z-standardised scores over the
``d + 1`` inputs ``(x, s)`` (unit-cube configuration, normalised epoch ``s``) with the product
squared-exponential kernel

    k((x, s), (x', s')) = prod_j exp(-(x_j - x'_j)^2 / (2 l_j^2)) * exp(-(s - s')^2 / (2 l_s^2)),

unit signal variance (the scores are standardised) and Gaussian noise ``sigma^2``.

Differences from the authors' code (``ntienvu/BOIL``: ``bayes_opt/curve_compression.py``,
``bayes_opt/product_gaussian_process.py``), where this module follows the paper or the issue:

- The average runs over all epochs ``1..t``; the code averages from the index
  ``int((m0 + 4) t / 12)`` on, which drops the first third or more of each curve.
- No shift: the code adds 500 to a curve that is nowhere positive (its RL rewards).
- The kernel has the ``1/2`` factor and squared length-scales (``exp(-d^2 / (2 l^2))``); the code
  uses ``exp(-d^2 / l)``.
- Defaults not in the paper: one length-scale per input dimension (ARD; the code has one for all
  of ``x`` and one for ``t``), bounds ``l in [0.03, 3]`` (the code: ``[0.12, 0.39]`` for ``x``
  and ``[0.39, 0.55]`` for ``t`` in this parameterisation), and a learned noise variance
  ``sigma^2 in [1e-6, 1]`` (the code fixes ``5e-4``). The exact log determinant is used at every
  size (the code's takes a random 200-point subset above 200 points). The search: the
  negative log marginal likelihood of :data:`N_RANDOM_STARTS` random parameter vectors and the
  previous optimum, then L-BFGS-B (exact gradients by autograd, through the scores and their
  standardisation) from the best :data:`N_POLISHED` (the code: 20 random tries, one L-BFGS-B).

Shapes: ``X`` is ``(n, d + 1)``; curves are padded into ``R (n, T_max)`` with ``lengths (n,)``
(row ``j`` uses ``R[j, :lengths[j]]``); all tensors float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..lbfgsb import minimize_lbfgsb

__all__ = [
    "DEFAULT_LENGTHSCALE_T",
    "DEFAULT_LENGTHSCALE_X",
    "DEFAULT_NOISE",
    "G0_BOUNDS",
    "M0_BOUNDS",
    "CompressionFit",
    "ProductSEGP",
    "compress",
    "fit_compressed_gp",
    "fixed_fit",
    "logistic_weights",
    "pad_curves",
]

DTYPE = torch.double
M0_BOUNDS = (-2.0, 3.0)
G0_BOUNDS = (0.5, 2.0)
LENGTHSCALE_BOUNDS = (0.03, 3.0)
NOISE_BOUNDS = (1e-6, 1.0)
#: The authors' code's initial hyperparameters in this kernel's parameterisation
#: (``exp(-d^2 / 0.02)`` for ``x`` and ``exp(-d^2 / 0.2)`` for ``t``; noise ``5e-4``; m0 = 0, g0 = 1).
DEFAULT_LENGTHSCALE_X = 0.1
DEFAULT_LENGTHSCALE_T = math.sqrt(0.1)
DEFAULT_NOISE = 5e-4
DEFAULT_M0, DEFAULT_G0 = 0.0, 1.0
N_RANDOM_STARTS = 20
N_POLISHED = 2
JITTER = 1e-9


def logistic_weights(t_max: int, m0: Tensor | float, g0: Tensor | float) -> Tensor:
    """``w (T_max,)``: ``w_i = 1 / (1 + exp(-g0 (u_i - m0)))`` on ``u = linspace(-6, 6, T_max)``
    (differentiable in ``m0`` and ``g0`` when they are tensors)."""
    u = torch.linspace(-6.0, 6.0, int(t_max), dtype=DTYPE)
    return torch.sigmoid(torch.as_tensor(g0, dtype=DTYPE) * (u - torch.as_tensor(m0, dtype=DTYPE)))


def pad_curves(curves: Sequence[Sequence[float]], t_max: int) -> tuple[Tensor, Tensor]:
    """``(R (n, T_max), lengths (n,))``: curves (at most ``T_max`` long, at least 1) padded with zeros."""
    R = torch.zeros(len(curves), int(t_max), dtype=DTYPE)
    lengths = torch.zeros(len(curves), dtype=DTYPE)
    for j, curve in enumerate(curves):
        values = torch.as_tensor(np.asarray(curve, dtype=float)[: int(t_max)], dtype=DTYPE)
        if values.numel() == 0:
            raise ValueError(f"pad_curves: curve {j} is empty; every curve needs at least one epoch")
        R[j, : values.numel()] = values
        lengths[j] = values.numel()
    return R, lengths


def compress(R: Tensor, lengths: Tensor, m0: Tensor | float, g0: Tensor | float) -> Tensor:
    """Scores ``y (n,)``: ``y_j = mean_{i <= lengths_j} w_i R[j, i]`` (module docstring)."""
    w = logistic_weights(R.shape[-1], m0, g0)
    return (R * w).sum(-1) / lengths  # the padding is zero


def _kernel(A: Tensor, B: Tensor, lengthscales: Tensor) -> Tensor:
    """Product SE kernel ``(a, b)`` between ``A (a, D)`` and ``B (b, D)``."""
    diff = (A.unsqueeze(-2) - B.unsqueeze(-3)) / lengthscales
    return torch.exp(-0.5 * diff.pow(2).sum(-1))


@dataclass
class ProductSEGP:
    """Exact GP posterior on standardised targets; ``X (n, D)``, ``y (n,)`` (standardised),
    ``lengthscales (D,)``, ``noise`` (variance); the Cholesky factor is built on creation."""

    X: Tensor
    y: Tensor
    lengthscales: Tensor
    noise: float

    def __post_init__(self) -> None:
        self.K = _kernel(self.X, self.X, self.lengthscales) + self.noise * torch.eye(len(self.X), dtype=DTYPE)
        self.L = _cholesky(self.K)
        self.alpha = torch.cholesky_solve(self.y.reshape(-1, 1), self.L).reshape(-1)

    def posterior(self, Z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent mean and variance at ``Z (..., D)``, each of shape ``(...)``; differentiable in ``Z``."""
        flat = Z.reshape(-1, Z.shape[-1])
        Ks = _kernel(flat, self.X, self.lengthscales)  # (b, n)
        mean = Ks @ self.alpha
        v = torch.linalg.solve_triangular(self.L, Ks.T, upper=False)
        var = (1.0 - v.pow(2).sum(0)).clamp_min(1e-12)
        return mean.reshape(Z.shape[:-1]), var.reshape(Z.shape[:-1])

    def variance(self, Z: Tensor) -> Tensor:
        return self.posterior(Z)[1]

    def log_condition_number(self, extra: Tensor | None = None) -> float:
        """``log cond(K)`` of the noisy covariance matrix, with the rows ``extra (k, D)`` added."""
        K = self._covariance(extra)
        eig = torch.linalg.eigvalsh(K)
        return float(torch.log(eig[-1]) - torch.log(eig[0].clamp_min(1e-300)))

    def log_condition_exceeds(self, threshold: float, extra: Tensor | None = None) -> bool:
        """Whether ``log cond(K)`` (with ``extra``) exceeds ``threshold``. The eigenvalues are only
        computed when the bound ``cond(K) <= max_i sum_j |K_ij| / sigma^2`` (Gershgorin for the
        largest eigenvalue; the smallest is at least the noise variance) does not settle it."""
        K = self._covariance(extra)
        if math.log(float(K.abs().sum(-1).max())) - math.log(self.noise) <= threshold:
            return False
        eig = torch.linalg.eigvalsh(K)
        return float(torch.log(eig[-1]) - torch.log(eig[0].clamp_min(1e-300))) > threshold

    def _covariance(self, extra: Tensor | None) -> Tensor:
        X = self.X if extra is None else torch.cat([self.X, extra])
        return _kernel(X, X, self.lengthscales) + self.noise * torch.eye(len(X), dtype=DTYPE)


def _cholesky(K: Tensor) -> Tensor:
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        L = torch.linalg.cholesky(K + JITTER * K.diagonal().mean() * torch.eye(len(K), dtype=DTYPE))
    return L


@dataclass
class CompressionFit:
    """The jointly fitted ``(m0, g0)`` and GP hyperparameters, and the GP they give."""

    m0: float
    g0: float
    lengthscales: Tensor
    noise: float
    nll: float
    gp: ProductSEGP
    y_mean: float
    y_std: float

    def vector(self) -> np.ndarray:
        """The parameter vector of :func:`fit_compressed_gp` (a warm start for the next fit)."""
        return np.concatenate([np.log(self.lengthscales.numpy()), [math.log(self.noise), self.m0, self.g0]])


def _standardise(y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    mean, std = y.mean(), y.std(unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return (y - mean) / std, mean, std


def _negative_mll(theta: Tensor, X: Tensor, R: Tensor, lengths: Tensor) -> Tensor:
    """``-log p(z | X, theta)`` with ``theta = (log l (D), log sigma^2, m0, g0)`` and ``z`` the
    standardised scores of the curves under ``(m0, g0)``."""
    D = X.shape[-1]
    lengthscales, noise = theta[:D].exp(), theta[D].exp()
    z, _, _ = _standardise(compress(R, lengths, theta[D + 1], theta[D + 2]))
    K = _kernel(X, X, lengthscales) + noise * torch.eye(len(X), dtype=DTYPE)
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        return torch.tensor(1e10, dtype=DTYPE) + 0.0 * theta.sum()
    a = torch.cholesky_solve(z.reshape(-1, 1), L).reshape(-1)
    return 0.5 * (z @ a) + L.diagonal().log().sum() + 0.5 * len(z) * math.log(2 * math.pi)


def _bounds(D: int) -> list[tuple[float, float]]:
    lo, hi = (math.log(b) for b in LENGTHSCALE_BOUNDS)
    return [(lo, hi)] * D + [tuple(math.log(b) for b in NOISE_BOUNDS), M0_BOUNDS, G0_BOUNDS]


def _polish(theta0: np.ndarray, X: Tensor, R: Tensor, lengths: Tensor, maxiter: int) -> tuple[np.ndarray, float]:
    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.as_tensor(v, dtype=DTYPE).requires_grad_(True)
        loss = _negative_mll(theta, X, R, lengths)
        (grad,) = torch.autograd.grad(loss, theta)
        return float(loss.detach()), np.nan_to_num(grad.numpy().astype(np.float64))

    res = minimize_lbfgsb(fun, theta0, _bounds(X.shape[-1]), maxiter)
    return res.x, float(res.fun)


def fit_compressed_gp(
    X: Tensor, R: Tensor, lengths: Tensor, rng: np.random.Generator, previous: np.ndarray | None = None,
    *, n_random: int = N_RANDOM_STARTS, n_polished: int = N_POLISHED, maxiter: int = 100,
) -> CompressionFit:
    """Maximise the log marginal likelihood jointly over the length-scales, the noise and
    ``(m0, g0)``; the scores are recomputed from ``R``/``lengths`` for every candidate.

    Starts: ``n_random`` vectors drawn uniformly in the bounds (log scale for the length-scales
    and the noise) from ``rng``, plus ``previous`` (the last fit's :meth:`CompressionFit.vector`,
    or the authors' code's defaults); L-BFGS-B from the ``n_polished`` best."""
    D = X.shape[-1]
    bounds = np.array(_bounds(D))
    default = np.array([math.log(DEFAULT_LENGTHSCALE_X)] * (D - 1) + [math.log(DEFAULT_LENGTHSCALE_T), math.log(DEFAULT_NOISE), DEFAULT_M0, DEFAULT_G0])
    starts = [np.clip(previous if previous is not None else default, bounds[:, 0], bounds[:, 1])]
    starts += list(rng.uniform(bounds[:, 0], bounds[:, 1], size=(n_random, len(bounds))))
    with torch.no_grad():
        scores = [float(_negative_mll(torch.as_tensor(s, dtype=DTYPE), X, R, lengths)) for s in starts]
    best_theta, best_nll = None, math.inf
    for i in np.argsort(scores, kind="stable")[:n_polished]:
        theta, nll = _polish(starts[i], X, R, lengths, maxiter)
        if nll < best_nll:
            best_theta, best_nll = theta, nll
    return _fit_from_vector(best_theta, best_nll, X, R, lengths)


def _fit_from_vector(theta: np.ndarray, nll: float, X: Tensor, R: Tensor, lengths: Tensor) -> CompressionFit:
    D = X.shape[-1]
    lengthscales = torch.as_tensor(np.exp(theta[:D]), dtype=DTYPE)
    noise, m0, g0 = float(np.exp(theta[D])), float(theta[D + 1]), float(theta[D + 2])
    z, mean, std = _standardise(compress(R, lengths, m0, g0))
    gp = ProductSEGP(X, z, lengthscales, noise)
    return CompressionFit(m0, g0, lengthscales, noise, nll, gp, float(mean), float(std))


def fixed_fit(X: Tensor, R: Tensor, lengths: Tensor, vector: np.ndarray | None = None) -> CompressionFit:
    """The GP at given parameters (``vector`` as :meth:`CompressionFit.vector`; default: the
    authors' code's initial values), without optimisation."""
    D = X.shape[-1]
    if vector is None:
        vector = np.array([math.log(DEFAULT_LENGTHSCALE_X)] * (D - 1) + [math.log(DEFAULT_LENGTHSCALE_T), math.log(DEFAULT_NOISE), DEFAULT_M0, DEFAULT_G0])
    with torch.no_grad():
        nll = float(_negative_mll(torch.as_tensor(vector, dtype=DTYPE), X, R, lengths))
    return _fit_from_vector(np.asarray(vector, dtype=float), nll, X, R, lengths)

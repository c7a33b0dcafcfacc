r"""Cost-aware multi-fidelity knowledge gradient with an exact discrete expectation (``mf-kg``).

The value of observing ``y`` at ``(x, s)`` is the expected increase of the best posterior mean
at the **target** fidelity ``s = 1`` (the trace-aware KG idea of Wu, Toscano-Palmerin, Frazier
& Wilson, *Practical multi-fidelity Bayesian optimization for hyperparameter tuning*, UAI 2019),
per unit of evaluation cost:

.. math::

    \mathrm{KG}(x, s) = \mathbb E\big[\max_{a \in A_x} \mu_{n+1}(a, 1) \,\big|\, y(x, s)\big]
                        - \max_{a \in A_x} \mu_n(a, 1),
    \qquad \alpha(x, s) = \mathrm{KG}(x, s) / c(x, s).

The maximum over the target domain is taken over a finite set ``A_x = A ∪ {x}`` holding the
candidate itself at the target, ``(x, 1)``, as in the KGCP of Scott, Frazier & Powell (*The
correlated knowledge gradient for simulation optimization of continuous parameters using
Gaussian process regression*, SIAM J. Optim. 2011), plus a fixed set ``A`` built once per step:
the evaluated configurations (``train_X`` configurations, every fidelity) and the pending ones,
the current maximiser of the posterior mean at the target, and ``num_discrete`` scrambled Sobol
configurations, all at ``s = 1`` and passed through ``ctx.project``.

After observing ``y`` at ``c = (x, s)`` the posterior mean moves along one standard normal
``Z``: ``μ_{n+1}(a, 1) = μ_n(a, 1) + σ̃(a; c) Z`` with
``σ̃(a; c) = Σ_n((a, 1), c) / sqrt(Σ_n(c, c) + τ²)`` and ``τ²`` the observation-noise variance at ``c`` (fidelity-dependent by default, :mod:`mfbo.models.noise`).
So ``KG`` is ``E[max_i (α_i + β_i Z)] - max_i α_i`` for ``|A| + 1`` lines, which
:func:`expected_max_gain` computes exactly (Frazier, Powell & Dayanik, *A knowledge-gradient
policy for correlated normal beliefs*, INFORMS J. Comput. 2009, Algorithm 1): on the upper
envelope of the lines sorted by slope, with breakpoints ``c_k``,
``KG = Σ_k (β_{k+1} - β_k) f(-|c_k|)``, ``f(z) = z Φ(z) + φ(z)``.

Cost of one evaluation on ``b`` candidates
------------------------------------------
Everything that does not depend on the candidate is computed once per step
(:class:`_CholeskyPieces`, on the shared :class:`~mfbo.acquisition.posterior.ExactGPPosterior`):
the Cholesky factor ``L`` of ``K + τ² I`` on the training and pending inputs (``N`` rows),
``V_A = L^{-1} k(X, A)``, ``μ_n(A, 1)`` and ``K^{-1}(y - m(X))``.
Per call: one kernel evaluation of ``[X; A; (x,1); (x,s)]`` against ``[(x,s); (x,1)]``, one
triangular solve ``O(b N^2)``, ``Σ_n(A, c) = k(A, c) - V_A^T L^{-1} k(X, c)`` in ``O(b |A| N)``,
and the envelope: a pruning pass ``O(b |A| G)`` (``G = 16`` grid intervals) that keeps the few
lines that can be on it, then an exact ``O(b K^2)`` test on those ``K`` (see
:func:`expected_max_gain`). This fast path reads the exact GP's own pieces (covariance module,
mean module, Gaussian likelihood, input transform, ``Standardize`` outcome transform); any other
single-output model, or one that fails the fast path's check against ``model.posterior`` (at a
few points of ``A``), goes through :class:`_PosteriorPieces`, which asks ``model.posterior`` for
the joint covariance of ``[pending; A; (x,1); (x,s)]`` per chunk of candidates (same values,
about 3 to 5 times slower per call). The fast path, its check and the fallback are shared with
``mf-ei`` and ``mf-ucb`` (:mod:`mfbo.acquisition.posterior`); option validation is
:mod:`mfbo.acquisition.options`.

Scale: the fast path works in the model's internal (standardised) scale and multiplies ``KG``
by the ``Standardize`` scale ``σ_y`` (``KG`` is scale-equivariant); the generic path works in
the posterior's units. Either way ``KG`` is in units of ``-value`` and the acquisition
``KG / cost`` in ``-value`` per cost unit.

Optimisation: :func:`~mfbo.acquisition.optimize.optimize_joint` (Sobol raw scoring of
``raw_samples`` points, every point at every level for a discrete fidelity, then batched
L-BFGS-B from ``num_restarts`` starts). The last step's maximisers (``warm_start``) and the
posterior-mean maximiser are added as extra starts. ``q > 1``: sequential greedy, each chosen
point treated as pending.

Deviations from the papers
--------------------------
- taKG (Wu et al. 2019) values an observation by the posterior mean's maximum over the whole
  target domain and estimates it by Monte Carlo over fantasies with an inner optimisation (as
  BoTorch's ``qMultiFidelityKnowledgeGradient`` does); here the maximum runs over the finite set
  ``A ∪ {x}`` (KGCP), which makes the expectation exact and cheap. ``A`` is wider than KGCP's
  (sampled points only): it adds the posterior-mean maximiser and Sobol points.
  The price, measured by ``experiments/bench_approximations.py``
  (``experiments/results/bench_approximations.md``: the strategies' GP on ``currin``,
  ``augmented-branin`` and ``hartmann3`` after 20 and 40 evaluations at mixed fidelities, 3
  seeds, 64 random candidates) against the continuous-domain KG (the same exact computation
  over ``A``, 16384 Sobol configurations and each candidate's continuous maximisers of
  ``μ_n + σ̃ z`` at 33 values of ``z``): since both sets hold the posterior-mean maximiser
  ``x*``, the baseline is shared and KG over ``A ∪ {x}`` is a lower bound, and a loose one. On
  the candidates whose KG matters (at least 1 % of the largest), the median ratio is 0.25 and
  0.63 at ``n = 20`` in 2-D and about 0 at ``n = 40`` or in 3-D (90 % quantiles 0.01-0.87); the
  best candidate's value is 0-0.93 of the best reference value. What ``A`` misses is the small
  move of the maximiser near ``x*`` once the model is confident: 32 extra points within
  ``± 0.01`` of ``x*`` raise the median ratio to 0.31-0.95. The ranking is kept at the top,
  less so overall: Spearman's ρ of ``KG / cost`` over the candidates is 0.40-0.93 (median
  over seeds; 0.38 at worst), the finite-set argmax is the reference's in 11 of 18 fits, and
  it is worth at least 0.56 of the reference maximum (median over seeds 0.96-1.00). A uniform
  grid is no reference in this regime: 16384 Sobol configurations alone give a median 0-0.98
  of the continuous KG.
- taKG takes a *trace* of observations (all fidelities up to ``s`` at once, for learning curves)
  and batches ``q`` points jointly; here one observation ``y(x, s)`` is valued and ``q > 1`` is
  built greedily.
- Pending points are handled by the Kriging believer: the model is conditioned on its own
  posterior mean at the pending inputs, with the observation noise (no refit). The mean is
  unchanged, the covariance shrinks near them, so ``KG`` there drops and asynchronous workers
  get distinct suggestions. It is computed as the conditioning of the covariance alone (pending
  rows in the Cholesky factor, or a Schur complement on the generic path; both in
  :mod:`mfbo.acquisition.posterior`), never through ``condition_on_observations``. The pending
  configurations also join ``A`` at the target.
- For a ``FixedNoiseGaussianLikelihood`` the noise of the new (and pending) observations is the
  mean of the training noise variances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import gpytorch
import torch
from botorch.models.model import Model
from torch import Tensor

from .base import Acquisition, AcquisitionContext
from .optimize import optimize_joint, sequential_greedy
from .options import check_bool, check_int, check_q
from .posterior import ExactGPPosterior, conditioning_factor, dense, exact_or_generic, jittered_cholesky

__all__ = ["MultiFidelityKG", "KGObjective", "expected_max_gain"]

DTYPE = torch.double
#: Upper bound on the elements of one temporary of the envelope search (32 MiB in float64).
_ENVELOPE_ELEMENTS = 1 << 22
#: The envelope is resolved exactly on ``[-R, R]``; ``φ(10) < 1e-22``.
_PRUNE_RADIUS = 10.0
#: Grid intervals of the pruning test (any number keeps it exact; more prunes harder).
_PRUNE_GRID = 16
#: Points of ``A`` at which the fast path is checked against ``model.posterior`` once per step.
_CHECK_POINTS = 4
_SQRT_HALF_PI = math.sqrt(math.pi / 2)
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)


# ------------------------------------------------------------------------------------------------
# E[max_i (a_i + b_i Z)] - max_i a_i
# ------------------------------------------------------------------------------------------------
def _f_neg(u: Tensor) -> Tensor:
    """``f(-u) = -u Φ(-u) + φ(u)`` for ``u >= 0``, without cancellation:
    ``φ(u) (1 - u R(u))`` with the Mills ratio ``R(u) = Φ(-u)/φ(u) = sqrt(π/2) erfcx(u/√2)``."""
    u = u.clamp_max(1e3)  # f(-u) = 0 in float64 long before; keeps inf * 0 out
    phi = _INV_SQRT_2PI * torch.exp(-0.5 * u * u)
    return phi * (1.0 - u * _SQRT_HALF_PI * torch.special.erfcx(u / math.sqrt(2.0)))


@torch.no_grad()
def _envelope_mask(a: Tensor, b: Tensor) -> Tensor:
    """Which lines ``a_i + b_i z`` (``(B, m)``) attain the maximum on a set of positive or zero
    length: line ``i`` is the maximum exactly on ``[L_i, U_i]`` with
    ``L_i = max_{j: b_j < b_i} r_ij``, ``U_i = min_{j: b_j > b_i} r_ij``,
    ``r_ij = (a_j - a_i) / (b_i - b_j)``; among equal slopes only the largest intercept (the
    first index on exact ties) survives. ``O(B m^2)``, returns a bool ``(B, m)``."""
    db = b.unsqueeze(-1) - b.unsqueeze(-2)  # [i, j] = b_i - b_j
    da = a.unsqueeze(-2) - a.unsqueeze(-1)  # [i, j] = a_j - a_i
    r = da / torch.where(db == 0, torch.ones_like(db), db)
    lower = torch.where(db > 0, r, -torch.inf).amax(-1)
    upper = torch.where(db < 0, r, torch.inf).amin(-1)
    m = a.shape[-1]
    idx = torch.arange(m, device=a.device)
    earlier = idx.unsqueeze(-1) > idx.unsqueeze(-2)  # [i, j]: j < i
    beaten = (db == 0) & ((da > 0) | ((da == 0) & earlier))
    return (lower <= upper) & ~beaten.any(-1)


@torch.no_grad()
def _prune(a: Tensor, b: Tensor) -> Tensor:
    """Indices ``(B, K)`` of a subset of the lines ``(B, m)`` that holds every line on the upper
    envelope over ``[-R, R]`` (``R = _PRUNE_RADIUS``) and the extreme slopes; rows with fewer
    than ``K`` survivors are padded with a repeat of a survivor (a tie, dropped later).

    On a grid ``z_0 < ... < z_G`` of ``[-R, R]`` let ``j_k`` be the maximal line at ``z_k``; on
    ``[z_k, z_{k+1}]`` the envelope is at least ``max(l_{j_k}, l_{j_{k+1}})``, a two-piece
    function with its kink at ``κ_k``, so a line that exceeds the envelope anywhere in the interval
    exceeds that bound at ``z_k``, ``κ_k`` or ``z_{k+1}``, and at a grid point none exceeds it:
    testing the kinks is exact. A line on the envelope only where ``|z| > R`` is dropped; it
    changes the expectation by at most ``Δβ φ(R) / R^2``, below ``1e-24 Δβ``."""
    z = torch.linspace(-_PRUNE_RADIUS, _PRUNE_RADIUS, _PRUNE_GRID + 1, dtype=a.dtype, device=a.device)
    j = (a.unsqueeze(-1) + b.unsqueeze(-1) * z).argmax(-2)  # (B, G + 1)
    aj, bj = a.gather(-1, j), b.gather(-1, j)
    a0, b0, a1, b1 = aj[:, :-1], bj[:, :-1], aj[:, 1:], bj[:, 1:]
    gap = b1 - b0
    kink = torch.where(gap > 0, (a0 - a1) / torch.where(gap > 0, gap, torch.ones_like(gap)), z[:-1])
    kink = torch.minimum(torch.maximum(kink, z[:-1]), z[1:])  # (B, G)
    bound = torch.maximum(a0 + b0 * kink, a1 + b1 * kink)
    above = (a.unsqueeze(-1) + b.unsqueeze(-1) * kink.unsqueeze(-2) > bound.unsqueeze(-2)).any(-1)  # (B, m)
    keep = above
    keep.scatter_(-1, j, True)
    keep.scatter_(-1, b.argmax(-1, keepdim=True), True)
    keep.scatter_(-1, b.argmin(-1, keepdim=True), True)
    K = int(keep.sum(-1).max())
    idx = torch.argsort((~keep).to(torch.int8), dim=-1, stable=True)[:, :K]
    pad = ~keep.gather(-1, idx)
    return torch.where(pad, j[:, :1].expand_as(idx), idx)


def expected_max_gain(a: Tensor, b: Tensor) -> Tensor:
    r"""``E[max_i (a_i + b_i Z)] - max_i a_i`` for ``Z ~ N(0, 1)``, exactly.

    Frazier, Powell & Dayanik (2009), Algorithm 1: keep the lines on the upper envelope, sorted
    by slope ``b_(1) < ... < b_(k)``, with breakpoints ``c_j = (a_(j) - a_(j+1)) / (b_(j+1) - b_(j))``;
    then the value is ``Σ_j (b_(j+1) - b_(j)) f(-|c_j|)`` with ``f(z) = z Φ(z) + φ(z)``, a sum of
    non-negative terms. The envelope (which lines, in which order) is found without gradient,
    vectorised over the batch: :func:`_prune` keeps the few lines that can be on it
    (``O(B m G)``), :func:`_envelope_mask` tests those exactly (``O(B K^2)``). The sum is
    differentiable in ``a`` and ``b``, and its gradient is the exact one wherever the envelope
    is locally constant (almost everywhere).

    Args:
        a: intercepts, ``(..., m)``.
        b: slopes, ``(..., m)`` (any sign).

    Returns:
        ``(...)``, non-negative; ``0`` when all slopes are equal.
    """
    if a.shape != b.shape:
        raise ValueError(f"expected_max_gain: a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    batch, m = a.shape[:-1], a.shape[-1]
    a2, b2 = a.reshape(-1, m), b.reshape(-1, m)
    if m == 1 or a2.shape[0] == 0:
        return (b2.sum(-1) * 0.0).reshape(batch)
    rows = max(1, _ENVELOPE_ELEMENTS // (m * (_PRUNE_GRID + 1)))  # bounds the pruning's memory
    gains = [_expected_max_gain_rows(a2[i : i + rows], b2[i : i + rows]) for i in range(0, a2.shape[0], rows)]
    return torch.cat(gains).reshape(batch)


def _expected_max_gain_rows(a2: Tensor, b2: Tensor) -> Tensor:
    """:func:`expected_max_gain` on ``(B, m)`` rows, ``m >= 2``."""
    with torch.no_grad():
        ad, bd = a2.detach(), b2.detach()
        idx = _prune(ad, bd)  # (B, K)
        ak, bk = ad.gather(-1, idx), bd.gather(-1, idx)
        K = idx.shape[-1]
        chunk = max(1, _ENVELOPE_ELEMENTS // (K * K))
        mask = torch.cat([_envelope_mask(ak[i : i + chunk], bk[i : i + chunk]) for i in range(0, ak.shape[0], chunk)])
        # Envelope lines first, by increasing slope (their slopes are distinct).
        order = torch.argsort(torch.where(mask, bk, torch.inf), dim=-1)
        mask_s = mask.gather(-1, order)
        idx = idx.gather(-1, order)
    a_s, b_s = a2.gather(-1, idx), b2.gather(-1, idx)
    valid = mask_s[:, 1:] & mask_s[:, :-1]
    gap = b_s[:, 1:] - b_s[:, :-1]
    gap = torch.where(valid, gap, torch.ones_like(gap))  # keep the division finite off the envelope
    c = (a_s[:, :-1] - a_s[:, 1:]) / gap
    terms = torch.where(valid, gap * _f_neg(c.abs()), torch.zeros_like(gap))
    return terms.sum(-1)


# ------------------------------------------------------------------------------------------------
# The lines (a, b) for a batch of candidates: two ways to get the posterior pieces
# ------------------------------------------------------------------------------------------------
class _Pieces:
    """The posterior pieces of one step: ``lines`` maps candidates to the ``KG`` lines.

    Subclasses set ``chunk`` (candidates per internal call, bounding the ``O(chunk^2)`` blocks)
    and ``scale`` (the factor from their internal units to units of ``-value``), and implement
    ``_lines`` and ``mean``.
    """

    chunk: int = 256
    scale: float = 1.0

    def lines(self, C: Tensor, C1: Tensor) -> tuple[Tensor, Tensor]:
        """Intercepts and slopes ``(b, m + 1)`` for candidates ``C`` and their target twins ``C1``
        (both ``(b, D)``, raw inputs): ``[μ_n(A, 1), μ_n(C1)]`` and ``[σ̃(A; C), σ̃(C1; C)]``."""
        out = [self._lines(C[i : i + self.chunk], C1[i : i + self.chunk]) for i in range(0, C.shape[0], self.chunk)]
        return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])

    def _lines(self, C: Tensor, C1: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError  # abstract

    def mean(self, X: Tensor) -> Tensor:
        """Posterior mean at the inputs ``(b, 1, D) -> (b,)``, in units increasing with ``-value``."""
        raise NotImplementedError  # abstract


class _CholeskyPieces(_Pieces):
    """The lines on the fast exact-GP path: the step's :class:`~.posterior.ExactGPPosterior`
    (Cholesky factor ``L`` of the training and pending inputs, ``α``; Kriging believer) plus
    ``V_A = L^{-1} k(X_all, A)`` and ``μ_n(A, 1)``, computed once per step.

    Works in the model's internal scale; ``scale`` is the ``Standardize`` standard deviation
    (1 without outcome transform). Checked against ``model.posterior`` at ``_CHECK_POINTS``
    points of ``A`` (a ``ValueError`` when it disagrees).

    Per call on ``b`` candidates ``C`` with target twins ``C1``: one kernel call,
    ``W = L^{-1} k(X_all, [C; C1])`` ``(N, 2b)``, then ``Σ_n(A, C) = k(A, C) - V_A^T W_C``
    ``(m, b)`` and the diagonals ``Σ_n(c1, c)``, ``Σ_n(c, c)`` ``(b,)``; the slopes are those over
    ``sqrt(Σ_n(c, c) + τ²)``, the intercepts ``μ_n(A, 1)`` and ``μ_n(c1)``.

    Shapes: ``X`` training inputs ``(n, D)``, pending ``(p, D)``, ``N = n + p``; ``A`` ``(m, D)``.
    """

    supports = staticmethod(ExactGPPosterior.supports)

    def __init__(self, model: Model, A: Tensor, X_pending: Tensor | None) -> None:
        self.gp = gp = ExactGPPosterior(model, X_pending, cholesky=jittered_cholesky)
        self.model, self.scale = model, gp.scale
        with torch.no_grad():
            self.A = gp.transform(A)
            kXA = dense(model.covar_module(gp.X_all, self.A))
            self.V_A = gp.whiten(kXA)  # (N, m)
            self.mu_A = gp.mean(self.A, kXA[: gp.n].T)  # (m,)
        gp.check(A[:_CHECK_POINTS])

    def mean(self, X: Tensor) -> Tensor:
        # internal scale: an increasing affine map of the true one
        return self.gp.mean(self.gp.transform(X.reshape(-1, X.shape[-1])))

    def _lines(self, C: Tensor, C1: Tensor) -> tuple[Tensor, Tensor]:
        gp = self.gp
        N, m, b = gp.X_all.shape[0], self.A.shape[0], C.shape[0]
        Xt = gp.transform(torch.cat([C, C1]))  # [C; C1], (2b, D)
        Ct, C1t = Xt[:b], Xt[b:]
        # One kernel call (gpytorch's per-call overhead dominates at small b):
        # rows [X_all; A; C1; C] against columns [C; C1].
        with gpytorch.settings.lazily_evaluate_kernels(False):
            K = dense(self.model.covar_module(torch.cat([gp.X_all, self.A, C1t, Ct]), Xt))
        W = gp.whiten(K[:N])  # L^{-1} k(X_all, [C; C1]), (N, 2b)
        W_C, W_C1 = W[:, :b], W[:, b:]
        S_AC = K[N : N + m, :b] - self.V_A.T @ W_C  # (m, b)
        S_C1C = torch.diagonal(K[N + m : N + m + b, :b]) - (W_C1 * W_C).sum(0)
        S_CC = torch.diagonal(K[N + m + b :, :b]) - (W_C * W_C).sum(0)
        sd = torch.sqrt(S_CC.clamp_min(0.0) + gp.noise_at(Ct))
        slopes = torch.cat([S_AC.T, S_C1C.unsqueeze(-1)], -1) / sd.unsqueeze(-1)
        mu_C1 = gp.mean(C1t, K[: gp.n, b:].T)
        intercepts = torch.cat([self.mu_A.expand(b, -1), mu_C1.unsqueeze(-1)], -1)
        return intercepts, slopes


class _PosteriorPieces(_Pieces):
    """The same lines from ``model.posterior`` (any single-output model whose posterior has a
    joint covariance), in the model's output units.

    Per chunk of candidates, the joint posterior of ``[P; A; C1; C]`` with observation noise
    (``P`` the pending inputs) gives every block; the Kriging believer is the Schur complement
    on the noisy ``P`` block, ``Σ - Σ_{·P} (Σ_{PP} + τ² I)^{-1} Σ_{P·}``
    (:func:`~.posterior.conditioning_factor`), which leaves the mean unchanged. Observation
    noise sits on the diagonal only, so the off-diagonal blocks used here are noise-free and the
    ``C`` diagonal is ``Σ(c, c) + τ²`` as needed.
    """

    chunk = 64

    def __init__(self, model: Model, A: Tensor, X_pending: Tensor | None) -> None:
        self.model, self.A = model, A
        self.P = X_pending if X_pending is not None else A[:0]
        with torch.no_grad():
            self.mu_A = model.posterior(A).mean.reshape(-1)

    def mean(self, X: Tensor) -> Tensor:
        return self.model.posterior(X.reshape(-1, X.shape[-1])).mean.reshape(-1)

    def _lines(self, C: Tensor, C1: Tensor) -> tuple[Tensor, Tensor]:
        p, m, b = self.P.shape[0], self.A.shape[0], C.shape[0]
        post = self.model.posterior(torch.cat([self.P, self.A, C1, C]), observation_noise=True)
        mean, S = post.mean.reshape(-1)[p:], post.mvn.covariance_matrix
        if p:  # condition on the pending points (Kriging believer)
            V = conditioning_factor(S[:p, :p], S[:p, p:], jittered_cholesky)
            S = S[p:, p:] - V.T @ V
        iA, iC1, iC = slice(0, m), slice(m, m + b), slice(m + b, m + 2 * b)
        S_AC = S[iA, iC]
        S_C1C = torch.diagonal(S[iC1, iC])
        sd = torch.diagonal(S[iC, iC]).clamp_min(1e-12).sqrt()  # sqrt(Σ_n(c, c) + τ²)
        slopes = torch.cat([S_AC.T, S_C1C.unsqueeze(-1)], -1) / sd.unsqueeze(-1)
        intercepts = torch.cat([self.mu_A.expand(b, -1), mean[iC1].unsqueeze(-1)], -1)
        return intercepts, slopes


# ------------------------------------------------------------------------------------------------
# The acquisition
# ------------------------------------------------------------------------------------------------
@dataclass
class _StepShared:
    """What the ``q`` greedy picks of one step share: the fixed discretisation ``A`` (without
    pending configurations) and the posterior-mean maximiser ``(1, d + 1)`` at the target."""

    A: Tensor
    x_star: Tensor


class KGObjective:
    """``X (b, 1, d + 1) -> KG(X) / cost(X) (b,)``, the callable that :func:`optimize_joint`
    maximises; ``kg(X)`` gives ``KG`` alone (in units of ``-value``)."""

    def __init__(self, pieces: _Pieces, ctx: AcquisitionContext) -> None:
        self.pieces, self.ctx = pieces, ctx

    def kg(self, X: Tensor) -> Tensor:
        C = X.reshape(-1, X.shape[-1])
        a, b = self.pieces.lines(C, self.ctx.at_target(C))
        return expected_max_gain(a, b) * self.pieces.scale

    def __call__(self, X: Tensor) -> Tensor:
        return self.kg(X) / self.ctx.effort(X).reshape(-1)


class MultiFidelityKG(Acquisition):
    """Cost-aware multi-fidelity knowledge gradient at the target fidelity, exact over a
    discretisation (see the module docstring for the maths, the cost and the deviations).

    Options:
        num_discrete: Sobol configurations added to the discretisation ``A`` (besides the
            evaluated and pending configurations and the posterior-mean maximiser). Default 128.
        num_restarts: L-BFGS-B starts. Default 6.
        raw_samples: Sobol points scored to choose the starts (each at every level when the
            fidelity is discrete). Default 256.
        maxiter: L-BFGS-B iterations. Default 50.
        warm_start: add the previous step's maximisers to the candidate starts. Default True.
    """

    name = "mf-kg"
    supports_batch = True

    def __init__(
        self,
        *,
        num_discrete: int = 128,
        num_restarts: int = 6,
        raw_samples: int = 256,
        maxiter: int = 50,
        warm_start: bool = True,
    ) -> None:
        self.num_discrete = check_int(self.name, "num_discrete", num_discrete, 0)
        self.num_restarts = check_int(self.name, "num_restarts", num_restarts, 1)
        self.raw_samples = check_int(self.name, "raw_samples", raw_samples, 1)
        self.maxiter = check_int(self.name, "maxiter", maxiter, 1)
        self.warm_start = check_bool(self.name, "warm_start", warm_start)
        #: the last step's chosen points ``(q, d + 1)``, the warm starts of the next step.
        self.last_candidates: Tensor | None = None

    # -- construction of the step ------------------------------------------------------------------
    @staticmethod
    def _pieces(ctx: AcquisitionContext, A: Tensor) -> _Pieces:
        pending = ctx.X_pending.to(DTYPE) if ctx.X_pending is not None and ctx.X_pending.numel() else None
        if pending is not None:  # pending configurations are part of the discretisation too
            A = torch.unique(torch.cat([A, ctx.at_target(pending)]), dim=0)
        return exact_or_generic(
            "mf-kg", ctx.model, lambda: _CholeskyPieces(ctx.model, A, pending), lambda: _PosteriorPieces(ctx.model, A, pending)
        )

    def _shared(self, ctx: AcquisitionContext) -> _StepShared:
        """The step's fixed discretisation: evaluated configurations, Sobol configurations and the
        posterior-mean maximiser, all at the target fidelity."""
        d = ctx.dim
        parts = [ctx.at_target(ctx.train_X.to(DTYPE))]
        if self.num_discrete:
            sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=(ctx.seed + 1) % (2**31 - 1))
            parts.append(ctx.at_target(ctx.project(sobol.draw(self.num_discrete, dtype=DTYPE))))
        A = torch.unique(torch.cat(parts), dim=0)
        mean_pieces = self._pieces(replace(ctx, X_pending=None), A)
        x_star, _ = optimize_joint(
            mean_pieces.mean, ctx, num_restarts=2, raw_samples=self.raw_samples, maxiter=self.maxiter, fixed_s=1.0, extra_starts=A
        )
        return _StepShared(A=torch.unique(torch.cat([A, ctx.at_target(x_star)]), dim=0), x_star=ctx.at_target(x_star))

    def objective(self, ctx: AcquisitionContext, shared: _StepShared | None = None) -> KGObjective:
        """The step's ``KG / cost`` callable (pending points of ``ctx`` included)."""
        shared = self._shared(ctx) if shared is None else shared
        return KGObjective(self._pieces(ctx, shared.A), ctx)

    # -- proposing ---------------------------------------------------------------------------------
    def _propose_one(self, ctx: AcquisitionContext, shared: _StepShared) -> Tensor:
        starts = [shared.x_star]
        if self.warm_start and self.last_candidates is not None and self.last_candidates.shape[-1] == ctx.dim + 1:
            starts.append(self.last_candidates)
        candidate, _ = optimize_joint(
            self.objective(ctx, shared),
            ctx,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
            maxiter=self.maxiter,
            extra_starts=torch.cat(starts),
        )
        return candidate

    def propose(self, ctx: AcquisitionContext, q: int = 1) -> Tensor:
        q = check_q(self.name, q)
        shared = self._shared(ctx)
        chosen = sequential_greedy(lambda c: self._propose_one(c, shared), ctx, q)
        self.last_candidates = chosen.detach().clone()
        return chosen

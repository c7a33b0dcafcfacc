r"""Augmented expected improvement per unit cost (``mf-ei``).

Huang, Allen, Notz & Miller, *Sequential kriging optimization using multiple-fidelity
evaluations*, Struct. Multidisc. Optim. 32 (2006) 369-382, choose the next configuration and
fidelity ``(x, s)`` jointly by maximising the augmented expected improvement

.. math::

    \mathrm{AEI}(x, s) = \mathrm{EI}(x) \cdot \alpha_1(x, s) \cdot \alpha_2(x, s) \cdot \alpha_3(x, s),

with, in mfbo's conventions (the model is fitted to ``Y = -value`` and is maximised, ``s = 1``
is the target, ``μ, σ²`` are the posterior mean and variance of the latent ``f``):

- ``EI(x) = σ(x, 1) h((μ(x, 1) - T) / σ(x, 1))``, ``h(u) = φ(u) + u Φ(u)``: the expected
  improvement of the *target* over the **effective best solution**
  ``x** = argmax_{x_i evaluated} μ(x_i, 1) - c σ(x_i, 1)`` (Huang's ``argmin ŷ + c s`` for
  minimisation; ``c = 1`` by default), and ``T = μ(x**, 1)``, its posterior mean at the target.
- ``α1(x, s) = |corr(f(x, s), f(x, 1))|``, the posterior correlation between the candidate
  fidelity and the target at the same configuration: an observation at ``s`` helps the target
  only as much as it is correlated with it. A low fidelity that the model has learnt to be
  unrelated to the target gets ``α1 ≈ 0`` and is not chosen, however cheap it is.
- ``α2(x, s) = 1 - σ_ε(x, s) / sqrt(σ²(x, s) + σ_ε²(x, s))``, with ``σ_ε²`` the observation
  noise variance at ``(x, s)``: it discounts points whose posterior variance is already small
  compared with the noise (re-sampling them teaches little). ``α2 = 1`` without noise.
- ``α3(x, s) = cost(x, 1) / cost(x, s)``: improvement per unit cost relative to the target.

``α1 = α3 = 1`` at ``s = 1``, where ``AEI`` is the noisy EI of Huang et al.'s single-fidelity
SKO. The maximiser is found in log space (same argmax, no underflow):
``log AEI = log EI + log α1 + log α2 + log α3``, with ``log EI`` from BoTorch's numerically stable
``_log_ei_helper`` (Ament et al., *Unexpected improvements to expected improvement for Bayesian
optimization*, NeurIPS 2023) and ``log α2 = log σ² - log r - log(r + σ_ε)``,
``r = sqrt(σ² + σ_ε²)``, which has no cancellation when ``σ_ε ≪ σ``.

Posterior moments (:class:`~mfbo.acquisition.posterior.GPMoments`)
------------------------------------------------------------------
Each step needs the joint posterior of the pair ``[(x, s), (x, 1)]`` (and the noise at
``(x, s)``) for many ``x``, given the pending points. They come from
:func:`mfbo.acquisition.posterior.gp_moments`, shared with :mod:`.ucb`: for an exact
single-output GP with a Gaussian likelihood and at most a ``Standardize`` outcome transform
(BoTorch's ``SingleTaskGP`` family, whatever the kernel), :class:`~.posterior.ExactGPMoments`
factors ``K + σ_ε² I`` once per step (Cholesky ``L``, the pending inputs included) and computes
``Σ(a, b) = k(a, b) - (L^{-1} k(X, a))^T L^{-1} k(X, b)`` directly, with ``L^{-1}`` formed once:
one kernel call and one matrix product per batch, ``O(b n^2)``. That fast path is checked
against ``model.posterior`` once per step (at midpoints of the training inputs); any other model,
or one failing the check, goes through :class:`~.posterior.PosteriorMoments` (``model.posterior``
of the Kriging-believer model: any single-output BoTorch model with a Gaussian posterior).
Moments are in the units of ``-value``. The maths, the shapes and the fallback are in
:mod:`mfbo.acquisition.posterior`; option validation is :mod:`mfbo.acquisition.options`.

Optimisation: :func:`~mfbo.acquisition.optimize.optimize_joint` over ``(x, s)`` (continuous
``s`` or every discrete level), with ``x**`` as an extra start; ``q > 1``:
:func:`~mfbo.acquisition.optimize.sequential_greedy`.

Deviations from Huang et al. (2006)
-----------------------------------
- **Model.** Huang et al. read ``corr`` and ``σ_ε`` from their own multi-fidelity kriging model
  (lower systems plus independent Gaussian-process discrepancies); here they are read from
  whatever model ``ctx.model`` is (any kernel on the ``(x, s)`` inputs), through its posterior.
- **Continuous fidelity.** Huang et al. have finitely many systems ``l = 1..m``; with a continuous
  ``s`` every ``s ∈ [0, 1]`` is a system and ``(x, s)`` is optimised jointly. Their costs are
  constants per system; here ``α3`` uses ``ctx.cost``, which may depend on ``x``.
- **Log space.** ``log AEI`` is optimised instead of ``AEI`` (the same maximiser; numerically
  stable where ``EI`` underflows, Ament et al. 2023).
- **Absolute correlation.** ``α1`` is the *absolute* posterior correlation (Huang et al. write
  the signed ``corr``). The posterior correlation can be negative: at a configuration observed at an
  intermediate fidelity, the remaining uncertainties at fidelities on either side of it are
  anti-correlated. An anti-correlated observation informs the target as much as a correlated
  one (the target's variance drops by ``corr²`` either way), so the sign is dropped. ``|α1|`` is
  floored at ``1e-300`` so that ``log α1`` stays finite.
- **Effective best.** Taken over the configurations evaluated at *any* fidelity (each predicted
  at the target), under the same (pending-conditioned) model as ``EI``; pending configurations
  are not candidates.
- **Pending points** (asynchronous workers, ``q > 1``) are not in the paper, which is sequential:
  the model is conditioned on its own posterior mean at ``ctx.X_pending`` (the Kriging believer of
  Ginsbourger, Le Riche & Carraro, *Kriging is well-suited to parallelize optimization*, 2010);
  the mean is unchanged and the variance near pending points shrinks, so ``EI`` and ``α2`` drop
  there and workers get distinct suggestions.
- **Optimiser.** ``AEI`` is maximised by multi-start L-BFGS-B over the joint box, started from
  Sobol points and ``x**`` (:func:`~mfbo.acquisition.optimize.optimize_joint`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from botorch.acquisition.analytic import _log_ei_helper
from torch import Tensor

from .base import Acquisition, AcquisitionContext, CostFn
from .optimize import optimize_joint, sequential_greedy
from .options import check_float, check_int
from .posterior import MIN_VAR, ExactGPMoments, GPMoments, PosteriorMoments, gp_moments, kriging_believer

__all__ = [
    "MultiFidelityEI",
    "LogAugmentedEI",
    "AEIFactors",
    "effective_best",
    # re-exported from .posterior, where they live
    "GPMoments",
    "ExactGPMoments",
    "PosteriorMoments",
    "gp_moments",
    "kriging_believer",
]

#: Smallest correlation kept by ``α1`` (``log α1 ≥ -690``): finite values and gradients.
_MIN_CORR = 1e-300


# ------------------------------------------------------------------------------------------------
# The acquisition function
# ------------------------------------------------------------------------------------------------
def _target(X: Tensor) -> Tensor:
    """``X (..., d + 1)`` with the fidelity column set to the target ``1``."""
    return torch.cat([X[..., :-1], torch.ones_like(X[..., -1:])], dim=-1)


def effective_best(moments: GPMoments, X: Tensor, c: float) -> tuple[Tensor, Tensor]:
    """Huang et al.'s effective best solution among the configurations of ``X`` (``n x (d + 1)``,
    any fidelity): ``x** = argmax μ(x, 1) - c σ(x, 1)``. Returns ``(T = μ(x**, 1) (), x** at the
    target (1, d + 1))``."""
    configs = torch.unique(_target(X.to(torch.double)), dim=0)
    with torch.no_grad():
        mean, cov = moments.joint(configs.unsqueeze(-2))  # n independent q = 1 batches
        mean, sd = mean.reshape(-1), cov.reshape(-1).clamp_min(MIN_VAR).sqrt()
    best = int(torch.argmax(mean - c * sd))
    return mean[best], configs[best : best + 1]


@dataclass
class AEIFactors:
    """The factors of ``AEI`` for a batch of candidates, each of shape ``batch``."""

    log_ei: Tensor
    alpha1: Tensor
    log_alpha2: Tensor
    alpha3: Tensor

    @property
    def alpha2(self) -> Tensor:
        return self.log_alpha2.exp()

    @property
    def log_aei(self) -> Tensor:
        return self.log_ei + self.alpha1.clamp_min(_MIN_CORR).log() + self.log_alpha2 + self.alpha3.log()


class LogAugmentedEI:
    """``X (batch, 1, d + 1) -> log AEI (batch,)``, differentiable in ``X``.

    Args:
        moments: posterior moments of the (pending-conditioned) model.
        cost: ``X (..., 1, d + 1) -> (..., 1)`` positive cost.
        best_f: the incumbent ``T`` (a posterior mean at the target, units of ``-value``).
    """

    def __init__(self, moments: GPMoments, cost: CostFn, best_f: Tensor | float) -> None:
        self.moments = moments
        self.cost = cost
        self.best_f = torch.as_tensor(best_f, dtype=torch.double)

    def factors(self, X: Tensor) -> AEIFactors:
        if X.shape[-2] != 1:
            raise ValueError(f"mf-ei evaluates one point per batch (X of shape batch x 1 x (d + 1)), got {tuple(X.shape)}")
        Xt = _target(X)
        mean, cov = self.moments.joint(torch.cat([X, Xt], dim=-2))  # the candidate and its target twin
        var_s = cov[..., 0, 0].clamp_min(MIN_VAR)
        var_1 = cov[..., 1, 1].clamp_min(MIN_VAR)
        noise = self.moments.noise(X)[..., 0]
        sd_1 = var_1.sqrt()
        log_ei = _log_ei_helper((mean[..., 1] - self.best_f) / sd_1) + sd_1.log()
        alpha1 = (cov[..., 0, 1] / (var_s * var_1).sqrt()).abs().clamp_max(1.0)
        r = (var_s + noise).sqrt()
        log_alpha2 = var_s.log() - r.log() - (r + noise.sqrt()).log()
        alpha3 = (self.cost(Xt) / self.cost(X))[..., 0]
        return AEIFactors(log_ei=log_ei, alpha1=alpha1, log_alpha2=log_alpha2, alpha3=alpha3)

    def __call__(self, X: Tensor) -> Tensor:
        return self.factors(X).log_aei


class MultiFidelityEI(Acquisition):
    """Huang et al.'s augmented expected improvement, maximised jointly over ``(x, s)`` (see the
    module docstring for the factors and the deviations from the paper).

    Options:
        c: multiplier of the posterior standard deviation in the effective-best utility
            ``μ(x, 1) - c σ(x, 1)`` (``>= 0``; default ``1`` as in Huang et al.; ``0`` takes the
            best posterior mean).
        num_restarts: L-BFGS-B starts of the joint optimisation (default 10).
        raw_samples: Sobol configurations scored to pick the starts, each at every level when the
            fidelity is discrete (default 512).
        maxiter: L-BFGS-B iterations (default 200).
    """

    name = "mf-ei"

    def __init__(self, *, c: float = 1.0, num_restarts: int = 10, raw_samples: int = 512, maxiter: int = 200) -> None:
        self.c = check_float(self.name, "c", c, minimum=0.0)
        self.num_restarts = check_int(self.name, "num_restarts", num_restarts, 1)
        self.raw_samples = check_int(self.name, "raw_samples", raw_samples, 1)
        self.maxiter = check_int(self.name, "maxiter", maxiter, 1)

    def objective(self, ctx: AcquisitionContext) -> tuple[LogAugmentedEI, Tensor]:
        """``(log AEI given the pending points, x** (1, d + 1))`` for this context."""
        moments = gp_moments(ctx.model, ctx.X_pending, ctx.train_X, name=self.name)
        best_f, incumbent = effective_best(moments, ctx.train_X, self.c)
        return LogAugmentedEI(moments, ctx.effort, best_f), incumbent

    def _propose_one(self, ctx: AcquisitionContext) -> Tensor:
        acqf, incumbent = self.objective(ctx)
        candidate, _ = optimize_joint(
            acqf,
            ctx,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
            maxiter=self.maxiter,
            extra_starts=incumbent,
        )
        return candidate

    def propose(self, ctx: AcquisitionContext, q: int = 1) -> Tensor:
        return sequential_greedy(self._propose_one, ctx, q)

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

Posterior moments (:class:`GPMoments`)
--------------------------------------
Each step needs the joint posterior of the pair ``[(x, s), (x, 1)]`` (and the noise at
``(x, s)``) for many ``x``. For an exact single-output GP with a Gaussian likelihood and at most
a ``Standardize`` outcome transform (BoTorch's ``SingleTaskGP`` family, whatever the kernel),
:class:`ExactGPMoments` factors ``K + σ_ε² I`` once per step (Cholesky ``L``) and computes
``Σ(a, b) = k(a, b) - (L^{-1} k(X, a))^T L^{-1} k(X, b)`` directly, with ``L^{-1}`` formed once:
one kernel call and one matrix product per batch, ``O(b n^2)``. GPyTorch's batched prediction
path is several times slower, and iterative (CG) for ``n`` above its ``max_cholesky_size``. The
fast path is checked against ``model.posterior`` once per step; any other model goes through
:class:`PosteriorMoments` (``model.posterior``: any single-output BoTorch model with a Gaussian
posterior). Moments are in the units of ``-value``. :mod:`.ucb` uses the same classes.

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

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import gpytorch
import torch
from botorch.acquisition.analytic import _log_ei_helper
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
from gpytorch.models import ExactGP
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

from .base import Acquisition, AcquisitionContext, CostFn
from .optimize import optimize_joint, sequential_greedy

__all__ = [
    "MultiFidelityEI",
    "LogAugmentedEI",
    "AEIFactors",
    "GPMoments",
    "ExactGPMoments",
    "PosteriorMoments",
    "gp_moments",
    "kriging_believer",
    "effective_best",
]

#: Variance floor (units of ``-value`` squared), as in BoTorch's analytic acquisitions.
_MIN_VAR = 1e-12
#: Smallest correlation kept by ``α1`` (``log α1 ≥ -690``): finite values and gradients.
_MIN_CORR = 1e-300
#: Points at which :class:`ExactGPMoments` is checked against ``model.posterior``.
_CHECK_POINTS = 3


# ------------------------------------------------------------------------------------------------
# Option validation (shared with mf-ucb)
# ------------------------------------------------------------------------------------------------
def check_int(acq: str, option: str, value: Any, minimum: int) -> int:
    """``value`` if it is an integer ``>= minimum``, else a ``ValueError`` naming the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"acquisition {acq!r}: option {option} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(acq: str, option: str, value: Any, *, minimum: float, strict: bool = False) -> float:
    """``float(value)`` if it is a finite number ``>= minimum`` (``> minimum`` when ``strict``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"acquisition {acq!r}: option {option} must be a finite number {bound}, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------
# Posterior moments, with pending points conditioned on by the Kriging believer
# ------------------------------------------------------------------------------------------------
def kriging_believer(model: Model, X_pending: Tensor | None) -> Model:
    """The model conditioned on its own posterior mean at ``X_pending`` (``m x (d + 1)``).

    The Kriging believer (Ginsbourger et al. 2010): the posterior mean is unchanged, the posterior
    variance shrinks at and around the pending inputs. A ``FixedNoiseGaussianLikelihood`` gets the
    mean training noise for the believed observations. Returns ``model`` itself when nothing is
    pending, and warns and returns it when the model cannot be conditioned.
    """
    if X_pending is None or not X_pending.numel():
        return model
    X_pending = X_pending.to(torch.double).reshape(-1, X_pending.shape[-1])
    with torch.no_grad():
        Y = model.posterior(X_pending).mean  # also fills the prediction caches
    kwargs: dict[str, Tensor] = {}
    likelihood = getattr(model, "likelihood", None)
    if isinstance(likelihood, FixedNoiseGaussianLikelihood):  # already in the model's outcome scale
        kwargs["noise"] = likelihood.noise.mean().expand(Y.shape)
    try:
        return model.condition_on_observations(X_pending, Y, **kwargs)
    except Exception as err:  # noqa: BLE001 - any model-specific failure: degrade, loudly
        warnings.warn(
            f"the model cannot be conditioned on pending points ({type(err).__name__}: {err}); they are ignored",
            RuntimeWarning,
            stacklevel=2,
        )
        return model


class GPMoments:
    """Moments of the latent GP on ``(x, s)`` inputs after conditioning on pending points, in the
    units of ``-value``. ``X`` is ``(..., q, d + 1)`` throughout."""

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean ``(..., q)`` and covariance ``(..., q, q)``, differentiable in ``X``."""
        raise NotImplementedError  # abstract

    def noise(self, X: Tensor) -> Tensor:
        """Observation-noise variance ``(..., q)`` of a new observation at ``X``."""
        raise NotImplementedError  # abstract

    def prior_and_posterior(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Prior covariance ``(k, k)`` and posterior variances ``(k,)`` at ``X (k, d + 1)``, in
        the same (possibly internal, outcome-transformed) units, without gradients."""
        raise NotImplementedError  # abstract


def _dense(K: Any) -> Tensor:
    return K.to_dense() if hasattr(K, "to_dense") else K


class ExactGPMoments(GPMoments):
    """Exact moments of a single-output exact GP (Gaussian likelihood, at most a ``Standardize``
    outcome transform) from its own mean and covariance modules and one Cholesky factor.

    With training inputs ``X (n, D)`` (transformed, as the model stores them in eval mode) and
    the pending inputs ``P (m, D)`` appended with their believed targets ``μ(P)``, ``N = n + m``:
    ``L L^T = k(X_N, X_N) + diag(σ_ε²)``, ``α = (L L^T)^{-1}(y_N - m(X_N))``; per call
    ``μ(a) = m(a) + k(a, X_N) α`` and ``Σ(a, b) = k(a, b) - (L^{-1} k(X_N, a))^T L^{-1} k(X_N, b)``.
    The outputs are mapped back through the ``Standardize`` transform (``σ_y``, ``m_y``).
    """

    def __init__(self, model: Model, X_pending: Tensor | None = None) -> None:
        model.eval()
        self.model = model
        transform = getattr(model, "outcome_transform", None)
        self.offset = float(transform.means.reshape(())) if transform is not None else 0.0
        self.scale = float(transform.stdvs.reshape(())) if transform is not None else 1.0
        X, y, lik = model.train_inputs[0], model.train_targets, model.likelihood
        with torch.no_grad(), gpytorch.settings.lazily_evaluate_kernels(False):
            if isinstance(lik, FixedNoiseGaussianLikelihood):
                train_noise = lik.noise.reshape(-1).expand(X.shape[0])
            else:
                train_noise = lik.noise.reshape(()).expand(X.shape[0])
            self.new_noise = train_noise.mean()  # internal units
            resid = y - model.mean_module(X)
            L = psd_safe_cholesky(_dense(model.covar_module(X)) + torch.diag(train_noise))
            alpha = torch.cholesky_solve(resid.unsqueeze(-1), L).squeeze(-1)
            if X_pending is not None and X_pending.numel():
                P = model.transform_inputs(X_pending.to(X).reshape(-1, X.shape[-1]))
                believed = _dense(model.covar_module(P, X)) @ alpha  # μ(P) - m(P)
                X = torch.cat([X, P])
                resid = torch.cat([resid, believed])
                noise = torch.cat([train_noise, self.new_noise.expand(P.shape[0])])
                L = psd_safe_cholesky(_dense(model.covar_module(X)) + torch.diag(noise))
                alpha = torch.cholesky_solve(resid.unsqueeze(-1), L).squeeze(-1)
            # An explicit L^{-1}: per call a matrix product instead of a triangular solve, several
            # times faster for the few columns of an L-BFGS step (memory-bound at large n).
            L_inv = torch.linalg.solve_triangular(L, torch.eye(L.shape[0], dtype=L.dtype), upper=False)
        self.X, self.L_inv, self.alpha = X, L_inv, alpha

    @staticmethod
    def supports(model: Model) -> bool:
        """Whether ``model`` is a single-output, non-batched exact GP this class can read."""
        if not (isinstance(model, GPyTorchModel) and isinstance(model, ExactGP)):
            return False
        if getattr(model, "num_outputs", None) != 1 or len(model.train_inputs) != 1 or model.train_inputs[0].dim() != 2:
            return False
        lik = model.likelihood
        if not isinstance(lik, (GaussianLikelihood, FixedNoiseGaussianLikelihood)):
            return False
        if type(lik) is GaussianLikelihood and lik.noise.numel() != 1:
            return False
        transform = getattr(model, "outcome_transform", None)
        if transform is not None and not (isinstance(transform, Standardize) and transform.stdvs.numel() == 1):
            return False
        return hasattr(model, "covar_module") and hasattr(model, "mean_module")

    def _internal(self, Xt: Tensor) -> tuple[Tensor, Tensor]:
        """Internal-scale mean ``(..., q)`` and covariance ``(..., q, q)`` at transformed inputs."""
        batch, q, D = Xt.shape[:-2], Xt.shape[-2], Xt.shape[-1]
        flat = Xt.reshape(-1, D)
        with gpytorch.settings.lazily_evaluate_kernels(False):
            k_aX = _dense(self.model.covar_module(flat, self.X))  # (B q, N)
            k_aa = _dense(self.model.covar_module(Xt))  # (..., q, q)
        mean = (self.model.mean_module(flat) + k_aX @ self.alpha).reshape(*batch, q)
        V = (k_aX @ self.L_inv.T).reshape(*batch, q, -1)  # rows: (L^{-1} k(X_N, a))^T
        return mean, k_aa - V @ V.transpose(-1, -2)

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        mean, cov = self._internal(self.model.transform_inputs(X))
        return self.offset + self.scale * mean, self.scale**2 * cov

    def noise(self, X: Tensor) -> Tensor:
        return (self.scale**2 * self.new_noise).expand(X.shape[:-1])

    def prior_and_posterior(self, X: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            Xt = self.model.transform_inputs(X)
            with gpytorch.settings.lazily_evaluate_kernels(False):
                prior = _dense(self.model.covar_module(Xt))
            _, cov = self._internal(Xt.unsqueeze(-2))
        return prior, cov[..., 0, 0]

    def agrees_with_posterior(self, X: Tensor, *, variance: bool) -> bool:
        """Whether the means (and variances) at ``X (k, d + 1)`` match ``model.posterior`` (of the
        model *without* pending points: the Kriging believer leaves the mean unchanged, so the
        mean is always comparable, the variance only when nothing is pending)."""
        with torch.no_grad(), gpytorch.settings.max_cholesky_size(2**31):  # exact, as here
            post = self.model.posterior(X)
            mean, cov = self.joint(X.unsqueeze(-2))
        scale = self.scale
        ok = torch.allclose(mean.reshape(-1), post.mean.reshape(-1), rtol=1e-6, atol=1e-8 * scale)
        if variance:
            ok &= torch.allclose(cov.reshape(-1), post.variance.reshape(-1), rtol=1e-5, atol=1e-8 * scale**2)
        return bool(ok)


class PosteriorMoments(GPMoments):
    """The moments from ``model.posterior`` of the Kriging-believer model (any single-output
    BoTorch model with a Gaussian posterior; slower than :class:`ExactGPMoments`)."""

    def __init__(self, model: Model, X_pending: Tensor | None = None) -> None:
        self.model = kriging_believer(model, X_pending)

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        post = self.model.posterior(X)
        distribution = getattr(post, "distribution", None)
        if not hasattr(distribution, "covariance_matrix"):
            raise TypeError(f"the model's posterior has no joint Gaussian covariance ({type(post).__name__})")
        return post.mean[..., 0], distribution.covariance_matrix

    def noise(self, X: Tensor) -> Tensor:
        noisy = self.model.posterior(X, observation_noise=True).variance[..., 0]
        return (noisy - self.model.posterior(X).variance[..., 0]).clamp_min(0.0)

    def prior_and_posterior(self, X: Tensor) -> tuple[Tensor, Tensor]:
        # The prior is not part of BoTorch's Model API: read it from an exact GPyTorch model, in
        # its internal outcome scale, and the posterior from the same GP in the same scale.
        model = self.model
        if not isinstance(model, ExactGP):
            raise TypeError(f"the GP prior is needed and only exact GPyTorch models expose it, got {type(model).__name__}")
        with torch.no_grad():
            model.eval()
            Xt = model.transform_inputs(X)
            return model.forward(Xt).covariance_matrix, model(Xt).variance


def gp_moments(model: Model, X_pending: Tensor | None, train_X: Tensor | None = None) -> GPMoments:
    """:class:`ExactGPMoments` where the model supports it and reproduces ``model.posterior``
    (checked at up to 3 midpoints of consecutive ``train_X`` rows, away from the data), else
    :class:`PosteriorMoments` (with a warning when the check failed)."""
    if ExactGPMoments.supports(model):
        moments = ExactGPMoments(model, X_pending)
        if train_X is None or train_X.shape[0] < 2:
            return moments
        k = min(_CHECK_POINTS, train_X.shape[0] - 1)
        check = (train_X[:k] + train_X[1 : k + 1]).to(torch.double) / 2
        if moments.agrees_with_posterior(check, variance=X_pending is None or not X_pending.numel()):
            return moments
        warnings.warn(
            f"{type(model).__name__}: the exact-GP fast path does not reproduce model.posterior; "
            "using model.posterior (slower)",
            RuntimeWarning,
            stacklevel=2,
        )
    return PosteriorMoments(model, X_pending)


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
        mean, sd = mean.reshape(-1), cov.reshape(-1).clamp_min(_MIN_VAR).sqrt()
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
        var_s = cov[..., 0, 0].clamp_min(_MIN_VAR)
        var_1 = cov[..., 1, 1].clamp_min(_MIN_VAR)
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

    def options(self) -> dict[str, Any]:
        return {"c": self.c, "num_restarts": self.num_restarts, "raw_samples": self.raw_samples, "maxiter": self.maxiter}

    def objective(self, ctx: AcquisitionContext) -> tuple[LogAugmentedEI, Tensor]:
        """``(log AEI given the pending points, x** (1, d + 1))`` for this context."""
        moments = gp_moments(ctx.model, ctx.X_pending, ctx.train_X)
        best_f, incumbent = effective_best(moments, ctx.train_X, self.c)
        return LogAugmentedEI(moments, ctx.cost, best_f), incumbent

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

r"""Posterior pieces shared by the acquisitions: the fast exact-GP path, its check against
``model.posterior`` with the fallback, and pending points by the Kriging believer.

Notation: the model's inputs are ``(x, s)`` rows of ``D = d + 1`` columns; ``X (n, D)`` are the
training inputs as the model stores them (input-transformed), ``y (n,)`` its training targets
(outcome-transformed), ``P (p, D)`` the pending inputs (transformed) and ``X_N = [X; P]``
(``ExactGPPosterior.X_all``), ``N = n + p``. ``k`` is the model's covariance module, ``m`` its
mean module, ``τ²`` the observation-noise variance: per input for a fidelity-dependent likelihood
(:mod:`mfbo.models.noise`), per training point for a ``FixedNoiseGaussianLikelihood`` (a new or
pending observation then gets the mean of the training noise variances), else one constant.

Kriging believer
----------------
Pending points (asked, not yet told) are treated as observed at the model's own posterior mean
(Ginsbourger, Le Riche & Carraro, *Kriging is well-suited to parallelize optimization*, 2010):
the posterior mean is unchanged and the covariance becomes the Schur complement

.. math::

    \Sigma_{\cdot\cdot \mid P} = \Sigma_{\cdot\cdot} - \Sigma_{\cdot P} (\Sigma_{PP} + τ^2 I)^{-1} \Sigma_{P\cdot},

which shrinks the variance at and around the pending inputs, so asynchronous workers get
distinct suggestions. Three implementations of the same conditioning, for three situations:

- :class:`ExactGPPosterior`: the pending rows join the Cholesky factor of the training
  covariance (the fast path below);
- :func:`conditioning_factor`: the Schur complement on a joint covariance that the caller got
  from ``model.posterior`` (``mf-kg``'s generic path; ``mf-mes`` / ``mf-gibbon`` condition on
  pending and batch points the same way);
- :func:`kriging_believer`: a model conditioned on its believed observations through
  ``condition_on_observations``, for code that needs a model object (:class:`PosteriorMoments`).

The fast exact-GP path
----------------------
For a single-output exact GP with a Gaussian likelihood and at most a ``Standardize`` outcome
transform (BoTorch's ``SingleTaskGP`` family, whatever the kernel; see
:meth:`ExactGPPosterior.supports`), everything that does not depend on the candidates is
computed once per step (:class:`ExactGPPosterior`), in the model's internal (standardised) scale:

.. math::

    L L^\top = k(X_N, X_N) + \mathrm{diag}(τ^2), \qquad
    \alpha = (L_n L_n^\top)^{-1} (y - m(X)),

with ``L_n = L[:n, :n]`` the factor of the training block alone (a leading block of a Cholesky
factor is the factor of the leading block). Then, for inputs ``a, b``:

.. math::

    \mu(a) = m(a) + k(a, X) \alpha, \qquad
    \Sigma(a, b) = k(a, b) - (L^{-1} k(X_N, a))^\top L^{-1} k(X_N, b).

The mean uses the training data alone (the believer leaves it unchanged), the covariance the
training and pending inputs. Outputs in units of ``-value`` are ``offset + scale μ`` and
``scale² Σ`` (the ``Standardize`` mean and standard deviation; ``0`` and ``1`` without it).
GPyTorch's batched prediction path is several times slower, and iterative (CG) for ``n`` above
its ``max_cholesky_size``.

The fast path reads the model's modules directly, so it is checked against ``model.posterior``
(mean and variance without pending points, at a few points, :meth:`ExactGPPosterior.check`)
once per step; any model it does not support, or that fails the check or the construction, is
served by ``model.posterior`` instead (:func:`exact_or_generic`, with a ``RuntimeWarning``
naming the reason).

Posterior moments (:class:`GPMoments`), for ``mf-ei`` and ``mf-ucb``
--------------------------------------------------------------------
The joint posterior mean and covariance of a few points per batch, ``X (..., q, D)``:
:class:`ExactGPMoments` on the fast path, :class:`PosteriorMoments` (``model.posterior`` of the
Kriging-believer model) otherwise; :func:`gp_moments` picks one. ``mf-kg`` builds its own
quantities (``Σ_n(A, c)`` for a whole discretisation ``A`` per candidate) on
:class:`ExactGPPosterior` in :mod:`.kg`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import gpytorch
import torch
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
from gpytorch.models import ExactGP
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

from ..models.noise import FidelityGaussianLikelihood

__all__ = [
    "MIN_VAR",
    "dense",
    "jittered_cholesky",
    "conditioning_factor",
    "kriging_believer",
    "ExactGPPosterior",
    "PosteriorMismatch",
    "exact_or_generic",
    "GPMoments",
    "ExactGPMoments",
    "PosteriorMoments",
    "gp_moments",
]

#: Variance floor (units of ``-value`` squared), as in BoTorch's analytic acquisitions.
MIN_VAR = 1e-12
#: At most this many points at which :func:`gp_moments` checks the fast path.
_CHECK_POINTS = 3
#: What a failing fast path may raise; anything else is a bug and propagates.
_FAST_PATH_ERRORS = (ValueError, RuntimeError, TypeError, AttributeError)

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------
# Small linear algebra
# ------------------------------------------------------------------------------------------------
def dense(K: Any) -> Tensor:
    """A kernel's output (lazy linear operator or tensor) as a dense tensor."""
    return K.to_dense() if hasattr(K, "to_dense") else K


def jittered_cholesky(K: Tensor) -> Tensor:
    """Lower Cholesky factor of ``K (N, N)``, adding jitter relative to the mean diagonal if
    needed (``1e-10`` of it, then ten times more up to ``1e-4``); raises a ``RuntimeError``
    beyond. (:func:`~linear_operator.utils.cholesky.psd_safe_cholesky`, the other policy used
    here, adds an absolute jitter of ``1e-8`` to ``1e-6`` in float64.)"""
    L, info = torch.linalg.cholesky_ex(K)
    mean_diag = float(K.detach().diagonal().mean())
    jitter = 1e-10 * mean_diag
    while int(info) != 0 and jitter < 1e-3 * mean_diag:
        L, info = torch.linalg.cholesky_ex(K + jitter * torch.eye(K.shape[0], dtype=K.dtype))
        jitter *= 10.0
    if int(info) != 0:
        raise RuntimeError("the training covariance is not positive definite, even with jitter")
    return L


def conditioning_factor(
    S_PP: Tensor, S_PQ: Tensor, cholesky: Callable[[Tensor], Tensor] = psd_safe_cholesky
) -> Tensor:
    r"""``V = L^{-1} Σ_{PQ}`` with ``L L^T = Σ_{PP}``: what observing ``P`` explains of ``Q``.

    For a Gaussian vector ``(y_P, f_Q)`` with covariance blocks ``Σ_{PP}`` (of the *noisy*
    observations, ``(..., p, p)``) and ``Σ_{PQ}`` (``(..., p, q)``), conditioning on ``y_P``
    gives ``Σ_{QQ | P} = Σ_{QQ} - V^T V`` (the Kriging believer's covariance when ``P`` are
    pending points) and moves the mean of ``f_Q`` by a Gaussian of covariance ``V^T V``.
    Returns ``V`` of shape ``(..., p, q)``.
    """
    return torch.linalg.solve_triangular(cholesky(S_PP), S_PQ, upper=False)


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


# ------------------------------------------------------------------------------------------------
# The fast exact-GP path
# ------------------------------------------------------------------------------------------------
class PosteriorMismatch(ValueError):
    """The fast path's mean or variance differs from ``model.posterior`` (:meth:`ExactGPPosterior.check`)."""


class ExactGPPosterior:
    r"""The candidate-independent pieces of an exact GP's posterior, with pending inputs
    conditioned on by the Kriging believer (module docstring for the maths).

    Attributes (internal, outcome-transformed scale unless said otherwise):
        model: the GP (put in eval mode).
        offset, scale: the ``Standardize`` mean and standard deviation (``0``, ``1`` without):
            output units are ``offset + scale μ`` and ``scale² Σ``.
        n: number of training inputs; ``X (n, D)`` the training inputs, ``X_all (N, D)`` the
            training then the pending inputs, ``N = n + p``.
        L: ``(N, N)`` lower Cholesky factor of ``k(X_all, X_all) + diag(τ²)``; its leading
            ``(n, n)`` block is the training block's factor.
        alpha: ``(n,)``, ``(k(X, X) + diag(τ²))^{-1} (y - m(X))``.

    Args:
        model: a model :meth:`supports` accepts.
        X_pending: raw pending inputs ``(p, D)`` or ``None``.
        cholesky: the factorisation (with its jitter policy) of ``k(X_all, X_all) + diag(τ²)``.
    """

    def __init__(
        self,
        model: Model,
        X_pending: Tensor | None = None,
        *,
        cholesky: Callable[[Tensor], Tensor] = psd_safe_cholesky,
    ) -> None:
        model.eval()
        self.model = model
        transform = getattr(model, "outcome_transform", None)
        self.offset = float(transform.means.reshape(())) if transform is not None else 0.0
        self.scale = float(transform.stdvs.reshape(())) if transform is not None else 1.0
        X, y, lik = model.train_inputs[0], model.train_targets, model.likelihood
        n = X.shape[0]
        with torch.no_grad(), gpytorch.settings.lazily_evaluate_kernels(False):
            if isinstance(lik, FixedNoiseGaussianLikelihood):
                train_noise = lik.noise.reshape(-1).expand(n)
                self._fixed_noise = float(train_noise.mean())
            else:
                train_noise = self.noise_at(X)
            if X_pending is not None and X_pending.numel():
                P = model.transform_inputs(X_pending.to(X).reshape(-1, X.shape[-1]))
                X_all = torch.cat([X, P])
                noise_all = torch.cat([train_noise, self.noise_at(P)])
            else:
                X_all, noise_all = X, train_noise
            self.L = cholesky(dense(model.covar_module(X_all)) + torch.diag(noise_all))
            resid = (y - model.mean_module(X)).unsqueeze(-1)
            self.alpha = torch.cholesky_solve(resid, self.L[:n, :n]).squeeze(-1)
        self.X, self.X_all, self.n = X, X_all, n

    def noise_at(self, Xt: Tensor) -> Tensor:
        """``τ²`` ``Xt.shape[:-1]`` of a new observation at transformed inputs ``Xt (..., D)``
        (internal scale): the likelihood's noise there (fidelity-dependent for a
        :class:`~mfbo.models.noise.FidelityGaussianLikelihood`), the mean training noise for a
        ``FixedNoiseGaussianLikelihood``."""
        lik = self.model.likelihood
        if isinstance(lik, FidelityGaussianLikelihood):
            return lik.noise_variance(Xt)
        if isinstance(lik, FixedNoiseGaussianLikelihood):
            return torch.full(Xt.shape[:-1], self._fixed_noise, dtype=Xt.dtype)
        return lik.noise.reshape(()).expand(Xt.shape[:-1])

    @staticmethod
    def supports(model: Model) -> bool:
        """Whether ``model`` is a single-output, non-batched exact GP this class can read."""
        if not (isinstance(model, GPyTorchModel) and isinstance(model, ExactGP)):
            return False
        if getattr(model, "num_outputs", None) != 1 or len(model.train_inputs) != 1 or model.train_inputs[0].dim() != 2:
            return False
        lik = model.likelihood
        if not isinstance(lik, (GaussianLikelihood, FixedNoiseGaussianLikelihood, FidelityGaussianLikelihood)):
            return False
        if isinstance(lik, GaussianLikelihood) and lik.noise.numel() != 1:
            return False
        transform = getattr(model, "outcome_transform", None)
        if transform is not None and not (isinstance(transform, Standardize) and transform.stdvs.numel() == 1):
            return False
        return hasattr(model, "covar_module") and hasattr(model, "mean_module")

    def transform(self, X: Tensor) -> Tensor:
        """Raw inputs ``(..., D)`` to the model's (input-transformed) inputs."""
        return self.model.transform_inputs(X)

    def whiten(self, k_XQ: Tensor) -> Tensor:
        """``L^{-1} k(X_all, Q)``: ``(N, b)`` from ``k_XQ (N, b)``, a triangular solve."""
        return torch.linalg.solve_triangular(self.L, k_XQ, upper=False)

    def mean(self, Qt: Tensor, k_QX: Tensor | None = None) -> Tensor:
        """Internal posterior mean ``m(q) + k(q, X) α`` ``(b,)`` at transformed inputs
        ``Qt (b, D)``; ``k_QX = k(Qt, X) (b, n)`` when the caller has it already."""
        if k_QX is None:
            k_QX = dense(self.model.covar_module(Qt, self.X))
        return self.model.mean_module(Qt) + k_QX @ self.alpha

    def check(self, Q: Tensor) -> None:
        """Raise a ``ValueError`` unless the mean and the variance *without* pending points
        (``L_n``) at raw inputs ``Q (k, D)`` match ``model.posterior`` (relative ``1e-6`` and
        ``1e-5``), e.g. for a model whose ``forward`` is not ``MVN(m(x), k(x, x))``."""
        with torch.no_grad(), gpytorch.settings.max_cholesky_size(2**31):  # exact, as here, also for large n
            post = self.model.posterior(Q)
            Qt = self.transform(Q)
            k_XQ = dense(self.model.covar_module(self.X, Qt))
            W = torch.linalg.solve_triangular(self.L[: self.n, : self.n], k_XQ, upper=False)
            var = self.model.covar_module(Qt, Qt, diag=True) - (W * W).sum(0)
            mean = self.mean(Qt, k_XQ.T)
        s = self.scale
        ok = torch.allclose(self.offset + s * mean, post.mean.reshape(-1), rtol=1e-6, atol=1e-8 * s)
        ok &= torch.allclose(s**2 * var, post.variance.reshape(-1), rtol=1e-5, atol=1e-8 * s**2)
        if not ok:
            raise PosteriorMismatch("the exact-GP fast path does not reproduce model.posterior")


def exact_or_generic(name: str, model: Model, exact: Callable[[], T], generic: Callable[[], T]) -> T:
    """``exact()`` (the fast path, which builds and checks itself) where
    :meth:`ExactGPPosterior.supports` the model and it succeeds, else ``generic()``
    (``model.posterior``); a failure of ``exact()`` is reported as a ``RuntimeWarning`` naming
    the acquisition ``name``, the model and the reason."""
    if ExactGPPosterior.supports(model):
        try:
            return exact()
        except _FAST_PATH_ERRORS as err:
            if isinstance(err, PosteriorMismatch):
                reason = str(err)
            else:
                reason = f"the exact-GP fast path failed ({type(err).__name__}: {err})"
            warnings.warn(
                f"{name}: {type(model).__name__} is served by model.posterior (slower): {reason}",
                RuntimeWarning,
                stacklevel=3,
            )
    return generic()


# ------------------------------------------------------------------------------------------------
# Joint posterior moments of a few points per batch (mf-ei, mf-ucb)
# ------------------------------------------------------------------------------------------------
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


class ExactGPMoments(GPMoments):
    """:class:`GPMoments` on the fast exact-GP path (:class:`ExactGPPosterior`): per batch one
    kernel call ``k(a, X_all)`` and one triangular solve with ``L``, ``O(b N^2)``:
    ``μ(a) = m(a) + k(a, X) α``, ``Σ(a, b) = k(a, b) - (L^{-1} k(X_all, a))^T L^{-1} k(X_all, b)``,
    mapped to output units through the ``Standardize`` transform."""

    supports = staticmethod(ExactGPPosterior.supports)

    def __init__(self, model: Model, X_pending: Tensor | None = None) -> None:
        self.model = model
        self.gp = ExactGPPosterior(model, X_pending)
        # A triangular solve per call, not a product with an explicit L^{-1}: at N = 2000 and the
        # 20 columns of an L-BFGS step it is ~3x faster forward and ~2x forward + backward on one
        # core (LAPACK trsm reads half the matrix), and it saves the O(N^3) inverse per step.

    def _internal(self, Xt: Tensor) -> tuple[Tensor, Tensor]:
        """Internal-scale mean ``(..., q)`` and covariance ``(..., q, q)`` at transformed inputs."""
        gp = self.gp
        batch, q, D = Xt.shape[:-2], Xt.shape[-2], Xt.shape[-1]
        flat = Xt.reshape(-1, D)
        with gpytorch.settings.lazily_evaluate_kernels(False):
            k_aX = dense(self.model.covar_module(flat, gp.X_all))  # (B q, N)
            k_aa = dense(self.model.covar_module(Xt))  # (..., q, q)
        mean = gp.mean(flat, k_aX[:, : gp.n]).reshape(*batch, q)
        V = gp.whiten(k_aX.T).transpose(-1, -2).reshape(*batch, q, -1)  # rows: (L^{-1} k(X_all, a))^T
        return mean, k_aa - V @ V.transpose(-1, -2)

    def joint(self, X: Tensor) -> tuple[Tensor, Tensor]:
        mean, cov = self._internal(self.gp.transform(X))
        return self.gp.offset + self.gp.scale * mean, self.gp.scale**2 * cov

    def noise(self, X: Tensor) -> Tensor:
        return self.gp.scale**2 * self.gp.noise_at(self.gp.transform(X))

    def prior_and_posterior(self, X: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            Xt = self.gp.transform(X)
            with gpytorch.settings.lazily_evaluate_kernels(False):
                prior = dense(self.model.covar_module(Xt))
            _, cov = self._internal(Xt.unsqueeze(-2))
        return prior, cov[..., 0, 0]


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


def gp_moments(
    model: Model, X_pending: Tensor | None, train_X: Tensor | None = None, *, name: str = "mf-ei"
) -> GPMoments:
    """:class:`ExactGPMoments` where the model supports it and reproduces ``model.posterior``
    (checked at up to 3 midpoints of consecutive ``train_X`` rows, away from the data; not
    checked without two rows), else :class:`PosteriorMoments` (with a warning naming the
    acquisition ``name`` when the fast path failed)."""

    def exact() -> ExactGPMoments:
        moments = ExactGPMoments(model, X_pending)
        if train_X is not None and train_X.shape[0] >= 2:
            k = min(_CHECK_POINTS, train_X.shape[0] - 1)
            moments.gp.check((train_X[:k] + train_X[1 : k + 1]).to(torch.double) / 2)
        return moments

    return exact_or_generic(name, model, exact, lambda: PosteriorMoments(model, X_pending))

"""The multi-fidelity GP surrogate: one exact GP on the joint ``(x, s)`` space.

:func:`build_mf_gp` returns a BoTorch ``SingleTaskGP`` on ``d + 1`` input columns (the
unit-cube configuration, then the normalised fidelity ``s``; ``s = 1`` is the target) and one
output ``Y = -value``, whose covariance is one of :data:`mfbo.models.KERNELS` (see
:mod:`mfbo.models.kernels`). Every kernel gives the same model class, so ``posterior`` on
``(b, q, d + 1)`` batches, ``fantasize`` and ``condition_on_observations`` (used by the
knowledge-gradient and entropy-search acquisitions) behave identically.

Model pieces, for every kernel:

- **Outcomes** are standardised (``Standardize(m=1)``; constant ``Y`` gets unit scale, so it
  is fine). Posteriors are returned on the original scale.
- **Inputs** are not transformed: mfbo's encodings are already in the unit cube
  (:meth:`mfbo.Space.encode`, :meth:`mfbo.Fidelity.normalize`), which is what the lengthscale
  priors assume; a ``Normalize`` fitted to the data would rescale the fidelity column by the
  observed fidelity range and break ``s = 1`` as the target for the fidelity kernels.
- **Likelihood** (``noise``): ``"fidelity"`` (default), Gaussian with a variance that grows
  towards cheap fidelities, ``τ²(s) = τ²₁ + τ²_Δ (1 - s)²``
  (:class:`mfbo.models.noise.FidelityGaussianLikelihood`; cheap fidelities are noisier, and one
  shared noise level would make target evaluations look as noisy as the cheapest ones); or
  ``"homoskedastic"``, BoTorch's ``SingleTaskGP`` default; or ``"correlated"``, the fidelity
  noise with a part shared by the evaluations of one configuration (the points of one learning
  curve), added to the covariance as :class:`mfbo.models.noise.SharedResidualKernel`. All
  keep BoTorch's target-noise prior ``LogNormal(-4, 1)`` and floor ``1e-4`` (on the
  standardised scale), which keeps ``K + noise I`` well conditioned with duplicated inputs.
- **Mean**: a constant (``SingleTaskGP`` default).
- **Initial hyperparameters** are deterministic (the priors' modes or BoTorch's defaults, and a
  fixed ICM start), and building a model takes nothing from the caller's RNG;
  :func:`mfbo.models.fit_model` does the seeded restarts.

Beyond the agreed interface, :func:`build_mf_gp` takes ``icm_rank`` (the rank of the ICM
factor). Deviations from BoTorch's models are listed in :mod:`mfbo.models.kernels`.
"""

from __future__ import annotations

import torch
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from botorch.models.utils.gpytorch_modules import get_gaussian_likelihood_with_lognormal_prior
from torch import Tensor

from .kernels import check_kernel, covar_module
from .noise import NOISE_MODELS, FidelityGaussianLikelihood, SharedResidualKernel

__all__ = ["build_mf_gp"]

#: How far (in ``s``) a training fidelity may be from a level for ``kernel="icm"``.
LEVEL_TOLERANCE = 1e-6


def _check_data(train_X: Tensor, train_Y: Tensor) -> tuple[Tensor, Tensor]:
    train_X = torch.as_tensor(train_X, dtype=torch.double)
    train_Y = torch.as_tensor(train_Y, dtype=torch.double)
    if train_X.dim() != 2 or train_X.shape[-1] < 2:
        raise ValueError(f"train_X must have shape (n, d + 1) with d >= 1 (fidelity last), got {tuple(train_X.shape)}")
    if train_Y.dim() == 1:
        train_Y = train_Y.unsqueeze(-1)
    if train_Y.shape != (train_X.shape[0], 1):
        raise ValueError(f"train_Y must have shape (n, 1) = ({train_X.shape[0]}, 1), got {tuple(train_Y.shape)}")
    if train_X.shape[0] < 1:
        raise ValueError("build_mf_gp needs at least one observation")
    if not (torch.isfinite(train_X).all() and torch.isfinite(train_Y).all()):
        raise ValueError("train_X and train_Y must be finite (drop failed evaluations before building the model)")
    return train_X, train_Y


def build_mf_gp(
    train_X: Tensor,
    train_Y: Tensor,
    *,
    kernel: str = "linear-truncated",
    fidelities: Tensor | None = None,
    icm_rank: int | None = None,
    noise: str = "fidelity",
) -> Model:
    """A multi-fidelity GP on ``(x, s)``, not yet fitted (see :func:`mfbo.models.fit_model`).

    Args:
        train_X: ``(n, d + 1)`` float64 inputs in ``[0, 1]``, the normalised fidelity last.
        train_Y: ``(n, 1)`` targets, ``-value`` (``(n,)`` is accepted).
        kernel: one of :data:`mfbo.models.KERNELS`, see :mod:`mfbo.models.kernels`.
        fidelities: ``(L,)`` the allowed normalised fidelity levels of a discrete fidelity
            (increasing, ending at 1), ``None`` for a continuous one. Required by ``"icm"``,
            whose training fidelities must all be levels; ignored by the other kernels.
        icm_rank: rank of the ICM coregionalisation factor ``W`` (default ``min(L, 2)``).
        noise: the noise model, one of :data:`mfbo.models.noise.NOISE_MODELS`: ``"fidelity"``
            (noise variance growing towards cheap fidelities), ``"correlated"`` (the same, part of
            it shared by one configuration's evaluations) or ``"homoskedastic"``.

    Returns:
        A ``SingleTaskGP`` with ``Standardize(m=1)`` and the chosen covariance, in train mode
        with deterministic initial hyperparameters.

    Raises:
        ValueError: unknown ``kernel`` or ``noise``; ``"icm"`` without ``fidelities`` or with training
            fidelities off the levels; ``"downsampling"`` with ``s > 1``; malformed data.
    """
    check_kernel(kernel)
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {list(NOISE_MODELS)}, got {noise!r}")
    train_X, train_Y = _check_data(train_X, train_Y)
    s = train_X[:, -1]
    if kernel == "downsampling" and (s > 1).any():
        raise ValueError(
            f"kernel 'downsampling' needs fidelities s <= 1 (its factor (1 - s)^(1 + delta) is undefined above the "
            f"target), got max s = {float(s.max()):.6g}; use kernel 'linear-truncated' or 'product'"
        )
    if kernel == "icm" and fidelities is not None:
        levels = torch.as_tensor(fidelities, dtype=torch.double).reshape(-1)
        off = (s[:, None] - levels[None, :]).abs().min(dim=-1).values > LEVEL_TOLERANCE
        if off.any():
            raise ValueError(
                f"kernel 'icm': training fidelities must be levels {levels.tolist()}, got s = {s[off].unique().tolist()}"
            )
    dim = train_X.shape[-1] - 1
    # Kernel construction may draw from torch's global RNG (gpytorch's IndexKernel does); fork it so
    # that building a model neither depends on nor disturbs the caller's RNG. Every such draw
    # is overwritten by a deterministic initial value.
    with torch.random.fork_rng(devices=[]):
        covar = covar_module(kernel, dim, fidelities=fidelities, icm_rank=icm_rank)
    if noise == "correlated":
        covar = covar + SharedResidualKernel()
    model = SingleTaskGP(
        train_X,
        train_Y,
        covar_module=covar,
        likelihood=get_gaussian_likelihood_with_lognormal_prior() if noise == "homoskedastic" else FidelityGaussianLikelihood(),
        outcome_transform=Standardize(m=1),
    )
    return model.to(torch.double)

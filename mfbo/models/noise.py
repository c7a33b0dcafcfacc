r"""Fidelity-dependent observation noise: the likelihood of the multi-fidelity GP.

Cheap fidelities are usually noisier than the target, not just biased: a network trained for
one epoch, a model fitted on 1/64 of the data or a coarse simulation scatters more around its
mean than the full evaluation does. A homoscedastic likelihood fits one noise variance to all
levels, so the large low-fidelity noise is also assumed at the target. That flattens the target
posterior, makes every target evaluation look uninformative, and hands the per-cost comparison
to the cheapest level -- exactly wrong on a problem such as ``mfhartmann6-terrible``.

:class:`FidelityNoise` models the noise variance as a function of the normalised fidelity
``s`` (the last input column, ``s = 1`` at the target):

.. math::

    τ^2(s) = τ^2_1 + τ^2_Δ \, (1 - s)^2, \qquad τ^2_1 \ge 10^{-4}, \; τ^2_Δ \ge 0,

i.e. a noise standard deviation that grows roughly linearly with the distance from the target
(both in the model's standardised outcome units). Two hyperparameters, fitted with the others
by maximising the marginal likelihood:

- ``τ²₁`` (``noise``, the target noise) has BoTorch's ``SingleTaskGP`` prior ``LogNormal(-4, 1)``
  and noise floor ``1e-4``, so at the target the model is BoTorch's default;
- ``τ²_Δ`` (``extra_noise``) has a wide ``LogNormal(-4, 2)`` prior and a floor of ``1e-6``:
  noise-free fidelities drive it to the floor, and the model reduces to the homoscedastic one.

The quadratic shape is an assumption (documented, not learned); it is exact for the
mf-prior-bench Hartmann functions on their log fidelity scale (noise ``∝ 1 - ẑ``) and a smooth,
monotone two-parameter family elsewhere. Noise that *decreases* towards cheap fidelities is not
representable; it is rare and the fit then sets ``τ²_Δ`` to its floor.

:class:`FidelityGaussianLikelihood` is a GPyTorch Gaussian likelihood with this noise; every
GPyTorch and BoTorch path passes the inputs to the likelihood (training, prediction with
``observation_noise=True``, ``condition_on_observations`` and ``fantasize``), so it works wherever
a ``GaussianLikelihood`` does.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gpytorch.constraints import GreaterThan
from gpytorch.likelihoods.gaussian_likelihood import _GaussianLikelihoodBase
from gpytorch.likelihoods.noise_models import Noise
from gpytorch.priors import LogNormalPrior
from linear_operator.operators import DiagLinearOperator
from torch import Tensor
from torch.nn import Parameter

__all__ = ["FidelityGaussianLikelihood", "FidelityNoise", "NOISE_MODELS"]

#: The ``noise`` option of :func:`mfbo.models.build_mf_gp` and the ``mf-*`` strategies.
NOISE_MODELS = ("fidelity", "homoskedastic")

#: BoTorch's ``SingleTaskGP`` noise floor (standardised units), kept for the target noise.
TARGET_NOISE_FLOOR = 1e-4
EXTRA_NOISE_FLOOR = 1e-6


class FidelityNoise(Noise):
    """``τ²(s) = τ²₁ + τ²_Δ (1 - s)²`` on the last input column (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("raw_noise", Parameter(torch.zeros(1)))
        self.register_parameter("raw_extra_noise", Parameter(torch.zeros(1)))
        self.register_constraint("raw_noise", GreaterThan(TARGET_NOISE_FLOOR))
        # exp transform: the gradient in raw space is scale-free, so the fit can move it from tiny to large
        self.register_constraint("raw_extra_noise", GreaterThan(EXTRA_NOISE_FLOOR, transform=torch.exp, inv_transform=torch.log))
        self.register_prior("noise_prior", LogNormalPrior(-4.0, 1.0), lambda m: m.noise, lambda m, v: m._set("raw_noise", v))
        self.register_prior(
            "extra_noise_prior", LogNormalPrior(-4.0, 2.0), lambda m: m.extra_noise, lambda m, v: m._set("raw_extra_noise", v)
        )
        # Deterministic start: the target noise at its prior's mode exp(-5) (BoTorch's start); the
        # extra noise at 0.1, not at its prior's mode exp(-8): from a tiny start the fit stays in
        # the homoscedastic local optimum (one noise level absorbs the cheap levels' scatter,
        # -mll/n 1.27 against 0.77 on a two-level test), while from 0.1 it reaches the floor when
        # the fidelities are noise-free.
        self._set("raw_noise", torch.tensor(math.exp(-5.0)))
        self._set("raw_extra_noise", torch.tensor(0.1))

    def _set(self, name: str, value: Tensor) -> None:
        raw = getattr(self, name)
        value = torch.as_tensor(value, dtype=raw.dtype).reshape(raw.shape)
        self.initialize(**{name: getattr(self, f"{name}_constraint").inverse_transform(value)})

    @property
    def noise(self) -> Tensor:
        """``τ²₁``, the noise variance at the target ``s = 1``, shape ``(1,)``."""
        return self.raw_noise_constraint.transform(self.raw_noise)

    @property
    def extra_noise(self) -> Tensor:
        """``τ²_Δ``, the extra noise variance at ``s = 0``, shape ``(1,)``."""
        return self.raw_extra_noise_constraint.transform(self.raw_extra_noise)

    def variance(self, X: Tensor) -> Tensor:
        """``τ²(s)`` of shape ``X.shape[:-1]`` for inputs ``X (..., d + 1)``, fidelity last."""
        gap = (1.0 - X[..., -1]).clamp_min(0.0)
        return self.noise + self.extra_noise * gap**2

    def forward(self, *params: Any, shape: torch.Size | None = None, noise: Tensor | None = None, **kwargs: Any) -> DiagLinearOperator:
        if noise is not None:  # observed noise given explicitly (e.g. by condition_on_observations)
            return DiagLinearOperator(noise)
        if not params:
            raise ValueError("FidelityNoise needs the inputs X (its variance depends on the fidelity column); none were passed")
        X = params[0] if torch.is_tensor(params[0]) else params[0][0]
        var = self.variance(X)
        if shape is not None and var.shape != shape:
            var = var.expand(shape)
        return DiagLinearOperator(var)


class FidelityGaussianLikelihood(_GaussianLikelihoodBase):
    """A Gaussian likelihood whose noise variance depends on the fidelity (:class:`FidelityNoise`)."""

    def __init__(self) -> None:
        super().__init__(noise_covar=FidelityNoise())

    @property
    def noise(self) -> Tensor:
        """The target noise ``τ²₁`` (what a ``GaussianLikelihood``'s ``noise`` means at ``s = 1``)."""
        return self.noise_covar.noise

    @property
    def extra_noise(self) -> Tensor:
        return self.noise_covar.extra_noise

    def noise_variance(self, X: Tensor) -> Tensor:
        """``τ²(s)`` at (model-internal) inputs ``X (..., d + 1)``, shape ``X.shape[:-1]``."""
        return self.noise_covar.variance(X)


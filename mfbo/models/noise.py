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

Correlated residuals of one configuration (``noise="correlated"``)
------------------------------------------------------------------
A run to epoch ``e`` reports its whole learning curve, and the strategies add a few of its
earlier values as observations (:meth:`mfbo.strategies.mf_gp.MultiFidelityGPStrategy._augmented`);
a run continued from a lower rung adds another point of the same curve. Those points do not
scatter independently around the GP's mean: a curve that lies above the model's prediction at
epoch 3 lies above it at epoch 9 as well (on real training, one initialisation and one data
order; on a deterministic surrogate, one configuration's misfit of a smooth model). Independent
noise counts them as separate pieces of evidence and lets a single curve pull the fit. The
``"correlated"`` noise model splits the extra noise of the cheap fidelities into an independent
part and a part shared by every evaluation of the same configuration ``x``:

.. math::

    \operatorname{Cov}(ε_i, ε_j) = δ_{ij} \, τ^2(s_i)
        + [x_i = x_j] \, τ^2_r \, (1 - s_i)(1 - s_j) \left(\frac{β}{s_i + s_j + β}\right)^{α},

so the noise variance at ``s`` is ``τ²₁ + (τ²_Δ + τ²_r ρ(s))(1 - s)²`` with
``ρ(s) = (β / (2 s + β))^α``, and the shared part is what two points of one configuration have
in common. The last factor is the exponential-decay kernel of freeze-thaw BO (Swersky et al.
2014, where each curve is an independent process of that kernel around its configuration's
asymptote): the residual fades from the cheapest fidelity at a learned rate, from linearly
(``α → 0``) to like ``1 / epoch``. The factor ``(1 - s)(1 - s')`` is not in freeze-thaw; it makes
the shared part vanish at the target, like the extra noise: the GP's signal at the target
already interpolates each evaluated configuration (on the deterministic benchmarks a target
value is the value a recommendation is scored by), so a residual there is not noise.
``τ²_r`` (``shared_noise``) has the extra noise's prior ``LogNormal(-4, 2)`` and floor ``1e-6``,
so with no shared residual the model is ``"fidelity"``; ``β`` and ``α`` have BoTorch's priors
for that kernel. The marginal likelihood has a mode with independent and one with shared
residuals, and the fit tries both (:func:`shared_residual_start`).

**Measured, not the default.** On the learning-curve problems of the development set of
``experiments/bench_real.py`` (``mf-ucb``, six LCBench tasks and ``digits-mlp-table``, seeds
0-4, 35 blocks), ``noise="correlated"`` ranked 3.03 / 2.56 / 2.24 at 25 / 50 / 100 % of the
budget against the four opponents, the default ``"fidelity"`` 2.96 / 2.49 / 2.23; block by
block it was better in 5 / 12 / 13 and worse in 6 / 13 / 17. The surrogates of LCBench are
deterministic and the main kernel's bias term ``(1 - s)(1 - s') k_1(x, x')`` with a short
lengthscale already gives each configuration much of its own curve, so there is little left
for the shared term; on curves whose offsets are rough in ``x`` (the tests) it predicts unseen
target values several times better.

It is implemented as a kernel added to the GP's covariance (:class:`SharedResidualKernel`), not
as a likelihood: a non-diagonal noise would have to be rebuilt by every BoTorch path that
conditions on new observations (``fantasize``, ``condition_on_observations``), while a kernel is
evaluated on the inputs wherever the model is. The latent process the acquisitions see is
therefore ``f(x, s)`` plus the configuration's residual: at an evaluated configuration the
posterior at a cheap fidelity follows its own curve (what another evaluation there would show),
and at the target nothing changes. Configurations are equal when their encodings agree to
``1e-9`` (:data:`SAME_CONFIGURATION`), the strategies' rounding of configuration keys.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from gpytorch.constraints import GreaterThan, Positive
from gpytorch.kernels import Kernel
from gpytorch.likelihoods.gaussian_likelihood import _GaussianLikelihoodBase
from gpytorch.likelihoods.noise_models import Noise
from gpytorch.priors import GammaPrior, LogNormalPrior
from linear_operator.operators import DiagLinearOperator
from torch import Tensor
from torch.nn import Parameter

__all__ = ["FidelityGaussianLikelihood", "FidelityNoise", "NOISE_MODELS", "SharedResidualKernel", "shared_residual_start"]

#: The ``noise`` option of :func:`mfbo.models.build_mf_gp` and the ``mf-*`` strategies.
NOISE_MODELS = ("fidelity", "correlated", "homoskedastic")

#: BoTorch's ``SingleTaskGP`` noise floor (standardised units), kept for the target noise.
TARGET_NOISE_FLOOR = 1e-4
EXTRA_NOISE_FLOOR = 1e-6
#: Two encoded configurations closer than this in every coordinate are the same configuration.
SAME_CONFIGURATION = 1e-9


def _set_constrained(module: torch.nn.Module, name: str, value: Tensor | float) -> None:
    """Set the constrained hyperparameter ``name`` of ``module`` (its raw parameter is ``raw_<name>``)."""
    raw = getattr(module, f"raw_{name}")
    value = torch.as_tensor(value, dtype=raw.dtype).reshape(raw.shape)
    module.initialize(**{f"raw_{name}": getattr(module, f"raw_{name}_constraint").inverse_transform(value)})


def _register_small_variance(module: torch.nn.Module, name: str) -> None:
    """Register the variance ``name`` (raw parameter ``raw_<name>``) of a noise component that may
    vanish: floor :data:`EXTRA_NOISE_FLOOR`, prior ``LogNormal(-4, 2)``, and an exp transform, so
    that the gradient in raw space is scale-free and the fit can move it from tiny to large."""
    module.register_parameter(f"raw_{name}", Parameter(torch.zeros(1)))
    module.register_constraint(f"raw_{name}", GreaterThan(EXTRA_NOISE_FLOOR, transform=torch.exp, inv_transform=torch.log))
    module.register_prior(f"{name}_prior", LogNormalPrior(-4.0, 2.0), lambda m: getattr(m, name), lambda m, v: _set_constrained(m, name, v))


class _Constrained:
    """A constrained hyperparameter read and set by value: ``module.<name>`` is ``raw_<name>``
    through its constraint, and assigning to it stores the raw value (as GPyTorch's
    ``GaussianLikelihood.noise``)."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, module: torch.nn.Module | None, owner: type | None = None) -> Any:
        if module is None:
            return self
        return getattr(module, f"raw_{self.name}_constraint").transform(getattr(module, f"raw_{self.name}"))

    def __set__(self, module: torch.nn.Module, value: Tensor | float) -> None:
        _set_constrained(module, self.name, value)


class FidelityNoise(Noise):
    """``τ²(s) = τ²₁ + τ²_Δ (1 - s)²`` on the last input column (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter("raw_noise", Parameter(torch.zeros(1)))
        self.register_constraint("raw_noise", GreaterThan(TARGET_NOISE_FLOOR))
        self.register_prior("noise_prior", LogNormalPrior(-4.0, 1.0), lambda m: m.noise, lambda m, v: _set_constrained(m, "noise", v))
        _register_small_variance(self, "extra_noise")
        # Deterministic start: the target noise at its prior's mode exp(-5) (BoTorch's start); the
        # extra noise at 0.1, not at its prior's mode exp(-8): from a tiny start the fit stays in
        # the homoscedastic local optimum (one noise level absorbs the cheap levels' scatter,
        # -mll/n 1.27 against 0.77 on a two-level test), while from 0.1 it reaches the floor when
        # the fidelities are noise-free.
        self.noise = math.exp(-5.0)
        self.extra_noise = 0.1

    noise = _Constrained("``τ²₁``, the noise variance at the target ``s = 1``, shape ``(1,)``.")
    extra_noise = _Constrained("``τ²_Δ``, the extra noise variance at ``s = 0``, shape ``(1,)``.")

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


class SharedResidualKernel(Kernel):
    r"""The residual one configuration's evaluations share (``noise="correlated"``, module
    docstring)::

        k((x, s), (x', s')) = τ²_r [x = x'] (1 - s)(1 - s') (β / (s + s' + β))^α

    Inputs ``(..., n, d + 1)`` and ``(..., m, d + 1)``, fidelity last; returns ``(..., n, m)``
    (``(..., n)`` with ``diag``). The last factor is the exponential-decay kernel of freeze-thaw
    BO (Swersky et al. 2014; BoTorch's ``ExponentialDecayKernel`` without its offset and with its
    priors, Gamma(3, 6) on ``β`` and ``α``), a mixture of decays ``exp(-λ s)``: a curve's residual
    is largest at the cheapest fidelity and fades at a learned rate, from linearly (``α → 0``)
    to like ``1 / epoch`` (``α ≈ 2`` on a linear epoch scale). The factor ``(1 - s)(1 - s')``
    makes it vanish at the target, as the module docstring explains. The product of the three
    is a valid kernel (products of kernels are). The indicator is piecewise constant in ``x``, so gradients reach ``s`` and the
    hyperparameters only. Starts: ``τ²_r = 0.05`` (below the extra noise's 0.1, so the fit moves
    variance into the shared part only when one configuration's points agree), ``β = α = 0.5``.
    """

    def __init__(self) -> None:
        super().__init__()
        _register_small_variance(self, "shared_noise")
        for name in ("decay_scale", "decay_power"):
            self.register_parameter(f"raw_{name}", Parameter(torch.zeros(1)))
            self.register_constraint(f"raw_{name}", Positive())
            self.register_prior(f"{name}_prior", GammaPrior(3.0, 6.0), lambda m, n=name: getattr(m, n), lambda m, v, n=name: _set_constrained(m, n, v))
            _set_constrained(self, name, 0.5)
        self.shared_noise = 0.05

    shared_noise = _Constrained("``τ²_r``, the shared variance at ``s = 0``, shape ``(1,)``.")
    decay_scale = _Constrained("``β``, shape ``(1,)``.")
    decay_power = _Constrained("``α``, shape ``(1,)``.")

    def decay(self, s1: Tensor, s2: Tensor) -> Tensor:
        """``(β / (s + s' + β))^α`` for broadcastable fidelities ``s1``, ``s2``."""
        beta = self.decay_scale
        return (beta / (s1.clamp_min(0.0) + s2.clamp_min(0.0) + beta)).pow(self.decay_power)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params: Any) -> Tensor:
        if params.get("last_dim_is_batch", False):
            raise NotImplementedError("last_dim_is_batch is not supported by SharedResidualKernel")
        if not diag:
            x1, x2 = x1.unsqueeze(-2), x2.unsqueeze(-3)
        with torch.no_grad():
            same = ((x1[..., :-1] - x2[..., :-1]).abs().amax(dim=-1) <= SAME_CONFIGURATION).to(x1.dtype)
        s1, s2 = x1[..., -1], x2[..., -1]
        return self.shared_noise * same * (1 - s1).clamp_min(0.0) * (1 - s2).clamp_min(0.0) * self.decay(s1, s2)


def shared_residual_start(model: torch.nn.Module) -> dict[str, Tensor]:
    """The second start of a ``noise="correlated"`` fit (``fit_model(alternative_starts=...)``): the
    cheap fidelities' residual all shared (``τ²_r = 1``, ``τ²_Δ = 0.01``). The marginal likelihood
    has a mode with each: from the default start (``τ²_r = 0.05``, ``τ²_Δ = 0.1``) the fit stays
    with independent noise even on curves that are each off by their own offset (``-mll/n``
    0.98 against 0.49 from this start on the rough-curve problem of the tests), and from this
    start it keeps a shared part where no configuration was evaluated twice (1.03 against 0.71).
    Returns raw values by parameter name; empty for a model without the shared term."""
    state: dict[str, Tensor] = {}
    for prefix, module in model.named_modules():
        if isinstance(module, SharedResidualKernel):
            state[f"{prefix}.raw_shared_noise"] = module.raw_shared_noise_constraint.inverse_transform(torch.tensor([1.0]))
        elif isinstance(module, FidelityNoise):
            state[f"{prefix}.raw_extra_noise"] = module.raw_extra_noise_constraint.inverse_transform(torch.tensor([0.01]))
    return state if any(name.endswith("raw_shared_noise") for name in state) else {}

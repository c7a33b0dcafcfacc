"""Covariance functions on the joint ``(x, s)`` space of a multi-fidelity GP.

Inputs are ``(..., d + 1)``: ``d`` unit-cube configuration columns ``x`` followed by the
normalised fidelity ``s in [0, 1]`` (``s = 1`` is the target), see
:mod:`mfbo.acquisition.base`. :func:`covar_module` builds one of :data:`KERNELS`:

``"linear-truncated"``
    BoTorch's default for ``SingleTaskMultiFidelityGP`` [Wu2019mf]_: a ``ScaleKernel`` over
    ``LinearTruncatedFidelityKernel`` (Matérn-5/2 parts with the kernel's own lengthscale
    priors Gamma(3, 6) and Gamma(6, 2), outputscale prior Gamma(2, 0.15))::

        k = sigma^2 [ k_0(x, x') + (1 - s)(1 - s')(1 + s s')^p k_1(x, x') ]

    The second term is the bias of fidelity ``s`` and vanishes at ``s = 1``. **The power is
    fixed at p = 1** (BoTorch learns it, prior Gamma(3, 3), mean 1): ``(1 + s s')^p`` is
    positive semi-definite only for integer ``p`` (its binomial series has negative
    coefficients otherwise; e.g. on ``s in {0, .25, .5, .75}`` with ``p = 0.49`` its smallest
    eigenvalue is ``-1.3e-3``), and multiplied by a long-lengthscale Matérn and an outputscale
    of ~10 this made ``K + noise I`` indefinite (eigenvalue ``-0.17``) at L-BFGS-B trial points,
    so fits from a warm start failed with ``NotPSDError`` (300 points, 5 levels). With
    ``p = 1`` the factor is ``(1 - s)(1 - s')(1 + s s')``, a valid kernel.
``"autoregressive"``
    The linear-truncated kernel with a learned signed scale ``a(s) = 1 + rho (1 - s)`` on its
    target part (:class:`AutoregressiveLinearTruncatedKernel`)::

        k = sigma^2 [ a(s) a(s') k_0(x, x') + (1 - s)(1 - s')(1 + s s') k_1(x, x') ]

    so cheap fidelities can carry a damped or inverted copy of the target (Kennedy & O'Hagan
    2000); ``rho = 0`` is ``"linear-truncated"``.
``"autoregressive-shaped"``
    The autoregressive kernel with a learned shape ``kappa > 0`` of the scale,
    ``a(s) = 1 + rho (1 - s)^kappa`` (``kappa = 1`` is ``"autoregressive"``; prior
    ``log kappa ~ Normal(0, 1.5)``, start ``kappa = 1``). A linear ``a(s)`` ties every level to the
    cheapest one: on a learning-curve ladder whose first epoch carries no ranking (LCBench),
    ``a(0) ~ 0`` forces ``a(s) ~ s``, and the model calls every epoch below the middle of the
    scale nearly uncorrelated with the target. Fitted to the 92 bracket-design evaluations of
    ``mf-ucb`` on lcbench/7593 (seed 0, log fidelity scale), the correlation between epoch ``e``
    and epoch 52 at equal ``x`` was, for ``e = 1, 2, 5, 10, 30``: ``"autoregressive"`` 0.00,
    0.20, 0.54, 0.77, 0.98; ``"autoregressive-shaped"`` (``kappa = 18.8``) 0.04, 0.76, 0.84,
    0.90, 0.98; the surrogate's own Pearson correlation over 200 random configurations 0.05,
    0.69, 0.85, 0.92, 0.98 (on the linear scale the plain kernel gave 0.01, 0.03, 0.09, 0.21,
    0.75). The bias part keeps its fixed amplitude, so ``corr(s, 1) <= 1 / sqrt(1 + (1 - s)^2
    (1 + s^2))`` whatever ``kappa``: the shape helps most on a scale where informative levels sit
    well above ``s = 0`` (the log scale of epochs). A better correlation model did not make a
    better optimiser, so it is not the default: on the development set of
    ``experiments/bench_real.py`` (``mf-ucb``, bracket design, log scale, 45 blocks) it ranked
    3.27 / 2.86 at 50 / 100 % of the budget against the four opponents, the plain kernel
    3.02 / 2.31; its best target value seen was worse in 22 blocks and better in 14.
``"autoregressive-damped"``
    The autoregressive kernel with ``rho > -1`` (:class:`DampedAutoregressiveKernel`): a cheap
    fidelity is a damped copy of the target plus a bias, never an inverted one, as befits the
    epochs of one training run. Measured for ``mf-ucb`` with its controller option
    ``design_in_window`` (:mod:`mfbo.acquisition.ucb`); not a default.
``"exp-decay"``
    For iteration fidelities (epochs, boosting rounds): ``k_x(x, x') * k_s(s, s')`` with the
    exponential-decay kernel of Swersky et al. (2014) as used by [Wu2019mf]_::

        k_s(s, s') = w + beta^alpha / (s + s' + beta)^alpha

    exactly as in ``SingleTaskMultiFidelityGP(iteration_fidelity=d, linear_truncated=False)``
    (priors Gamma(3, 6) on ``beta``, ``w``, ``alpha``).
``"downsampling"``
    For data-subset fidelities (fraction of the training set): ``k_x(x, x') * k_s(s, s')``
    with the downsampling kernel of Klein et al. (2017, FABOLAS)::

        k_s(s, s') = c + (1 - s)^(1 + delta) (1 - s')^(1 + delta)

    as in ``SingleTaskMultiFidelityGP(data_fidelities=[d], linear_truncated=False)`` (priors
    Gamma(3, 6) on ``c`` and ``delta``). It needs ``s <= 1``.
    Together, ``"exp-decay"`` and ``"downsampling"`` are BoTorch's "downsampling x
    exponential-decay" family; with one fidelity column the user picks the factor that matches
    the fidelity's type.
``"product"``
    "The fidelity is just another input": ``sigma^2 * Matern52_ARD(x, x') * Matern52(s, s')``.
``"icm"``
    Intrinsic coregionalisation over the ``L`` discrete fidelity levels
    (Bonilla et al. 2008; Álvarez et al. 2012)::

        k((x, s), (x', s')) = k_x(x, x') * B[l(s), l(s')],   B ∝ W W^T + diag(v)

    with ``W`` of shape ``L x rank``, ``B`` scaled to 1 at the target level, and ``l(s)`` the
    index of the nearest level, see :class:`NearestLevelIndexKernel`.

``k_x`` (all but ``"linear-truncated"``) is a Matérn-5/2 ARD kernel on ``x`` with BoTorch's
dimension-scaled lengthscale prior ``LogNormal(sqrt(2) + log(D) / 2, sqrt(3))`` and lengthscale
constraint ``>= 0.025`` (Hvarfner et al. 2024; ``D`` the number of input columns the kernel
sees: ``d`` for the factorised kernels, ``d + 1`` for ``"product"``, whose fidelity lengthscale
gets the same prior, as a ``SingleTaskGP`` on ``d + 1`` columns would).

Deviations from BoTorch:

- ``"autoregressive"`` is ours, and the default of the ``mf-*`` strategies: on
  ``mfhartmann6-terrible`` (cheap levels an inverted, noisy copy of the target) the
  linear-truncated model let ``mf-mes`` spend the whole budget at a biased ``z ~ 20`` (final
  regret 2.6, seed 0), the autoregressive one learned ``a(s)`` and moved to the target (0.28).
- ``"linear-truncated"``: the power ``p`` is fixed at 1, not learned (see above).
- ``SingleTaskMultiFidelityGP`` uses an RBF ``k_x`` with that prior; we use Matérn-5/2 (the
  smoothness BO practice prefers, and the one ``"linear-truncated"`` uses).
- BoTorch's ``"exp-decay"``/``"downsampling"`` products have no outputscale (the offsets ``w``/
  ``c`` carry the amplitude); we keep that.
- ``"icm"`` uses BoTorch's ``MultiTaskGP`` task covariance (``PositiveIndexKernel``: ``W >= 0``,
  so fidelities correlate non-negatively; ``B`` normalised at the target level; a
  ``Beta(2.5, 1.5)`` prior on the correlations), not gpytorch's sign-free, prior-free
  ``IndexKernel``: without a prior or a fixed scale, the amplitude of ``B`` and the constant
  mean drifted off together on standardised data (600 L-BFGS-B iterations on 20 points, the
  diagonal of ``B`` reaching ~37 and the mean -7). Unlike ``MultiTaskGP`` it is indexed by the
  normalised fidelity itself (nearest level), so the model stays a plain single-output GP on
  ``d + 1`` columns, and it starts deterministically
  (:meth:`NearestLevelIndexKernel.reset_covariance`).

References:
    .. [Wu2019mf] J. Wu, S. Toscano-Palmerin, P. I. Frazier, A. G. Wilson. Practical
       multi-fidelity Bayesian optimization for hyperparameter tuning. UAI 2019.
    K. Swersky, J. Snoek, R. P. Adams. Freeze-thaw Bayesian optimization. arXiv 2014.
    A. Klein, S. Falkner, S. Bartels, P. Hennig, F. Hutter. Fast Bayesian optimization of machine
    learning hyperparameters on large datasets. AISTATS 2017.
    E. V. Bonilla, K. M. Chai, C. K. I. Williams. Multi-task Gaussian process prediction. NIPS 2008.
    C. Hvarfner, E. O. Hellsten, L. Nardi. Vanilla Bayesian optimization performs great in high
    dimensions. ICML 2024.
"""

from __future__ import annotations

import math

import torch
from botorch.models.kernels.downsampling import DownsamplingKernel
from botorch.models.kernels.exponential_decay import ExponentialDecayKernel
from botorch.models.kernels.linear_truncated_fidelity import LinearTruncatedFidelityKernel
from botorch.models.kernels.positive_index import PositiveIndexKernel
from botorch.models.utils.priors import BetaPrior
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel, MaternKernel, ProductKernel, ScaleKernel
from gpytorch.priors import GammaPrior, LogNormalPrior, NormalPrior
from torch import Tensor

__all__ = ["KERNELS", "covar_module", "AutoregressiveLinearTruncatedKernel", "DampedAutoregressiveKernel", "matern_with_dim_scaled_prior", "NearestLevelIndexKernel", "check_kernel"]

KERNELS = ("linear-truncated", "autoregressive", "autoregressive-shaped", "autoregressive-damped", "exp-decay", "downsampling", "product", "icm")


def check_kernel(kernel: str) -> None:
    """Raise ``ValueError`` naming ``kernel`` and the allowed values unless it is in :data:`KERNELS`."""
    if kernel not in KERNELS:
        raise ValueError(f"option kernel must be one of {list(KERNELS)}, got {kernel!r}")


def matern_with_dim_scaled_prior(dims: list[int], prior_dim: int) -> MaternKernel:
    """Matérn-5/2 ARD on input columns ``dims`` with BoTorch's dimension-scaled lengthscale prior
    ``LogNormal(sqrt(2) + log(prior_dim) / 2, sqrt(3))``, initialised at its mode and
    constrained to ``>= 0.025`` (as ``get_covar_module_with_dim_scaled_prior``)."""
    prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(prior_dim), scale=math.sqrt(3))
    return MaternKernel(
        nu=2.5,
        ard_num_dims=len(dims),
        active_dims=dims,
        lengthscale_prior=prior,
        lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=prior.mode),
    )


class NearestLevelIndexKernel(PositiveIndexKernel):
    r"""ICM coregionalisation matrix over fidelity levels, indexed by the fidelity column itself.

    ``k(s, s') = B[l(s), l(s')]`` with ``l(s) = argmin_j |s - levels[j]|`` and BoTorch's
    :class:`~botorch.models.kernels.positive_index.PositiveIndexKernel` (an ``IndexKernel``)::

        B = (W W^T + diag(v)) / (W W^T + diag(v))[t, t],   W >= 0 (L x rank),  v > 0,

    ``t`` the target level (the one nearest ``s = 1``), so ``k = 1`` at the target and the data
    kernel's lengthscale prior sees unit-variance outcomes, as in BoTorch's ``MultiTaskGP``;
    a ``Beta(2.5, 1.5)`` prior on the correlations ``B_ij / sqrt(B_ii B_jj)`` (BoTorch's
    default). Mapping ``s`` to its level index inside the kernel keeps the GP a standard
    single-output model on ``(..., d + 1)`` inputs, so ``posterior``, ``fantasize`` and
    ``condition_on_observations`` work unchanged. The kernel is piecewise constant in ``s``:
    its gradient in ``s`` is zero.

    Args:
        levels: ``(L,)`` the allowed normalised fidelities, increasing.
        rank: the rank of ``W`` (``1 <= rank <= L``).
        **kwargs: passed on (``active_dims`` must select the ``s`` column).
    """

    def __init__(self, levels: Tensor, rank: int, **kwargs) -> None:
        levels = torch.as_tensor(levels, dtype=torch.double).reshape(-1)
        target = int((levels - 1.0).abs().argmin())
        super().__init__(
            num_tasks=levels.numel(), rank=rank, task_prior=BetaPrior(2.5, 1.5), target_task_index=target, **kwargs
        )
        self.register_buffer("levels", levels)
        self.reset_covariance()

    def reset_covariance(self) -> None:
        """Deterministic start (gpytorch draws ``W`` and ``v`` at random): correlations ~0.9.

        ``W[:, 0] = sqrt(0.9)`` is a component shared by all levels; ``W[l, j] = 0.1 j (l + 1) / L``
        for ``j >= 1`` breaks the symmetry between the columns (identical columns would stay
        identical under gradient ascent); ``v = max(0.1 - sum_{j >= 1} W[:, j]^2, 0.01)``, so
        ``B`` has a diagonal close to one. Fidelities of one objective are strongly positively
        correlated a priori; the marginal likelihood moves ``B`` from there.
        """
        L, rank = self.raw_covar_factor.shape[-2:]
        W = torch.full((L, rank), math.sqrt(0.9), dtype=torch.double)
        for j in range(1, rank):
            W[:, j] = 0.1 * j * torch.arange(1, L + 1, dtype=torch.double) / L
        var = (0.1 - (W[:, 1:] ** 2).sum(-1)).clamp_min(0.01)
        with torch.no_grad():
            self._set_covar_factor(W.to(self.raw_covar_factor).expand_as(self.raw_covar_factor))
            self._set_var(var.to(self.raw_var).expand_as(self.raw_var))

    def level_index(self, s: Tensor) -> Tensor:
        """``(..., n, 1)`` fidelities -> ``(..., n, 1)`` long indices of the nearest levels."""
        return (s - self.levels.to(s)).abs().argmin(dim=-1, keepdim=True)

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        i1, i2 = self.level_index(x1), self.level_index(x2)
        B = self._eval_covar_matrix()
        if B.dim() > 2:  # batched kernel parameters: gpytorch's interpolated operator handles them
            covar = super().forward(i1, i2)
            return covar.diagonal(dim1=-1, dim2=-2) if diag else covar
        # A dense gather: ~10x faster than IndexKernel's sparse interpolation at the sizes used here.
        i1, i2 = i1.squeeze(-1), i2.squeeze(-1)
        return B[i1, i2] if diag else B[i1.unsqueeze(-1), i2.unsqueeze(-2)]


class AutoregressiveLinearTruncatedKernel(LinearTruncatedFidelityKernel):
    r"""The linear-truncated kernel with a learned, signed fidelity scale on its target part::

        k((x, s), (x', s')) = a(s) a(s') k_0(x, x') + (1 - s)(1 - s')(1 + s s') k_1(x, x'),
        a(s) = 1 + rho (1 - s),

    i.e. ``f(x, s) = a(s) f_T(x) + delta(x, s)``: a cheap fidelity is a *scaled* copy of the
    target plus a bias that vanishes at ``s = 1``, Kennedy & O'Hagan's (2000) autoregressive
    model with a scale linear in the fidelity. ``rho = 0`` is the linear-truncated kernel; ``rho
    < 0`` damps the target signal towards cheap fidelities and ``rho < -1`` flips its sign at
    ``s = 0`` (an inverted cheap objective, as in ``mfhartmann*-terrible``). Without ``rho`` the
    bias ``delta`` must be independent of the target, so a cheap level that carries a weak or
    inverted copy of it looks like "target plus independent bias", more informative than it is.
    ``rho`` has a ``Normal(0, 1)`` prior and starts at 0. It is a valid kernel for every ``rho``
    (a rank-one rescaling of ``k_0`` plus the PSD bias part). The power ``p`` of the bias factor
    ``(1 + s s')^p`` is the parent's (fixed at 1 by :func:`covar_module`). One fidelity column only.

    With ``shaped=True`` the scale is ``a(s) = 1 + rho (1 - s)^kappa`` with a learned
    ``kappa = exp(log_kappa) > 0`` (prior ``log_kappa ~ Normal(0, 1.5)``, start 0), still a valid
    kernel for every value: a cheap level can be uninformative while the levels above it follow
    the target closely (kernel ``"autoregressive-shaped"``, module docstring).
    """

    def __init__(self, shaped: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if len(self.fidelity_dims) != 1:
            raise ValueError(f"the autoregressive kernel takes one fidelity column, got fidelity_dims={self.fidelity_dims}")
        self._register_rho()
        self.shaped = bool(shaped)
        if self.shaped:
            self.register_parameter("log_kappa", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1, dtype=torch.double)))
            self.register_prior("log_kappa_prior", NormalPrior(0.0, 1.5), lambda m: m.log_kappa)

    def _register_rho(self) -> None:
        """``rho``, unconstrained, with its ``Normal(0, 1)`` prior, starting at 0."""
        self.register_parameter("rho", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1, dtype=torch.double)))
        self.register_prior("rho_prior", NormalPrior(0.0, 1.0), lambda m: m.rho)

    def scale(self, s: Tensor) -> Tensor:
        """``a(s) = 1 + rho (1 - s)^kappa`` (``kappa = 1`` unless shaped), ``(..., n)``."""
        rho = self.rho.view(*self.batch_shape, 1)
        if not self.shaped:
            return 1 + rho * (1 - s)
        kappa = self.log_kappa.view(*self.batch_shape, 1).exp()
        return 1 + rho * (1 - s).clamp_min(1e-12).pow(kappa)  # not 0: d/dkappa 0^kappa is 0 * log 0

    def forward(self, x1: Tensor, x2: Tensor, diag: bool = False, **params) -> Tensor:
        if params.get("last_dim_is_batch", False):
            raise NotImplementedError("last_dim_is_batch is not supported by the autoregressive kernel")
        sdim = self.fidelity_dims[0]
        xdims = [i for i in range(x1.size(-1)) if i != sdim]
        x1_, x2_ = x1[..., xdims], x2[..., xdims]
        k0 = self.covar_module_unbiased(x1_, x2_, diag=diag)
        k1 = self.covar_module_biased(x1_, x2_, diag=diag)
        s1, s2 = x1[..., sdim].clamp(0, 1), x2[..., sdim].clamp(0, 1)  # (..., n), (..., m)
        a1, a2 = self.scale(s1), self.scale(s2)
        if diag:
            power = self.power.view(*self.batch_shape, 1)
            return a1 * a2 * k0 + (1 - s1) * (1 - s2) * (1 + s1 * s2).pow(power) * k1
        power = self.power.view(*self.batch_shape, 1, 1)
        outer = lambda u, v: u.unsqueeze(-1) * v.unsqueeze(-2)  # noqa: E731
        bias = outer(1 - s1, 1 - s2) * (1 + outer(s1, s2)).pow(power)
        return outer(a1, a2) * k0 + bias * k1


class DampedAutoregressiveKernel(AutoregressiveLinearTruncatedKernel):
    r"""The autoregressive kernel with ``rho > -1``: ``a(s) = 1 + rho (1 - s) > 0`` on ``[0, 1)``, so
    a cheap fidelity is a damped (or amplified) copy of the target plus a bias, never an inverted
    one (kernel ``"autoregressive-damped"``).

    For iteration fidelities: the value after ``e`` epochs of a run and its value at the target
    are two points of one learning curve, and no optimiser should read a low epoch as evidence
    *against* a configuration. Fitted freely on LCBench's bracket designs, ``rho`` went to about
    ``-2.8`` (lcbench/146212, ``mf-ucb`` seed 0), i.e. every epoch below about 33 of 52 an
    inverted copy of the target (see the target-share controller in :mod:`mfbo.acquisition.ucb`).
    ``rho = -1 + softplus(raw_rho)`` (gpytorch's ``GreaterThan(-1)``); the ``Normal(0, 1)`` prior
    is on ``rho``, which starts at 0, as in the parent.
    """

    def _register_rho(self) -> None:
        self.register_parameter("raw_rho", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1, dtype=torch.double)))
        self.register_constraint("raw_rho", GreaterThan(-1.0))
        with torch.no_grad():
            self.raw_rho.fill_(float(self.raw_rho_constraint.inverse_transform(torch.tensor(0.0, dtype=torch.double))))
        self.register_prior("rho_prior", NormalPrior(0.0, 1.0), lambda m: m.rho)

    @property
    def rho(self) -> Tensor:
        """``(*batch_shape, 1)``, ``> -1``."""
        return self.raw_rho_constraint.transform(self.raw_rho)


def covar_module(kernel: str, dim: int, fidelities: Tensor | None = None, icm_rank: int | None = None) -> Kernel:
    """The covariance module ``kernel`` on ``dim + 1`` input columns (fidelity last).

    Args:
        kernel: one of :data:`KERNELS`.
        dim: ``d``, the number of configuration columns (``>= 1``).
        fidelities: ``(L,)`` allowed normalised levels; used (and required) by ``"icm"`` only.
        icm_rank: the rank of ``W`` for ``"icm"`` (default ``min(L, 2)``).
    """
    check_kernel(kernel)
    xdims, sdim = list(range(dim)), dim
    if kernel in ("linear-truncated", "autoregressive", "autoregressive-shaped", "autoregressive-damped"):
        if kernel == "linear-truncated":
            truncated = LinearTruncatedFidelityKernel(fidelity_dims=[sdim], dimension=dim + 1, nu=2.5)
        elif kernel == "autoregressive-damped":
            truncated = DampedAutoregressiveKernel(fidelity_dims=[sdim], dimension=dim + 1, nu=2.5)
        else:
            truncated = AutoregressiveLinearTruncatedKernel(
                shaped=kernel == "autoregressive-shaped", fidelity_dims=[sdim], dimension=dim + 1, nu=2.5
            )
        truncated.power = torch.ones_like(truncated.power)  # fixed: PSD only for integer powers (module docstring)
        truncated.raw_power.requires_grad_(False)
        return ScaleKernel(truncated, outputscale_prior=GammaPrior(2.0, 0.15))
    if kernel == "exp-decay":
        decay = ExponentialDecayKernel(
            lengthscale_prior=GammaPrior(3.0, 6.0), offset_prior=GammaPrior(3.0, 6.0), power_prior=GammaPrior(3.0, 6.0),
            active_dims=[sdim],
        )
        return ProductKernel(matern_with_dim_scaled_prior(xdims, dim), decay)
    if kernel == "downsampling":
        down = DownsamplingKernel(offset_prior=GammaPrior(3.0, 6.0), power_prior=GammaPrior(3.0, 6.0), active_dims=[sdim])
        return ProductKernel(matern_with_dim_scaled_prior(xdims, dim), down)
    if kernel == "product":
        return ScaleKernel(
            ProductKernel(matern_with_dim_scaled_prior(xdims, dim + 1), matern_with_dim_scaled_prior([sdim], dim + 1)),
            outputscale_prior=GammaPrior(2.0, 0.15),
        )
    # icm
    if fidelities is None:
        raise ValueError(
            "kernel 'icm' needs a discrete fidelity: pass fidelities=(L,) tensor of the allowed normalised "
            "levels; got fidelities=None (a continuous fidelity). Use another kernel for continuous fidelities."
        )
    levels = torch.as_tensor(fidelities, dtype=torch.double)
    if levels.dim() != 1 or levels.numel() < 1 or not torch.isfinite(levels).all() or (levels.diff() <= 0).any():
        raise ValueError(
            "kernel 'icm': fidelities must be a 1-D tensor of finite, strictly increasing normalised levels, "
            f"got {fidelities!r}"
        )
    L = levels.numel()
    rank = min(L, 2) if icm_rank is None else icm_rank
    if isinstance(rank, bool) or int(rank) != rank or not 1 <= rank <= L:
        raise ValueError(f"option icm_rank must be an integer in [1, {L}] (the number of fidelity levels), got {icm_rank!r}")
    coregionalisation = NearestLevelIndexKernel(levels, int(rank), active_dims=[sdim])
    return ProductKernel(matern_with_dim_scaled_prior(xdims, dim), coregionalisation)

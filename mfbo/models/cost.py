"""Cost models: the cost of evaluating a configuration at a fidelity, as a torch callable.

A :class:`CostModel` maps inputs ``X`` of shape ``(..., d + 1)`` (configuration columns, then
the normalised fidelity ``s``) to positive costs of shape ``(...)``, differentiable in ``X``;
this is ``AcquisitionContext.cost`` (:mod:`mfbo.acquisition.base`).

- :class:`KnownCost`: the problem states the cost and it depends on the fidelity alone. It is
  tabulated on the fidelity axis (every level of a discrete fidelity, ``grid_size`` points of a
  continuous one) and interpolated piecewise-linearly in ``s``: exact at the levels, within
  ``max|c''| h^2 / 8`` of a smooth cost on a grid of step ``h`` (``~3e-5`` for
  ``0.1 + 0.9 s^2`` on 65 points), and cheap and differentiable (almost everywhere) inside the
  acquisition optimiser, which calls it thousands of times.
- :class:`LearnedCost`: the cost is unknown or depends on the configuration. A GP on
  ``log cost`` over ``(x, s)``, as in Snoek et al. (2012, "EI per second"), predicts
  ``exp(posterior mean)``; optionally with a power law in the fidelity value as its mean
  (:class:`LogFidelityValue`), so that it extrapolates a configuration's cost up the fidelity
  axis instead of reverting to the average configuration's.
- :class:`ContinuationCost`: wraps either, for a resumable problem: taking an evaluated
  configuration on to a higher fidelity costs only the increment (freeze-thaw, Swersky et al.
  2014), so the cost-aware acquisitions weigh continuing a run against starting a new one.

Notes: config-independence of a stated cost is checked on a few random configurations, not
proved; a cost that depends on the configuration only rarely can slip through.

References:
    J. Snoek, H. Larochelle, R. P. Adams. Practical Bayesian optimization of machine learning
    algorithms. NIPS 2012.
    K. Swersky, J. Snoek, R. P. Adams. Freeze-thaw Bayesian optimization. arXiv:1406.3896, 2014.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.models.utils.gpytorch_modules import get_gaussian_likelihood_with_lognormal_prior
from gpytorch.means import Mean
from torch import Tensor

from .fit import FitReport, fit_model, hyperparameters, load_hyperparameters
from .kernels import matern_with_dim_scaled_prior

__all__ = ["CostModel", "KnownCost", "LearnedCost", "ContinuationCost", "LogFidelityValue", "FidelityTrendMean"]

#: Relative tolerance of the config-independence check of :meth:`KnownCost.from_problem`.
CONFIG_RTOL = 1e-9
#: Number of random configurations :meth:`KnownCost.from_problem` checks.
N_CHECK_CONFIGS = 4


class CostModel:
    """``X (..., d + 1) -> cost (...)``, positive and differentiable in ``X``."""

    kind: ClassVar[str] = "cost"

    def __call__(self, X: Tensor) -> Tensor:
        raise NotImplementedError  # abstract


class KnownCost(CostModel):
    """Piecewise-linear interpolation of a fidelity-only cost in ``s``.

    ``cost(X) = c_k + (s - s_k) (c_{k+1} - c_k) / (s_{k+1} - s_k)`` for ``s = X[..., -1]`` in
    ``[s_k, s_{k+1}]``; outside ``[s_0, s_K]``, ``s`` is clamped (the cost stays positive).

    Args:
        knots: ``(K,)`` strictly increasing normalised fidelities, ``K >= 1``.
        costs: ``(K,)`` positive costs at ``knots``.
    """

    kind: ClassVar[str] = "known"

    def __init__(self, knots: Tensor, costs: Tensor) -> None:
        knots = torch.as_tensor(knots, dtype=torch.double).reshape(-1)
        costs = torch.as_tensor(costs, dtype=torch.double).reshape(-1)
        if knots.numel() < 1 or knots.shape != costs.shape:
            raise ValueError(
                "KnownCost: knots and costs must be (K,) tensors of one length K >= 1, "
                f"got {tuple(knots.shape)} and {tuple(costs.shape)}"
            )
        if not (torch.isfinite(knots).all() and (knots.diff() > 0).all()):
            raise ValueError(f"KnownCost: knots must be finite and strictly increasing, got {knots.tolist()}")
        if not (torch.isfinite(costs).all() and (costs > 0).all()):
            raise ValueError(f"KnownCost: costs must be finite and > 0, got {costs.tolist()}")
        self.knots, self.costs = knots, costs

    @classmethod
    def from_problem(cls, problem, grid_size: int = 65, fidelity=None) -> KnownCost:
        """Tabulate ``problem.cost(config, fidelity)`` on the fidelity axis.

        ``fidelity`` (default: the problem's) normalises the axis: a strategy that rescales the
        fidelity (``fidelity_scale``) passes its own, so that ``s`` means the same to both.

        Discrete fidelities (``problem.fidelity.is_discrete``) at every level, continuous ones
        at ``grid_size`` equally spaced ``s`` from 0 to ``normalize(high)``. The cost is checked
        to be the same for a few configurations sampled with a fixed-seed generator.

        Raises:
            ValueError: the problem has no fidelity, states no cost (``cost`` returns ``None``),
                returns a non-positive cost, or its cost depends on the configuration (use
                :class:`LearnedCost`); ``grid_size < 2``.
        """
        fidelity = getattr(problem, "fidelity", None) if fidelity is None else fidelity
        name = getattr(problem, "name", type(problem).__name__)
        if fidelity is None:
            raise ValueError(f"KnownCost: problem {name!r} has no fidelity, so there is no cost over fidelities")
        if fidelity.is_discrete:
            values = list(fidelity.grid())
            knots = np.array([fidelity.normalize(v) for v in values], dtype=float)
        else:
            if isinstance(grid_size, bool) or not isinstance(grid_size, (int, np.integer)) or grid_size < 2:
                raise ValueError(f"KnownCost: option grid_size must be an integer >= 2, got {grid_size!r}")
            knots = np.linspace(0.0, fidelity.normalize(fidelity.high), int(grid_size))
            values = [fidelity.denormalize(s) for s in knots]
        configs = problem.space.sample(np.random.default_rng(0), N_CHECK_CONFIGS)
        table = np.empty((len(configs), len(values)))
        for i, config in enumerate(configs):
            for j, value in enumerate(values):
                c = problem.cost(config, value)
                if c is None:
                    raise ValueError(
                        f"KnownCost: problem {name!r} does not state its cost (problem.cost returned None); use LearnedCost"
                    )
                table[i, j] = float(c)
        if not (np.isfinite(table).all() and (table > 0).all()):
            raise ValueError(f"KnownCost: problem {name!r} states non-positive or non-finite costs {table.tolist()}")
        if not np.allclose(table, table[:1], rtol=CONFIG_RTOL, atol=0.0):
            raise ValueError(
                f"KnownCost: the cost of problem {name!r} depends on the configuration, not on the fidelity alone; "
                "use LearnedCost"
            )
        return cls(torch.as_tensor(knots), torch.as_tensor(table[0]))

    def __call__(self, X: Tensor) -> Tensor:
        knots, costs = self.knots.to(X), self.costs.to(X)
        if knots.numel() == 1:
            return costs[0] + 0.0 * X[..., -1]
        s = X[..., -1].clamp(knots[0], knots[-1])
        k = (torch.searchsorted(knots, s.detach().contiguous(), right=True) - 1).clamp(0, knots.numel() - 2)
        s0, s1, c0, c1 = knots[k], knots[k + 1], costs[k], costs[k + 1]
        return c0 + (s - s0) * (c1 - c0) / (s1 - s0)

    def __repr__(self) -> str:
        low, high = float(self.costs.min()), float(self.costs.max())
        return f"KnownCost(knots={self.knots.numel()}, costs in [{low:.4g}, {high:.4g}])"


class LogFidelityValue:
    """``φ(s) = log v(s)``, the log of the fidelity value at the normalised fidelity ``s``
    (``(...,) -> (...)``, differentiable, no rounding to allowed values): for a fidelity normalised
    linearly, ``v(s) = low + s (target - low)``; on the log scale ``log v`` is linear in ``s``.
    ``s`` is clamped to ``>= 0``. Needs ``low > 0`` (:meth:`from_fidelity` returns ``None``
    otherwise)."""

    def __init__(self, low: float, target: float, log: bool = False) -> None:
        if not 0 < low < target:
            raise ValueError(f"LogFidelityValue: needs 0 < low < target, got low={low!r}, target={target!r}")
        self.low, self.target, self.log = float(low), float(target), bool(log)

    @classmethod
    def from_fidelity(cls, fidelity) -> "LogFidelityValue | None":
        """For a :class:`mfbo.Fidelity`; ``None`` when its lowest value is not positive."""
        low, target = float(fidelity.low), float(fidelity.target)
        return cls(low, target, fidelity.log) if 0 < low < target else None

    def __call__(self, s: Tensor) -> Tensor:
        s = s.clamp_min(0.0)
        if self.log:
            return np.log(self.low) + s * (np.log(self.target) - np.log(self.low))
        return (self.low + s * (self.target - self.low)).log()

    def __repr__(self) -> str:
        return f"LogFidelityValue(low={self.low:g}, target={self.target:g}, log={self.log})"


class FidelityTrendMean(Mean):
    """The GP mean ``m(x, s) = c + b φ(s)`` with learned ``c`` and ``b``: on the log-cost scale
    with ``φ = log v`` (:class:`LogFidelityValue`), a power law ``cost ∝ v^b`` in the fidelity
    value, common to all configurations. Inputs ``(..., n, d + 1)``, the fidelity last;
    ``c = b = 0`` at the start."""

    def __init__(self, feature) -> None:
        super().__init__()
        self.feature = feature
        self.register_parameter("constant", torch.nn.Parameter(torch.zeros(1, dtype=torch.double)))
        self.register_parameter("slope", torch.nn.Parameter(torch.zeros(1, dtype=torch.double)))

    def forward(self, x: Tensor) -> Tensor:
        return self.constant + self.slope * self.feature(x[..., -1])


class LearnedCost(CostModel):
    """A GP on ``log cost`` over ``(x, s)``; predicts ``exp(posterior mean)``.

    Model: BoTorch's default ``SingleTaskGP`` (``Standardize(m=1)``, no outputscale, the
    dimension-scaled lengthscale prior, Gaussian likelihood with noise floor 1e-4) except for a
    Matérn-5/2 ARD kernel on all ``d + 1`` columns instead of the RBF
    (:func:`mfbo.models.kernels.matern_with_dim_scaled_prior`), fitted with
    :func:`mfbo.models.fit_model` (its :class:`~mfbo.models.FitReport` is :attr:`report`).
    Costs are positive and vary over orders of magnitude, so their logarithm is modelled.

    Prediction ``exp(mu(X))``, the median of the log-normal predictive, rather than its mean
    ``exp(mu + sigma^2 / 2)``: the mean grows with the posterior variance, so it would charge
    unexplored configurations and fidelities more than explored ones, penalising exactly the
    exploration a cost-aware acquisition should decide on, and it blows up far from the data.
    The median is the natural plug-in of a model fitted on the log scale, and ratios of predicted
    costs (what cost-aware acquisitions use) are then ``exp`` of differences of posterior means.

    **The trend** (``trend``, a :class:`LogFidelityValue`): the mean becomes the power law
    ``log cost = c + b log v(s)`` (:class:`FidelityTrendMean`) instead of a constant. With a
    constant mean the GP reverts, away from a configuration's observations, to the average
    log cost, so it underestimates what training an expensive configuration longer costs:
    on LCBench (``mf-ucb``, bracket design; lcbench/126025 seed 0, 21
    trials in) a configuration that had cost 111 for 9 epochs (per-epoch costs are constant
    there, so about 640 for 52) was predicted to cost 234 at epoch 52, so continuing its run
    was priced at 124 (:class:`ContinuationCost`); it was later continued and charged 618, 20 %
    of the whole budget (31 % in one trial on lcbench/168330). With the trend the prediction
    was 303, the increment 193: still low, but the power law makes every configuration's cost
    grow with the fidelity value (on a pure power-law cost it is exact, see the tests), and
    the configuration's residual is carried up the fidelity axis as far as the ARD
    lengthscale of ``s`` says it holds.

    Args:
        train_X: ``(n, d + 1)`` inputs.
        costs: ``(n,)`` observed positive costs.
        seed: seeds the hyperparameter fit.
        trend: ``φ(s)`` for the power-law mean (default ``None``: a constant mean, BoTorch's).
        previous_state: hyperparameters of an earlier fit (:attr:`hyperparameters`): the warm
            start of the fit, or, with ``refit=False``, the hyperparameters used as they are
            (the model then only conditions on the new data). A strategy refits on the same
            data-growth schedule as its main GP; before, a cold fit at every step was most of a
            step's time on LCBench (4.6 of 8.5 s at n = 200).
        refit: whether to optimise the hyperparameters (``False`` needs ``previous_state``).
    """

    kind: ClassVar[str] = "learned"

    def __init__(
        self, train_X: Tensor, costs: Tensor, *, seed: int = 0, previous_state: dict | None = None, refit: bool = True,
        trend: LogFidelityValue | None = None,
    ) -> None:
        train_X = torch.as_tensor(train_X, dtype=torch.double)
        costs = torch.as_tensor(costs, dtype=torch.double).reshape(-1)
        if train_X.dim() != 2 or train_X.shape[0] != costs.numel() or train_X.shape[0] < 1:
            raise ValueError(
                "LearnedCost: train_X must be (n, d + 1) and costs (n,), n >= 1, "
                f"got {tuple(train_X.shape)} and {tuple(costs.shape)}"
            )
        if not (torch.isfinite(train_X).all() and torch.isfinite(costs).all() and (costs > 0).all()):
            raise ValueError("LearnedCost: train_X must be finite and costs finite and > 0")
        dims = list(range(train_X.shape[-1]))
        self.model = SingleTaskGP(
            train_X,
            costs.log().unsqueeze(-1),
            covar_module=matern_with_dim_scaled_prior(dims, len(dims)),
            mean_module=None if trend is None else FidelityTrendMean(trend),
            likelihood=get_gaussian_likelihood_with_lognormal_prior(),
            outcome_transform=Standardize(m=1),
        ).to(torch.double)
        if not refit and previous_state is None:
            raise ValueError("LearnedCost: refit=False needs the previous_state to use")
        self.report: FitReport | None = None
        if refit:
            self.report = fit_model(self.model, seed=seed, previous_state=previous_state)
        else:
            load_hyperparameters(self.model, previous_state)
        self.model.eval()
        #: the fitted hyperparameters, the ``previous_state`` of the next step
        self.hyperparameters = hyperparameters(self.model)
        self._weights = self._mean_weights()

    def _mean_weights(self) -> Tensor:
        """``(K + sigma^2 I)^{-1} (y - m)`` in the standardised log-cost scale, shape ``(n,)``: the
        posterior mean is then ``m + k(X, X_train) @ weights``, one kernel product per call."""
        model = self.model
        with torch.no_grad():
            X, y = model.train_inputs[0], model.train_targets
            K = model.covar_module(X).to_dense() + model.likelihood.noise.reshape(()) * torch.eye(len(X), dtype=X.dtype)
            residual = (y - model.mean_module(X)).unsqueeze(-1)
            L = torch.linalg.cholesky(K + 1e-9 * K.diagonal().mean() * torch.eye(len(X), dtype=X.dtype))
            return torch.cholesky_solve(residual, L).squeeze(-1)

    def __call__(self, X: Tensor) -> Tensor:
        """``exp`` of the posterior mean of log cost, by the cached weights (the same values as
        ``model.posterior(X).mean``, without GPyTorch's per-call machinery, which was a third of
        an acquisition optimisation's time on LCBench)."""
        model, flat = self.model, X.reshape(-1, X.shape[-1])
        train_X = model.train_inputs[0]
        mean = model.mean_module(flat) + model.covar_module(flat, train_X).to_dense() @ self._weights
        transform = model.outcome_transform
        log_cost = mean * transform.stdvs.reshape(()) + transform.means.reshape(())
        return log_cost.reshape(X.shape[:-1]).exp()

    def __repr__(self) -> str:
        fit = "reused" if self.report is None else "ok" if self.report.ok else f"fallback {self.report.fallback}"
        return f"LearnedCost(n={self.model.train_targets.numel()}, fit {fit})"


class ContinuationCost(CostModel):
    """The cost of an evaluation when evaluated configurations can be continued.

    A row ``(x, s)`` whose configuration columns equal (within ``atol``, max-norm) those of an
    evaluated configuration ``x_j`` that has reached ``s_j < s`` is a **continuation** and costs
    the increment ``c(x, s) - c(x, s_j)`` (floored at ``floor * c(x, s)``, so the cost stays
    positive); this is how a resumable problem charges
    (:meth:`mfbo.problems.Problem.increment_cost`). A row with ``s <= s_j`` is a **repeat**: the
    run to ``s_j`` has already passed ``s`` (its learning curve holds the value), so repeating
    it buys nothing, and it costs ``repeat_factor * c(x, s)`` (default ``1e6``), which keeps every
    cost-aware acquisition off it. (A GP that explains misfit as noise otherwise finds value in
    repeating its best points: on LCBench ``mf-kg`` re-ran one configuration at epoch 51 three
    times in a row.) Every other row is a new evaluation and costs ``c(x, s)``.

    The increment is exact at the evaluated configurations only: the continuous optimiser
    around them sees the full cost (the cost is discontinuous there), which is why the strategy
    hands the continuations to the optimiser as explicit candidates
    (``AcquisitionContext.candidates``).

    Args:
        base: the cost of a new evaluation, ``X (..., d + 1) -> (...)``.
        configs: ``(m, d)`` encodings of the evaluated configurations (distinct).
        reached: ``(m,)`` the normalised fidelity each has reached.
        repeat_factor: the cost multiplier of a repeat (``>= 1``).
        repeat_below: ``(m,)`` the ``s`` below which a row of that configuration is a repeat
            (default ``reached``). For an integer fidelity the strategy passes the ``s`` of
            ``reached + 1/2`` epoch: anything below rounds back to the epoch already reached,
            so the optimiser must not see it as a cheap continuation.
    """

    kind: ClassVar[str] = "continuation"

    def __init__(
        self, base: CostModel, configs: Tensor, reached: Tensor, *, atol: float = 1e-6, floor: float = 1e-3, repeat_factor: float = 1e6,
        repeat_below: Tensor | None = None,
    ) -> None:
        configs = torch.as_tensor(configs, dtype=torch.double)
        reached = torch.as_tensor(reached, dtype=torch.double).reshape(-1)
        if configs.dim() != 2 or configs.shape[0] != reached.numel():
            raise ValueError(f"ContinuationCost: configs must be (m, d) and reached (m,), got {tuple(configs.shape)} and {tuple(reached.shape)}")
        if not repeat_factor >= 1:
            raise ValueError(f"ContinuationCost: repeat_factor must be >= 1, got {repeat_factor!r}")
        self.base, self.configs, self.reached, self.atol, self.floor = base, configs, reached, float(atol), float(floor)
        self.repeat_factor = float(repeat_factor)
        self.repeat_below = reached if repeat_below is None else torch.as_tensor(repeat_below, dtype=torch.double).reshape(-1)
        if self.repeat_below.shape != reached.shape:
            raise ValueError(f"ContinuationCost: repeat_below must be (m,) like reached, got {tuple(self.repeat_below.shape)}")

    def reached_at(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """``(reached, repeat_below)``, each ``(...)``: the fidelity reached by the configuration
        of each row and the ``s`` below which the row repeats it; ``-inf`` for a configuration
        never evaluated."""
        if not len(self.configs):
            none = torch.full(X.shape[:-1], -torch.inf, dtype=X.dtype)
            return none, none
        x = X[..., : self.configs.shape[-1]].detach()
        match = (x.unsqueeze(-2) - self.configs.to(X)).abs().amax(-1) <= self.atol  # (..., m)
        never = torch.full_like(self.reached.to(X), -torch.inf)
        reached = torch.where(match, self.reached.to(X), never).amax(-1)
        below = torch.where(match, self.repeat_below.to(X), never).amax(-1)
        return reached, below

    def __call__(self, X: Tensor) -> Tensor:
        full = self.base(X)
        reached, repeat_below = self.reached_at(X)
        s = X[..., -1].detach()
        repeats = torch.isfinite(reached) & (s < repeat_below + 1e-12)
        continues = torch.isfinite(reached) & ~repeats
        cost = torch.where(repeats, self.repeat_factor * full, full)
        if not bool(continues.any()):
            return cost
        start = torch.cat([X[..., :-1], torch.where(continues, reached, s).unsqueeze(-1)], dim=-1)
        increment = (full - self.base(start)).clamp_min(self.floor * full)
        return torch.where(continues, increment, cost)

    def __repr__(self) -> str:
        return f"ContinuationCost({self.base!r}, {len(self.configs)} configurations)"

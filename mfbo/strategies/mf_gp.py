"""Multi-fidelity GP Bayesian optimisation: one strategy, five cost-aware acquisitions.

Every ``mf-*`` strategy is this loop with a different :class:`~mfbo.acquisition.base.Acquisition`:

1. **Initial design** (see :func:`initial_design`): a nested scrambled-Sobol design whose
   fidelities are spread so that the cheap levels dominate; it spends ``init_fraction`` of the
   run's budget (10 % by default), charged like any other trial.
2. **Surrogate**: a GP on ``(x, s)`` (:func:`mfbo.models.build_mf_gp`; kernel and noise model
   selectable, by default noise that grows towards cheap fidelities), fitted
   to all successful observations at every fidelity with ``Y = -value`` (BoTorch maximises;
   mfbo minimises: the sign flips here and only here). Fitting is warm-started from the last
   step's hyperparameters and never ends the run (:func:`mfbo.models.fit_model`); a fallback is
   written to the trial log as a note.
3. **Cost model**: the problem's known cost when it depends on the fidelity alone
   (:class:`~mfbo.models.KnownCost`), else a GP on log-cost learned from the observed costs
   (:class:`~mfbo.models.LearnedCost`). ``cost_model="known" | "learned" | "auto"``.
4. **Acquisition**: proposes ``q`` points ``(x, s)`` jointly, per unit cost, aware of pending
   trials; with ``q > 1`` the batch is queued and handed out by successive asks.
5. **Recommendation**: the argmax of the posterior mean of ``-value`` at the target fidelity
   over the evaluated configurations and one optimised candidate ("inference regret", the
   quantity multi-fidelity papers report).

All tensors are float64; all randomness comes from the strategy's seeded generator.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, ClassVar

import gpytorch
import numpy as np
import torch
from torch import Tensor

from ..acquisition import MultiFidelityEI, MultiFidelityGIBBON, MultiFidelityKG, MultiFidelityMES, MultiFidelityUCB
from ..acquisition.base import Acquisition, AcquisitionContext
from ..acquisition.optimize import optimize_joint
from ..models import KERNELS, NOISE_MODELS, CostModel, KnownCost, LearnedCost, build_mf_gp, fit_model
from ..models.fit import hyperparameters, load_hyperparameters
from ..rng import draw_seed, torch_seed_scope
from ..space import Fidelity
from .base import Strategy

__all__ = [
    "MultiFidelityGPStrategy", "MFKGStrategy", "MFMESStrategy", "MFGIBBONStrategy", "MFEIStrategy", "MFUCBStrategy",
    "MULTI_FIDELITY_STRATEGIES", "initial_design", "DESIGN_LEVELS_CONTINUOUS", "COST_MODELS",
]

DTYPE = torch.double
#: Discrete fidelities with more levels than this are optimised as continuous and rounded.
MAX_ENUMERATED_LEVELS = 16
#: Exact Cholesky solves up to this many points (GPyTorch's default, 800, would switch larger
#: problems to conjugate gradients, which is slower and less accurate at these sizes).
MAX_CHOLESKY_SIZE = 10_000
#: Normalised fidelities at which the initial design samples a continuous fidelity.
DESIGN_LEVELS_CONTINUOUS = (0.0, 0.25, 0.5, 0.75, 1.0)
COST_MODELS = ("auto", "known", "learned")
#: Configurations over which a configuration-dependent predicted cost is averaged per design level.
COST_PROBE_SIZE = 32


def initial_design(level_costs: list[float], design_budget: float | None, min_points: int, min_target: int = 1) -> list[int]:
    """How many design points each fidelity level gets (levels in increasing order).

    The design budget is split equally between the levels, so a level gets
    ``n_l = floor(share / cost_l)`` points and the cheap levels dominate (a level too expensive
    for its share gets none). The target gets at least ``min_target`` points as far as the
    whole design budget pays for them, and always one; if the design has fewer than ``min_points`` points the cheapest level is topped up; on tiny budgets this can
    exceed the design budget (the loop charges every point all the same). Configurations come
    from one Sobol sequence, level ``l`` taking its first ``n_l`` points, and no level gets more
    points than the cheapest: the design is *nested* (every configuration run at a higher level
    also ran at the cheapest one), which is what lets the GP learn the correlation between
    fidelities (Kennedy & O'Hagan 2000).

    Without a budget (``design_budget=None``, e.g. a bare ask/tell loop) the counts are
    proportional to ``1 / cost`` with ``min_points`` points in all.

    >>> initial_design([0.1, 0.325, 1.0], design_budget=3.0, min_points=4)
    [10, 3, 1]
    """
    costs = np.asarray(level_costs, dtype=float)
    if design_budget is None:
        weights = (1 / costs) / np.sum(1 / costs)
        counts = np.floor(weights * min_points).astype(int)
    else:
        counts = np.floor(design_budget / len(costs) / costs + 1e-9).astype(int)
    affordable = len(costs) if design_budget is None else int(np.floor(design_budget / costs[-1] + 1e-9))
    counts[-1] = max(counts[-1], min(min_target, affordable), 1)
    counts[0] = max(counts[0], counts[-1])  # the target's configurations also run at the cheapest level
    if counts.sum() < min_points:
        counts[0] += min_points - counts.sum()
    counts = np.minimum(counts, counts[0])  # nested in the cheapest level's configurations
    return counts.tolist()


class MultiFidelityGPStrategy(Strategy):
    """GP on ``(x, s)`` plus a cost-aware acquisition; see the module docstring.

    Options (besides the acquisition's own, listed by ``mfbo list strategies``):
        kernel: one of :data:`mfbo.models.KERNELS` (default ``"autoregressive"``: BoTorch's
            linear-truncated kernel plus a learned signed scale of the target part, so that a
            cheap fidelity carrying a damped or inverted copy of the target is recognised as
            such; ``"linear-truncated"`` is BoTorch's default; ``"icm"`` needs a discrete
            fidelity).
        noise: the likelihood, one of :data:`mfbo.models.NOISE_MODELS`: ``"fidelity"`` (default;
            noise variance growing towards cheap fidelities, :mod:`mfbo.models.noise`) or
            ``"homoskedastic"`` (BoTorch's default, one noise level for all fidelities).
        cost_model: ``"auto"`` (known if the problem states a fidelity-only cost, else
            learned), ``"known"`` or ``"learned"``.
        q: batch size of each acquisition step.
        init_fraction: share of the budget spent on the initial design, in ``(0, 1)``.
        min_init: the least number of initial design points (default ``d + 2``).
        min_target_init: the least number of design points at the target fidelity (default 3),
            as far as the design budget pays for them (:func:`initial_design`). With a single target point the GP cannot tell a cheap
            fidelity that agrees with the target from one that misleads it: the cross-fidelity
            scale and discrepancy are then set by the prior, and on ``mfhartmann6-terrible``
            every acquisition followed the inverted cheap levels into the target's flat region
            (regret 3.3 on 2 of 3 seeds). Three nested target points let the marginal likelihood
            see the disagreement.
        max_fit_points: hyperparameters are fitted on at most this many points (a seeded
            subset), the GP then conditions on all data (see :func:`mfbo.models.fit_model`).
        refit_growth: re-optimise the hyperparameters when the data has grown by this fraction
            since the last optimisation (0: every step); see :meth:`_surrogate`.
    """

    name = "mf-gp"
    acquisition_class: ClassVar[type[Acquisition]]

    def __init_subclass__(cls, acquisition: type[Acquisition] | None = None, **kwargs: Any) -> None:
        """``class S(MultiFidelityGPStrategy, acquisition=A)``: the strategy that proposes with
        acquisition ``A``, registered under ``A``'s name (``S.name == A.name``)."""
        super().__init_subclass__(**kwargs)
        if acquisition is not None:
            cls.acquisition_class = acquisition
            cls.name = acquisition.name

    def __init__(
        self,
        space,
        fidelity: Fidelity | None = None,
        *,
        seed: int = 0,
        problem=None,
        kernel: str = "autoregressive",
        noise: str = "fidelity",
        cost_model: str = "auto",
        q: int = 1,
        init_fraction: float = 0.1,
        min_init: int | None = None,
        min_target_init: int = 3,
        max_fit_points: int = 500,
        refit_growth: float = 0.05,
        **acquisition_options: Any,
    ) -> None:
        super().__init__(space, fidelity, seed=seed, problem=problem)
        if fidelity is None:
            raise ValueError(f"strategy {self.name!r} needs a problem with a fidelity; use 'gp-ei' for single-fidelity problems")
        if kernel not in KERNELS:
            raise ValueError(f"strategy {self.name!r}: option kernel must be one of {list(KERNELS)}, got {kernel!r}")
        if kernel == "icm" and not fidelity.is_discrete:
            raise ValueError(f"strategy {self.name!r}: kernel 'icm' needs a discrete fidelity, but {fidelity!r} is continuous")
        if noise not in NOISE_MODELS:
            raise ValueError(f"strategy {self.name!r}: option noise must be one of {list(NOISE_MODELS)}, got {noise!r}")
        if cost_model not in COST_MODELS:
            raise ValueError(f"strategy {self.name!r}: option cost_model must be one of {list(COST_MODELS)}, got {cost_model!r}")
        if int(q) < 1:
            raise ValueError(f"strategy {self.name!r}: option q must be an integer >= 1, got {q!r}")
        if not 0 < float(init_fraction) < 1:
            raise ValueError(f"strategy {self.name!r}: option init_fraction must be in (0, 1), got {init_fraction!r}")
        if min_init is not None and int(min_init) < 2:
            raise ValueError(f"strategy {self.name!r}: option min_init must be an integer >= 2, got {min_init!r}")
        if int(max_fit_points) < 10:
            raise ValueError(f"strategy {self.name!r}: option max_fit_points must be an integer >= 10, got {max_fit_points!r}")
        self.kernel = kernel
        self.noise = noise
        self.q = int(q)
        self.init_fraction = float(init_fraction)
        self.min_init = space.dim + 2 if min_init is None else int(min_init)
        if int(min_target_init) < 1:
            raise ValueError(f"strategy {self.name!r}: option min_target_init must be an integer >= 1, got {min_target_init!r}")
        self.min_target_init = int(min_target_init)
        self.max_fit_points = int(max_fit_points)
        if not (isinstance(refit_growth, (int, float)) and 0 <= refit_growth <= 10):
            raise ValueError(f"strategy {self.name!r}: option refit_growth must be a number in [0, 10], got {refit_growth!r}")
        self.refit_growth = float(refit_growth)
        self._fitted_at = 0
        self.acquisition = self.acquisition_class(**acquisition_options)
        self.cost_model_option = cost_model
        self._known_cost = self._make_known_cost(cost_model)
        # Discrete fidelities with a few levels are enumerated by the acquisition optimiser; an
        # integer range with many (epochs 1..100) is optimised as continuous s and rounded to
        # the nearest level, which costs one optimisation instead of one per level. ICM needs
        # the levels whatever their number.
        self._levels: Tensor | None = None
        if fidelity.is_discrete and (len(fidelity.grid()) <= MAX_ENUMERATED_LEVELS or kernel == "icm"):
            self._levels = torch.tensor([fidelity.normalize(v) for v in fidelity.grid()], dtype=DTYPE)
        if fidelity.is_discrete and len(fidelity.grid()) <= 8:
            self._design_levels = [float(fidelity.normalize(v)) for v in fidelity.grid()]
        else:  # a continuous fidelity, or many levels: design at s = 0, 1/4, ..., 1 (rounded to levels)
            self._design_levels = sorted({float(fidelity.normalize(fidelity.denormalize(s))) for s in DESIGN_LEVELS_CONTINUOUS})
        self._design: list[tuple[dict[str, Any], Any]] | None = None
        self._design_size = 0  # trials the initial design asked for (or found already told)
        self._queue: list[tuple[dict[str, Any], Any]] = []
        self._state: tuple[int, Any, Tensor, Tensor, CostModel] | None = None
        self._last_hyperparameters: dict[str, Tensor] | None = None
        self._recommendation: tuple[int, dict[str, Any] | None] | None = None

    # Options ---------------------------------------------------------------------------------
    @classmethod
    def option_signature(cls):
        own = super().option_signature()
        own.pop("acquisition_options", None)
        params = inspect.signature(cls.acquisition_class.__init__).parameters
        extra = {n: p for n, p in params.items() if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        return {**own, **extra}

    def options(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel, "noise": self.noise, "cost_model": self.cost_model_option, "q": self.q,
            "init_fraction": self.init_fraction, "min_init": self.min_init, "min_target_init": self.min_target_init,
            "max_fit_points": self.max_fit_points, "refit_growth": self.refit_growth, **self.acquisition.options(),
        }

    # Cost -----------------------------------------------------------------------------------
    def _make_known_cost(self, mode: str) -> KnownCost | None:
        if mode == "learned":
            return None
        try:
            if self.problem is None:
                raise ValueError("the strategy was built from a bare space, so no problem states a cost")
            return KnownCost.from_problem(self.problem)
        except ValueError as err:
            if mode == "known":
                raise ValueError(f"strategy {self.name!r}: cost_model='known' is not possible: {err}") from None
            return None

    def _level_costs(self, levels: list[float]) -> list[float] | None:
        """The cost of one evaluation at each design level, in the problem's units, or ``None``.

        A fidelity-only cost is read off the known cost model. A cost that also depends on the
        configuration (a surrogate's predicted runtime) is averaged over a fixed Sobol probe of
        :data:`COST_PROBE_SIZE` configurations (seeded apart from the strategy's generator, so it
        does not shift the run's random stream). When the problem predicts no cost at all
        (measured wall time) there is no unit to split a budget in: ``None``.
        """
        if self._known_cost is not None:
            X = torch.zeros(len(levels), self.space.dim + 1, dtype=DTYPE)
            X[:, -1] = torch.tensor(levels, dtype=DTYPE)
            return self._known_cost(X).tolist()
        if self.problem is None:
            return None
        probe = self.space.decode_many(torch.quasirandom.SobolEngine(self.space.dim, scramble=True, seed=0).draw(COST_PROBE_SIZE, dtype=DTYPE).numpy())
        costs = []
        for s in levels:
            fidelity = self.fidelity.denormalize(s)
            values = [self.problem.cost(config, fidelity) for config in probe]
            if any(v is None or not np.isfinite(v) or v <= 0 for v in values):
                return None
            costs.append(float(np.mean(values)))
        return costs

    # Encoding ----------------------------------------------------------------------------------
    def _encode(self, config: dict[str, Any], fidelity: Any) -> np.ndarray:
        return np.append(self.space.encode(config), self.fidelity.normalize(fidelity))

    def _decode(self, row: Tensor) -> tuple[dict[str, Any], Any]:
        row = row.detach().numpy()
        return self.space.decode(row[:-1]), self.fidelity.denormalize(float(row[-1]))

    def _project(self, X: Tensor) -> Tensor:
        flat = X.detach().reshape(-1, self.space.dim).numpy()
        return torch.as_tensor(self.space.round_trip(flat), dtype=DTYPE).reshape(X.shape)

    # Design ---------------------------------------------------------------------------------------
    def _build_design(self) -> list[tuple[dict[str, Any], Any]]:
        levels = self._design_levels
        level_costs = self._level_costs(levels)
        if level_costs is None:  # no cost to split the budget with: min_init points, cheap levels first
            level_costs, design_budget = [0.05 + 0.95 * s for s in levels], None
        else:
            design_budget = None if self.budget is None else self.init_fraction * self.budget
        counts = initial_design(level_costs, design_budget, self.min_init, self.min_target_init)
        sobol = torch.quasirandom.SobolEngine(self.space.dim, scramble=True, seed=draw_seed(self.rng))
        configs = self.space.decode_many(sobol.draw(max(counts), dtype=DTYPE).numpy())
        design = []
        for s, n in zip(levels, counts):  # cheapest level first
            value = self.fidelity.denormalize(s)
            design.extend((configs[i], value) for i in range(n))
        return design

    # Model ------------------------------------------------------------------------------------------
    def _data(self) -> tuple[Tensor, Tensor, Tensor]:
        done = self.successes()
        X = torch.as_tensor(np.array([self._encode(t.config, t.fidelity) for t, _ in done]), dtype=DTYPE)
        Y = -torch.tensor([[o.value] for _, o in done], dtype=DTYPE)
        costs = torch.tensor([o.cost for _, o in done], dtype=DTYPE)
        return X.reshape(-1, self.space.dim + 1), Y.reshape(-1, 1), costs

    def _ready(self) -> bool:
        """The model phase has begun: the design is used up and two evaluations succeeded."""
        return self._design is not None and not self._design and len(self.successes()) >= 2

    def _surrogate(self):
        """``(model, X, Y, cost_model)`` on all successes, rebuilt whenever the history grew.

        The hyperparameters are re-optimised (warm-started) only when the number of successful
        observations has grown by ``refit_growth`` (a fraction) since the last optimisation; in
        between, the new GP reuses the last hyperparameters and conditions exactly on all data.
        At small ``n`` this refits every step; at ``n = 2000`` and 5 % it refits every 100
        steps, which is what keeps a step within seconds (one new point barely moves the MAP).
        """
        n = len(self.history)
        if self._state is not None and self._state[0] == n:
            return self._state[1:]
        X, Y, costs = self._data()
        model = build_mf_gp(X, Y, kernel=self.kernel, fidelities=self._levels, noise=self.noise)
        if self._last_hyperparameters is not None and len(X) < self._fitted_at * (1 + self.refit_growth):
            load_hyperparameters(model, self._last_hyperparameters)
            model.eval()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = fit_model(model, seed=draw_seed(self.rng), previous_state=self._last_hyperparameters, max_fit_points=self.max_fit_points)
            if not report.ok or report.fallback:
                self.note(f"GP fit: {report.message}")
            self._fitted_at = len(X)
            self._last_hyperparameters = hyperparameters(model)
        if self._known_cost is not None:
            cost = self._known_cost
        else:
            cost = LearnedCost(X, costs, seed=draw_seed(self.rng))
        self._state = (n, model, X, Y, cost)
        return self._state[1:]

    def _observe(self, trial, observation) -> None:
        if self._ready():  # refit here, so that the loop times it as the tell's overhead
            with gpytorch.settings.max_cholesky_size(MAX_CHOLESKY_SIZE):
                self._surrogate()

    # Ask --------------------------------------------------------------------------------------------
    def _suggest(self) -> tuple[dict[str, Any], Any]:
        if self._design is None:  # skipped when add_observation supplied enough data already
            self._design = self._build_design() if len(self.successes()) < self.min_init else []
            self._design_size = len(self._design) if self._design else len(self.history)
        if self._design:
            return self._design.pop(0)
        if self._queue:
            return self._queue.pop(0)
        if not self._ready():  # the design failed too often for a model: keep sampling cheaply
            return self.space.sample(self.rng), self.fidelity.denormalize(self._design_levels[0])
        with gpytorch.settings.max_cholesky_size(MAX_CHOLESKY_SIZE):
            return self._propose()

    def _propose(self) -> tuple[dict[str, Any], Any]:
        model, X, Y, cost = self._surrogate()
        pending = [self._encode(t.config, t.fidelity) for t in self.pending.values()]
        with torch_seed_scope(self.rng) as seed, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx = AcquisitionContext(
                model=model, cost=cost, dim=self.space.dim, fidelities=self._levels, train_X=X, train_Y=Y,
                X_pending=torch.as_tensor(np.array(pending), dtype=DTYPE) if pending else None,
                seed=seed, project=self._project,
                options={
                    "budget": self.budget,
                    "spent": sum(o.cost for _, o in self.history),
                    "design_size": self._design_size,
                },
            )
            batch = self.acquisition.propose(ctx, self.q)
        points = [self._decode(row) for row in batch]
        self._queue.extend(points[1:])
        return points[0]

    # Recommend --------------------------------------------------------------------------------------
    def recommend(self) -> dict[str, Any] | None:
        """Argmax of the target-fidelity posterior mean of ``-value`` over the evaluated
        configurations and one candidate optimised for it (best observed during the design)."""
        if not self._ready():
            return super().recommend()
        n = len(self.history)
        if self._recommendation is None or self._recommendation[0] != n:
            with gpytorch.settings.max_cholesky_size(MAX_CHOLESKY_SIZE):
                self._recommendation = (n, self._posterior_argmax())
        return self._recommendation[1]

    def predict(self, configs: list[dict[str, Any]], fidelity: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's posterior of the objective (minimised, in the problem's units).

        Args:
            configs: ``n`` configurations.
            fidelity: one fidelity value for all of them (``None``: the target).

        Returns:
            ``(mean, std)``, each of shape ``(n,)``: the latent function's posterior mean and
            standard deviation, without observation noise.

        Raises:
            RuntimeError: before the model phase (fewer than two successful evaluations, or the
                initial design not yet used up).
        """
        if not self._ready():
            raise RuntimeError(f"strategy {self.name!r}: no surrogate yet (the initial design is not complete)")
        fidelity = self.target_fidelity if fidelity is None else self.fidelity.validate(fidelity)
        model, *_ = self._surrogate()
        X = torch.as_tensor(np.array([self._encode(self.space.validate(c), fidelity) for c in configs]), dtype=DTYPE)
        with torch.no_grad(), gpytorch.settings.max_cholesky_size(MAX_CHOLESKY_SIZE):
            posterior = model.posterior(X.reshape(-1, 1, X.shape[-1]))
            mean = -posterior.mean.reshape(-1).numpy()
            std = posterior.variance.clamp_min(0).sqrt().reshape(-1).numpy()
        return mean, std

    def _posterior_argmax(self) -> dict[str, Any]:
        model, X, Y, _ = self._surrogate()
        configs = np.unique(X[:, :-1].numpy(), axis=0)
        candidates = torch.cat([torch.as_tensor(configs, dtype=DTYPE), torch.ones(len(configs), 1, dtype=DTYPE)], dim=-1)

        def mean_at_target(Z: Tensor) -> Tensor:  # (b, 1, d + 1) -> (b,)
            Z = torch.cat([Z[..., :-1], torch.ones_like(Z[..., -1:])], dim=-1)
            return model.posterior(Z).mean.reshape(Z.shape[0])

        with torch_seed_scope(self.rng) as seed, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx = AcquisitionContext(
                model=model, cost=lambda Z: torch.ones(Z.shape[:-1], dtype=DTYPE), dim=self.space.dim,
                fidelities=None, train_X=X, train_Y=Y, X_pending=None, seed=seed, project=self._project,
            )
            best, _ = optimize_joint(mean_at_target, ctx, num_restarts=2, raw_samples=64, fixed_s=1.0, extra_starts=candidates)
            candidates = torch.cat([candidates, best])
            with torch.no_grad():
                means = model.posterior(candidates.unsqueeze(1)).mean.reshape(-1)
        config, _ = self._decode(candidates[int(torch.argmax(means))])
        return config


class MFKGStrategy(MultiFidelityGPStrategy, acquisition=MultiFidelityKG):
    """Multi-fidelity knowledge gradient per unit cost (:class:`~mfbo.acquisition.MultiFidelityKG`)."""


class MFMESStrategy(MultiFidelityGPStrategy, acquisition=MultiFidelityMES):
    """Multi-fidelity max-value entropy search per unit cost (:class:`~mfbo.acquisition.MultiFidelityMES`)."""


class MFGIBBONStrategy(MultiFidelityGPStrategy, acquisition=MultiFidelityGIBBON):
    """GIBBON lower bound of MF-MES per unit cost, q > 1 (:class:`~mfbo.acquisition.MultiFidelityGIBBON`)."""


class MFEIStrategy(MultiFidelityGPStrategy, acquisition=MultiFidelityEI):
    """Augmented expected improvement per unit cost (:class:`~mfbo.acquisition.MultiFidelityEI`)."""


class MFUCBStrategy(MultiFidelityGPStrategy, acquisition=MultiFidelityUCB):
    """BOCA / MF-GP-UCB (:class:`~mfbo.acquisition.MultiFidelityUCB`)."""


MULTI_FIDELITY_STRATEGIES = (MFKGStrategy, MFMESStrategy, MFGIBBONStrategy, MFEIStrategy, MFUCBStrategy)

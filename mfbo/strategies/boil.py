"""BOIL: Bayesian optimisation for iterative learning (Nguyen, Schulze & Osborne, NeurIPS 2020).

V. Nguyen, S. Schulze, M. A. Osborne. Bayesian Optimization for Iterative Learning. NeurIPS
2020 (arXiv:1909.09593). Authors' code: ``github.com/ntienvu/BOIL`` (``bayes_opt/sequentialBO/
boil.py``, ``bayes_opt/curve_compression.py``, ``bayes_opt/product_gaussian_process.py``).

**Sign convention.** mfbo minimises: a problem's value and its learning curve
(:attr:`Observation.curve`, the value after each epoch ``1..e``) are losses. BOIL maximises a
score of a *performance* curve. The curve enters BOIL once, as ``r(i) = curve_offset -
value(i)`` (option ``curve_offset``, default 1: an error-rate curve, as LCBench's
``1 - val_accuracy / 100`` and the digits problems' validation error, becomes the accuracy curve
the paper compresses for its CNNs). Everything after that (scores, GP, EI, incumbent,
recommendation) is "larger is better"; nothing else flips a sign.

The method, step by step (``d`` the configuration's encoding dimension, ``t`` the epoch count
scaled to ``s = (t - T_min) / (T_max - T_min)`` in ``[0, 1]``):

1. **Initial design** (the code's ``init``): ``n_init`` (default 3) configurations drawn
   uniformly from the strategy's generator, each trained for ``T_max`` epochs.
2. **Curve compression, learned** (:mod:`mfbo.models.curve_compression`): each observation
   ``(x, t)`` has the score ``y = mean_{i<=t} w_i r(i)`` with logistic weights of midpoint
   ``m0 in [-2, 3]`` and growth ``g0 in [0.5, 2]``; ``(m0, g0)`` and the GP's length-scales
   and noise maximise the GP's marginal likelihood, the scores recomputed from the stored curves
   for each candidate (:func:`~mfbo.models.curve_compression.fit_compressed_gp`).
3. **Surrogate**: a GP over ``(x, s)`` with the product squared-exponential kernel, on the
   z-standardised scores (:class:`~mfbo.models.curve_compression.ProductSEGP`).
4. **Cost model**: linear regression (least squares with an intercept) of the cost on
   ``(x, s)``. In the acquisition, as in the authors' code (the paper does not say),
   ``mu_c = max(c_hat - c_min, 0) / (c_max - c_min) + 0.1`` with ``c_min, c_max`` the range of
   the costs in the data (the code regresses min-max normalised costs and adds 0.1), so the
   cheapest point is at most 11 times cheaper than the dearest in ``log mu_c``. A first version
   divided by the raw prediction (floored): on ``digits-mlp-table``, where one epoch costs 1/100
   of a full run, it spent 145 steps on 1-3-epoch runs for 1 % of the budget.
5. **Acquisition**: ``log EI(x, s) - log mu_c(x, s)``, EI of the latent GP against the incumbent
   ``max_{(x, s)} mu(x, s)``, the GP mean's maximum over the whole box (the code's
   ``ei_mu_max``); both maximised by :func:`mfbo.acquisition.optimize.optimize_joint`
   (Sobol raw points, multi-start L-BFGS-B), the acquisition ranking last the points whose
   predicted cost exceeds what the budget has left.
6. **Selective data augmentation**: after observing ``(x*, t*)``, up to ``ceil(10 s*)`` points
   of the same curve are added as observations ``(x*, t)``: each at the epoch ``t <= t*`` of
   largest GP predictive variance, stopping when that variance is at most the noise variance,
   when that epoch is already in the data for ``x*``, or when ``log cond(K)`` with the new point
   would exceed ``log_cond_max`` (15).
7. **Recommendation**: the configuration with the best compressed score (under the current
   ``(m0, g0)``) among the real observations, never the augmented ones.

Differences from the authors' code (the paper is followed; see also
:mod:`mfbo.models.curve_compression` for the compression and the kernel):

- The condition number is checked on the matrix *with* the candidate point, so no augmentation
  makes ``log cond(K)`` exceed the threshold; the code checks the matrix before adding it.
- The variance stop compares with the noise variance; the code with ``noise + 1e-3``.
- Augmented epochs are searched exactly over the integer epochs ``<= t*``; the code maximises
  over continuous ``t`` and truncates to an epoch.
- The cost regression fits the raw costs of real observations plus, as in the code, the
  augmented points at the linearly interpolated cost ``c* t / t*`` (without them the design's
  runs, all at ``T_max``, say nothing about how cost grows with ``t``).
- Hyperparameters and ``(m0, g0)`` are searched every ``2 (d + 1)`` real observations (the
  code: when ``len(Y) % (2 dim) == 0``, which counts augmented points too) and kept in between;
  the scores and the GP are recomputed on the current data at every step.

Additions for mfbo's setting (not in the paper):

- **Continuations**: on a resumable problem (option ``continuation``, default True) the
  acquisition also scores every evaluated configuration at each rung of mfbo's geometric ladder
  (:func:`~mfbo.strategies.mf_gp.geometric_ladder`: epochs 1, 3, 9, 27, ..., ``T_max``) above
  the highest epoch it reached, priced at the predicted increment ``mu_c(x, t) - mu_c(x, t_reached)``; when one wins,
  the strategy asks for a :class:`~mfbo.strategies.base.Continuation`, charged only the extra
  epochs. The paper retrains from scratch. Every epoch as a target made EI per unit cost
  continue runs one epoch at a time (a step of overhead per epoch) on ``digits-mlp-table``.
- Failed trials are left out of the model (their partial curves too).
- Pending trials (asynchronous workers; BOIL is sequential) enter the GP at their posterior mean
  (the "kriging believer"), which shrinks EI around them, and a configuration whose run is
  pending is not offered for continuation.
- **Within the budget**: the acquisition ranks last the points whose predicted cost exceeds what
  the budget has left; when the problem states the proposal's cost in advance and it does not fit
  after all (the linear model underestimated it), the cap is tightened and the acquisition
  re-optimised, at most :data:`BUDGET_RETRIES` times (as mfbo's ``mf-*`` strategies), because the
  loop ends a run at the first trial that would exceed the budget. Without this, 4 of 13
  benchmark runs ended with 12-40 % of the budget unspent.
- :meth:`BOIL.other_recommendations` logs ``best-at-target``, the best observed value at
  ``T_max``, beside the paper's rule.

Problems without learning curves (no integer epoch fidelity, or an observation without a curve)
are refused with a ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from botorch.acquisition.analytic import _log_ei_helper
from torch import Tensor

from ..acquisition.base import AcquisitionContext
from ..acquisition.optimize import optimize_joint, score_in_chunks
from ..models.curve_compression import (
    ProductSEGP,
    compress,
    fit_compressed_gp,
    fixed_fit,
    pad_curves,
)
from ..rng import draw_seed
from .base import Continuation, Strategy
from .mf_gp import geometric_ladder

__all__ = ["BOIL", "COST_FLOOR", "LinearCost"]

DTYPE = torch.double
#: the authors' code's ``+ 0.1`` on min-max normalised costs (``LinearCost.acquisition_cost``)
COST_FLOOR = 0.1
#: at most ``ceil(AUGMENT_PER_UNIT * s*)`` augmented points per observation (the paper's 10)
AUGMENT_PER_UNIT = 10
#: L-BFGS-B iterations of the acquisition and incumbent searches
MAXITER = 100
#: re-optimisations with a tighter cost cap when a proposal's stated cost exceeds the budget left
BUDGET_RETRIES = 3
NEEDS_CURVES = ("strategy 'boil' needs a problem that reports learning curves over an integer epoch fidelity "
                "(Observation.curve holding the value after each epoch 1..t, t in [T_min, T_max])")


@dataclass
class LinearCost:
    """The linear cost regression ``c(Z) = coef[0] + Z @ coef[1:]`` and the range ``[low, low +
    span]`` of the costs it was fitted to."""

    coef: Tensor
    low: float
    span: float

    def raw(self, Z: Tensor) -> Tensor:
        """Predicted cost in the problem's units, at least ``COST_FLOOR * low`` (budget checks)."""
        return (self.coef[0] + Z @ self.coef[1:]).clamp_min(COST_FLOOR * self.low)

    def acquisition_cost(self, increment: Tensor) -> Tensor:
        """``mu_c``: a predicted cost (or increment over ``low``) min-max normalised by the data's
        range, clipped at 0, plus :data:`COST_FLOOR` (the authors' code)."""
        return increment.clamp_min(0.0) / self.span + COST_FLOOR


class BOIL(Strategy):
    """BOIL (Nguyen et al., NeurIPS 2020): learned curve compression, a GP over (x, epochs), EI per unit cost, selective augmentation.

    See the module docstring.

    Options:
        n_init: initial configurations, trained for ``T_max`` epochs (default 3, the code's).
        curve_offset: the performance curve is ``curve_offset - value`` (default 1.0).
        log_cond_max: augmentation stops before ``log cond(K)`` would exceed this (15).
        continuation: on a resumable problem, also offer continuing evaluated runs (True).
        num_restarts, raw_samples: the acquisition optimiser's L-BFGS-B starts and Sobol points.
    """

    name = "boil"

    def __init__(
        self, space, fidelity=None, *, seed: int = 0, problem=None, n_init: int = 3, curve_offset: float = 1.0,
        log_cond_max: float = 15.0, continuation: bool = True, num_restarts: int = 10, raw_samples: int = 512,
    ) -> None:
        if fidelity is None or not fidelity.is_discrete or not fidelity.integer or fidelity.log or fidelity.target != fidelity.high:
            raise ValueError(f"{NEEDS_CURVES}; got fidelity {fidelity!r}")
        super().__init__(space, fidelity, seed=seed, problem=problem)
        for key, value, minimum in (("n_init", n_init, 1), ("num_restarts", num_restarts, 1), ("raw_samples", raw_samples, 1)):
            if isinstance(value, bool) or int(value) != value or value < minimum:
                raise ValueError(f"strategy 'boil': option {key} must be an integer >= {minimum}, got {value!r}")
        if continuation is not True and continuation is not False:
            raise ValueError(f"strategy 'boil': option continuation must be true or false, got {continuation!r}")
        if not (isinstance(log_cond_max, (int, float)) and log_cond_max > 0):
            raise ValueError(f"strategy 'boil': option log_cond_max must be a number > 0, got {log_cond_max!r}")
        if not (isinstance(curve_offset, (int, float)) and math.isfinite(curve_offset)):
            raise ValueError(f"strategy 'boil': option curve_offset must be a finite number, got {curve_offset!r}")
        self.n_init, self.curve_offset, self.log_cond_max = int(n_init), float(curve_offset), float(log_cond_max)
        self.continuation, self.num_restarts, self.raw_samples = continuation, int(num_restarts), int(raw_samples)
        self._continues = continuation and bool(getattr(problem, "resumable", False))
        self.t_max = int(fidelity.target)
        self._epochs = [int(e) for e in fidelity.grid()]
        self._rungs = sorted({int(fidelity.denormalize(s)) for s in geometric_ladder(fidelity)})
        self._design = [self.space.sample(self.rng) for _ in range(self.n_init)]
        #: GP rows: (x encoding (d,), epoch, performance curve up to the epoch, cost, real?, trial id)
        self._rows: list[tuple[np.ndarray, int, np.ndarray, float, bool, int]] = []
        self._full_cost: dict[int, float] = {}  # trial id -> cost from scratch
        self._vector: np.ndarray | None = None  # the last fit's parameters (curve_compression)
        self._fit = None
        self._fitted_rows = -1
        self._searched_at = 0  # real observations at the last full hyperparameter search

    def options(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "curve_offset": self.curve_offset, "log_cond_max": self.log_cond_max,
                "continuation": self.continuation, "num_restarts": self.num_restarts, "raw_samples": self.raw_samples}

    # Data -----------------------------------------------------------------------------------------
    def _s(self, epoch: float) -> float:
        return float(self.fidelity.normalize(epoch))

    def _tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """``X (n, d + 1)``, padded curves ``R (n, T_max)`` and ``lengths (n,)`` of all rows."""
        X = torch.as_tensor(np.array([np.append(x, self._s(e)) for x, e, *_ in self._rows]), dtype=DTYPE)
        R, lengths = pad_curves([curve for _, _, curve, *_ in self._rows], self.t_max)
        return X, R, lengths

    def _real(self) -> list[int]:
        return [i for i, row in enumerate(self._rows) if row[4]]

    def _observe(self, trial, observation) -> None:
        if not observation.ok:
            return
        if observation.curve is None or len(observation.curve_list()) == 0:
            raise ValueError(f"{NEEDS_CURVES}; problem {getattr(self.problem, 'name', '?')!r} returned an observation without a curve")
        values = np.asarray(observation.curve_list(), dtype=float)[: int(trial.fidelity)]
        if not np.isfinite(values).all():
            return  # a curve with NaN cannot be compressed: left out like a failure
        cost = float(observation.cost) + (self._full_cost.get(trial.continues, 0.0) if trial.continues is not None else 0.0)
        self._full_cost[trial.id] = cost
        x = self.space.encode(trial.config)
        performance = self.curve_offset - values
        self._rows.append((x, int(trial.fidelity), performance, cost, True, trial.id))
        self._augment(x, int(trial.fidelity), performance, cost)

    # Selective data augmentation --------------------------------------------------------------------
    def _augment(self, x: np.ndarray, epoch: int, performance: np.ndarray, cost: float) -> None:
        """Add up to ``ceil(10 s*)`` points of the curve just observed at ``(x, epoch)``
        (module docstring, step 6); the GP's hyperparameters are the last fit's."""
        budget = math.ceil(AUGMENT_PER_UNIT * self._s(epoch) - 1e-9)
        candidates = [e for e in self._epochs if e <= min(epoch, len(performance))]
        if budget <= 0 or not candidates:
            return
        grid = torch.as_tensor(np.array([np.append(x, self._s(e)) for e in candidates]), dtype=DTYPE)
        key = x.tobytes()
        for _ in range(budget):
            X, R, lengths = self._tensors()
            gp = fixed_fit(X, R, lengths, self._vector).gp
            with torch.no_grad():
                variance = gp.variance(grid)
            best = int(torch.argmax(variance))
            e = candidates[best]
            if float(variance[best]) <= gp.noise:
                return
            if any(row[0].tobytes() == key and row[1] == e for row in self._rows):
                return  # the epoch repeats
            if gp.log_condition_exceeds(self.log_cond_max, grid[best : best + 1]):
                return
            self._rows.append((x, e, performance[:e], cost * self._s(e) / max(self._s(epoch), 1e-12), False, -1))

    # The model ------------------------------------------------------------------------------------------
    def _refit(self):
        """The compressed-curve GP on all rows: a search of ``(m0, g0)`` and the GP's
        hyperparameters every ``2 (d + 1)`` real observations, else the last search's values."""
        if self._fit is not None and self._fitted_rows == len(self._rows):
            return self._fit
        X, R, lengths = self._tensors()
        n_real = len(self._real())
        full = self._vector is None or n_real - self._searched_at >= 2 * (self.space.dim + 1)
        if full:
            self._searched_at = n_real
            fit = fit_compressed_gp(X, R, lengths, self.rng, self._vector)
        else:  # the last search's parameters, on the current data (the code's schedule)
            fit = fixed_fit(X, R, lengths, self._vector)
        self._fit, self._vector, self._fitted_rows = fit, fit.vector(), len(self._rows)
        return fit

    def _cost_model(self) -> LinearCost:
        """Least squares of ``cost ~ 1 + x + s`` on all rows (centred inputs: the minimum-norm
        slopes when the data do not determine them, as scikit-learn's ``LinearRegression``)."""
        X, _, _ = self._tensors()
        costs = torch.tensor([row[3] for row in self._rows], dtype=DTYPE)
        mean = X.mean(0)
        coef = torch.linalg.lstsq(X - mean, (costs - costs.mean()).unsqueeze(-1), driver="gelsd").solution.reshape(-1)
        intercept = costs.mean() - mean @ coef
        low, high = float(costs.min()), float(costs.max())
        return LinearCost(torch.cat([intercept.reshape(1), coef]), low, max(high - low, 1e-12 * max(abs(high), 1.0)))

    def _log_ei(self, gp: ProductSEGP, Z: Tensor, best: Tensor) -> Tensor:
        mean, var = gp.posterior(Z)
        sigma = var.sqrt()
        return _log_ei_helper((mean - best) / sigma) + sigma.log()

    # Proposals --------------------------------------------------------------------------------------------
    def _project(self, X: Tensor) -> Tensor:
        flat = X.detach().reshape(-1, self.space.dim).numpy()
        return torch.as_tensor(self.space.round_trip(flat), dtype=DTYPE).reshape(X.shape)

    def _suggest(self) -> tuple[dict[str, Any], Any] | Continuation:
        if self._design:
            return self._design.pop(0), self.t_max
        if len(self._real()) < 2:  # too little data for a GP (failures in the design)
            return self.space.sample(self.rng), self.t_max
        gp = self._with_pending(self._refit().gp)
        cost = self._cost_model()
        ctx = AcquisitionContext(
            model=None, cost=cost.raw, dim=self.space.dim, fidelities=None,
            train_X=gp.X, train_Y=gp.y.unsqueeze(-1), X_pending=None, seed=draw_seed(self.rng), project=self._project,
            max_cost=self.budget_left(),
        )
        best = self._incumbent(gp, ctx)

        def acqf(Z: Tensor) -> Tensor:
            mu_c = cost.acquisition_cost(cost.coef[0] + Z @ cost.coef[1:] - cost.low)
            return (self._log_ei(gp, Z, best) - mu_c.log()).reshape(Z.shape[0])

        for _ in range(BUDGET_RETRIES + 1):
            proposal, over = self._propose(acqf, gp, best, cost, ctx)
            if over is None or ctx.max_cost is None:
                return proposal
            ctx.max_cost *= 0.5 * ctx.max_cost / over  # the learned cost underestimated it: tighten the cap
        return proposal

    def _propose(self, acqf, gp: ProductSEGP, best: Tensor, cost: LinearCost, ctx: AcquisitionContext) -> tuple[tuple[dict[str, Any], Any] | Continuation, float | None]:
        """The acquisition's choice (a new ``(config, epoch)`` or a continuation) and, when the
        problem states its cost in advance and it exceeds what the budget has left, that cost."""
        candidate, value = optimize_joint(acqf, ctx, num_restarts=self.num_restarts, raw_samples=self.raw_samples, maxiter=MAXITER)
        resumed = self._best_continuation(gp, best, cost, ctx.max_cost) if self._continues else None
        if resumed is not None and resumed[0] > float(value):
            previous = self.history[self._told[resumed[1]]][0]
            known = self._known_cost(previous.config, resumed[2], previous.fidelity)
            return Continuation(resumed[1], resumed[2]), known
        row = candidate.reshape(-1).numpy()
        config, epoch = self.space.decode(row[:-1]), self.fidelity.denormalize(float(row[-1]))
        return (config, epoch), self._known_cost(config, epoch, None)

    def _known_cost(self, config: dict[str, Any], epoch: Any, resume_from: Any) -> float | None:
        """The problem's stated cost of the proposal when it exceeds the budget left, else ``None``."""
        left = self.budget_left()
        if left is None or self.problem is None:
            return None
        known = self.problem.increment_cost(config, epoch, resume_from)
        return float(known) if known is not None and known > left and known > 0 else None

    def _with_pending(self, gp: ProductSEGP) -> ProductSEGP:
        """With asynchronous workers: the GP with the pending trials added at their posterior
        mean (the "kriging believer"), which keeps the mean and shrinks the variance, hence EI,
        around them, so that asks in a row do not repeat a proposal."""
        if not self.pending:
            return gp
        Xp = torch.as_tensor(np.array([np.append(self.space.encode(t.config), self._s(t.fidelity)) for t in self.pending.values()]), dtype=DTYPE)
        with torch.no_grad():
            believed = gp.posterior(Xp)[0]
        return ProductSEGP(torch.cat([gp.X, Xp]), torch.cat([gp.y, believed]), gp.lengthscales, gp.noise)

    def _incumbent(self, gp: ProductSEGP, ctx: AcquisitionContext) -> Tensor:
        """``max_{(x, s)} mu(x, s)`` over the box (the observed inputs are extra starts)."""

        def mean(Z: Tensor) -> Tensor:
            return gp.posterior(Z)[0].reshape(Z.shape[0])

        _, value = optimize_joint(mean, ctx, num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                                  maxiter=MAXITER, extra_starts=gp.X, respect_budget=False)
        with torch.no_grad():
            observed = gp.posterior(gp.X)[0].max()
        return torch.maximum(value.detach(), observed)

    def _best_continuation(self, gp: ProductSEGP, best: Tensor, cost: LinearCost, max_cost: float | None) -> tuple[float, int, int] | None:
        """``(acquisition value, trial id, epoch)`` of the best continuation of an evaluated run
        to a higher epoch, priced at the predicted increment, or ``None``."""
        reached: dict[bytes, tuple[int, int, np.ndarray]] = {}  # x -> (epoch, trial id, x)
        busy = {self.space.encode(t.config).tobytes() for t in self.pending.values()}
        for i in self._real():
            x, e, _, _, _, tid = self._rows[i]
            if e > reached.get(x.tobytes(), (-1,))[0]:
                reached[x.tobytes()] = (e, tid, x)
        options = [(tid, e0, e, x) for key, (e0, tid, x) in reached.items() if key not in busy for e in self._rungs if e > e0]
        if not options:
            return None
        Z = torch.as_tensor(np.array([np.append(x, self._s(e)) for _, _, e, x in options]), dtype=DTYPE)
        Z0 = torch.as_tensor(np.array([np.append(x, self._s(e0)) for _, e0, _, x in options]), dtype=DTYPE)
        with torch.no_grad():
            increment = (Z - Z0) @ cost.coef[1:]
            values = score_in_chunks(lambda B: self._log_ei(gp, B, best).reshape(-1), Z.unsqueeze(1)) - cost.acquisition_cost(increment).log()
        if max_cost is not None and bool((increment <= max_cost).any()):
            values = values.masked_fill(increment > max_cost, -torch.inf)
        k = int(torch.argmax(values))
        return float(values[k]), options[k][0], options[k][2]

    # Recommendation -------------------------------------------------------------------------------------------
    def recommend(self) -> dict[str, Any] | None:
        """The real observation with the best compressed score under the current ``(m0, g0)``."""
        real = self._real()
        if not real:
            return super().recommend()
        m0, g0 = (self._vector[-2], self._vector[-1]) if self._vector is not None else (0.0, 1.0)
        R, lengths = pad_curves([self._rows[i][2] for i in real], self.t_max)
        scores = compress(R, lengths, float(m0), float(g0))
        tid = self._rows[real[int(torch.argmax(scores))]][5]
        return dict(self.history[self._told[tid]][0].config)

    def other_recommendations(self) -> dict[str, dict[str, Any]]:
        best = self.best_observed()
        return {} if best is None else {"best-at-target": dict(best[0].config)}

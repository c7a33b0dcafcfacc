"""Learning-curve extrapolation: random search (or GP-EI) whose runs are stopped early when their
extrapolated learning curve is unlikely to beat the incumbent.

Paper: Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of Deep
Neural Networks by Extrapolation of Learning Curves", IJCAI 2015 (the "predictive termination
criterion"); reference code: the authors' ``pylearningcurvepredictor`` (``terminationcriterion.py``,
read in a public fork). The curve model, its prior and its MCMC are in
:mod:`mfbo.models.learning_curves`.

Algorithm. Configurations come from the proposer: uniform random draws (``proposer="random"``, the
default) or mfbo's ``gp-ei`` (``"gp-ei"``; the paper paired the criterion with SMAC and TPE). Each
configuration is trained epoch by epoch towards the target ``m`` (the fidelity's target): first
to the warm-up epoch, then ``check_every`` epochs at a time, each step a
:class:`~mfbo.strategies.base.Continuation` of the previous one, so a resumable problem charges
only the extra epochs. At every such check, if an incumbent exists (``y_hat``, the best final
value observed so far) and the run has not already beaten it on its curve so far (the authors'
conservative criterion), the ensemble is fitted to the run's curve and the run is stopped when::

    P(y_m > y_hat | y_1:n) < delta      (delta = 0.05, the paper's)

Otherwise the run goes on to the next check, up to ``m``. A stopped run's predicted final value
``E[f_comb(m)]`` is what the proposer is told for it (the paper returns it to the optimiser); a
failed trial ends its run and the proposer is told a failure. ``recommend()`` is the best
configuration observed at the target fidelity (stopped runs never count); before any run has
reached it, the best observed at the highest epoch reached (the default rule,
:class:`~mfbo.strategies.base.BestAtHighestFidelity`).

Values. mfbo minimises a loss ``v`` (LCBench: ``1 - val_accuracy / 100``; ``digits-*``: the
validation error rate); the paper models an accuracy that increases towards at most 1. The curve
given to the model is ``y = 1 - v`` (the accuracy itself on LCBench and digits) and the incumbent
``y_hat = 1 - v_best``; the prior bound ``0 <= f(m) <= 1`` thus assumes ``v`` in ``[0, 1]``, true of
error rates.

Problems. It needs curves: a resumable problem with a discrete (epoch) fidelity whose
observations carry ``curve`` (``lcbench/<task>``, ``digits-mlp``, ``digits-cnn``,
``digits-mlp-table`` and tables recorded from such problems); anything else is refused with one
:class:`ValueError`. An observation without a curve is never stopped.

Measured (``experiments/bench_lc_extrapolation.py --part predict``, the shipped MCMC settings):
the predicted final validation accuracy from the first 25 % of the epochs (13 of 52), over 12
fixed random configurations per LCBench task::

    task              median |error|   same, "last observed"   90 % interval covers   CPU s / prediction
    lcbench/3945      0.0366           0.0299                  83 %                   3.8
    lcbench/7593      0.0329           0.0307                  100 %                  2.3
    lcbench/126025    0.0207           0.0222                  100 %                  2.4

The extrapolation is not more accurate than the last observed accuracy at this horizon (LCBench
curves keep rising under their cosine learning-rate schedule, the fits tend to saturate early),
but its posterior interval covers the truth, which is what the stopping rule relies on.

Defaults and deviations (not in the paper):

- ``warmup`` = ``ceil(m / 4)`` epochs before the first check and ``check_every`` =
  ``ceil(m / 10)`` epochs between checks (the paper evaluates the criterion at regular intervals
  of its own runs' epochs; these scale that to the problem's horizon, e.g. 13 and 6 on LCBench).
- MCMC: ``n_walkers = 100``, ``n_steps = 500``, ``burn_in = 250``, ``thin = 10`` (the paper and
  the authors' code: 2500 steps, 500 burn-in), to keep a check at a few seconds on a CPU; the
  options give the paper's values back.
- The proposer is told predicted values for stopped runs only in the ``gp-ei`` variant (random
  search ignores results). Neither the authors' "optimistic" mode (stopping confident runs that
  would beat the incumbent) nor their predictive-std threshold is implemented.
- Several workers: while a run's trial is pending, new configurations start; the oldest run
  waiting for its next check is continued first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.learning_curves import MCMCSettings, fit_ensemble
from ..problems.base import Problem
from ..rng import draw_seed
from ..space import Fidelity, Space
from ..trial import Observation, Trial
from .base import Continuation, Strategy

__all__ = ["LCExtrapolation"]

PROPOSERS = ("random", "gp-ei")


@dataclass
class _Run:
    """One configuration's training run: its latest trial, the epochs and curve reached."""

    config: dict[str, Any]
    last_trial: int
    epochs: float = 0
    curve: list[float] = field(default_factory=list)
    state: str = "pending"  # pending | waiting (for its next check) | stopped | finished | failed
    proposer_trial: Trial | None = None
    cost: float = 0.0


class LCExtrapolation(Strategy):
    """Random search / GP-EI with the predictive termination criterion (module docstring).

    Options:
        proposer: ``"random"`` (default) or ``"gp-ei"``: where new configurations come from.
        delta: stop a run when ``P(beat the incumbent) < delta`` (default 0.05), in ``(0, 1)``.
        warmup: epochs before the first check (default ``ceil(m / 4)``), in ``[2, m)``.
        check_every: epochs between checks (default ``ceil(m / 10)``), ``>= 1``.
        n_walkers, n_steps, burn_in, thin: the MCMC (:class:`~mfbo.models.learning_curves.MCMCSettings`).
    """

    name = "lc-extrapolation"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 proposer: str = "random", delta: float = 0.05, warmup: int | None = None, check_every: int | None = None,
                 n_walkers: int = 100, n_steps: int = 500, burn_in: int = 250, thin: int = 10):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        self._check_problem(problem, fidelity)
        if proposer not in PROPOSERS:
            raise ValueError(f"strategy {self.name!r}: option proposer must be one of {list(PROPOSERS)}, got {proposer!r}")
        if not (isinstance(delta, (int, float)) and 0.0 < delta < 1.0):
            raise ValueError(f"strategy {self.name!r}: option delta must be a number in (0, 1), got {delta!r}")
        self.proposer, self.delta = proposer, float(delta)
        self.horizon = float(fidelity.target)
        self.warmup = self._epochs_option("warmup", warmup, math.ceil(self.horizon / 4), low=2, high=self.horizon - 1)
        self.check_every = self._epochs_option("check_every", check_every, math.ceil(self.horizon / 10), low=1, high=self.horizon)
        try:
            self.mcmc = MCMCSettings(n_walkers=n_walkers, n_steps=n_steps, burn_in=burn_in, thin=thin)
        except ValueError as err:
            raise ValueError(f"strategy {self.name!r}: option {err}") from None
        self.checkpoints = self._checkpoints()
        self._runs: list[_Run] = []
        self._run_of: dict[int, _Run] = {}  # pending trial id -> its run
        self._asked: tuple[_Run | None, Trial | None] = (None, None)
        self._inner = None
        if proposer == "gp-ei":
            from .gp_ei import GPEI

            self._inner = GPEI(space, fidelity, seed=draw_seed(self.rng))

    def _check_problem(self, problem: Problem | None, fidelity: Fidelity | None) -> None:
        if problem is None or fidelity is None or not problem.resumable or not fidelity.is_discrete:
            what = "no problem" if problem is None else f"{problem.name!r} (resumable={problem.resumable}, fidelity={fidelity!r})"
            raise ValueError(
                f"strategy {self.name!r} needs a problem that reports learning curves: a resumable problem with an "
                f"epoch (discrete) fidelity, e.g. lcbench/<task>, digits-mlp, digits-mlp-table; got {what}"
            )

    def _epochs_option(self, key: str, value: Any, default: int, low: float, high: float) -> int:
        if value is None:
            return int(min(max(default, low), high))
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"strategy {self.name!r}: option {key} must be an integer in [{low:g}, {high:g}] (epochs), got {value!r}")
        return int(value)

    def _checkpoints(self) -> tuple[float, ...]:
        """The fidelities at which a run is checked: ``warmup + j * check_every`` rounded up to
        the fidelity's grid, then the target."""
        grid = [g for g in self.fidelity.grid() if g <= self.horizon]
        points = []
        epoch = self.warmup
        while epoch < self.horizon:
            points.append(next(g for g in grid if g >= epoch))
            epoch += self.check_every
        return tuple(sorted(set(points) | {grid[-1]}))

    def options(self) -> dict[str, Any]:
        return {"proposer": self.proposer, "delta": self.delta, "warmup": self.warmup, "check_every": self.check_every,
                "n_walkers": self.mcmc.n_walkers, "n_steps": self.mcmc.n_steps, "burn_in": self.mcmc.burn_in, "thin": self.mcmc.thin}

    # ask / tell --------------------------------------------------------------------------------
    def _suggest(self) -> tuple[dict[str, Any], Any] | Continuation:
        waiting = [run for run in self._runs if run.state == "waiting"]
        if waiting:
            run = waiting[0]
            self._asked = (run, None)
            return Continuation(run.last_trial, next(c for c in self.checkpoints if c > run.epochs))
        if self._inner is not None:
            inner_trial = self._inner.ask()
            config = dict(inner_trial.config)
        else:
            inner_trial, config = None, self.space.sample(self.rng)
        self._asked = (None, inner_trial)
        return config, self.checkpoints[0]

    def ask(self) -> Trial:
        """:meth:`Strategy.ask`, filing the trial under its run (a new run for a new config)."""
        trial = super().ask()
        run, inner_trial = self._asked
        if run is None:
            run = _Run(config=dict(trial.config), last_trial=trial.id, proposer_trial=inner_trial)
            self._runs.append(run)
        run.last_trial, run.state = trial.id, "pending"
        self._run_of[trial.id] = run
        return trial

    def _observe(self, trial: Trial, observation: Observation) -> None:
        run = self._run_of.pop(trial.id, None)
        if run is None:  # told through add_observation: data (a target value counts as incumbent)
            return
        run.cost += observation.cost
        if not observation.ok:
            run.state = "failed"
            self._tell_proposer(run, Observation.failure(observation.error or "failed", cost=run.cost))
            return
        run.epochs = trial.fidelity
        if observation.curve is not None:
            run.curve = [float(v) for v in np.asarray(observation.curve, dtype=float).ravel()]
        if trial.fidelity >= self.horizon:
            run.state = "finished"
            self._tell_proposer(run, Observation(value=observation.value, cost=run.cost))
            return
        predicted = self._check(run, trial)
        if predicted is None:
            run.state = "waiting"
        else:
            run.state = "stopped"
            self._tell_proposer(run, Observation(value=predicted, cost=run.cost, info={"predicted": True}))

    def _tell_proposer(self, run: _Run, observation: Observation) -> None:
        if self._inner is not None and run.proposer_trial is not None:
            self._inner.tell(run.proposer_trial, observation)

    def _check(self, run: _Run, trial: Trial) -> float | None:
        """The termination criterion at a check: the predicted final value ``1 - E[f_comb(m)]``
        if the run is to be stopped, else ``None`` (no incumbent, no or a non-finite curve, a
        curve already past the incumbent, no admissible family fit, or ``P >= delta``)."""
        best = self.best_observed()
        y = 1.0 - np.asarray(run.curve, dtype=float)
        if best is None or len(y) < 2 or not np.all(np.isfinite(y)):
            return None
        y_hat = 1.0 - best[1].value
        if y.max() > y_hat:
            return None
        ensemble = fit_ensemble(y, self.horizon, self.rng, self.mcmc)
        if ensemble is None:
            self.note(f"lc-extrapolation: trial {trial.id}: no admissible curve fit at epoch {trial.fidelity}; run continues")
            return None
        prob = ensemble.prob_exceeds(y_hat)
        predicted = 1.0 - ensemble.predict()
        stop = prob < self.delta
        self.note(f"lc-extrapolation: trial {trial.id} at epoch {trial.fidelity}: P(beat incumbent {best[1].value:.4g}) = {prob:.3f}, predicted final {predicted:.4g}; {'stopped' if stop else 'continues'}")
        return predicted if stop else None

    def stopped_runs(self) -> list[dict[str, Any]]:
        """The runs stopped so far: config, epochs reached and the cost they used."""
        return [{"config": r.config, "epochs": r.epochs, "cost": r.cost} for r in self._runs if r.state == "stopped"]

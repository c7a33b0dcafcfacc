"""One optimisation run: :func:`minimize`.

The loop is the one place where cost is accounted, failures are handled, the strategy's own
overhead is timed and the trial log is written, so no strategy re-implements any of it.

Budget rule
-----------
``budget`` is in the problem's cost units. Before each evaluation the loop asks the problem for
the trial's cost (:meth:`Problem.cost`). If the problem knows it and the trial would take the
spent cost past the budget, the run stops there and that trial is not evaluated, so **the budget
is never exceeded** on problems with a known cost model. When the cost is only known after the
evaluation (measured wall time, for example), the loop evaluates while the spent cost is below
the budget, so **the last trial may overshoot** by at most its own cost. ``stop_reason`` in the
log says which rule ended the run.

Continuations
-------------
A trial with ``continues = k`` takes trial ``k``'s configuration on to a higher fidelity
(:class:`~mfbo.trial.Trial`). The loop passes ``resume_from`` = trial ``k``'s fidelity to the
problem; a resumable problem charges only the increment, any other the full cost, and the budget
check uses :meth:`Problem.increment_cost` accordingly. The record's ``continues`` field keeps the
link, so analysis can rebuild each configuration's promotions.

Failures
--------
If the objective raises, or returns a non-finite value, the trial is recorded with
``status="failed"`` and the error text, the strategy is told (with an
:meth:`Observation.failure`), and the run goes on. A failed trial is charged the cost the
objective reported, else the problem's known cost, else the measured wall time. After
``max_consecutive_failures`` failures in a row the run stops (``stop_reason="failures"``) rather
than spin. A strategy that raises ends the run with :class:`StrategyError`; the log keeps every
trial completed before it and has no footer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import problems as problem_registry
from . import strategies as strategy_registry
from .problems.base import Problem
from .progress import ProgressBar
from .runlog import RunLogWriter, require_pandas, trial_rows
from .strategies.base import Strategy
from .trial import Observation, Trial

__all__ = ["minimize", "Result", "TrialRecord", "StrategyError", "TIMING_FIELDS"]

#: Trial-record fields that hold measured times; everything else is determined by spec and seed.
TIMING_FIELDS = ("eval_time", "overhead", "recommend_time")


class StrategyError(RuntimeError):
    """A strategy raised inside ask, tell or recommend; the run cannot continue."""


@dataclass
class TrialRecord:
    """One evaluated trial as it appears in the log and in :attr:`Result.trials`."""

    id: int
    continues: int | None  # id of the trial this one continued to a higher fidelity, if any
    config: dict[str, Any]
    fidelity: float | None
    value: float | None
    cost: float
    cum_cost: float
    status: str  # "ok" or "failed"
    error: str | None
    eval_time: float  # seconds spent in Problem.evaluate
    overhead: float  # seconds spent in the strategy's ask + tell
    recommend_time: float  # seconds spent in the strategy's recommend
    recommendation: dict[str, Any] | None
    rec_value: float | None  # exact target-fidelity value of the recommendation, if known
    regret: float | None  # rec_value - optimum, if both are known
    best_value: float | None  # best successful value observed at the target fidelity so far
    curve: list[float] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # events the strategy reported (e.g. a fit fallback)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """What :func:`minimize` returns."""

    trials: list[TrialRecord]
    recommendation: dict[str, Any] | None
    recommendation_value: float | None
    regret: float | None
    total_cost: float
    stop_reason: str
    spec: dict[str, Any]
    log_path: Path | None = None

    @property
    def best_value(self) -> float | None:
        """Best observed value at the target fidelity."""
        return self.trials[-1].best_value if self.trials else None

    def to_frame(self):
        """The trials as a tidy ``pandas.DataFrame`` (needs the ``analysis`` extra)."""
        pd = require_pandas("Result.to_frame")
        return pd.DataFrame(trial_rows({"spec": self.spec}, (t.to_dict() for t in self.trials)))


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("mfbo", "torch", "gpytorch", "botorch", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _resolve(problem: Problem | str, strategy: Strategy | str, seed: int, problem_options: dict, strategy_options: dict) -> tuple[Problem, Strategy]:
    if isinstance(problem, str):
        problem = problem_registry.get(problem, **problem_options)
    elif problem_options:
        raise ValueError("minimize: problem_options is only used when problem is given by name")
    if not isinstance(problem, Problem):
        raise ValueError(f"minimize: problem must be a Problem or a registered name, got {type(problem).__name__}")
    if isinstance(strategy, str):
        strategy = strategy_registry.make(strategy, problem, seed=seed, **strategy_options)
    elif strategy_options:
        raise ValueError("minimize: strategy_options is only used when strategy is given by name")
    if not isinstance(strategy, Strategy):
        raise ValueError(f"minimize: strategy must be a Strategy or a registered name, got {type(strategy).__name__}")
    if strategy.space != problem.space:
        raise ValueError(f"minimize: strategy {strategy.name!r} was built for a different space than problem {problem.name!r}")
    return problem, strategy


def _evaluate(problem: Problem, trial: Trial, known_cost: float | None, resume_from: float | None = None) -> tuple[Observation, float]:
    """Evaluate a trial, turning exceptions and non-finite values into failed observations."""
    start = time.perf_counter()
    try:
        obs = problem.evaluate(trial.config, trial.fidelity, resume_from=resume_from)
    except Exception as err:  # any objective error is a failed trial, never the end of the run
        obs = Observation.failure(f"{type(err).__name__}: {err}")
    elapsed = time.perf_counter() - start
    if obs.error is None and not math.isfinite(obs.value):
        obs = Observation.failure(f"objective returned a non-finite value ({obs.value})", cost=obs.cost, info=obs.info)
    if not obs.ok and not (math.isfinite(obs.cost) and obs.cost > 0):
        charged = known_cost if known_cost is not None else elapsed
        obs = Observation.failure(obs.error or "failed", cost=charged, info=obs.info)
    return obs, elapsed


def _resume_point(trial: Trial, fidelities: dict[int, Any]) -> Any:
    """The fidelity a continuation starts from (``None`` for a new evaluation)."""
    if trial.continues is None:
        return None
    if trial.continues not in fidelities:
        raise StrategyError(f"trial {trial.id} continues trial {trial.continues}, which this run never evaluated")
    return fidelities[trial.continues]


def minimize(
    problem: Problem | str,
    strategy: Strategy | str,
    budget: float,
    seed: int = 0,
    *,
    problem_options: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    log_path: str | Path | None = None,
    max_trials: int | None = None,
    max_consecutive_failures: int = 100,
    progress: bool = False,
    callback: Callable[[TrialRecord], None] | None = None,
) -> Result:
    """Minimise ``problem`` with ``strategy`` until ``budget`` (in cost units) is spent.

    Args:
        problem: a :class:`Problem` or a registered name (see ``mfbo.problems.names()``).
        strategy: a :class:`Strategy` or a registered name (see ``mfbo.strategies.names()``).
        budget: total cost allowed, in the problem's cost units (> 0). See the module docstring
            for when the last trial may overshoot.
        seed: seeds the strategy when it is given by name (a Strategy object keeps its own seed,
            which is what the log records).
        problem_options, strategy_options: constructor options when given by name.
        log_path: write the JSON Lines trial log here (``None``: no file).
        max_trials: optional cap on the number of evaluated trials.
        max_consecutive_failures: stop after this many failed trials in a row.
        progress: draw a progress bar on stderr.
        callback: called with each :class:`TrialRecord` after it is logged.

    Returns:
        A :class:`Result`. Same problem, strategy, options, seed and budget give the same trial
        records, apart from the fields in :data:`TIMING_FIELDS` (and wall-time costs).

    Raises:
        ValueError: for bad arguments (named in the message).
        StrategyError: when the strategy itself raises; the log keeps the trials done so far.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"minimize: budget must be a finite number > 0 (in the problem's cost units), got {budget!r}")
    if max_trials is not None and (int(max_trials) != max_trials or max_trials < 1):
        raise ValueError(f"minimize: max_trials must be a positive integer or None, got {max_trials!r}")
    if int(max_consecutive_failures) < 1:
        raise ValueError(f"minimize: max_consecutive_failures must be >= 1, got {max_consecutive_failures!r}")
    problem, strategy = _resolve(problem, strategy, seed, dict(problem_options or {}), dict(strategy_options or {}))

    spec = {
        "problem": problem.name,
        "problem_options": dict(problem_options or {}),
        "strategy": strategy.name,
        "options": strategy.options(),
        "seed": strategy.seed,
        "budget": float(budget),
    }
    strategy.set_budget(budget)
    writer = None if log_path is None else RunLogWriter(log_path, {"spec": spec, "problem": problem.to_dict(), "versions": _versions(), "started": _now()})
    bar = ProgressBar(budget) if progress else None
    records: list[TrialRecord] = []
    cum_cost = 0.0
    best_value: float | None = None
    consecutive_failures = 0
    rec_cache: tuple[dict[str, Any], float | None] | None = None
    stop_reason = "budget"
    tolerance = 1e-9 * float(budget)  # float round-off: 30 trials of cost 1.0 fit a budget of 30
    started = time.perf_counter()
    completed = False
    fidelities: dict[int, Any] = {}  # trial id -> fidelity reached, for continuations

    def call_strategy(what: str, fn: Callable[[], Any]) -> tuple[Any, float]:
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as err:
            raise StrategyError(f"strategy {strategy.name!r} raised in {what}() after {len(records)} trials: {type(err).__name__}: {err}") from err
        return out, time.perf_counter() - t0

    try:
        while cum_cost < budget - tolerance:
            if max_trials is not None and len(records) >= max_trials:
                stop_reason = "max_trials"
                break
            trial, ask_time = call_strategy("ask", strategy.ask)
            resume_from = _resume_point(trial, fidelities)
            known_cost = problem.increment_cost(trial.config, trial.fidelity, resume_from)
            if known_cost is not None and cum_cost + known_cost > budget + tolerance:
                stop_reason = "budget (next trial would exceed it)"
                break
            obs, eval_time = _evaluate(problem, trial, known_cost, resume_from)
            fidelities[trial.id] = trial.fidelity
            _, tell_time = call_strategy("tell", lambda: strategy.tell(trial, obs))
            recommendation, recommend_time = call_strategy("recommend", strategy.recommend)

            cum_cost += obs.cost
            consecutive_failures = 0 if obs.ok else consecutive_failures + 1
            if obs.ok and trial.fidelity == problem.target_fidelity:
                best_value = obs.value if best_value is None else min(best_value, obs.value)
            if recommendation is not None and (rec_cache is None or rec_cache[0] != recommendation):
                rec_cache = (recommendation, problem.target_value(recommendation))
            rec_value = None if recommendation is None else rec_cache[1]
            record = TrialRecord(
                id=trial.id,
                continues=trial.continues,
                config=trial.config,
                fidelity=trial.fidelity,
                value=obs.value if obs.ok else None,
                cost=obs.cost,
                cum_cost=cum_cost,
                status="ok" if obs.ok else "failed",
                error=obs.error,
                eval_time=eval_time,
                overhead=ask_time + tell_time,
                recommend_time=recommend_time,
                recommendation=recommendation,
                rec_value=rec_value,
                regret=None if rec_value is None or problem.optimum is None else rec_value - problem.optimum,
                best_value=best_value,
                curve=obs.curve_list(),
                info=dict(obs.info),
                notes=strategy.drain_notes(),
            )
            records.append(record)
            if writer is not None:
                writer.trial(record.to_dict())
            if callback is not None:
                callback(record)
            if bar is not None:
                regret = "" if record.regret is None else f"regret {record.regret:.3g}  "
                bar.update(cum_cost, f"{regret}trial {len(records)}")
            if consecutive_failures >= max_consecutive_failures:
                stop_reason = "failures"
                break
        completed = True
    finally:
        if bar is not None:
            bar.close()
        if writer is not None and completed:  # the footer marks a finished run
            last = records[-1] if records else None
            writer.footer({
                "n_trials": len(records),
                "n_failed": sum(r.status == "failed" for r in records),
                "total_cost": cum_cost,
                "stop_reason": stop_reason,
                "recommendation": None if last is None else last.recommendation,
                "recommendation_value": None if last is None else last.rec_value,
                "regret": None if last is None else last.regret,
                "best_value": best_value,
                "wall_time": time.perf_counter() - started,
                "finished": _now(),
            })
        if writer is not None:
            writer.close()

    last = records[-1] if records else None
    return Result(
        trials=records,
        recommendation=None if last is None else last.recommendation,
        recommendation_value=None if last is None else last.rec_value,
        regret=None if last is None else last.regret,
        total_cost=cum_cost,
        stop_reason=stop_reason,
        spec=spec,
        log_path=None if log_path is None else Path(log_path),
    )


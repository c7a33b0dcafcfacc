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
When the first :data:`SAME_ERROR_LIMIT` trials all raise the same programming error (a
``TypeError`` from an objective with the wrong signature, a ``KeyError``: :data:`BUG_ERRORS`), the
objective is broken rather than unlucky: the run stops as for a problem error (below) and
:func:`minimize` raises :class:`ObjectiveError` naming the objective and the error. A value that
is not a number (a string, even ``"0.5"``; ``None``) is a failed trial saying so.

Asynchronous workers on a simulated clock
-----------------------------------------
With ``workers = W > 1``, ``W`` evaluations run at once on a simulated clock
(:mod:`mfbo.simulator`): an evaluation that starts at ``t`` ends at ``t + cost`` (cost units read
as time), the strategy is told results in simulated completion order and asks with the other
trials still pending. A strategy that cannot propose anything before a pending result arrives
returns ``None`` from ``ask`` (:meth:`Strategy.ask`): the free workers wait for the next
completion. Each record carries its simulated ``start`` and ``end`` and its ``worker``; records
appear in the log in completion order, so ``cum_cost`` grows down the log while ``id``
(ask order) need not. The stopping rule ``stop`` is

- ``"cost"`` (default): the budget is the **total cost** of all evaluations, the rule above with
  the cost of running evaluations counted when they start (the simulator knows it then), so the
  budget is never exceeded with a known cost and overshot by at most one trial's cost otherwise;
- ``"wall_clock"``: the budget is **simulated wall-clock time**, as in Syne Tune: a trial starts
  only while the clock is below the budget and, with a known cost, only if it ends by then; the
  total cost may then reach ``W`` times the budget.

Once a rule stops the run, no new trial starts and the running ones complete and are logged.
With one worker the clock is the cumulative cost, both rules give the same trials, and the log
is the plain serial loop's (``start = cum_cost - cost``, ``end = cum_cost``, ``worker = 0``). The
same code path serves both: there is one place for cost accounting, failures and records.

Replaying a run
---------------
``evaluation_cache`` (see :class:`EvaluationCache`; :class:`mfbo.study.EvaluationCache` keeps it
in a file) maps trial ids to finished evaluations. Each asked trial found in it gets the cached
observation instead of a new evaluation, and each new evaluation is stored in it before the
strategy is told. Since the strategy asks the same trials under the same seed, re-running an
interrupted run with its cache reproduces the uninterrupted log (apart from
:data:`TIMING_FIELDS`) without paying again for any evaluation it had finished. The cache decides what matches an ask
(:class:`mfbo.study.EvaluationCache`: the same trial, else the same configuration, fidelity and
resume point). Torch's thread count can change the last digits of a GP's numbers, so the header
records it (``environment.torch_threads``) and a study resumes a run with the count it started
with.

Problem errors
--------------
A problem's known cost (:meth:`Problem.cost`, a ``cost=`` callable) that raises or is not a
finite number >= 0, and a ``target_value`` that raises, are mistakes in the problem rather than
failed evaluations. The run stops as a stop rule would: no trial starts after the error (a
failing cost stops the run before its trial is evaluated), and every evaluation already made
is completed and logged, so no paid evaluation is missing from the log. A record whose
recommendation could not be scored has ``rec_value`` and ``regret`` null and a note naming the
failing callable. The log then gets its footer (``stop_reason = "problem error"``, ``error``) and
:func:`minimize` raises :class:`ProblemError`. A study treats such a run as failed and resumes
it, replaying its evaluations, once the problem is fixed (:mod:`mfbo.study.resume`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

from . import problems as problem_registry
from . import strategies as strategy_registry
from .problems.base import Problem
from .progress import ProgressBar
from .runlog import RunLogWriter, require_pandas, trial_rows
from .simulator import Job, SimulatedWorkers
from .strategies.base import Strategy
from .strategies.guard import GuardedStrategy, guarded
from .trial import Observation, Trial

__all__ = ["minimize", "Result", "TrialRecord", "StrategyError", "ProblemError", "ObjectiveError", "EvaluationCache", "TIMING_FIELDS", "STOP_RULES", "PROBLEM_ERROR"]

#: Trial-record fields that hold measured times; everything else is determined by spec and seed.
TIMING_FIELDS = ("eval_time", "overhead", "recommend_time")

#: The stopping rules of :func:`minimize` (see the module docstring).
STOP_RULES = ("cost", "wall_clock")

#: The footer's ``stop_reason`` of a run stopped by a :class:`ProblemError`.
PROBLEM_ERROR = "problem error"

#: Header keys that :func:`minimize` writes itself (``log_header`` may not replace them).
_HEADER_KEYS = ("type", "format", "spec", "execution", "problem", "versions", "environment", "started")


class StrategyError(RuntimeError):
    """A strategy raised inside ask, tell or recommend; the run cannot continue."""


class ProblemError(RuntimeError):
    """A problem's cost or target value could not be computed (module docstring, "Problem
    errors"); the run stops, and its log holds every evaluation made and a footer."""


class ObjectiveError(ProblemError):
    """The objective raised the same programming error (a wrong signature, a misspelt key) in
    each of a run's first :data:`SAME_ERROR_LIMIT` trials: a bug to fix, not failed trials to
    survive. The run stops as for any :class:`ProblemError`."""


#: The first trials that may all raise the same programming error before :class:`ObjectiveError`.
SAME_ERROR_LIMIT = 3
#: Exception types that mean a bug in the objective rather than a failed evaluation (a
#: ``RuntimeError`` such as out-of-memory or a diverged loss may repeat legitimately).
BUG_ERRORS = ("TypeError", "NameError", "UnboundLocalError", "AttributeError", "ImportError",
              "ModuleNotFoundError", "KeyError", "IndexError", "SyntaxError")


class EvaluationCache(Protocol):
    """Finished evaluations of one run, keyed by trial id (see "Replaying a run" above)."""

    def lookup(self, trial: Trial, resume_from: Any = None) -> tuple[Observation, float] | None:
        """``(observation, eval_time)`` of ``trial`` (resumed from fidelity ``resume_from``) if it
        was evaluated before, else ``None``."""

    def store(self, trial: Trial, observation: Observation, eval_time: float, resume_from: Any = None) -> None:
        """Keep a new evaluation (durably: it must survive the process being killed)."""


@dataclass
class _Started:
    """What the loop knows about a running evaluation (the payload of its simulated job)."""

    trial: Trial
    observation: Observation
    eval_time: float
    ask_time: float


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
    notes: list[str] = field(default_factory=list)  # events the strategy reported (e.g. a fit fallback), and problem errors
    start: float = 0.0  # simulated start time (cost units; see the module docstring)
    end: float = 0.0  # simulated end time: start + cost
    worker: int = 0  # the simulated worker that ran it
    #: the strategy's other recommendation rules (Strategy.other_recommendations), by rule:
    #: {"config": ..., "rec_value": ..., "regret": ...}
    other_recommendations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: a bias guard's check of the recommendation (mfbo.strategies.guard), None for other trials
    guard: dict[str, Any] | None = None

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
    wall_clock: float = 0.0  # simulated time at which the last evaluation ended
    replayed: int = 0  # evaluations taken from the evaluation cache instead of being paid for

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


def _environment() -> dict[str, Any]:
    """What can change a run's numbers without changing its spec: torch's thread count."""
    import torch

    return {"torch_threads": torch.get_num_threads()}


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
    workers: int = 1,
    stop: str = "cost",
    evaluation_cache: EvaluationCache | None = None,
    log_header: dict[str, Any] | None = None,
    guard: Any = None,
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
        workers: evaluations running at once on the simulated clock (module docstring).
        stop: the stopping rule, ``"cost"`` (total cost) or ``"wall_clock"`` (simulated time).
        evaluation_cache: finished evaluations to replay instead of paying for them again, and
            where new ones are kept (module docstring, "Replaying a run").
        log_header: extra fields for the log header (a study's run spec and its hash, say).
        guard: a bias guard for the strategy (:mod:`mfbo.strategies.guard`):
            ``GuardOptions(every=10, on_change=True)``, ``10``, ``"change"`` or a dict; its
            trials are logged with a ``guard`` field. The same as the strategy option ``guard``.

    Returns:
        A :class:`Result`. Same problem, strategy, options, seed, budget, workers and stop rule
        give the same trial records, apart from the fields in :data:`TIMING_FIELDS` (and
        wall-time costs).

    Raises:
        ValueError: for bad arguments (named in the message).
        StrategyError: when the strategy itself raises; the log keeps the trials done so far.
        ProblemError: when the problem's cost or target value cannot be computed (module
            docstring, "Problem errors"); raised once the log is complete.
    """
    _check_arguments(budget, max_trials, max_consecutive_failures, workers, stop, log_header)
    problem, strategy = _resolve(problem, strategy, seed, dict(problem_options or {}), dict(strategy_options or {}))
    strategy = guarded(strategy, guard)
    spec = {
        "problem": problem.name,
        "problem_options": dict(problem_options or {}),
        "strategy": strategy.name,
        "options": strategy.options(),
        "seed": strategy.seed,
        "budget": float(budget),
    }
    strategy.set_budget(budget, stop, workers)
    header = {
        "spec": spec, "execution": {"workers": workers, "stop": stop}, "problem": problem.to_dict(),
        "versions": _versions(), "environment": _environment(), "started": _now(), **(log_header or {}),
    }
    writer = None if log_path is None else RunLogWriter(log_path, header)
    bar = ProgressBar(budget) if progress else None
    run = _Run(
        problem, strategy, float(budget), stop=stop, workers=workers, max_trials=max_trials,
        max_consecutive_failures=int(max_consecutive_failures), evaluation_cache=evaluation_cache,
        writer=writer, bar=bar, callback=callback,
    )
    completed = False
    try:
        run.execute()
        completed = True
    finally:
        if bar is not None:
            bar.close()
        if writer is not None and completed:  # the footer marks a finished run
            writer.footer(run.footer())
        if writer is not None:
            writer.close()
    if run.problem_error is not None:  # the log is complete and says why the run stopped
        raise run.problem_error
    return run.result(spec, None if log_path is None else Path(log_path))


def _check_arguments(budget, max_trials, max_consecutive_failures, workers, stop, log_header) -> None:
    """Raise the one clear :class:`ValueError` of :func:`minimize` for a bad argument."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"minimize: budget must be a finite number > 0 (in the problem's cost units), got {budget!r}")
    if max_trials is not None and (int(max_trials) != max_trials or max_trials < 1):
        raise ValueError(f"minimize: max_trials must be a positive integer or None, got {max_trials!r}")
    if int(max_consecutive_failures) < 1:
        raise ValueError(f"minimize: max_consecutive_failures must be >= 1, got {max_consecutive_failures!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"minimize: workers must be an integer >= 1, got {workers!r}")
    if stop not in STOP_RULES:
        raise ValueError(f"minimize: stop must be one of {list(STOP_RULES)}, got {stop!r}")
    clashes = sorted(set(log_header or {}) & set(_HEADER_KEYS))
    if clashes:
        raise ValueError(f"minimize: log_header may not set {clashes}; they are written by the loop ({', '.join(_HEADER_KEYS)})")


class _Run:
    """One :func:`minimize` call in progress: the simulated workers, the cost spent (by completed
    evaluations, in completion order) and committed (by every started one), the trial records,
    and the steps of the ask-evaluate-tell loop (:meth:`execute`)."""

    def __init__(
        self, problem: Problem, strategy: Strategy, budget: float, *, stop: str, workers: int,
        max_trials: int | None, max_consecutive_failures: int, evaluation_cache: EvaluationCache | None,
        writer: RunLogWriter | None, bar: ProgressBar | None, callback: Callable[[TrialRecord], None] | None,
    ) -> None:
        self.problem, self.strategy, self.budget, self.stop = problem, strategy, budget, stop
        self.max_trials, self.max_consecutive_failures = max_trials, max_consecutive_failures
        self.evaluation_cache, self.writer, self.bar, self.callback = evaluation_cache, writer, bar, callback
        self.pool = SimulatedWorkers(workers)
        self.records: list[TrialRecord] = []
        self.cum_cost = 0.0  # cost of the completed evaluations, in completion order
        self.committed = 0.0  # cost of every started evaluation, completed or running
        self.n_started = 0
        self.replayed = 0
        self.best_value: float | None = None
        self.consecutive_failures = 0
        self.stop_reason: str | None = None
        self.error: str | None = None  # why a problem error stopped the run
        self.problem_error: ProblemError | None = None  # the first one, raised once the log is complete
        self.tolerance = 1e-9 * budget  # float round-off: 30 trials of cost 1.0 fit a budget of 30
        self.started = time.perf_counter()
        self.fidelities: dict[int, Any] = {}  # trial id -> fidelity reached, for continuations
        self.target_values: dict[str, float | None] = {}  # exact target values, by configuration
        self.first_errors: list[str] | None = []  # errors of the first trials, until one succeeds

    # The loop ------------------------------------------------------------------------------------
    def execute(self) -> None:
        """Start trials on the free workers until a stop rule says no, complete the next ones to
        end, and repeat until nothing runs."""
        while True:
            self.start_trials()
            if not self.pool.busy:
                return
            for job in self.pool.complete_next():  # every evaluation ending now, in worker order
                self.complete(job)
                if self.stop_reason is None and self.consecutive_failures >= self.max_consecutive_failures:
                    self.stop_reason = "failures"

    def start_trials(self) -> None:
        """Ask for and start trials while a worker is free and no stop rule applies."""
        while self.stop_reason is None and self.pool.has_free_worker:
            self.stop_reason = self.reason_not_to_ask()
            if self.stop_reason is not None:
                return
            trial, ask_time = self.call_strategy("ask", self.strategy.ask)
            if trial is None:  # the strategy waits for a running trial's result (Strategy.ask)
                return
            resume_from = _resume_point(trial, self.fidelities)
            try:
                known_cost = self.known_cost(trial, resume_from)
            except ProblemError as err:  # nothing is evaluated for this trial
                self.stop_for(err)
                return
            self.stop_reason = self.reason_not_to_start(known_cost)
            if self.stop_reason is not None:
                return
            obs, eval_time = self.evaluate(trial, known_cost, resume_from)
            self.check_objective(obs)
            self.fidelities[trial.id] = trial.fidelity
            self.committed += obs.cost
            self.n_started += 1
            self.pool.start(trial.id, obs.cost, _Started(trial, obs, eval_time, ask_time))

    def check_objective(self, obs: Observation) -> None:
        """Stop the run with an :class:`ObjectiveError` when its first :data:`SAME_ERROR_LIMIT`
        trials all raised the same error of a :data:`BUG_ERRORS` type (the trial is still logged)."""
        if self.first_errors is None:
            return
        if obs.ok:
            self.first_errors = None
            return
        errors = self.first_errors
        errors.append(obs.error or "")
        if len(errors) < SAME_ERROR_LIMIT:
            return
        self.first_errors = None  # decided after the first SAME_ERROR_LIMIT trials: stop tracking
        if len(set(errors)) == 1 and errors[0].split(":")[0] in BUG_ERRORS:
            self.stop_for(ObjectiveError(
                f"problem {self.problem.name!r}: the objective {self.problem.objective_name()} raised the same error in each "
                f"of the first {len(errors)} trials: {errors[0]}; fix the objective and run again"
            ))

    def stop_for(self, err: ProblemError) -> None:
        """Stop the run for a problem error: no trial starts after it, the running ones complete
        and are logged, and :func:`minimize` raises the first such error after the footer."""
        if self.problem_error is None:
            self.problem_error, self.error = err, str(err)
        self.stop_reason = PROBLEM_ERROR

    def problem_call(self, what: str, fn: Callable[[], Any], about: str) -> Any:
        """``fn()``, a call of the problem's ``what``; raising ends the run with a
        :class:`ProblemError` that names the problem, ``what`` and ``about`` (module docstring)."""
        try:
            return fn()
        except Exception as err:
            raise ProblemError(f"problem {self.problem.name!r}: {what} failed for {about}: {type(err).__name__}: {err}") from err

    def known_cost(self, trial: Trial, resume_from: Any) -> float | None:
        """The problem's cost of ``trial`` before evaluating it (None: not known); one that raises
        or is not a finite number >= 0 is a :class:`ProblemError`."""
        about = f"trial {trial.id} at fidelity {trial.fidelity!r}"
        cost = self.problem_call("cost", lambda: self.problem.increment_cost(trial.config, trial.fidelity, resume_from), about)
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0):
            raise ProblemError(f"problem {self.problem.name!r}: cost must be a finite number >= 0, got {cost!r} for {about}")
        return cost

    def reason_not_to_ask(self) -> str | None:
        """Why no further trial may start, before asking for one (None: ask)."""
        if self.stop == "cost" and self.committed >= self.budget - self.tolerance:
            return "budget"
        if self.stop == "wall_clock" and self.pool.now >= self.budget - self.tolerance:
            return "wall_clock"
        if self.max_trials is not None and self.n_started >= self.max_trials:
            return "max_trials"
        return None

    def reason_not_to_start(self, known_cost: float | None) -> str | None:
        """Why the trial just asked may not start, given its known cost (None: start it)."""
        if known_cost is None:
            return None
        if self.stop == "cost" and self.committed + known_cost > self.budget + self.tolerance:
            return "budget (next trial would exceed it)"
        if self.stop == "wall_clock" and self.pool.now + known_cost > self.budget + self.tolerance:
            return "wall_clock (next trial would end after it)"
        return None

    def call_strategy(self, what: str, fn: Callable[[], Any]) -> tuple[Any, float]:
        """``(fn(), seconds)``; a strategy that raises ends the run with a :class:`StrategyError`."""
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as err:
            raise StrategyError(
                f"strategy {self.strategy.name!r} raised in {what}() after {len(self.records)} trials: {type(err).__name__}: {err}"
            ) from err
        return out, time.perf_counter() - t0

    def evaluate(self, trial: Trial, known_cost: float | None, resume_from: Any) -> tuple[Observation, float]:
        """The trial's observation and evaluation seconds, replayed from the cache if it has them."""
        cache = self.evaluation_cache
        cached = None if cache is None else cache.lookup(trial, resume_from)
        if cached is not None:
            self.replayed += 1
            return cached
        obs, eval_time = _evaluate(self.problem, trial, known_cost, resume_from)
        if cache is not None:
            cache.store(trial, obs, eval_time, resume_from)
        return obs, eval_time

    # Completing a trial --------------------------------------------------------------------------
    def complete(self, job: Job) -> None:
        """Tell the strategy a finished evaluation, then account, record and report it."""
        run: _Started = job.payload
        trial, obs = run.trial, run.observation
        _, tell_time = self.call_strategy("tell", lambda: self.strategy.tell(trial, obs))
        recommendation, recommend_time = self.call_strategy("recommend", self.strategy.recommend)
        others, others_time = self.call_strategy("other_recommendations", self.strategy.other_recommendations)
        self.cum_cost += obs.cost
        self.consecutive_failures = 0 if obs.ok else self.consecutive_failures + 1
        if obs.ok and trial.fidelity == self.problem.target_fidelity:
            self.best_value = obs.value if self.best_value is None else min(self.best_value, obs.value)
        notes = self.strategy.drain_notes()
        scored = self.scored(recommendation, notes) if recommendation is not None else {"rec_value": None, "regret": None}
        others_scored = {rule: self.scored(config, notes) for rule, config in others.items()}
        record = TrialRecord(
            id=trial.id,
            continues=trial.continues,
            config=trial.config,
            fidelity=trial.fidelity,
            value=obs.value if obs.ok else None,
            cost=obs.cost,
            cum_cost=self.cum_cost,
            status="ok" if obs.ok else "failed",
            error=obs.error,
            eval_time=run.eval_time,
            overhead=run.ask_time + tell_time,
            recommend_time=recommend_time + others_time,
            recommendation=recommendation,
            rec_value=scored["rec_value"],
            regret=scored["regret"],
            best_value=self.best_value,
            curve=obs.curve_list(),
            info=dict(obs.info),
            notes=notes,
            start=job.start,
            end=job.end,
            worker=job.worker,
            other_recommendations=others_scored,
            guard=self.strategy.guard_record(trial.id) if isinstance(self.strategy, GuardedStrategy) else None,
        )
        self.report(record)

    def scored(self, config: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        """A recommendation with its exact target value and regret, if known (each configuration's
        target value is asked of the problem once). A ``target_value`` that raises leaves both
        unknown, adds a note naming it to ``notes`` and stops the run (:meth:`stop_for`)."""
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in self.target_values:
            try:
                self.target_values[key] = self.problem_call("target_value", lambda: self.problem.target_value(config), f"configuration {config}")
            except ProblemError as err:  # the trial is still logged; the run stops after it
                self.stop_for(err)
                notes.append(f"rec_value and regret unknown: {err}")
                return {"config": config, "rec_value": None, "regret": None}
        value = self.target_values[key]
        regret = None if value is None or self.problem.optimum is None else value - self.problem.optimum
        return {"config": config, "rec_value": value, "regret": regret}

    def report(self, record: TrialRecord) -> None:
        """Keep the record and hand it to the log, the callback and the progress bar."""
        self.records.append(record)
        if self.writer is not None:
            self.writer.trial(record.to_dict())
        if self.callback is not None:
            self.callback(record)
        if self.bar is not None:
            regret = "" if record.regret is None else f"regret {record.regret:.3g}  "
            self.bar.update(self.cum_cost if self.stop == "cost" else self.pool.now, f"{regret}trial {len(self.records)}")

    # The outcome ---------------------------------------------------------------------------------
    def footer(self) -> dict[str, Any]:
        """The log's footer, which marks a finished run."""
        last = self.records[-1] if self.records else None
        return {
            "n_trials": len(self.records),
            "n_failed": sum(r.status == "failed" for r in self.records),
            "total_cost": self.cum_cost,
            "stop_reason": self.stop_reason,
            "recommendation": None if last is None else last.recommendation,
            "recommendation_value": None if last is None else last.rec_value,
            "regret": None if last is None else last.regret,
            "best_value": self.best_value,
            "wall_clock": self.pool.now,
            "wall_time": time.perf_counter() - self.started,
            "finished": _now(),
            **({"error": self.error} if self.error is not None else {}),
        }

    def result(self, spec: dict[str, Any], log_path: Path | None) -> Result:
        last = self.records[-1] if self.records else None
        return Result(
            trials=self.records,
            recommendation=None if last is None else last.recommendation,
            recommendation_value=None if last is None else last.rec_value,
            regret=None if last is None else last.regret,
            total_cost=self.cum_cost,
            stop_reason=self.stop_reason,
            spec=spec,
            log_path=log_path,
            wall_clock=self.pool.now,
            replayed=self.replayed,
        )

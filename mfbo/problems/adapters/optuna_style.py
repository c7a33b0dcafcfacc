"""An Optuna-style objective, unchanged, as a resumable mfbo problem: :class:`OptunaStyleProblem`.

Code written for Optuna's define-by-run API::

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        width = trial.suggest_int("width", 16, 256, log=True)
        model = build(lr, width)
        for epoch in range(50):
            value = train_one_epoch(model)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

becomes ``OptunaStyleProblem(objective, n_steps=50)``, a problem every mfbo strategy can run.
Optuna is not needed: the ``trial`` is an :class:`OptunaStyleTrial`, which has Optuna's
``suggest_float`` (``log``, ``step``), ``suggest_int`` (``log``, ``step``),
``suggest_categorical``, the deprecated ``suggest_uniform`` / ``suggest_loguniform`` /
``suggest_discrete_uniform``, ``report``, ``should_prune``, ``set_user_attr``, ``params``,
``user_attrs`` and ``number``. Pruning may raise this module's :class:`TrialPruned` or, when
optuna is installed, ``optuna.TrialPruned``.

The space
---------
Read from a **dry run** (the objective is started once with a recording trial and stopped at its
first ``report``; each suggest call becomes a parameter: ``suggest_float`` a ``Float`` (log
scale if ``log=True``), ``suggest_int`` an ``Int``, ``suggest_categorical`` a ``Categorical``,
and a call with ``step`` an ordered ``Categorical`` of its grid ``low, low + step, ... <= high``,
so that a configuration holds the values the objective receives), or **declared** with
``space=`` (needed for a parameter that only some trials suggest: give it an ``InCondition``).
Every later suggest call must ask for a parameter of the space with the same distribution;
anything else (a new name, another kind, other bounds) fails that trial with one message naming
the call and the space's parameter.

The fidelity
------------
The fidelity ``f in [min_steps, n_steps]`` (named ``steps``) is the number of steps reported:
``f`` is the ``f``-th distinct step the objective reports (with ``for epoch in range(n):
trial.report(v, epoch)``, the epochs completed). A trial asked for ``f`` runs until its ``f``-th
report and waits there for a continuation (below). Once it is not going to be continued (it
reached ``n_steps``, was evicted, failed, or :meth:`OptunaStyleProblem.close` was called) its
``report`` returns with ``should_prune()`` True, and a further ``report`` raises
:class:`StopTrial`, so the objective stops there whether or not it checks ``should_prune``
(anything it does after the ``f``-th report is neither measured nor charged). The observation's
value is the value reported at step ``f`` (negated for ``direction="maximize"``), its curve the
values of reports ``1..f``, ``info["step"]`` the step number reported and the trial's
``user_attrs`` the other entries of ``info``. A step reported twice counts once (Optuna ignores
the repeat too); a step below the last one, an objective that returns before its ``f``-th report,
raises, prunes itself, or reports a value that is not a finite number is a failed trial.

Resuming
--------
Continuations need no checkpoint code: each trial's objective runs in its own thread, which the
adapter pauses inside ``report`` (the calling thread waits meanwhile, so exactly one of them runs
at any time and the results are those of a sequential run). A continuation to a higher ``f``
resumes the paused objective where it stopped; the paused trials are the checkpoints of
:class:`~mfbo.problems.adapters.loop.LoopProblem` (``cache_size`` of them, LRU), with its cost
rules: measured seconds between reports by default (the objective's set-up counted in step 1),
or ``cost="steps"`` (1 per step, for reproducible runs), and a continuation whose paused trial
was evicted trains from scratch, is charged in full and says so in ``info["note"]``. Evicting or
finishing a trial lets its objective end (``should_prune()`` True); :meth:`OptunaStyleProblem.close`
ends all of them, and so does the garbage collector when the problem is dropped without it.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...space import Categorical, Float, Hyperparameter, Int, Space
from .loop import DIRECTIONS, LoopProblem, StepFailure, _jsonable, check_range

__all__ = ["OptunaStyleProblem", "OptunaStyleTrial", "StopTrial", "TrialPruned"]


class TrialPruned(Exception):
    """What an objective raises when ``trial.should_prune()`` is True (as ``optuna.TrialPruned``)."""


class StopTrial(BaseException):
    """Raised by ``trial.report`` once the trial has reached the fidelity it was asked for and
    the objective did not stop. A ``BaseException`` (like ``GeneratorExit``), so that an
    objective's ``except Exception`` does not swallow it."""


def _is_pruned(err: BaseException) -> bool:
    """``err`` is mfbo's or (when imported) optuna's ``TrialPruned``."""
    optuna_exceptions = sys.modules.get("optuna.exceptions")
    pruned = getattr(optuna_exceptions, "TrialPruned", None)
    return isinstance(err, TrialPruned) or pruned is not None and isinstance(err, pruned)


def _number(call: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{call}: {what} must be a number, got {value!r}")
    return float(value)


def float_parameter(call: str, low: Any, high: Any, step: Any = None, log: bool = False) -> Hyperparameter:
    """The mfbo parameter of ``suggest_float(name, low, high, step=step, log=log)``: a
    ``Float``, or for ``step`` the ordered ``Categorical`` of ``low + k * step <= high``."""
    lo, hi = _number(call, "low", low), _number(call, "high", high)
    if lo > hi:
        raise ValueError(f"{call}: low must be <= high, got low={low!r}, high={high!r}")
    if step is not None and log:
        raise ValueError(f"{call}: step and log=True cannot be used together (as in Optuna)")
    if step is not None:
        q = _number(call, "step", step)
        if not q > 0:
            raise ValueError(f"{call}: step must be > 0, got {step!r}")
        count = int(math.floor((hi - lo) / q + 1e-9)) + 1
        return Categorical(tuple(round(lo + k * q, 12) for k in range(count)), ordered=True)
    if lo == hi:
        return Categorical((lo,))
    try:
        return Float(lo, hi, log=bool(log))
    except ValueError as err:
        raise ValueError(f"{call}: {err}") from None


def int_parameter(call: str, low: Any, high: Any, step: Any = 1, log: bool = False) -> Hyperparameter:
    """The mfbo parameter of ``suggest_int(name, low, high, step=step, log=log)``: an ``Int``,
    or for ``step > 1`` the ordered ``Categorical`` of ``low, low + step, ... <= high``."""
    for what, value in (("low", low), ("high", high), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{call}: {what} must be an integer, got {value!r}")
    low, high, step = int(low), int(high), int(step)
    if low > high or step < 1:
        raise ValueError(f"{call}: needs low <= high and step >= 1, got low={low}, high={high}, step={step}")
    if step > 1 and log:
        raise ValueError(f"{call}: step > 1 and log=True cannot be used together (as in Optuna)")
    if step > 1 or low == high:
        return Categorical(tuple(range(low, high + 1, step)), ordered=step > 1)
    try:
        return Int(low, high, log=bool(log))
    except ValueError as err:
        raise ValueError(f"{call}: {err}") from None


class OptunaStyleTrial:
    """The ``trial`` an Optuna-style objective receives (module docstring).

    With ``space=None`` it records a dry run: each suggest call adds its parameter to
    :attr:`recorded` and returns the middle of its range (the first choice of a categorical).
    Otherwise it answers from ``config`` and checks each call against ``space``. ``number``
    counts the trials a problem started, from 0 (the dry run's is -1).
    """

    def __init__(self, config: dict[str, Any] | None = None, space: Space | None = None, number: int = 0) -> None:
        self.number = number
        self.params: dict[str, Any] = {}
        self.user_attrs: dict[str, Any] = {}
        self.recorded: dict[str, Hyperparameter] = {}
        self._config, self._space = config, space
        self._pause: Callable[[int, float], None] | None = None  # set by the session running it
        self._stopping = False
        self._steps: list[int] = []
        self._reported: set[int] = set()

    # Suggestions -------------------------------------------------------------------------------
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float:
        call = f"suggest_float({name!r}, {low!r}, {high!r}{'' if step is None else f', step={step!r}'}{', log=True' if log else ''})"
        return self._suggest(name, float_parameter(call, low, high, step, log), call)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        call = f"suggest_int({name!r}, {low!r}, {high!r}{'' if step == 1 else f', step={step!r}'}{', log=True' if log else ''})"
        return self._suggest(name, int_parameter(call, low, high, step, log), call)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        call = f"suggest_categorical({name!r}, {list(choices)!r})"
        try:
            param = Categorical(tuple(choices))
        except ValueError as err:
            raise ValueError(f"{call}: {err}") from None
        return self._suggest(name, param, call)

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> float:
        return self.suggest_float(name, low, high, step=q)

    def _suggest(self, name: str, param: Hyperparameter, call: str) -> Any:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{call}: the name must be a non-empty string")
        if self._space is None:  # the dry run
            if name in self.recorded and self.recorded[name] != param:
                raise ValueError(f"{call}: parameter {name!r} was already suggested as {self.recorded[name]!r} in this trial")
            self.recorded[name] = param
            self.params[name] = param.decode(np.full(param.dim, 0.5))
            return self.params[name]
        if name not in self._space:
            raise ValueError(f"{call}: parameter {name!r} is not in the space {list(self._space)!r}; the objective must suggest "
                             "the same parameters in every trial (one that only some trials use needs space= with a condition)")
        if self._space[name] != param:
            raise ValueError(f"{call} asks for {param!r}, but the space has {name!r} = {self._space[name]!r}; a parameter must "
                             "keep its name, kind, bounds, log scale and step in every trial")
        if name not in self._config:
            raise ValueError(f"{call}: parameter {name!r} is inactive in this configuration (its condition "
                             f"{self._space.conditions[name]!r} does not hold)")
        self.params[name] = self._config[name]
        return self.params[name]

    # Reporting ---------------------------------------------------------------------------------
    def report(self, value: float, step: int) -> None:
        """Report the objective's ``value`` after ``step``; pauses here until the adapter wants
        the next step (or stops the trial: then :meth:`should_prune` is True)."""
        if self._stopping:
            raise StopTrial(f"trial {self.number} was stopped at step {self._steps[-1] if self._steps else None}")
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"report: step must be an integer >= 0 (as in Optuna), got {step!r}")
        step = int(step)
        if self._steps and step <= self._steps[-1] and step in self._reported:
            return  # Optuna ignores a step reported twice
        if self._steps and step < self._steps[-1]:
            raise ValueError(f"report: steps must increase, got step {step} after step {self._steps[-1]}")
        self._steps.append(step)
        self._reported.add(step)
        value = float(value)
        if self._pause is not None:
            self._pause(step, value)

    def should_prune(self) -> bool:
        """True once the trial, at the fidelity it was asked for, will not be continued (module
        docstring): the objective should stop, as under an Optuna pruner."""
        return self._stopping

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


_GO, _STOP = "go", "stop"


class _Session:
    """An objective running in its own thread, paused inside each ``trial.report``.

    :meth:`advance` runs it to its next report and returns ``("report", step, value)``,
    ``("returned", value)`` or ``("raised", exception)``; :meth:`stop` lets it end. The caller
    waits while the objective runs and the objective waits while the caller runs.
    """

    def __init__(self, objective: Callable[[OptunaStyleTrial], Any], trial: OptunaStyleTrial) -> None:
        self.trial = trial
        self._objective = objective
        self._inbox: queue.Queue = queue.Queue(maxsize=1)  # caller -> objective
        self._outbox: queue.Queue = queue.Queue(maxsize=1)  # objective -> caller
        self._thread: threading.Thread | None = None
        self.finished = False
        trial._pause = self._pause

    def _main(self) -> None:
        try:
            event: tuple = ("returned", self._objective(self.trial))
        except BaseException as err:  # noqa: BLE001  (StopTrial included: the caller decides)
            event = ("raised", err)
        self._outbox.put(event)

    def _pause(self, step: int, value: float) -> None:
        self._outbox.put(("report", step, value))
        if self._inbox.get() == _STOP:
            self.trial._stopping = True

    def advance(self) -> tuple:
        if self.finished:
            raise RuntimeError("the objective of this trial has already ended")
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=f"mfbo-trial-{self.trial.number}", daemon=True)
            self._thread.start()
        else:
            self._inbox.put(_GO)
        event = self._outbox.get()
        self.finished = event[0] != "report"
        return event

    def stop(self) -> None:
        """Let a paused objective end (``should_prune()`` True, ``report`` raises) and wait for it."""
        if self._thread is not None and not self.finished:
            self._inbox.put(_STOP)
            self._outbox.get()  # the objective ended; how does not matter any more
            self._thread.join()
        self.finished = True

    def release(self) -> None:
        """Like :meth:`stop`, without waiting for the objective to end (for a finaliser)."""
        if self._thread is not None and not self.finished:
            self._inbox.put(_STOP)
        self.finished = True


def _release_all(cache: dict) -> None:
    """Let every paused objective in a problem's cache end (run when the problem is collected)."""
    for run in list(cache.values()):
        if run.state is not None:
            run.state.release()


class OptunaStyleProblem(LoopProblem):
    """An Optuna-style ``objective(trial)`` as a resumable problem (module docstring).

    Args:
        objective: ``objective(trial) -> value`` that reports a value at every step.
        n_steps: the target fidelity: the number of steps of a full trial (>= 2).
        space: the search space; ``None`` reads it from a dry run.
        min_steps: the lowest fidelity a strategy may ask for (default 1).
        direction: ``"minimize"`` (default) or ``"maximize"`` the reported values.
        cost: ``"time"`` (measured seconds, default) or ``"steps"`` (1 per step).
        cache_size: paused trials kept for continuations (LRU; 0: none).
        clock, name, optimum: as for :class:`~mfbo.problems.adapters.loop.LoopProblem`.
    """

    _unit = "step"
    _runner = "the objective"

    def __init__(
        self,
        objective: Callable[[OptunaStyleTrial], Any],
        n_steps: int,
        *,
        space: Space | None = None,
        min_steps: int = 1,
        direction: str = "minimize",
        cost: str = "time",
        cache_size: int = 32,
        clock: Callable[[], float] = time.perf_counter,
        name: str | None = None,
        optimum: float | None = None,
    ) -> None:
        name = name or f"{getattr(objective, '__module__', '?')}.{getattr(objective, '__qualname__', 'objective')}"
        if not callable(objective):
            raise ValueError(f"problem {name!r}: objective must be a callable objective(trial), got {type(objective).__name__}")
        check_range(f"problem {name!r}", ("n_steps", n_steps), ("min_steps", min_steps), ("cache_size", cache_size))
        if cost not in ("time", "steps"):
            raise ValueError(f"problem {name!r}: cost must be one of ['time', 'steps'], got {cost!r}")
        if direction not in DIRECTIONS:  # checked before the dry run, which may take a while
            raise ValueError(f"problem {name!r}: direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        if space is not None and not isinstance(space, Space):
            raise ValueError(f"problem {name!r}: space must be an mfbo.Space or None (read from a dry run), got {type(space).__name__}")
        self._objective = objective
        self._started = 0
        space = self.dry_run(objective, name) if space is None else space
        super().__init__(
            self._start, self._advance, space, n_steps, min_epochs=min_steps, close=_Session.stop,
            cost="epochs" if cost == "steps" else "time", direction=direction, cache_size=cache_size,
            clock=clock, name=name, fidelity_name="steps", optimum=optimum,
        )
        weakref.finalize(self, _release_all, self._cache)  # a problem dropped without close() leaves no thread waiting

    @staticmethod
    def dry_run(objective: Callable[[OptunaStyleTrial], Any], name: str = "objective") -> Space:
        """The space of ``objective``'s suggest calls up to its first ``report`` (the objective is
        stopped there). Raises ``ValueError`` if it raises first, suggests nothing or never reports."""
        trial = OptunaStyleTrial(number=-1)
        session = _Session(objective, trial)
        event = session.advance()
        session.stop()
        hint = "; or pass space= to skip the dry run"
        if event[0] == "raised":
            err = event[1]
            raise ValueError(f"problem {name!r}: the dry run of the objective raised {type(err).__name__}: {err}{hint}") from err
        if not trial.recorded:
            raise ValueError(f"problem {name!r}: the objective suggested no parameter before its first report (dry run){hint}")
        if event[0] == "returned":
            raise ValueError(f"problem {name!r}: the objective returned without calling trial.report(value, step); "
                             "its fidelity is the steps it reports")
        return Space(trial.recorded)

    def _start(self, config: dict[str, Any]) -> _Session:
        trial = OptunaStyleTrial(config, self.space, number=self._started)
        self._started += 1
        return _Session(self._objective, trial)

    def _advance(self, session: _Session, step: int) -> tuple[_Session, float, dict[str, Any]]:
        """Run the objective to its ``step``-th report."""
        event = session.advance()
        if event[0] == "report":
            return session, event[2], {"step": event[1], **_jsonable(session.trial.user_attrs)}
        reached = f"after {step - 1} reported steps, before report {step} of the {self.max_epochs} (n_steps) asked for"
        if event[0] == "returned":
            raise StepFailure(f"the objective returned {reached}; n_steps must be at most the number of steps it reports")
        err = event[1]
        if _is_pruned(err):
            raise StepFailure(f"the objective raised {type(err).__name__} {reached}: it pruned itself, but mfbo stops a "
                             "trial itself (should_prune() is True only at the step asked for)")
        raise err

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(adapter="optuna-style", cost="steps" if self.cost_mode == "epochs" else "time", step=f"{getattr(self._objective, '__module__', '?')}.{getattr(self._objective, '__qualname__', '?')}")
        return out

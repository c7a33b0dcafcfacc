"""The ask/tell :class:`Strategy` interface shared by every optimisation method.

A strategy proposes :class:`~mfbo.trial.Trial` objects with :meth:`Strategy.ask`, learns from
:meth:`Strategy.tell`, and names its best guess at the target fidelity with
:meth:`Strategy.recommend`. Several asks may precede the matching tells: the trials asked but not
yet told are :attr:`Strategy.pending`, which parallel-aware methods take into account.

Subclasses implement :meth:`_suggest` (and usually :meth:`_observe`); the base class owns trial
ids, the pending set, the history and the seeded random generator, so every method handles them
the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..problems.base import Problem
from ..space import Fidelity, Space
from ..trial import Observation, Trial

__all__ = ["Strategy", "Continuation", "BestAtHighestFidelity", "recommendation_rule"]


@dataclass(frozen=True)
class Continuation:
    """What :meth:`Strategy._suggest` returns to continue told trial ``trial_id`` (same
    configuration) up to the higher ``fidelity``; :meth:`Strategy.ask` turns it into a
    :class:`~mfbo.trial.Trial` with ``continues=trial_id``."""

    trial_id: int
    fidelity: Any


class BestAtHighestFidelity:
    """The default recommendation rule (:meth:`Strategy.recommend`), kept up to date as results
    are told: the configuration with the lowest observed value among the successful trials at the
    highest fidelity any of them reached (the target once one configuration got there), ties by
    trial id. Before a configuration reaches the target this names the best one seen where the
    run has looked furthest, as Hyperband, BOHB, DEHB, SMAC and Optuna's pruners do, rather than
    nothing; a single-fidelity run (fidelity ``None``) has one level. Trials beyond ``target``
    (a fidelity whose target is below its ``high``) measure another objective and never count."""

    def __init__(self, target: float | None = None) -> None:
        self.target = target
        self._key: tuple[float, float, int] | None = None  # (-fidelity, value, trial id) of the best
        self.config: dict[str, Any] | None = None  # its configuration; None before any success

    def update(self, trial: Trial, observation: Observation) -> None:
        """Take one told result into account (failures and trials beyond the target change nothing)."""
        if not observation.ok:
            return
        fidelity = 0.0 if trial.fidelity is None else float(trial.fidelity)
        if self.target is not None and fidelity > self.target:
            return
        key = (-fidelity, float(observation.value), trial.id)
        if self._key is None or key < self._key:
            self._key, self.config = key, dict(trial.config)


def recommendation_rule(rule: str, problem: Problem | None) -> str:
    """The rule a model-based strategy's ``recommendation="auto"`` stands for; any other rule is
    returned as it is.

    ``"observed"`` (the best value observed at the target: :class:`BestAtHighestFidelity`) where
    the problem declares :attr:`~mfbo.problems.base.Problem.noiseless_target`: there a
    configuration's observed target value is the value its recommendation scores, so no rule
    that names a configuration evaluated at the target can do better, at any point of a run.
    Elsewhere (a noisy objective, or a strategy that does not see its problem) ``"evaluated"``,
    the best posterior mean at the target among those configurations, which one lucky noisy
    observation cannot fool. DEHB, SMAC, Optuna and the bandits recommend the best observed value.
    """
    if rule != "auto":
        return rule
    return "observed" if getattr(problem, "noiseless_target", False) else "evaluated"


def keyword_options(init: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of ``init`` beyond the common ``space, fidelity, seed,
    problem``: the options a strategy (or its acquisition) takes, in signature order."""
    common = ("space", "fidelity", "seed", "problem")
    return {
        name: p for name, p in inspect.signature(init).parameters.items()
        if name not in common and p.kind == inspect.Parameter.KEYWORD_ONLY
    }


class Strategy:
    """Base class of all strategies.

    Args:
        space: the search space.
        fidelity: the problem's fidelity axis, or ``None`` for a single-fidelity problem.
        seed: seeds :attr:`rng`, the only source of randomness of the strategy.
        problem: the problem, when known; methods may use its cost model. Optional so that a
            strategy can drive an objective it does not see (a plain ask/tell loop).

    Attributes:
        rng: ``numpy.random.Generator`` seeded with ``seed``.
        pending: trials asked and not yet told, by id.
        history: ``(trial, observation)`` pairs in tell order, failures included.
    """

    name: ClassVar[str] = "strategy"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None):
        if not isinstance(space, Space):
            raise ValueError(f"strategy {self.name!r}: space must be an mfbo.Space, got {type(space).__name__}")
        self.space = space
        self.fidelity = fidelity
        self.problem = problem
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"strategy {self.name!r}: seed must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.pending: dict[int, Trial] = {}
        self.history: list[tuple[Trial, Observation]] = []
        self._told: dict[int, int] = {}  # trial id -> index in history
        self._best_seen = BestAtHighestFidelity(None if fidelity is None else float(fidelity.target))
        self.budget: float | None = None
        self.budget_stop = "cost"
        self.workers = 1
        self._next_id = 0
        self._notes: list[str] = []

    @classmethod
    def option_signature(cls) -> dict[str, inspect.Parameter]:
        """The method's options: the keyword-only parameters of ``__init__`` beyond the common
        ``space, fidelity, seed, problem``. :func:`mfbo.strategies.make` validates against it."""
        return keyword_options(cls.__init__)

    def set_budget(self, budget: float, stop: str = "cost", workers: int = 1) -> None:
        """Called by :func:`mfbo.minimize` before the first ask: the run's total budget, in cost
        units, for methods that plan with it (initial designs, brackets), the loop's stop
        rule (``"cost"`` or ``"wall_clock"``, see :mod:`mfbo.loop`) and its number of simulated
        workers (under ``"wall_clock"`` the total cost may reach ``workers * budget``)."""
        self.budget = float(budget)
        self.budget_stop = str(stop)
        self.workers = int(workers)

    def budget_left(self) -> float | None:
        """What the run may still spend, in cost units: the budget less the cost of the told
        trials and the known cost of the pending ones (:meth:`Problem.increment_cost`; a pending
        trial whose cost is not known in advance counts as nothing). ``None`` without a budget
        or when the budget is wall-clock time.

        Under the ``"cost"`` stop rule the loop ends a run at the first trial whose known cost
        would exceed this (:mod:`mfbo.loop`) and the rest of the budget goes unspent, so model
        based strategies propose only what still fits (their acquisition optimiser's
        ``max_cost``)."""
        if self.budget is None or self.budget_stop != "cost":
            return None
        spent = sum(o.cost for _, o in self.history)
        if self.problem is not None:
            reached = {t.id: t.fidelity for t, _ in self.history}
            for trial in self.pending.values():
                resume_from = reached.get(trial.continues) if trial.continues is not None else None
                spent += self.problem.increment_cost(trial.config, trial.fidelity, resume_from) or 0.0
        return self.budget - spent

    @staticmethod
    def fits(cost: float | None, left: float | None) -> bool:
        """Whether a trial of known ``cost`` fits ``left`` (:meth:`budget_left`); an unknown
        cost or an unlimited budget (``None``) always fits."""
        return cost is None or left is None or cost <= left

    def pop_affordable(self, planned: list, known_cost: Callable[[Any], float | None]) -> Any | None:
        """Pop and return the first item of ``planned`` (a design, a queued batch) whose
        ``known_cost(item)`` fits :meth:`budget_left`; the items before it are dropped, each with
        a note. ``None`` (and ``planned`` empty) when none fits. An unknown cost (``None``) fits.

        The loop would end the run at an item that does not fit, with the rest of the budget
        unspent, and a design sized by mean costs can hold one: on rbv2_xgboost/16 (seed 100)
        one design evaluation at the cheapest fidelity cost 27 % of the budget, and ``mf-ucb``
        ended at 29 % of it when its design asked for that configuration again, higher up."""
        while planned:
            item = planned.pop(0)
            cost, left = known_cost(item), self.budget_left()
            if self.fits(cost, left):
                return item
            self.note(f"planned trial dropped: its known cost {cost:.6g} exceeds the budget left {left:.6g}")
        return None

    def note(self, message: str) -> None:
        """Record an event worth logging (a GP fit that fell back, say); the loop writes the
        notes into the next trial record and clears them."""
        self._notes.append(str(message))

    def drain_notes(self) -> list[str]:
        notes, self._notes = self._notes, []
        return notes

    @property
    def target_fidelity(self) -> float | None:
        return None if self.fidelity is None else self.fidelity.target

    # The interface ------------------------------------------------------------------------------
    def ask(self) -> Trial | None:
        """Propose the next trial; it stays in :attr:`pending` until told. ``None``: the strategy
        waits for a pending trial's result before it can propose one (a sequential method with
        several workers; :func:`mfbo.minimize` then leaves the worker idle until the next result)."""
        suggestion = self._suggest()
        if suggestion is None:
            if not self.pending:
                raise ValueError(f"strategy {self.name!r} proposed nothing with no trial pending (None means: wait for a pending result)")
            return None
        if isinstance(suggestion, Continuation):
            trial = self._continuation_trial(suggestion)
        else:
            config, fidelity = suggestion
            trial = Trial(config=self.space.validate(config), fidelity=fidelity, id=self._next_id)
        self._next_id += 1
        self.pending[trial.id] = trial
        return trial

    def _continuation_trial(self, request: Continuation) -> Trial:
        if request.trial_id not in self._told:
            raise ValueError(f"strategy {self.name!r}: can only continue a told trial; trial {request.trial_id} is not one (told ids: {sorted(self._told)[-10:]}...)")
        previous, observation = self.history[self._told[request.trial_id]]
        if not observation.ok:
            raise ValueError(f"strategy {self.name!r}: trial {request.trial_id} failed and cannot be continued")
        if self.fidelity is None:
            raise ValueError(f"strategy {self.name!r}: continuing a trial needs a fidelity")
        fidelity = self.fidelity.validate(request.fidelity)
        if not fidelity > previous.fidelity:
            raise ValueError(f"strategy {self.name!r}: a continuation must raise the fidelity of trial {request.trial_id} ({previous.fidelity!r}), got {request.fidelity!r}")
        return Trial(config=previous.config, fidelity=fidelity, id=self._next_id, continues=previous.id)

    def tell(self, trial: Trial, observation: Observation) -> None:
        """Report the outcome of a pending trial (a failure is an observation with ``ok`` false)."""
        if not isinstance(observation, Observation):
            raise ValueError(f"tell: observation must be an mfbo.Observation, got {type(observation).__name__}")
        if trial.id not in self.pending:
            raise ValueError(f"tell: trial {trial.id} is not pending (pending ids: {sorted(self.pending)})")
        del self.pending[trial.id]
        self._told[trial.id] = len(self.history)
        self.history.append((trial, observation))
        self._best_seen.update(trial, observation)
        self._observe(trial, observation)

    def add_observation(self, config: Mapping[str, Any], fidelity: Any, observation: Observation) -> Trial:
        """Tell the strategy about an evaluation it did not ask for (prior data, a warm start,
        a benchmark that sets up ``n`` observations). Returns the trial it was filed under."""
        trial = Trial(config=self.space.validate(config), fidelity=fidelity, id=self._next_id)
        self._next_id += 1
        self.pending[trial.id] = trial
        self.tell(trial, observation)
        return trial

    def recommend(self) -> dict[str, Any] | None:
        """The best guess at the target fidelity; by default the best observed value at the
        highest fidelity reached (:class:`BestAtHighestFidelity`: the best observed target value
        once there is one), ``None`` before the first success."""
        config = self._best_seen.config
        return None if config is None else dict(config)

    def other_recommendations(self) -> dict[str, dict[str, Any]]:
        """Recommendations by rules other than :meth:`recommend`'s, by rule name, which the run
        loop logs beside it (``{}`` by default)."""
        return {}

    # Hooks for subclasses --------------------------------------------------------------------------
    def _suggest(self) -> tuple[Mapping[str, Any], float | None] | Continuation:
        """Return ``(config, fidelity)`` for a new trial, a :class:`Continuation` of a told one, or
        (only while trials are pending) ``None`` to wait for a result."""
        raise NotImplementedError  # abstract

    def _observe(self, trial: Trial, observation: Observation) -> None:
        """Update internal state after :meth:`tell`; the base class already recorded the history."""

    # Helpers ---------------------------------------------------------------------------------------
    def successes(self, at_target: bool = False) -> list[tuple[Trial, Observation]]:
        """Successful ``(trial, observation)`` pairs, optionally only those at the target fidelity."""
        return [
            (t, o) for t, o in self.history
            if o.ok and (not at_target or t.fidelity == self.target_fidelity)
        ]

    def best_observed(self) -> tuple[Trial, Observation] | None:
        """The successful target-fidelity trial with the lowest value, or ``None``."""
        done = self.successes(at_target=True)
        return min(done, key=lambda pair: pair[1].value) if done else None

    def options(self) -> dict[str, Any]:
        """The method's own options (for logs); subclasses extend."""
        return {}

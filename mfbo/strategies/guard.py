"""Bias guards: checking a strategy's recommendation at the target fidelity, for any strategy.

A cheap fidelity can mislead a search systematically (``mfhartmann6-terrible`` inverts its
cheap levels; an LCBench run that looks best after one epoch need not be best after 52). A
multi-fidelity strategy may then recommend a configuration on the strength of cheap values or of
a model fitted mostly to them. The guard is a wrapper, :class:`GuardedStrategy`, around any
strategy, so no method carries its own copy:

- **When**: before each ask it looks at the wrapped strategy's current recommendation. A check
  is due when the recommendation changed since the last check (``on_change``) and/or when
  ``every`` trials of the strategy were asked since the last check.
- **What**: a due check of a configuration not yet known at the target asks for one *guard
  trial*: the configuration at the target fidelity. On a resumable problem it continues the
  configuration's furthest run (charged the increment only, :mod:`mfbo.loop`), else it is a
  new evaluation. It is charged to the run's budget like any trial, and the wrapped strategy is
  told its result as data it did not ask for (as :meth:`Strategy.add_observation` data: a
  bandit files it for its recommendation only, a GP conditions on it), so the strategy's
  :meth:`~Strategy.budget_left` counts it.
- **Expected value**: the guard records what the strategy expected of the configuration at the
  target when the check was made: the posterior mean (and standard deviation) at the target
  where the strategy has a surrogate (a ``predict(configs)`` method, as the ``mf-*``
  strategies), else the best value observed for the configuration at the highest fidelity it
  was evaluated at (what a bandit recommends on). The loop writes a ``guard`` field into the
  guard trial's record (:meth:`GuardedStrategy.guard_record`): the reason, the expectation and
  its source, the observed target value and the error ``observed - predicted``;
  ``mfbo show`` summarises them (:func:`guard_summary`).
- **Recommendation**: the wrapped strategy's recommendation, unless it has a guard value
  (``guarded``: evaluated at the target by a guard trial or found already evaluated there by
  the strategy) and another guarded configuration has a strictly lower one: then that one. The
  wrapped strategy's own recommendation is logged beside it as the rule ``"unguarded"``
  (:meth:`GuardedStrategy.other_recommendations`), so one run shows what the guard changed.

Choices (the issue leaves them open; none is from a paper):

- A configuration is checked once: a recommendation that was already evaluated at the target
  (by the strategy or by an earlier guard) costs nothing and its observed value is its guard
  value, with a note in the log. Repeating a target evaluation would only pay on noisy
  problems, where it would also make the best guarded value optimistically biased.
- A failed guard trial gives the configuration the guard value ``+inf`` (it is replaced by any
  successfully guarded configuration) and is not retried.
- A check is skipped, with a note, when the guard trial's known cost does not fit what the
  budget has left (the loop would otherwise end the run at it), and postponed while the
  configuration has a pending trial (with several workers).
- ``on_change`` and ``every`` may be combined: a check is due if either rule says so.
- ``max_share`` (default 0.25) caps what guard trials may cost together, as a share of the
  budget: a check that would take them past it is skipped with a note. Without the cap,
  ``on_change`` on a strategy whose recommendation moves at every step (``mf-ucb`` with
  ``recommendation = "posterior"``, a new optimiser of the posterior mean each time) spent 8 of
  a budget of 10 target evaluations on guard trials (``mfhartmann6-terrible``, seed 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..trial import Observation, Trial
from .base import Continuation, Strategy

__all__ = ["GUARD_KEYS", "GuardOptions", "GuardedStrategy", "guard_summary", "guarded"]

#: The keys of a guard specification (a study's ``guard = { every = 10, on_change = true }``).
GUARD_KEYS = ("every", "on_change", "max_share")
#: Default cap on the guard trials' share of the budget (not from a paper: see the docstring).
MAX_SHARE = 0.25
#: guard trials listed one per line by :func:`guard_summary`
MAX_SHOWN = 20
_FORMS = ("an integer k >= 1 (a check every k trials)", '"change" (a check whenever the recommendation changes)',
          "a table/dict with keys every (integer >= 1) and/or on_change (true/false), and max_share (in (0, 1])")


def config_key(config: dict[str, Any]) -> str:
    """A configuration as a canonical string (the loop keys target values the same way)."""
    return json.dumps(config, sort_keys=True, default=str)


@dataclass(frozen=True)
class GuardOptions:
    """When the guard checks the recommendation (module docstring).

    Attributes:
        every: a check after every ``every`` trials of the strategy (``None``: no periodic check).
        on_change: a check whenever the recommendation differs from the one last checked.
        max_share: the guard trials' known costs together stay within this share of the budget
            (default :data:`MAX_SHARE`); a check that would exceed it is skipped.
    """

    every: int | None = None
    on_change: bool = False
    max_share: float = MAX_SHARE

    def __post_init__(self) -> None:
        every = self.every
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"guard: every must be an integer >= 1 or None, got {every!r}")
        if not isinstance(self.on_change, bool):
            raise ValueError(f"guard: on_change must be true or false, got {self.on_change!r}")
        share = self.max_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ValueError(f"guard: max_share must be a number in (0, 1], got {share!r}")
        if every is None and not self.on_change:
            raise ValueError("guard: give every (an integer >= 1) and/or on_change = true; with neither the guard never checks")

    @classmethod
    def parse(cls, value: Any) -> GuardOptions | None:
        """A guard from any of its spellings: ``None`` or ``False`` (no guard), a
        :class:`GuardOptions`, an integer ``k`` (``every=k``), ``"change"`` (``on_change``), or a
        dict with keys :data:`GUARD_KEYS`; anything else is one ``ValueError`` listing them."""
        if value is None or value is False:
            return None
        if isinstance(value, GuardOptions):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(every=value)
        if isinstance(value, float) and value.is_integer():
            return cls(every=int(value))
        if value in ("change", "on_change"):
            return cls(on_change=True)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(GUARD_KEYS))
            if unknown:
                raise ValueError(f"guard: unknown key(s) {unknown}; allowed keys: {', '.join(GUARD_KEYS)}")
            every = value.get("every")
            every = int(every) if isinstance(every, float) and every.is_integer() else every
            return cls(every=every, on_change=value.get("on_change", False), max_share=value.get("max_share", MAX_SHARE))
        raise ValueError(f"guard must be one of: {'; '.join(_FORMS)}; got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"every": self.every, "on_change": self.on_change, "max_share": self.max_share}


@dataclass
class _Check:
    """One guard trial: why it was asked, what the strategy expected, what was observed."""

    config: dict[str, Any]
    reason: str  # "change" or "every"
    predicted: float | None
    predicted_std: float | None
    prediction: str  # where ``predicted`` comes from
    observed: float | None = None
    status: str = "pending"
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        error = None if self.observed is None or self.predicted is None else self.observed - self.predicted
        return {"reason": self.reason, "prediction": self.prediction, "predicted": self.predicted,
                "predicted_std": self.predicted_std, "observed": self.observed, "error": error, "status": self.status}


class GuardedStrategy(Strategy):
    """A strategy with a bias guard (module docstring). The wrapped strategy owns the trial ids,
    the pending trials, the history and the random generator; every attribute not defined here
    is the wrapped strategy's (``predict``, ``history``, ...).

    Args:
        inner: the strategy to guard (not itself guarded).
        options: when to check (:class:`GuardOptions`).
    """

    def __init__(self, inner: Strategy, options: GuardOptions) -> None:  # no Strategy.__init__: see above
        if isinstance(inner, GuardedStrategy):
            raise ValueError(f"strategy {inner.name!r} is already guarded; give the guard once")
        if not isinstance(inner, Strategy):
            raise ValueError(f"guard: expected an mfbo Strategy to guard, got {type(inner).__name__}")
        self.inner = inner
        self.guard = options
        self.name = inner.name
        self._since = 0  # strategy trials asked since the last check
        self._checked: str | None = None  # key of the recommendation last checked
        self._guarded: dict[str, tuple[dict[str, Any], float]] = {}  # key -> (config, guard value)
        self._checks: dict[int, _Check] = {}  # guard trial id -> its check

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not yet set (copying, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    # Delegated -----------------------------------------------------------------------------------
    def set_budget(self, budget: float, stop: str = "cost", workers: int = 1) -> None:
        self.inner.set_budget(budget, stop, workers)

    def budget_left(self) -> float | None:
        return self.inner.budget_left()

    def note(self, message: str) -> None:
        self.inner.note(message)

    def drain_notes(self) -> list[str]:
        return self.inner.drain_notes()

    def add_observation(self, config: dict[str, Any], fidelity: Any, observation: Observation) -> Trial:
        return self.inner.add_observation(config, fidelity, observation)

    def options(self) -> dict[str, Any]:
        return {**self.inner.options(), "guard": self.guard.to_dict()}

    # Ask / tell ----------------------------------------------------------------------------------
    def ask(self) -> Trial | None:
        """A guard trial when a check is due and needs one, else the wrapped strategy's trial
        (``None`` when it waits for a pending result)."""
        check = self._due_check()
        if check is not None:
            return self._file(check)
        trial = self.inner.ask()
        if trial is None:  # the wrapped strategy waits for a pending result
            return None
        self._since += 1
        return trial

    def tell(self, trial: Trial, observation: Observation) -> None:
        self.inner.tell(trial, observation)
        check = self._checks.get(trial.id)
        if check is None:
            return
        check.status = "ok" if observation.ok else "failed"
        check.extra["cost"] = observation.cost
        check.observed = float(observation.value) if observation.ok else None
        self._guarded[config_key(check.config)] = (check.config, check.observed if observation.ok else math.inf)

    def guard_record(self, trial_id: int) -> dict[str, Any] | None:
        """The ``guard`` field of trial ``trial_id``'s log record: ``None`` for the strategy's
        own trials, else ``{reason, prediction, predicted, predicted_std, observed, error, status}``."""
        check = self._checks.get(trial_id)
        return None if check is None else check.record()

    # Recommend -----------------------------------------------------------------------------------
    def recommend(self) -> dict[str, Any] | None:
        """The wrapped strategy's recommendation, replaced by the guarded configuration with the
        lowest guard value when its own guard value is higher (module docstring)."""
        config = self.inner.recommend()
        if config is None or config_key(config) not in self._guarded:
            return config
        best_config, best_value = min(self._guarded.values(), key=lambda item: item[1])  # ties: the first guarded
        return dict(best_config) if best_value < self._guarded[config_key(config)][1] else config

    def other_recommendations(self) -> dict[str, dict[str, Any]]:
        """The wrapped strategy's other rules, and its own recommendation as ``"unguarded"``."""
        others = dict(self.inner.other_recommendations())
        own = self.inner.recommend()
        if own is not None:
            others["unguarded"] = own
        return others

    # The check -----------------------------------------------------------------------------------
    def _due_check(self) -> _Check | None:
        """The guard trial to ask now, or ``None`` (module docstring, "When" and "Choices")."""
        config = self.inner.recommend()
        if config is None or self.inner.fidelity is None:
            return None
        key = config_key(config)
        if self.guard.on_change and key != self._checked:
            reason = "change"
        elif self.guard.every is not None and self._since >= self.guard.every:
            reason = "every"
        else:
            return None
        if any(config_key(t.config) == key for t in self.inner.pending.values()):
            return None  # checked at a later ask, once its result is in
        self._checked, self._since = key, 0
        if key in self._guarded:
            return None
        at_target = [o for t, o in self.inner.history if o.ok and t.fidelity == self.inner.target_fidelity and config_key(t.config) == key]
        if at_target:
            self._guarded[key] = (dict(config), at_target[-1].value)
            self.note(f"guard ({reason}): the recommendation was already evaluated at the target (value {at_target[-1].value:.6g}); no guard trial")
            return None
        predicted, std, source = self._expectation(config)
        check = _Check(dict(config), reason, predicted, std, source)
        cost, left = self._cost(check), self.inner.budget_left()
        if cost is not None and left is not None and cost > left:
            self.note(f"guard ({reason}): skipped, its target evaluation (cost {cost:.6g}) does not fit the budget left ({left:.6g})")
            return None
        cap = None if self.inner.budget is None else self.guard.max_share * self.inner.budget
        spent = sum(c.extra.get("cost") or 0.0 for c in self._checks.values())
        if cap is not None and spent + (cost or 0.0) > cap:
            self.note(f"guard ({reason}): skipped, guard trials would cost {spent + (cost or 0.0):.6g}, over max_share = {self.guard.max_share:g} of the budget")
            return None
        check.extra["cost"] = cost  # until told: the known cost, if any
        return check

    def _expectation(self, config: dict[str, Any]) -> tuple[float | None, float | None, str]:
        """``(predicted, std, source)``: the surrogate's posterior at the target if the strategy
        has one, else the best value observed for ``config`` at the highest fidelity it reached."""
        predict = getattr(self.inner, "predict", None)
        if callable(predict):
            try:
                mean, std = predict([config])
                return float(mean[0]), float(std[0]), "posterior mean at the target"
            except RuntimeError:  # no surrogate yet (initial design)
                pass
        key = config_key(config)
        runs = [(t.fidelity, o.value) for t, o in self.inner.history if o.ok and config_key(t.config) == key]
        if not runs:
            return None, None, "none (never evaluated)"
        top = max(f for f, _ in runs)
        return min(v for f, v in runs if f == top), None, f"observed at fidelity {top}"

    def _furthest_run(self, config: dict[str, Any]) -> Trial | None:
        """The configuration's furthest successful run below the target, on a resumable problem."""
        problem = self.inner.problem
        if problem is None or not getattr(problem, "resumable", False):
            return None
        key, target = config_key(config), self.inner.target_fidelity
        runs = [t for t, o in self.inner.history if o.ok and config_key(t.config) == key and t.fidelity < target]
        return max(runs, key=lambda t: (t.fidelity, t.id)) if runs else None

    def _cost(self, check: _Check) -> float | None:
        """The known cost of the check's guard trial (``None`` if the problem does not say)."""
        problem = self.inner.problem
        if problem is None:
            return None
        run = self._furthest_run(check.config)
        check.extra["continues"] = None if run is None else run.id
        return problem.increment_cost(check.config, self.inner.target_fidelity, None if run is None else run.fidelity)

    def _file(self, check: _Check) -> Trial:
        """The guard trial, with an id from the wrapped strategy's counter, pending there."""
        inner = self.inner
        continues = check.extra.get("continues")  # set by _cost
        if continues is not None:
            trial = inner._continuation_trial(Continuation(continues, inner.target_fidelity))
        else:
            trial = Trial(config=inner.space.validate(check.config), fidelity=inner.target_fidelity, id=inner._next_id)
        inner._next_id += 1
        inner.pending[trial.id] = trial
        self._checks[trial.id] = check
        return trial


def guarded(strategy: Strategy, guard: Any) -> Strategy:
    """``strategy`` wrapped in a guard given in any form :meth:`GuardOptions.parse` takes
    (``None``: ``strategy`` itself)."""
    options = GuardOptions.parse(guard)
    return strategy if options is None else GuardedStrategy(strategy, options)


def guard_summary(trials: list[dict[str, Any]], total_cost: float | None = None) -> list[str]:
    """Lines for ``mfbo show``: how many guard trials a run log has, what they cost, and how far
    their observed target values were from what the strategy expected (``[]`` without any)."""
    checks = [t for t in trials if t.get("guard")]
    if not checks:
        return []
    cost = sum(t.get("cost") or 0.0 for t in checks)
    total = total_cost if total_cost else sum(t.get("cost") or 0.0 for t in trials)
    errors = [abs(t["guard"]["error"]) for t in checks if t["guard"].get("error") is not None]
    lines = [f"guard     {len(checks)} guard trials, cost {cost:.4g} ({cost / max(total, 1e-300):.0%} of the cost spent)"
             + (f"; |observed - expected| at the target: mean {sum(errors) / len(errors):.4g}, max {max(errors):.4g}" if errors else "")]
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    for t in checks[:MAX_SHOWN]:
        g = t["guard"]
        lines.append(f"guard     trial {t['id']} ({g.get('reason')}): expected {fmt(g.get('predicted'))} ({g.get('prediction')}), "
                     f"observed {fmt(g.get('observed'))}, error {fmt(g.get('error'))}")
    if len(checks) > MAX_SHOWN:
        lines.append(f"guard     ... and {len(checks) - MAX_SHOWN} more guard trials")
    return lines

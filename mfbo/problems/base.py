"""The :class:`Problem` interface and :meth:`Problem.from_function`.

A problem is minimised. ``evaluate(config, fidelity)`` returns an :class:`~mfbo.trial.Observation`
with the value and a positive cost. Problems that know their target-fidelity optimum expose
``optimum`` and ``target_value(config)``, so that regret is exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..space import Fidelity, Space
from ..trial import Observation

__all__ = ["Problem", "FunctionProblem"]


class Problem:
    """A (multi-fidelity) objective over a :class:`~mfbo.space.Space`.

    Subclasses implement :meth:`_evaluate` and, when they know them, :meth:`target_value`
    and :meth:`cost`. :meth:`evaluate` validates the inputs and the returned observation, so
    subclasses see only valid, canonical configurations and fidelities.

    **Resuming.** A problem whose evaluations can be continued (training for more epochs from a
    checkpoint, a learning-curve surrogate whose cost is cumulative) sets :attr:`resumable` and
    implements :meth:`_resume`; ``evaluate(config, fidelity, resume_from=f0)`` then returns the
    observation at ``fidelity`` with the cost of going from ``f0`` to ``fidelity`` only, and
    :meth:`increment_cost` predicts that cost. On a problem that cannot resume, ``resume_from``
    is accepted and ignored: the evaluation starts from scratch and costs the full price.

    Attributes:
        name: the registry name (or a user-given name).
        space: the search space.
        fidelity: the fidelity axis, or ``None`` for a single-fidelity problem.
        optimum: the minimum of the target-fidelity objective, if known.
        resumable: whether an evaluation can continue from a lower fidelity and be charged only
            the increment (class attribute; see above).
        noiseless_target: whether an evaluation at the target fidelity returns exactly the
            value a recommendation is scored by (:meth:`target_value`, or the objective itself
            where that is unknown): no observation noise at the target, so the best value
            observed there is the best configuration evaluated there. Strategies' default
            recommendation rule then names that configuration
            (:func:`mfbo.strategies.base.recommendation_rule`). ``False`` unless the problem
            declares it (class attribute; a noisy objective must keep it ``False``).
    """

    resumable: bool = False
    noiseless_target: bool = False

    def __init__(self, name: str, space: Space, fidelity: Fidelity | None = None, optimum: float | None = None):
        if not isinstance(space, Space):
            raise ValueError(f"problem {name!r}: space must be an mfbo.Space, got {type(space).__name__}")
        if fidelity is not None and not isinstance(fidelity, Fidelity):
            raise ValueError(f"problem {name!r}: fidelity must be an mfbo.Fidelity or None, got {type(fidelity).__name__}")
        self.name = name
        self.space = space
        self.fidelity = fidelity
        self.optimum = None if optimum is None else float(optimum)

    @property
    def target_fidelity(self) -> float | None:
        """The fidelity value of the real objective (``None`` for a single-fidelity problem)."""
        return None if self.fidelity is None else self.fidelity.target

    def validate_fidelity(self, fidelity: Any) -> float | None:
        """Canonical fidelity value; ``None`` means the target fidelity."""
        if self.fidelity is None:
            if fidelity is not None:
                raise ValueError(f"problem {self.name!r} has no fidelity, but fidelity={fidelity!r} was given")
            return None
        return self.fidelity.target if fidelity is None else self.fidelity.validate(fidelity)

    def evaluate(self, config: Mapping[str, Any], fidelity: Any = None, *, resume_from: Any = None) -> Observation:
        """Evaluate ``config`` at ``fidelity`` (default: the target). Raises on invalid input.

        ``resume_from``: a lower fidelity at which ``config`` was evaluated before; a
        :attr:`resumable` problem continues from there and charges only the increment.
        """
        config = self.space.validate(config)
        fidelity = self.validate_fidelity(fidelity)
        resume_from = self._validate_resume(fidelity, resume_from)
        if resume_from is not None and self.resumable:
            obs = self._resume(config, fidelity, resume_from)
        else:
            obs = self._evaluate(config, fidelity)
        if not isinstance(obs, Observation):
            raise TypeError(f"problem {self.name!r}: _evaluate must return an Observation, got {type(obs).__name__}")
        if obs.error is None:
            _check_number(obs.value, f"problem {self.name!r}: the objective {self.objective_name()}")
        if obs.ok and not (math.isfinite(obs.cost) and obs.cost > 0):
            raise ValueError(f"problem {self.name!r}: cost must be a finite number > 0, got {obs.cost!r}")
        return obs

    def _validate_resume(self, fidelity: float | None, resume_from: Any) -> float | None:
        if resume_from is None:
            return None
        if self.fidelity is None:
            raise ValueError(f"problem {self.name!r} has no fidelity, so there is nothing to resume from (resume_from={resume_from!r})")
        start = self.fidelity.validate(resume_from)
        if not start < fidelity:
            raise ValueError(f"problem {self.name!r}: resume_from must be a fidelity below the requested {fidelity!r}, got {resume_from!r}")
        return start

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        raise NotImplementedError  # abstract: every concrete problem implements it

    def objective_name(self) -> str:
        """How error messages name the objective (the user's function for :class:`FunctionProblem`)."""
        return f"{type(self).__name__}._evaluate"

    def _resume(self, config: dict[str, Any], fidelity: float, resume_from: float) -> Observation:
        """Continue an evaluation of ``config`` from ``resume_from`` to ``fidelity``; the
        observation's cost is the increment. Resumable problems implement it."""
        raise NotImplementedError(f"problem {self.name!r} sets resumable but does not implement _resume")

    def increment_cost(self, config: Mapping[str, Any], fidelity: Any, resume_from: Any = None) -> float | None:
        """The known cost of evaluating ``config`` at ``fidelity`` when continuing from
        ``resume_from``: ``cost(fidelity) - cost(resume_from)`` on a resumable problem, the full
        :meth:`cost` otherwise (or with no ``resume_from``). ``None`` if the cost is not known."""
        full = self.cost(config, fidelity)
        if full is None or resume_from is None or not self.resumable:
            return full
        done = self.cost(config, resume_from)
        return None if done is None else max(full - done, 0.0)

    def target_value(self, config: Mapping[str, Any]) -> float | None:
        """Noiseless value of ``config`` at the target fidelity, or ``None`` if unknown."""
        return None

    def bias_bound(self, fidelity: Any) -> float | None:
        """The bias function ``zeta(z)``: a bound of ``|f_z(x) - f(x)|`` over the space, where
        ``f_z`` is the objective at fidelity ``z`` and ``f`` the target one (so ``zeta = 0`` at
        the target), or ``None`` if the problem does not know it. Multi-fidelity tree search
        (``mf-pdoo``) uses it to pick the cheapest fidelity accurate enough for a cell."""
        return None

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        """The cost an evaluation will have, if the problem knows it in advance, else ``None``."""
        return None

    def cost_many(self, configs: Sequence[Mapping[str, Any]], fidelity: Any = None) -> list[float | None]:
        """:meth:`cost` of each configuration at one fidelity (a surrogate benchmark answers in
        one batched call; this default asks one at a time)."""
        return [self.cost(config, fidelity) for config in configs]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (logged in each run's header)."""
        return {
            "name": self.name,
            "space": self.space.to_dict(),
            "fidelity": None if self.fidelity is None else self.fidelity.to_dict(),
            "optimum": self.optimum,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={len(self.space)}, fidelity={self.fidelity!r})"

    @staticmethod
    def from_function(
        fn: Callable[..., Any],
        space: Space,
        fidelity: Fidelity | None = None,
        cost: Callable[[Any], float] | None = None,
        optimum: float | None = None,
        name: str | None = None,
        target_value: Callable[[dict[str, Any]], float] | None = None,
        noiseless_target: bool = False,
    ) -> FunctionProblem:
        """Wrap a user function as a problem. See :class:`FunctionProblem`."""
        return FunctionProblem(
            fn, space, fidelity, cost=cost, optimum=optimum, name=name, target_value=target_value, noiseless_target=noiseless_target,
        )


def _callable_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _check_number(value: Any, who: str) -> float:
    """``float(value)`` for a real number; a string (even ``"0.5"``: a parsing mistake should not
    pass as a value), ``None`` or any other type is a ``TypeError`` naming ``who``."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"{who} returned {value!r} ({type(value).__name__}), not a number: return a float")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{who} returned a {type(value).__name__}, not a number: return a float") from None


class FunctionProblem(Problem):
    """A problem defined by a Python function.

    ``fn(config, fidelity)`` (or ``fn(config)`` when there is no fidelity) may return

    - a float: the value; the cost is then ``cost(fidelity)`` if a ``cost`` callable was given,
      else the measured wall time of the call in seconds;
    - a ``(value, cost)`` pair;
    - an :class:`~mfbo.trial.Observation`.

    ``target_value(config)``, if given, is the noiseless target-fidelity value used for exact regret.
    ``noiseless_target=True`` declares that ``fn`` at the target fidelity returns that value
    exactly (:attr:`Problem.noiseless_target`).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        space: Space,
        fidelity: Fidelity | None = None,
        cost: Callable[[Any], float] | None = None,
        optimum: float | None = None,
        name: str | None = None,
        target_value: Callable[[dict[str, Any]], float] | None = None,
        noiseless_target: bool = False,
    ) -> None:
        if not callable(fn):
            raise ValueError(f"from_function: fn must be callable, got {type(fn).__name__}")
        if cost is not None and not callable(cost):
            raise ValueError(f"from_function: cost must be a callable of the fidelity or None, got {type(cost).__name__}")
        super().__init__(name or getattr(fn, "__name__", "function"), space, fidelity, optimum)
        self._fn = fn
        self._cost_fn = cost
        self._target_value_fn = target_value
        if not isinstance(noiseless_target, bool):
            raise ValueError(f"from_function: noiseless_target must be True or False, got {noiseless_target!r}")
        self.noiseless_target = bool(noiseless_target)

    def _call(self, config: dict[str, Any], fidelity: float | None) -> Any:
        return self._fn(config) if self.fidelity is None else self._fn(config, fidelity)

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        start = time.perf_counter()
        out = self._call(config, fidelity)
        elapsed = time.perf_counter() - start
        if isinstance(out, Observation):
            return out
        if isinstance(out, tuple):
            if len(out) != 2:
                raise ValueError(f"problem {self.name!r}: fn must return a float, (value, cost) or an Observation; got a {len(out)}-tuple")
            who = f"the objective {self.objective_name()}"
            return Observation(value=_check_number(out[0], who), cost=_check_number(out[1], f"{who} (its cost)"))
        known = self.cost(config, fidelity)
        return Observation(value=_check_number(out, f"the objective {self.objective_name()}"), cost=elapsed if known is None else known)

    def objective_name(self) -> str:
        call = "fn(config)" if self.fidelity is None else "fn(config, fidelity)"
        return f"{_callable_name(self._fn)} (called as {call})"

    def _call_user(self, role: str, fn: Callable[..., Any], arg: Any) -> float:
        """``float(fn(arg))``; an exception names the callable (``role``, e.g. ``cost=``)."""
        try:
            return float(fn(arg))
        except Exception as err:
            raise ValueError(f"the {role} callable {_callable_name(fn)} raised {type(err).__name__}: {err}") from err

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        """``cost(fidelity)`` of the ``cost=`` callable; raises ``ValueError`` naming it when it
        raises or returns anything but a finite number >= 0."""
        if self._cost_fn is None:
            return None
        fidelity = self.target_fidelity if fidelity is None else fidelity
        value = self._call_user("cost=", self._cost_fn, fidelity)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"the cost= callable {_callable_name(self._cost_fn)} returned {value!r} at fidelity {fidelity!r}; it must return a finite number >= 0")
        return value

    def target_value(self, config: Mapping[str, Any]) -> float | None:
        if self._target_value_fn is not None:
            return self._call_user("target_value=", self._target_value_fn, self.space.validate(config))
        return None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["function"] = f"{getattr(self._fn, '__module__', '?')}.{getattr(self._fn, '__qualname__', '?')}"
        return out

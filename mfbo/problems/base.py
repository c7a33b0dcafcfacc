"""The :class:`Problem` interface and :meth:`Problem.from_function`.

A problem is minimised. ``evaluate(config, fidelity)`` returns an :class:`~mfbo.trial.Observation`
with the value and a positive cost. Problems that know their target-fidelity optimum expose
``optimum`` and ``target_value(config)``, so that regret is exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..space import Fidelity, Space
from ..trial import Observation

__all__ = ["Problem", "FunctionProblem"]


class Problem:
    """A (multi-fidelity) objective over a :class:`~mfbo.space.Space`.

    Subclasses implement :meth:`_evaluate` and, when they know them, :meth:`target_value`
    and :meth:`cost`. :meth:`evaluate` validates the inputs and the returned observation, so
    subclasses see only valid, canonical configurations and fidelities.

    Attributes:
        name: the registry name (or a user-given name).
        space: the search space.
        fidelity: the fidelity axis, or ``None`` for a single-fidelity problem.
        optimum: the minimum of the target-fidelity objective, if known.
    """

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

    def evaluate(self, config: Mapping[str, Any], fidelity: Any = None) -> Observation:
        """Evaluate ``config`` at ``fidelity`` (default: the target). Raises on invalid input."""
        config = self.space.validate(config)
        fidelity = self.validate_fidelity(fidelity)
        obs = self._evaluate(config, fidelity)
        if not isinstance(obs, Observation):
            raise TypeError(f"problem {self.name!r}: _evaluate must return an Observation, got {type(obs).__name__}")
        if obs.ok and not (math.isfinite(obs.cost) and obs.cost > 0):
            raise ValueError(f"problem {self.name!r}: cost must be a finite number > 0, got {obs.cost!r}")
        return obs

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        raise NotImplementedError  # abstract: every concrete problem implements it

    def target_value(self, config: Mapping[str, Any]) -> float | None:
        """Noiseless value of ``config`` at the target fidelity, or ``None`` if unknown."""
        return None

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        """The cost an evaluation will have, if the problem knows it in advance, else ``None``."""
        return None

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
    ) -> FunctionProblem:
        """Wrap a user function as a problem. See :class:`FunctionProblem`."""
        return FunctionProblem(fn, space, fidelity, cost=cost, optimum=optimum, name=name, target_value=target_value)


class FunctionProblem(Problem):
    """A problem defined by a Python function.

    ``fn(config, fidelity)`` (or ``fn(config)`` when there is no fidelity) may return

    - a float: the value; the cost is then ``cost(fidelity)`` if a ``cost`` callable was given,
      else the measured wall time of the call in seconds;
    - a ``(value, cost)`` pair;
    - an :class:`~mfbo.trial.Observation`.

    ``target_value(config)``, if given, is the noiseless target-fidelity value used for exact regret.
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
    ) -> None:
        if not callable(fn):
            raise ValueError(f"from_function: fn must be callable, got {type(fn).__name__}")
        if cost is not None and not callable(cost):
            raise ValueError(f"from_function: cost must be a callable of the fidelity or None, got {type(cost).__name__}")
        super().__init__(name or getattr(fn, "__name__", "function"), space, fidelity, optimum)
        self._fn = fn
        self._cost_fn = cost
        self._target_value_fn = target_value

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
            return Observation(value=float(out[0]), cost=float(out[1]))
        known = self.cost(config, fidelity)
        return Observation(value=float(out), cost=elapsed if known is None else known)

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        if self._cost_fn is None:
            return None
        return float(self._cost_fn(self.target_fidelity if fidelity is None else fidelity))

    def target_value(self, config: Mapping[str, Any]) -> float | None:
        if self._target_value_fn is not None:
            return float(self._target_value_fn(self.space.validate(config)))
        return None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["function"] = f"{getattr(self._fn, '__module__', '?')}.{getattr(self._fn, '__qualname__', '?')}"
        return out

"""The two records that cross the ask/tell boundary: :class:`Trial` and :class:`Observation`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Trial", "Observation"]


@dataclass(frozen=True)
class Trial:
    """A request to evaluate ``config`` at ``fidelity`` (``None`` for single-fidelity problems).

    ``id`` is unique within a run and increases in ask order, so logs sort by it.

    There are two kinds of request:

    - a **new** evaluation (``continues is None``): train ``config`` from scratch up to
      ``fidelity``;
    - a **continuation** (``continues = k``): take trial ``k``, which evaluated the same
      configuration at a lower fidelity, on to ``fidelity``. Problems that can resume
      (:attr:`mfbo.problems.Problem.resumable`: epochs of a training run, the cumulative time of a
      learning-curve surrogate) charge only the increment ``cost(fidelity) - cost(fidelity_k)``;
      the others evaluate from scratch and charge the full cost. Hyperband, ASHA, BOIL and
      freeze-thaw methods promote configurations this way.
    """

    config: dict[str, Any]
    fidelity: float | None
    id: int
    continues: int | None = None


@dataclass(frozen=True)
class Observation:
    """The outcome of one evaluation. Values are minimised.

    Attributes:
        value: the objective value (``nan`` for a failure).
        cost: the cost of the evaluation, in the problem's cost units (> 0 when successful).
        curve: optional learning curve up to the evaluated fidelity, shape ``(n_steps,)``.
        info: free-form extra results (e.g. a test score); must be JSON-serialisable.
        error: ``None`` on success, else the text of the failure.
    """

    value: float
    cost: float
    curve: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True if the evaluation succeeded with a finite value."""
        return self.error is None and math.isfinite(self.value)

    @classmethod
    def failure(cls, error: str, cost: float = 0.0, info: dict[str, Any] | None = None) -> Observation:
        """A failed evaluation: the value is ``nan`` and ``error`` says why."""
        return cls(value=math.nan, cost=float(cost), info=dict(info or {}), error=str(error))

    def curve_list(self) -> list[float] | None:
        """The curve as a plain list of floats (for logging), or ``None``."""
        if self.curve is None:
            return None
        return [float(v) for v in np.asarray(self.curve, dtype=float).ravel()]

"""Successive halving: one bracket of Hyperband, repeated with fresh configurations.

Paper: Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter
Optimization", AISTATS 2016 (Algorithm 1), in the resource form Hyperband uses for one bracket
(Li et al., JMLR 2018, the inner loop of Algorithm 1): ``n`` random configurations at the bottom
resource, the top ``floor(n_i / eta)`` of each rung continued at ``eta`` times the resource, up to
the target. The schedule, promotions, fidelity mapping, workers and ``recommend()`` are
Hyperband's (:mod:`.hyperband`, :mod:`.schedule`); only the bracket differs.

Defaults and deviations (not in the paper):

- ``n`` defaults to the ``n`` of Hyperband's most aggressive bracket, ``s = s_max``:
  ``ceil(eta**s_max)`` (81 for ``eta = 3``, ``R / r_min = 81``).
- The paper fixes a total budget and derives the resource per round from it; here the resources
  are Hyperband's rungs, ``s_max + 1`` of them from ``R * eta**-s_max`` (``>= r_min``) to ``R``,
  and the bracket repeats with new configurations until mfbo's budget ends.
- A rung keeps at least one configuration, so a small ``n`` still reaches the target.
"""

from __future__ import annotations

import math
from typing import Any

from ...problems.base import Problem
from ...space import Fidelity, Space
from .hyperband import Hyperband
from .schedule import Bracket, floor_log, successive_halving_rungs

__all__ = ["SuccessiveHalving"]


class SuccessiveHalving(Hyperband):
    """Successive halving (module docstring).

    Options:
        eta: the halving rate, > 1 (default 3).
        r_min: the smallest resource, a fidelity value in ``[low, target]`` (default ``low``).
        n: configurations per bracket, an integer >= 1 (default: Hyperband's largest bracket).
    """

    name = "sh"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: float = 3.0, r_min: float | None = None, n: int | None = None):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"strategy {self.name!r}: option n must be an integer >= 1 or None (the default), got {n!r}")
        self.n = n
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta, r_min=r_min)

    def _brackets(self) -> tuple[Bracket, ...]:
        """The one bracket: ``n`` configurations on Hyperband's rungs of bracket ``s_max``
        (called by ``Hyperband.__init__``, which also fixes the default ``n`` here)."""
        s_max = floor_log(self.resources.r_max / self.resources.r_min, self.eta)
        if self.n is None:
            self.n = math.ceil(self.eta ** s_max - 1e-9)
        return (Bracket(s_max, successive_halving_rungs(self.n, self.eta, self.resources.r_min, self.resources.r_max)),)

    def options(self) -> dict[str, Any]:
        return {"eta": self.eta, "r_min": self.resources.r_min, "r_max": self.resources.r_max, "n": self.n}

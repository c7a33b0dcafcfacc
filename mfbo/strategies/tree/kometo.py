"""Kometo: multi-fidelity tree search that knows neither the smoothness nor the cost-to-bias function.

Paper: Fiegel, Gabillon & Valko, "Adaptive multi-fidelity optimization with fast learning rates",
arXiv 2604.16239 (2026). Only its abstract and third-party summaries were available to us, not its
pseudo-code, so this is **our reconstruction**, built from what is published and from its ancestors:

- the setting: a locally smooth ``f``, fidelities of cost ``lambda`` whose bias is bounded by an
  unknown decreasing *cost-to-bias* function, a cost budget ``Lambda``, simple regret at the target;
- the claims: no knowledge of the smoothness ``(nu, rho)`` nor of the cost-to-bias function, the
  rates of the methods that know them up to logarithmic factors;
- POO (Grill, Valko & Munos, NeurIPS 2015) and MFPDOO (Sen et al., ICML 2018): a portfolio of
  tree searches over a geometric grid of guesses sharing the budget, whose candidates are compared
  (cross-validated) at the target fidelity;
- SequOOL (Bartlett, Gabillon & Valko, ALT 2019): adaptivity to the unknown smoothness without a
  grid, by opening ``floor(h_max / h)`` cells at each depth ``h``.

Design (each item is a choice of ours, not the paper's text):

1. **Smoothness: SequOOL inside each instance.** On the ``K``-ary partition of the unit cube
   (:mod:`.partition`), an instance with depth budget ``h_max`` opens the root, then for
   ``h = 1..h_max`` opens the ``floor(h_max / h)`` cells of depth ``h`` with the lowest values
   (ties: the first evaluated); opening a cell evaluates its ``K`` children at their centres. No
   ``nu`` or ``rho`` appears. Cells of one depth are evaluated at one fidelity, so they are ranked
   among themselves, and a bias common to all configurations (the quadratic ladder's) cannot
   mislead the ranking.
2. **Cost-to-bias: a geometric grid of fidelity schedules.** The fidelity needed at depth ``h`` is
   the cheapest whose bias is below the cells' variation ``nu rho^h``; for a cost-to-bias function
   ``b(lambda) ~ lambda^-kappa`` its cost grows geometrically with ``h``. Instance ``j`` guesses
   that the target cost is needed from depth ``H_j`` on: depth ``h`` is evaluated at the cheapest
   fidelity costing at least ``lambda_min (lambda(target) / lambda_min)^{min(1, h / H_j)}``, with
   ``H_0 = 0`` (every depth at the target: plain SequOOL, the safe member) and ``H_j = 2^{j-1}``,
   ``j = 1..ceil(log2 n)``, ``n = Lambda / lambda(target)`` (the grid is geometric in the rate
   ``(lambda(target) / lambda_min)^{1 / H}``; the starting cost is fixed at the cheapest fidelity).
3. **Budget split.** The ``M = 1 + ceil(log2 n)`` instances share the budget equally after the
   cross-validation's reserve (:mod:`.search`; unspent shares roll over). ``h_max`` of an instance
   is the largest whose planned cost ``sum_h floor(h_max / h) K lambda(z_{h+1})`` (``h = 0``
   counted once, for the root) fits its share (SequOOL sets ``h_max = floor(n / log-bar n)`` for
   ``n`` evaluations of equal cost); remembered evaluations are free, so an instance may spend less,
   and it stops early where costs that depend on the configuration would take it past its share.
4. **Candidates and cross-validation.** An instance's candidate is its best cell among those it
   evaluated at its highest fidelity; the ``M`` candidates are evaluated at the target and the best
   is recommended (:mod:`.search`). Before that, ``recommend()`` names the best cell at the highest
   fidelity evaluated so far.

5. **Several workers** (:mod:`.search`, "Several workers"): the instances run concurrently, and the
   children of the cells an instance opens at one depth are evaluated at once (SequOOL decides
   them all before any of their values is known); the next depth waits for all of them.

Defaults: ``k = 2``. ``h_max`` is capped by the partition's maximum depth. The method is
deterministic given the partition, whose tie-breaks use the seed (:mod:`.partition`).
"""

from __future__ import annotations

import math
from typing import Any

from ...problems.base import Problem
from ...space import Fidelity, Space
from .partition import Cell
from .search import Purse, Search, TreeSearch

__all__ = ["Kometo"]


class Kometo(TreeSearch):
    """Kometo (Fiegel et al. 2026; our reconstruction, module docstring): told neither smoothness nor bias.

    Options: ``k``, the partition's arity (default 2).
    """

    name = "kometo"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 k: int = 2):
        super().__init__(space, fidelity, seed=seed, problem=problem, k=k)
        self.low_cost = self.cost(self.levels[0])
        self.horizons: list[int] = []  # H_j of each instance

    def _n_instances(self, budget: float) -> int:
        n_target = budget / self.cost(self.fidelity.target)
        m = 1 + max(1, math.ceil(math.log2(max(n_target, 2.0))))
        self.horizons = [0] + [2 ** (j - 1) for j in range(1, m)]
        return m

    def fidelity_at(self, depth: int, horizon: int) -> float:
        """The fidelity of depth ``depth`` under the guess that the target is needed from ``horizon``."""
        top = self.cost(self.fidelity.target)
        if horizon == 0 or depth >= horizon or top <= self.low_cost:
            return self.fidelity.target
        wanted = self.low_cost * (top / self.low_cost) ** (depth / horizon)
        return self.cheapest(lambda z: self.cost(z) >= wanted * (1 - 1e-9))

    def planned_cost(self, h_max: int, horizon: int) -> float:
        """The cost of SequOOL with depth budget ``h_max`` if nothing were remembered."""
        opened = [1] + [h_max // h for h in range(1, h_max + 1)]
        return sum(m * self.k * self.cost(self.fidelity_at(h + 1, horizon)) for h, m in enumerate(opened))

    def _instance(self, i: int, n: int, purse: Purse) -> Search:
        horizon = self.horizons[i]
        if self.planned_cost(0, horizon) > purse.amount:
            return None
        h_max = 0
        while h_max + 2 < self.partition.max_depth and self.planned_cost(h_max + 1, horizon) <= purse.amount:
            h_max += 1
        return (yield from self.sequool(h_max, horizon, purse))

    def sequool(self, h_max: int, horizon: int, purse: Purse) -> Search:
        """SequOOL with depth budget ``h_max`` and the fidelity schedule of ``horizon``; it stops
        early if an opening would take it past ``purse.amount`` (costs that depend on the
        configuration can exceed the plan, which priced the cube's centre). The cells opened at one
        depth are evaluated as one batch (in parallel with several workers)."""
        mine: list[tuple[Cell, float, float]] = []  # this instance's (cell, fidelity, value)
        to_open, over = [self.partition.root], False
        for h in range(h_max + 1):
            z = self.fidelity_at(h + 1, horizon)
            batch: list[Cell] = []
            for cell in to_open:
                children = self.partition.children(cell)
                price = self.price(children, z, {self._key(c, z) for c in batch})
                if purse.spent + price > purse.amount:
                    over = True
                    break
                purse.spent += price
                batch += children
            mine += [(c, z, v) for c, v in zip(batch, (yield from self.values(batch, z)))]
            if over:
                break
            depth = [j for j, (c, _, _) in enumerate(mine) if c.depth == h + 1]
            ranked = sorted(depth, key=lambda j: (mine[j][2], j))
            to_open = [mine[j][0] for j in ranked[: (h_max // (h + 1))] if math.isfinite(mine[j][2])]
        if not mine:
            return None
        top = max(self.fidelity.normalize(z) for _, z, _ in mine)
        at_top = [j for j, (_, z, _) in enumerate(mine) if self.fidelity.normalize(z) == top]
        j = min(at_top, key=lambda j: (mine[j][2], j))
        return mine[j][0], mine[j][1]

    def _score(self, cell: Cell, fidelity: float, value: float) -> tuple[float, float]:
        return -float(self.fidelity.normalize(fidelity)), value

    def options(self) -> dict[str, Any]:
        return super().options()

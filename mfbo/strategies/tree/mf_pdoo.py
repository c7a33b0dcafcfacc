"""MFPDOO: multi-fidelity parallel deterministic optimistic optimisation (tree search).

Paper: Sen, Kandasamy & Shakkottai, "Multi-Fidelity Black-Box Optimization with Hierarchical
Partitions", ICML 2018 (PMLR 80). Authors' code: ``rajatsen91/MFTREE_DET`` (``MFPDOO_synthetic.py``,
``run_PDOO_exact``), read for the details the paper leaves open.

Setting (minimisation here; the paper maximises). Fidelities ``z`` with cost ``lambda(z)``
increasing and a bias function ``zeta(z) >= |f_z(x) - f(x)|`` decreasing to ``zeta(target) = 0``.
Smoothness: the cells ``P_{h,i*}`` containing the optimum satisfy ``f(x) - f(x*) <= nu rho^h``.

**MFDOO(nu, rho)** (Algorithm 1) on the ``K``-ary partition of the unit cube (:mod:`.partition`):
a cell at depth ``h`` is evaluated at its centre at ``z_h = zeta^{-1}(nu rho^h)``, the cheapest
fidelity whose bias bound is at most ``nu rho^h`` (:meth:`~.search.TreeSearch.cheapest`), and gets
the optimistic bound ``b_{h,i} = f_{z_h}(x_{h,i}) - nu rho^h - zeta(z_h)``. Starting from the root,
the leaf with the lowest ``b`` is expanded (its ``K`` children evaluated at ``z_{h+1}``) while the
expansion fits the instance's budget. It returns the evaluated cell with the lowest pessimistic
value ``f_z(x) + zeta(z)`` (the authors' code; ties: the first evaluated).

**MFPDOO(nu_max, rho_max)** (Algorithm 2): ``N = floor(0.5 D_max log(n / log n))`` instances, with
``D_max = floor(log K / log(1 / rho_max))`` and ``n = Lambda / lambda(target)`` (the authors' code's
``run_PDOO_exact``: integer ``D_max`` and ``N``); instance ``i = 0..N-1`` is MFDOO with
``(nu_max, rho_max^{N / (N - i)})``; the ``N`` returned points are evaluated at the target and the
best is recommended. Budget, memory of evaluations, the cross-validation and the end of a run are
those of :mod:`.search` (deviations listed there: unspent shares roll over to the next instances).

``zeta``: ``bias="problem"`` (default) takes the problem's :meth:`~mfbo.problems.Problem.bias_bound`
(the synthetic suite knows it, :mod:`mfbo.problems.synthetic`); a number ``C >= 0`` uses the paper's
experimental form ``zeta(z) = C (1 - s(z))`` of the normalised fidelity ``s``.

Defaults and deviations:

- ``nu = 2.0``, ``rho = 0.95``, ``k = 2``: the authors' synthetic experiments (``nu_max``,
  ``rho_max``, ``K``). ``n_instances`` (default: the formula above) overrides ``N``; ``N`` is at
  least 1 and at most ``Lambda / (2 lambda(target))`` (ours: the cross-validation never takes more
  than half the budget).
- The authors' code learns ``C`` by doubling it when two fidelities of a cell disagree by more than
  ``C |z - z'|``, starting from ``1e-4``; we take ``C`` (or ``zeta``) as given and fixed.
- Split rule and tie-breaks of the partition: :mod:`.partition` (random among longest sides, so
  seeds differ; the authors' code is deterministic). Otherwise the method is deterministic.
- With one worker the instances run one after the other (the paper runs them in parallel with
  fixed shares; with fixed shares the order does not matter, except for the shared memory of
  evaluations). With several workers (:mod:`.search`, "Several workers") they run concurrently with
  the shares fixed when they start, and an expansion's ``K`` children are evaluated at once; the
  root (at ``zeta^{-1}(nu)``, the same for every instance) is evaluated once, while the others wait.
- The expansion stops when the next one does not fit the share (the authors' code overshoots the
  share by one expansion); cells at the partition's maximum depth are not expanded.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from ...problems.base import Problem
from ...space import Fidelity, Space
from .partition import Cell
from .search import Purse, Search, TreeSearch

__all__ = ["MFPDOO"]


class MFPDOO(TreeSearch):
    """MFPDOO (Sen et al. 2018): MFDOO instances over a grid of smoothness rates, told nu, rho and the bias.

    Options:
        nu: ``nu_max > 0``, the smoothness scale (default 2.0).
        rho: ``rho_max`` in ``(0, 1)``, the largest smoothness rate of the grid (default 0.95).
        bias: ``"problem"`` (the problem's bias function) or ``C >= 0`` for ``zeta = C (1 - s)``.
        n_instances: the number ``N`` of MFDOO instances (default: the paper's formula).
        k: the partition's arity (default 2).
    """

    name = "mf-pdoo"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 nu: float = 2.0, rho: float = 0.95, bias: str | float = "problem", n_instances: int | None = None,
                 k: int = 2):
        super().__init__(space, fidelity, seed=seed, problem=problem, k=k)
        if not (isinstance(nu, (int, float)) and not isinstance(nu, bool) and math.isfinite(nu) and nu > 0):
            raise ValueError(f"strategy {self.name!r}: option nu must be a number > 0, got {nu!r}")
        if not (isinstance(rho, (int, float)) and not isinstance(rho, bool) and 0 < rho < 1):
            raise ValueError(f"strategy {self.name!r}: option rho must be a number in (0, 1), got {rho!r}")
        if n_instances is not None and (isinstance(n_instances, bool) or not isinstance(n_instances, int) or n_instances < 1):
            raise ValueError(f"strategy {self.name!r}: option n_instances must be an integer >= 1 or None, got {n_instances!r}")
        self.nu, self.rho, self.n_instances = float(nu), float(rho), n_instances
        self.bias = self._bias_option(bias)
        self._z_at: dict[float, float] = {}
        self._zeta: dict[float, float] = {}

    def _bias_option(self, bias: Any) -> str | float:
        allowed = "'problem' or a number C >= 0 (zeta(z) = C (1 - s(z)))"
        if bias == "problem":
            if self.problem.bias_bound(self.fidelity.target) is None:
                raise ValueError(f"strategy {self.name!r}: option bias='problem' needs a problem that knows its bias function (Problem.bias_bound); {self.problem.name!r} does not, so give bias as {allowed}")
            return "problem"
        try:
            c = float(bias) if not isinstance(bias, bool) else math.nan
        except (TypeError, ValueError):
            c = math.nan
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"strategy {self.name!r}: option bias must be {allowed}, got {bias!r}")
        return c

    def zeta(self, fidelity: float) -> float:
        """The bias bound ``zeta(z)`` in use (cached)."""
        if fidelity not in self._zeta:
            self._zeta[fidelity] = (float(self.problem.bias_bound(fidelity)) if self.bias == "problem"
                                    else self.bias * (1.0 - float(self.fidelity.normalize(fidelity))))
        return self._zeta[fidelity]

    def z_for(self, accuracy: float) -> float:
        """``zeta^{-1}(accuracy)``: the cheapest fidelity with ``zeta(z) <= accuracy`` (cached)."""
        if accuracy not in self._z_at:
            self._z_at[accuracy] = self.cheapest(lambda z: self.zeta(z) <= accuracy)
        return self._z_at[accuracy]

    def _n_instances(self, budget: float) -> int:
        n_target = budget / self.cost(self.fidelity.target)
        if self.n_instances is not None:
            n = self.n_instances
        else:
            d_max = int(math.log(self.k) / math.log(1.0 / self.rho))
            n = int(0.5 * d_max * math.log(n_target / math.log(n_target))) if n_target > math.e else 1
        return max(1, min(n, int(n_target / 2)))

    def _instance(self, i: int, n: int, purse: Purse) -> Search:
        return (yield from self.mfdoo(self.nu, self.rho ** (n / (n - i)), purse))

    def mfdoo(self, nu: float, rho: float, purse: Purse) -> Search:
        """MFDOO with ``(nu, rho)`` spending at most ``purse.amount``; returns ``(cell, fidelity)``.
        An expansion's ``K`` children are evaluated as one batch (in parallel with several workers)."""
        root, z = self.partition.root, self.z_for(nu)
        price = self.price([root], z)
        if price > purse.amount:
            return None
        purse.spent += price
        value = yield from self.value(root, z)
        leaves = [(value - nu - self.zeta(z), 0, root, z)]  # (b, order, cell, fidelity)
        best = (value + self.zeta(z), 0, root, z)  # (pessimistic value, order, cell, fidelity)
        order = 1
        while leaves and math.isfinite(leaves[0][0]):
            _, _, cell, _ = heapq.heappop(leaves)
            children = self.partition.children(cell)
            if not children:
                continue
            h = cell.depth + 1
            z = self.z_for(nu * rho**h)
            price = self.price(children, z)
            if purse.spent + price > purse.amount:
                break
            purse.spent += price
            for child, value in zip(children, (yield from self.values(children, z))):
                heapq.heappush(leaves, (value - nu * rho**h - self.zeta(z), order, child, z))
                best = min(best, (value + self.zeta(z), order, child, z), key=lambda t: t[:2])
                order += 1
        return best[2], best[3]

    def _score(self, cell: Cell, fidelity: float, value: float) -> float:
        return value + self.zeta(fidelity)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "nu": self.nu, "rho": self.rho, "bias": self.bias, "n_instances": self.n_instances}

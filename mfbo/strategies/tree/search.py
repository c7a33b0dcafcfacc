"""The ask/tell driver shared by the multi-fidelity tree searches (``mf-pdoo``, ``kometo``).

Both methods are *portfolios*: ``N`` tree searches ("instances") over one hierarchical partition
(:mod:`.partition`), each with its own guess of the problem's unknowns, share the cost budget
``Lambda``; each returns one candidate cell, and the candidates are compared at the target
fidelity (cross-validation, as in POO, Grill, Valko & Munos 2015, and MFPDOO, Sen et al. 2018).
:class:`TreeSearch` owns what they share; a subclass says how many instances to run
(:meth:`TreeSearch._n_instances`), what one instance does (:meth:`TreeSearch._instance`, a
generator) and how to rank a cell before the cross-validation (:meth:`TreeSearch._score`).

Budget (exact): at the first ask the strategy takes the run's cost budget ``B = budget_left()``
(so it must run under :func:`mfbo.minimize`, or after ``set_budget``; under the ``"wall_clock"``
stop rule, with its one worker, the clock is the cost spent, so ``B`` is the budget). It
reserves ``N * lambda(target)`` for the cross-validation and runs the instances one after the other;
instance ``i`` may spend ``(budget_left() - reserve) / (N - i)``, and an instance never starts an
evaluation that would take it past that share, so the total never exceeds ``B``. What an instance
leaves unspent (cache hits, an expansion that did not fit) passes to the next ones (our choice;
the paper gives each ``(Lambda - N lambda(1)) / N``, the authors' code the same, with free cache
hits). An evaluation is asked once: a configuration already evaluated at a fidelity (by this or an
earlier instance; cells of the shared partition recur) is answered from memory at no cost, as in
the authors' code.

After the cross-validation, what is left goes to target evaluations of the next cells by
:meth:`TreeSearch._score` (our choice: no budget is given back unused while a target evaluation
fits); then ``ask`` returns a target evaluation of the recommendation, which the run loop does not
start because it would exceed the budget, and the run ends (were every evaluated cell already
known at the target while a target evaluation still fits, that evaluation would repeat the
recommendation).

Fidelities and costs: a discrete fidelity is used at its values up to the target; a continuous one
at 257 equally spaced normalised values (our discretisation, so that the fidelity picked for a cell
is found by bisection and remembered). Costs come from the problem's known cost model
(:meth:`~mfbo.problems.Problem.cost`): the shares are planned with the cost of the cube's centre,
and each evaluation is priced with its own configuration's cost (tables and surrogates have costs
that depend on the configuration), so an instance never exceeds its share. Observations told
with ``add_observation`` (not asked for) are kept in the history but not used by the search. On a
resumable problem (:attr:`~mfbo.problems.Problem.resumable`) a configuration told at a lower
fidelity is continued (:class:`~mfbo.strategies.base.Continuation`: the cross-validation of a
candidate, or a cell whose centre recurs, e.g. the middle child for odd ``K``), and planned at the
incremental cost.

One worker: each ask needs the previous answer (the searches are sequential), so ``ask`` while a
trial is pending raises ``ValueError``. A failed trial (an exception or a NaN) gives its cell the
value ``+inf``: it is never expanded nor recommended.

``recommend()``: after the cross-validation, the best configuration observed at the target; before
it (or if no target evaluation could be paid for), the cell with the lowest
:meth:`TreeSearch._score` (the method's own provisional output).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from ...problems.base import Problem
from ...space import Fidelity, Space
from ...trial import Observation, Trial
from ..base import Continuation, Strategy
from .partition import Cell, Partition

__all__ = ["Search", "TreeSearch"]

#: An instance or phase of the search: yields ``(cell, fidelity)`` requests, is sent the observed
#: values, and returns its result.
Search = Generator[tuple[Cell, float], float, Any]


class TreeSearch(Strategy):
    """Base of the portfolio tree searches (module docstring). ``k``: the partition's arity."""

    name = "tree-search"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 k: int = 2):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        if fidelity is None:
            raise ValueError(f"strategy {self.name!r} is multi-fidelity: the problem must have a fidelity")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"strategy {self.name!r}: option k (the partition's arity) must be an integer >= 2, got {k!r}")
        self.k = int(k)
        self.partition = Partition(space.dim, self.k, self.rng)
        self._probe = space.decode(np.full(space.dim, 0.5))
        self._costs: dict[tuple[tuple, float], float | None] = {}
        if problem is None or self.cost(fidelity.target) is None:
            raise ValueError(f"strategy {self.name!r} plans with the cost of each fidelity: it needs a problem with a known cost model")
        #: the fidelities the search uses: a discrete axis's values up to the target, or 257 equally
        #: spaced normalised values of a continuous one (our discretisation)
        self.levels = ([v for v in fidelity.grid() if v <= fidelity.target] if fidelity.is_discrete
                       else sorted({fidelity.denormalize(i / 256) for i in range(257)}))
        self._memory: dict[tuple[tuple, float], float] = {}  # (config key, fidelity) -> value
        self._reached: dict[tuple, tuple[int, float]] = {}  # config key -> (trial id, highest fidelity told ok)
        self.evaluated: list[tuple[Cell, float, float]] = []  # (cell, fidelity, value), first time asked
        self._search: Search | None = None
        self._request: tuple[Cell, float] | None = None
        self._asked: int | None = None  # id of the pending trial we asked for
        self.candidates: list[tuple[Cell, float] | None] = []
        self.validated = False

    # Fidelities and costs -------------------------------------------------------------------------
    def cost(self, fidelity: float, cell: Cell | None = None) -> float | None:
        """``lambda(z)``: the problem's cost of one evaluation at ``fidelity``, of ``cell``'s centre
        or (for planning) of the cube's centre; cached."""
        key = self._key(cell, fidelity) if cell is not None else ((), fidelity)
        if key not in self._costs:
            config = self._probe if cell is None else self.config_of(cell)
            self._costs[key] = self.problem.cost(config, fidelity)
        return self._costs[key]

    def cheapest(self, ok: Callable[[float], bool]) -> float:
        """The lowest fidelity of :attr:`levels` with ``ok(z)``, for a predicate monotone in ``z``
        (bisection; the target if no lower level satisfies it)."""
        low, high = 0, len(self.levels) - 1  # ok(levels[high]) holds (the target, by definition)
        while low < high:
            mid = (low + high) // 2
            low, high = (low, mid) if ok(self.levels[mid]) else (mid + 1, high)
        return self.levels[high]

    # Evaluations ------------------------------------------------------------------------------------
    def config_of(self, cell: Cell) -> dict[str, Any]:
        return self.space.decode(cell.center)

    def _key(self, cell: Cell, fidelity: float) -> tuple[tuple, float]:
        return tuple(sorted(self.config_of(cell).items())), fidelity

    def _resume_point(self, cell: Cell, fidelity: float) -> tuple[int, float] | None:
        """``(trial id, fidelity)`` of a told evaluation of ``cell`` that a resumable problem can
        continue to ``fidelity``, or ``None``."""
        reached = self._reached.get(self._key(cell, fidelity)[0]) if self.problem.resumable else None
        return reached if reached is not None and reached[1] < fidelity else None

    def known(self, cell: Cell, fidelity: float) -> float | None:
        """The remembered value of ``cell`` at ``fidelity``, or ``None``."""
        return self._memory.get(self._key(cell, fidelity))

    def price(self, cells: list[Cell], fidelity: float) -> float:
        """What evaluating ``cells`` at ``fidelity`` costs: the remembered ones are free, and on a
        resumable problem a cell evaluated at a lower fidelity costs the increment."""
        total = 0.0
        for cell in cells:
            if self.known(cell, fidelity) is None:
                start = self._resume_point(cell, fidelity)
                full = self.cost(fidelity, cell) or 0.0
                total += full - (0.0 if start is None else min(self.cost(start[1], cell) or 0.0, full))
        return total

    def value(self, cell: Cell, fidelity: float) -> Search:
        """``f_z(x_cell)`` at ``z = fidelity``: from memory, or asked (``+inf`` for a failure)."""
        remembered = self.known(cell, fidelity)
        if remembered is not None:
            return remembered
        observed = yield cell, fidelity
        self._memory[self._key(cell, fidelity)] = observed
        self.evaluated.append((cell, fidelity, observed))
        return observed

    # The portfolio ---------------------------------------------------------------------------------
    def left(self) -> float:
        """What the run may still spend: :meth:`budget_left`, or under the ``"wall_clock"`` stop
        rule the budget less the cost spent and pending (with one worker, the simulated clock is the
        cost spent)."""
        left = self.budget_left()
        if left is None:
            if self.budget is None:
                raise ValueError(f"strategy {self.name!r} plans with the run's budget: run it under mfbo.minimize, or call set_budget(budget) first")
            known = (self.problem.cost(t.config, t.fidelity) or 0.0 for t in self.pending.values())
            left = self.budget - sum(o.cost for _, o in self.history) - sum(known)
        return left

    def _run(self) -> Search:
        budget = self.left()
        target = self.fidelity.target
        n = self._n_instances(budget)
        for i in range(n):
            unchecked = self.price([c[0] for c in self.candidates if c is not None], target)
            reserve = unchecked + (n - i) * self.cost(target)  # the cross-validation's cost
            share = (self.left() - reserve) / (n - i)
            self.candidates.append((yield from self._instance(i, n, share)))
        found = [c for c in self.candidates if c is not None]
        for cell, _ in found:  # cross-validation at the target
            if self.fits(self.price([cell], target)):
                yield from self.value(cell, target)
        self.validated = True
        for cell in self._ranked_cells():  # spend what is left on the next best cells
            if not self.fits(self.price([cell], target)):
                break
            yield from self.value(cell, target)

    def fits(self, price: float) -> bool:
        """Whether ``price`` fits what is left, up to the run loop's round-off tolerance."""
        return price <= self.left() + 1e-9 * self.budget

    def _ranked_cells(self) -> list[Cell]:
        scored = sorted(range(len(self.evaluated)), key=lambda j: (self._score(*self.evaluated[j]), j))
        return [self.evaluated[j][0] for j in scored]

    # Hooks -------------------------------------------------------------------------------------------
    def _n_instances(self, budget: float) -> int:
        """How many instances share ``budget``."""
        raise NotImplementedError  # abstract

    def _instance(self, i: int, n: int, share: float) -> Search:
        """Instance ``i`` of ``n``: a search spending at most ``share``; returns its candidate
        ``(cell, fidelity)`` or ``None``."""
        raise NotImplementedError  # abstract

    def _score(self, cell: Cell, fidelity: float, value: float) -> Any:
        """A sort key (lower is better) of an evaluation, for the provisional recommendation."""
        raise NotImplementedError  # abstract

    # Ask / tell --------------------------------------------------------------------------------------
    def _suggest(self) -> tuple[dict[str, Any], float] | Continuation:
        if self._asked is not None:
            raise ValueError(f"strategy {self.name!r} runs one evaluation at a time: tell the pending trial before asking again (run it with workers=1)")
        if self._search is None:
            self._search = self._run()
            self._advance(None)
        self._asked = self._next_id  # the id ask gives the trial
        if self._request is None:  # done: a target evaluation the budget cannot pay for
            return self.recommend() or self.config_of(self.partition.root), self.fidelity.target
        cell, fidelity = self._request
        start = self._resume_point(cell, fidelity)
        return (self.config_of(cell), fidelity) if start is None else Continuation(start[0], fidelity)

    def _advance(self, value: float | None) -> None:
        try:
            self._request = next(self._search) if value is None else self._search.send(value)
        except StopIteration:
            self._request = None

    def _observe(self, trial: Trial, observation: Observation) -> None:
        if trial.id != self._asked:
            return  # an observation we did not ask for (add_observation)
        self._asked = None
        if self._request is None:
            return  # the final over-budget request
        key = self._key(*self._request)[0]
        if observation.ok and (key not in self._reached or self._reached[key][1] < trial.fidelity):
            self._reached[key] = (trial.id, trial.fidelity)
        value = observation.value if observation.ok and observation.value is not None else math.inf
        self._advance(value if math.isfinite(value) else math.inf)

    def recommend(self) -> dict[str, Any] | None:
        if self.validated and self.best_observed() is not None:
            return super().recommend()
        if not self.evaluated:
            return None
        return self.config_of(self._ranked_cells()[0])

    def options(self) -> dict[str, Any]:
        return {"k": self.k}

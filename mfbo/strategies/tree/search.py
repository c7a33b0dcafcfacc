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
stop rule with ``W`` workers, ``B = W`` times the budget, see "Several workers" below). It reserves
``N * lambda(target)`` for the cross-validation; instance ``i``, when it starts, may spend
``(left - reserve - R) / (N - i)``, ``left`` = the budget less the cost told and pending, ``R`` =
the unspent shares of the instances still running, and an instance never starts an evaluation
that would take it past its share, so the total never exceeds ``B``. With one worker the
instances run one after the other (``R = 0``) and what an instance leaves unspent (cache hits, an
expansion that did not fit) passes to the next ones (our choice; the paper gives each
``(Lambda - N lambda(1)) / N``, the authors' code the same, with free cache hits). An evaluation
is asked once: a configuration already evaluated at a fidelity (by this or an earlier instance;
cells of the shared partition recur) is answered from memory at no cost, as in the authors' code.

After the cross-validation, what is left goes to target evaluations of the next cells by
:meth:`TreeSearch._score` (our choice: no budget is given back unused while a target evaluation
fits); then, with no trial pending, ``ask`` returns a target evaluation of the recommendation,
which the run loop does not start because it would exceed the budget, and the run ends (were every evaluated cell already
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

Several workers (asynchronous, :func:`mfbo.minimize` with ``workers > 1``; our extension, the
papers' searches are sequential). An instance yields *batches* of evaluations that are all decided
before any of their results is known (MFDOO's ``K`` children of an expanded cell, SequOOL's
children of the cells opened at one depth, the cross-validation's candidates, the final target
evaluations); a free worker takes the first request not yet asked of the first running instance
(in instance order), an evaluation already pending (asked by any instance) is never asked again
and is free in the other instances' prices (an instance that had priced it before it was asked
elsewhere is refunded), and an instance resumes once all of its batch is answered. When every
running instance waits for a pending result, the next instance starts (its share computed then, as
above); when all have started and every one waits, ``ask`` returns ``None`` and the run loop
leaves the worker idle until the next result (no speculative evaluations). So with ``W`` workers
up to ``N`` instances run at once, as in the paper's parallel MFPDOO, but their shares are fixed
when they start: what one leaves unspent goes to the final target evaluations, not to the other
instances. An instance's candidate is cross-validated as soon as the instance returns (no
synchronisation point; with one worker the cross-validation follows the last instance, as in the
papers). The cost budget stays exact (pending evaluations count as spent).

Under the ``"wall_clock"`` stop rule with ``W`` workers (``set_budget`` tells ``W``) the total cost may reach ``W`` times the budget, and the search plans with that; as
workers idle while the searches wait, the clock can end the run before the last instances and
their cross-validation are done (on ``mfhartmann6-good``, budget 30, 4 workers: about 90 % of
``W B`` is spent, kometo's last candidate is not checked); ``recommend()`` is then the provisional
rule. Its final phase evaluates the ranked cells at the target until the loop's clock rule stops
the run. With one worker both rules give the serial search, trial for trial. The same seed gives
the same log (the simulated clock is deterministic).

A failed trial (an exception or a NaN) gives its cell the value ``+inf``: it is never expanded
nor recommended.

``recommend()``: after the cross-validation, the best configuration observed at the target; before
it (or if no target evaluation could be paid for), the cell with the lowest
:meth:`TreeSearch._score` (the method's own provisional output).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...problems.base import Problem
from ...space import Fidelity, Space
from ...trial import Observation, Trial
from ..base import Continuation, Strategy
from .partition import Cell, Partition

__all__ = ["Purse", "Search", "TreeSearch"]

#: An instance or phase of the search: yields batches of ``(cell, fidelity)`` requests, is resumed
#: (sent ``None``) once all of a batch's values are in memory, and returns its result.
Search = Generator[list[tuple[Cell, float]], None, Any]


@dataclass
class Purse:
    """An instance's share of the budget: ``amount``, of which ``spent`` is committed."""

    amount: float
    spent: float = 0.0


@dataclass(eq=False)
class _Thread:
    """A running search: its ``index`` (instance ``i``, or ``N`` for the final phase), its batch
    and the requests of the batch not yet handed out."""

    index: int
    search: Search
    batch: list[tuple[Cell, float]] = field(default_factory=list)
    todo: list[tuple[Cell, float]] = field(default_factory=list)
    charged: set = field(default_factory=set)  # keys of the batch its instance paid for


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
        self._decoded: dict[tuple[int, ...], tuple] = {}  # cell path -> decoded centre, sorted items
        if problem is None or self.cost(fidelity.target) is None:
            raise ValueError(f"strategy {self.name!r} plans with the cost of each fidelity: it needs a problem with a known cost model")
        #: the fidelities the search uses: a discrete axis's values up to the target, or 257 equally
        #: spaced normalised values of a continuous one (our discretisation)
        self.levels = ([v for v in fidelity.grid() if v <= fidelity.target] if fidelity.is_discrete
                       else sorted({fidelity.denormalize(i / 256) for i in range(257)}))
        self._memory: dict[tuple[tuple, float], float] = {}  # (config key, fidelity) -> value
        self._reached: dict[tuple, tuple[int, float]] = {}  # config key -> (trial id, highest fidelity told ok)
        self.evaluated: list[tuple[Cell, float, float]] = []  # (cell, fidelity, value), first time asked
        self._threads: list[_Thread] = []  # the running searches, instances in order, then the final phase
        self._n: int | None = None  # number of instances, fixed at the first ask
        self._started = 0  # instances started
        self._purses: dict[int, Purse] = {}  # budget share of each started instance
        self._found: dict[int, tuple[Cell, float] | None] = {}  # candidate of each finished instance
        self._finishing = False
        self._inflight: set[tuple[tuple, float]] = set()  # keys of the pending evaluations we asked for
        self._asked: dict[int, tuple[Cell, float]] = {}  # pending trial id -> (cell, fidelity)
        self._owner: dict[tuple[tuple, float], int] = {}  # key -> the thread that asked for it
        self.candidates: list[tuple[Cell, float] | None] = []  # by instance, once all have returned
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
        return dict(self._config_key(cell))

    def _config_key(self, cell: Cell) -> tuple:
        """``cell``'s decoded centre as sorted ``(name, value)`` pairs (cached by the cell's path)."""
        if cell.path not in self._decoded:
            self._decoded[cell.path] = tuple(sorted(self.space.decode(cell.center).items()))
        return self._decoded[cell.path]

    def _key(self, cell: Cell, fidelity: float) -> tuple[tuple, float]:
        return self._config_key(cell), fidelity

    def _resume_point(self, cell: Cell, fidelity: float) -> tuple[int, float] | None:
        """``(trial id, fidelity)`` of a told evaluation of ``cell`` that a resumable problem can
        continue to ``fidelity``, or ``None``."""
        reached = self._reached.get(self._key(cell, fidelity)[0]) if self.problem.resumable else None
        return reached if reached is not None and reached[1] < fidelity else None

    def known(self, cell: Cell, fidelity: float) -> float | None:
        """The remembered value of ``cell`` at ``fidelity``, or ``None``."""
        return self._memory.get(self._key(cell, fidelity))

    def price(self, cells: list[Cell], fidelity: float, planned: set | frozenset = frozenset()) -> float:
        """What evaluating ``cells`` at ``fidelity`` adds to the cost committed: the remembered
        ones, the pending ones (asked by any instance) and those whose key is in ``planned`` are
        free, and on a resumable problem a cell evaluated at a lower fidelity costs the increment."""
        total = 0.0
        for cell in cells:
            key = self._key(cell, fidelity)
            if self.known(cell, fidelity) is None and key not in planned and key not in self._inflight:
                total += self._increment(cell, fidelity)
        return total

    def _increment(self, cell: Cell, fidelity: float) -> float:
        """The cost of evaluating ``cell`` at ``fidelity`` now (the increment from a told lower
        fidelity on a resumable problem)."""
        start = self._resume_point(cell, fidelity)
        full = self.cost(fidelity, cell) or 0.0
        return full - (0.0 if start is None else min(self.cost(start[1], cell) or 0.0, full))

    def values(self, cells: list[Cell], fidelity: float) -> Search:
        """``f_z`` at the centres of ``cells`` at ``z = fidelity`` (``+inf`` for a failure): the
        remembered ones from memory, the others asked as one batch (all decided, so with several
        workers they run at once; the driver asks each configuration once)."""
        if any(self.known(cell, fidelity) is None for cell in cells):
            yield [(cell, fidelity) for cell in cells if self.known(cell, fidelity) is None]
        return [self.known(cell, fidelity) for cell in cells]

    def value(self, cell: Cell, fidelity: float) -> Search:
        """``f_z(x_cell)`` at ``z = fidelity``: :meth:`values` of one cell."""
        return (yield from self.values([cell], fidelity))[0]

    # The portfolio ---------------------------------------------------------------------------------
    def left(self) -> float:
        """What the run may still spend: :meth:`budget_left`, or under the ``"wall_clock"`` stop
        rule ``W`` times the budget (``W`` workers) less the cost spent and pending."""
        left = self.budget_left()
        if left is None:
            if self.budget is None:
                raise ValueError(f"strategy {self.name!r} plans with the run's budget: run it under mfbo.minimize, or call set_budget(budget) first")
            known = (self.problem.cost(t.config, t.fidelity) or 0.0 for t in self.pending.values())
            left = self.workers * self.budget - sum(o.cost for _, o in self.history) - sum(known)
        return left

    def _start_next(self) -> bool:
        """Start the next instance (or, once every instance has returned, the cross-validation
        phase); ``False`` if there is nothing left to start."""
        if self._n is None:
            self._n = self._n_instances(self.left())
        n, i = self._n, self._started
        if i < n:
            done = [c[0] for c in self._found.values() if c is not None]
            reserve = self.price(done, self.fidelity.target) + (n - len(self._found)) * self.cost(self.fidelity.target)
            running = sum(max(0.0, p.amount - p.spent) for j, p in self._purses.items() if j not in self._found)
            self._purses[i] = Purse((self.left() - reserve - running) / (n - i))
            self._started += 1
            self._launch(i, self._instance(i, n, self._purses[i]))
            return True
        if len(self._found) == n and not self._finishing:
            self._finishing = True
            self.candidates = [self._found[j] for j in range(n)]
            self._launch(n, self._finish())
            return True
        return False

    def _finish(self) -> Search:
        """Cross-validation of the candidates at the target, then target evaluations of the next
        cells by :meth:`_score` while they fit (under ``"wall_clock"``: until the loop stops the
        run, module docstring)."""
        target = self.fidelity.target
        found = [c[0] for c in self.candidates if c is not None]
        yield from self.values(self.affordable(found, stop_at_first=False), target)
        self.validated = True
        ranked = self._ranked_cells()
        open_ended = self.budget_stop == "wall_clock"
        yield from self.values(ranked if open_ended else self.affordable(ranked, stop_at_first=True), target)

    def affordable(self, cells: list[Cell], stop_at_first: bool) -> list[Cell]:
        """The cells whose target evaluations fit what is left, taken in order (each priced
        knowing the earlier ones are paid for); skipping those that do not fit, or stopping at the
        first of them."""
        chosen, planned, spent = [], set(), 0.0
        for cell in cells:
            price = self.price([cell], self.fidelity.target, planned)
            if not self.fits(spent + price):
                if stop_at_first:
                    break
                continue
            chosen.append(cell)
            spent += price
            planned.add(self._key(cell, self.fidelity.target))
        return chosen

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

    def _instance(self, i: int, n: int, purse: Purse) -> Search:
        """Instance ``i`` of ``n``: a search spending at most ``purse.amount`` (adding what it
        commits to ``purse.spent``); returns its candidate ``(cell, fidelity)`` or ``None``."""
        raise NotImplementedError  # abstract

    def _score(self, cell: Cell, fidelity: float, value: float) -> Any:
        """A sort key (lower is better) of an evaluation, for the provisional recommendation."""
        raise NotImplementedError  # abstract

    # The scheduler -------------------------------------------------------------------------------------
    def _launch(self, index: int, search: Search) -> None:
        thread = _Thread(index, search)
        self._threads.append(thread)
        self._step(thread)

    def _step(self, thread: _Thread) -> None:
        """Run ``thread`` on while its batch is answered: to its next batch, or to its end."""
        while all(self._memory.get(self._key(*r)) is not None for r in thread.batch):
            try:
                thread.batch = next(thread.search)
            except StopIteration as stop:
                self._threads.remove(thread)
                if thread.index < (self._n or 0):
                    self._found[thread.index] = stop.value
                    if self.workers > 1 and stop.value is not None:  # cross-validate it now
                        target = self.fidelity.target
                        check = self.values(self.affordable([stop.value[0]], stop_at_first=False), target)
                        self._threads.insert(0, _Thread(self._n + 1 + thread.index, check))
                        self._step(self._threads[0])
                return
            thread.todo = list(thread.batch)
            thread.charged = {self._key(*r) for r in thread.batch} - self._inflight

    def _next_request(self) -> tuple[Cell, float] | None:
        """The first request of the first thread (instance order) that is neither answered nor
        pending; ``None`` if every thread waits for pending results."""
        for thread in self._threads:
            while thread.todo:
                cell, fidelity = thread.todo[0]
                key = self._key(cell, fidelity)
                thread.todo.pop(0)
                if key not in self._memory and key not in self._inflight:  # else answered or pending
                    self._owner[key] = thread.index
                    return cell, fidelity
                if key in thread.charged and self._owner.get(key) != thread.index and thread.index in self._purses:
                    self._purses[thread.index].spent -= self._increment(cell, fidelity)  # another instance paid
                    thread.charged.discard(key)
        return None

    # Ask / tell --------------------------------------------------------------------------------------
    def _suggest(self) -> tuple[dict[str, Any], float] | Continuation | None:
        while True:
            request = self._next_request()
            if request is not None or not self._start_next():
                break
        if request is None:
            if self.pending:
                return None  # every search waits for a pending result: the loop waits too
            return self.recommend() or self.config_of(self.partition.root), self.fidelity.target  # done
        cell, fidelity = request
        self._inflight.add(self._key(cell, fidelity))
        self._asked[self._next_id] = request  # the id ask gives the trial
        start = self._resume_point(cell, fidelity)
        return (self.config_of(cell), fidelity) if start is None else Continuation(start[0], fidelity)

    def _observe(self, trial: Trial, observation: Observation) -> None:
        request = self._asked.pop(trial.id, None)
        if request is None:
            return  # an observation we did not ask for (add_observation, the final over-budget request)
        key = self._key(*request)
        self._inflight.discard(key)
        if observation.ok and (key[0] not in self._reached or self._reached[key[0]][1] < trial.fidelity):
            self._reached[key[0]] = (trial.id, trial.fidelity)
        value = observation.value if observation.ok and observation.value is not None else math.inf
        self._memory[key] = value if math.isfinite(value) else math.inf
        self.evaluated.append((*request, self._memory[key]))
        for thread in list(self._threads):
            if thread in self._threads:
                self._step(thread)

    def recommend(self) -> dict[str, Any] | None:
        if self.validated and self.best_observed() is not None:
            return super().recommend()
        if not self.evaluated:
            return None
        return self.config_of(self._ranked_cells()[0])

    def options(self) -> dict[str, Any]:
        return {"k": self.k}

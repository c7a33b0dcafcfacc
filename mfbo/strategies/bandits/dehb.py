"""DEHB: differential evolution inside Hyperband's brackets.

Awad, Mallik & Hutter, "DEHB: Evolutionary Hyperband for Scalable, Robust and Efficient
Hyperparameter Optimization", IJCAI 2021 (arXiv:2105.09821): DEHB as described in its Section 4
and algorithm listings, with DE/rand/1/bin (:mod:`.evolution`), ``F = 0.5``, ``CR = 0.5``. The
maintained implementation is the ``dehb`` package (0.1.1 read; run as ``dehb-ref`` in
``experiments/reference_methods.py``); where the paper leaves a detail open, the package's choice
is taken, and where they differ the choice is said below.

The algorithm
-------------
Hyperband's brackets (:func:`.schedule.hyperband_brackets`, Li et al. 2018's table; resources and
fidelities as in :mod:`.schedule`) repeat ``s = s_max, ..., 0, s_max, ...`` until the run's budget
is spent. Budget level ``j = 0..s_max`` is the resource ``R eta^(j - s_max)``; bracket ``s``'s
rung ``i`` is at level ``s_max - s + i``.

- **Sub-populations.** Each level ``j`` has its own DE population of vectors in the unit
  hypercube (:func:`.evolution.de_space`), of size ``N_j = max_s n_{s,j}``: the most
  configurations any bracket evaluates at that level (:func:`population_sizes`; 81, 34, 15, 8, 5
  for ``eta = 3, R = 81, r = 1``). It starts with random individuals of unknown fitness
  (``+inf``); the *global population* is the union of all levels'.
- **Targets.** Every job at level ``j`` takes the next individual of population ``j`` as its
  target (a counter cycling over the population), and the job's result competes with that
  individual: **selection** keeps the trial when ``f(trial) <= f(target)``.
- **First Hyperband iteration** (the first ``s_max + 1`` brackets). The first bracket's bottom
  rung evaluates the random initial population of level 0 itself (random search, as Hyperband's
  first bracket), and its higher rungs promote as vanilla successive halving, so the higher
  populations are seeded with the promoted configurations (the paper). As in ``dehb``
  (``iteration_counter < max_SH_iter``), every rung ``i > 0`` of the other brackets of this first
  iteration promotes too: the best evaluated individuals of level ``j - 1`` that population ``j``
  does not hold yet (and that are not being evaluated at level ``j`` already).
- **Evolution** (every other job): the parent pool is the best ``n_{s,i}`` individuals of level
  ``j - 1`` (of level ``j`` itself for a bracket's bottom rung): the configurations successive
  halving would have promoted, the paper's "modified SH". When it has fewer than 3 individuals,
  ``3 - |pool| + 1`` rand/1 mutants of the global population are added to it (``dehb``'s
  ``_acquire_config``). The job's configuration is ``fix(crossover(target, rand1(pool)))``.
- **Asynchronous mode.** Jobs are handed out one per ``ask``, and results may come back in any
  order with other trials pending (``workers = N`` on the simulated clock). A bracket's rung
  ``i + 1`` starts when all results of its rung ``i`` are in (synchronous successive halving
  inside a bracket); while every started bracket waits, the next bracket starts, so brackets run
  side by side (the paper's parallel DEHB, ``dehb``'s ``_get_next_bracket``). Selection is done
  as each result is told, and the winner is a parent for the very next job: ``dehb``'s
  ``async_strategy = "immediate"``, its default and the only mode of its ask/tell interface;
  the other modes (``deferred``, ``random``, ``worst``) belong to its stand-alone DE and are not
  offered.

Promotions, resumption and cost
-------------------------------
The paper and ``dehb`` evaluate every job from scratch. Here, as issue #14 asks, a promoted
configuration (the same vector, hence the same configuration, as its evaluation at the level
below) is a :class:`~mfbo.strategies.base.Continuation` of that evaluation, so a resumable
problem charges only the extra epochs; a DE trial is a new configuration and starts from
scratch. ``continue_promotions=False`` evaluates promotions from scratch too, as in the paper;
on a problem that cannot resume both charge the same. When two levels round to the same fidelity
value (explicit levels coarser than ``eta``), the promotion is evaluated again from scratch.

Deviations from the paper / ``dehb`` 0.1.1, and defaults not in the paper
-------------------------------------------------------------------------
- Bracket sizes: Li et al.'s ``n = ceil((s_max + 1) / (s + 1) eta^s)`` (DEHB's brackets are
  Hyperband's); ``dehb`` computes ``floor((s_max + 1) / (s + 1)) eta^s``, so for ``eta = 3,
  R = 81`` it starts its brackets with 81, 27, 9, 6, 5 configurations where Hyperband has
  81, 34, 15, 8, 5, and its populations are 81, 27, 9, 6, 5. Option
  ``bracket_sizes = "dehb"`` takes the package's sizes (:func:`.schedule.floored_brackets`), with
  which one cycle evaluates exactly the package's jobs at each fidelity, in its order.
- The first bracket's bottom rung evaluates the random population (the paper); ``dehb`` instead
  evaluates DE trials bred from that unevaluated random population.
- Promotion candidates are computed when a bracket's rung starts, from the individuals evaluated
  by then, and exclude the ones pending at the higher level; ``dehb`` keeps one list per level
  that concurrent brackets share. When there is no candidate left (failed trials), the job
  evolves a DE trial; ``dehb`` re-evaluates the best of the level below.
- A failed trial (no value) never enters a population and is never promoted; ``dehb`` tells it
  as ``+inf``, which can replace an unevaluated random individual.
- Ranking sorts by fitness with ties in population order (stable); ``dehb`` uses numpy's default
  sort. The encoding of integers and categoricals is in :mod:`.evolution`.
- ``recommend()``: the best configuration observed at the target fidelity, before any the best
  at the highest fidelity evaluated so far, ties by trial id (the rule of every bandit strategy
  here); ``dehb``'s incumbent is the best value at any fidelity, which a low-fidelity fluke can
  hold.
- Defaults not in the paper: ``boundary_fix = "random"`` (``dehb``'s), ``r_min`` = the fidelity's
  low end, ``continue_promotions = True`` (issue #14), ``bracket_sizes = "hyperband"``. The strategy does not trim its last
  jobs to the budget left (neither does ``dehb``); the loop's budget rule ends the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...problems.base import Problem
from ...space import Fidelity, Space
from ...trial import Observation, Trial
from ..base import Continuation, Strategy
from .evolution import binomial_crossover, check_de_options, de_space, draw_parents, fix_boundary, rand1
from .schedule import BRACKET_TABLES, Bracket, Resources, check_eta

__all__ = ["DEHB", "SubPopulation", "population_sizes", "BRACKET_SIZES"]

#: Individuals rand/1 needs in its parent pool.
MIN_POOL = 3


#: Option ``bracket_sizes``: Li et al.'s table, or the ``dehb`` package's (= hpbandster's) sizes.
BRACKET_SIZES = {"hyperband": BRACKET_TABLES["hyperband"], "dehb": BRACKET_TABLES["hpbandster"]}


def population_sizes(brackets: tuple[Bracket, ...]) -> list[int]:
    """``N_j = max_s n_{s,j}``: the most configurations any bracket evaluates at level ``j``
    (bracket ``s``'s rung ``i`` is level ``s_max - s + i``; ``brackets[0]`` is ``s_max``)."""
    s_max = brackets[0].s
    sizes = [0] * (s_max + 1)
    for bracket in brackets:
        for i, rung in enumerate(bracket.rungs):
            level = s_max - bracket.s + i
            sizes[level] = max(sizes[level], rung.n_configs)
    return sizes


@dataclass
class SubPopulation:
    """The DE population of one budget level: ``vectors`` ``(N, d)``, ``fitness`` ``(N,)``
    (``+inf`` until evaluated) and the trial that evaluated each individual."""

    vectors: np.ndarray
    fitness: np.ndarray
    trial_ids: list[int | None]
    next_parent: int = 0

    @classmethod
    def unevaluated(cls, vectors: np.ndarray) -> SubPopulation:
        return cls(np.array(vectors, dtype=float), np.full(len(vectors), np.inf), [None] * len(vectors))

    def next_slot(self) -> int:
        """The next target, cycling over the population."""
        slot = self.next_parent
        self.next_parent = (slot + 1) % len(self.vectors)
        return slot

    def ranked(self) -> np.ndarray:
        """Indices by fitness, best first (ties in population order)."""
        return np.argsort(self.fitness, kind="stable")

    def holds(self, vector: np.ndarray) -> bool:
        return bool(np.any(np.all(self.vectors == vector, axis=1)))

    def select(self, slot: int, vector: np.ndarray, value: float, trial_id: int) -> bool:
        """DE selection: the trial replaces individual ``slot`` when ``value <= fitness[slot]``."""
        if value <= self.fitness[slot]:
            self.vectors[slot], self.fitness[slot], self.trial_ids[slot] = vector, value, trial_id
            return True
        return False


@dataclass
class _BracketRun:
    """Progress of one started bracket: jobs asked and results told per rung."""

    index: int  # how many brackets started before this one
    bracket: Bracket
    first_level: int
    asked: list[int] = field(init=False)  # jobs handed out, per rung
    told: list[int] = field(init=False)  # results received, per rung
    promotions: dict[int, list[tuple[np.ndarray, int]]] = field(default_factory=dict)  # rung -> queue

    def __post_init__(self) -> None:
        self.asked = [0] * len(self.bracket.rungs)
        self.told = [0] * len(self.bracket.rungs)

    def next_rung(self) -> int | None:
        """The rung of the next job, or ``None`` while the bracket waits (or is done)."""
        for i, rung in enumerate(self.bracket.rungs):
            if self.asked[i] < rung.n_configs:
                return i if i == 0 or self.told[i - 1] == self.bracket.rungs[i - 1].n_configs else None
        return None

    @property
    def done(self) -> bool:
        return all(t == rung.n_configs for t, rung in zip(self.told, self.bracket.rungs))


@dataclass(frozen=True)
class _Job:
    """One asked trial: where its result goes."""

    bracket: _BracketRun
    rung: int
    level: int
    slot: int
    vector: np.ndarray


class DEHB(Strategy):
    """DEHB (module docstring).

    Options:
        eta: Hyperband's halving rate (> 1).
        r_min: the smallest resource (default: the fidelity's low end).
        mutation_factor: DE's ``F`` in ``(0, 2]``.
        crossover_prob: DE's ``CR`` in ``[0, 1]``.
        boundary_fix: ``"random"`` (redraw components outside ``[0, 1]``) or ``"clip"``.
        continue_promotions: continue a promoted configuration's run (issue #14) instead of
            evaluating it from scratch (the paper).
        bracket_sizes: ``"hyperband"`` (Li et al.'s table) or ``"dehb"`` (the package's sizes,
            :func:`.schedule.floored_brackets`).
    """

    name = "dehb"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: float = 3.0, r_min: float | None = None, mutation_factor: float = 0.5, crossover_prob: float = 0.5,
                 boundary_fix: str = "random", continue_promotions: bool = True, bracket_sizes: str = "hyperband"):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        self.eta = check_eta(eta, self.name)
        self.resources = Resources(fidelity, r_min, strategy=self.name)
        self.mutation_factor, self.crossover_prob, self.boundary_fix = check_de_options(
            mutation_factor, crossover_prob, boundary_fix, self.name)
        if not isinstance(continue_promotions, bool):
            raise ValueError(f"strategy {self.name!r}: option continue_promotions must be True or False, got {continue_promotions!r}")
        self.continue_promotions = continue_promotions
        if bracket_sizes not in BRACKET_SIZES:
            raise ValueError(f"strategy {self.name!r}: option bracket_sizes must be one of {list(BRACKET_SIZES)}, got {bracket_sizes!r}")
        self.bracket_sizes = bracket_sizes
        self.brackets = BRACKET_SIZES[bracket_sizes](self.eta, self.resources.r_min, self.resources.r_max)
        self.s_max = self.brackets[0].s
        self.levels = [self.resources.fidelity_value(rung.resource) for rung in self.brackets[0].rungs]
        self.encoding = de_space(space)
        self.populations = [SubPopulation.unevaluated(self._random_rows(n)) for n in population_sizes(self.brackets)]
        self._active: list[_BracketRun] = []
        self._started = 0
        self._jobs: dict[int, _Job] = {}
        self._asked: _Job | None = None

    # ask ----------------------------------------------------------------------------------------
    def ask(self) -> Trial:
        trial = super().ask()
        self._jobs[trial.id] = self._asked
        return trial

    def _suggest(self) -> tuple[dict[str, Any], Any] | Continuation:
        run = self._next_bracket()
        rung = run.next_rung()
        run.asked[rung] += 1
        level = run.first_level + rung
        fidelity = self.levels[level]
        slot = self.populations[level].next_slot()
        promoted = self._promotion(run, rung, level) if run.index < len(self.brackets) and rung > 0 else None
        if promoted is None:
            vector = self._evolve(run, rung, level, slot)
            suggestion: tuple[dict[str, Any], Any] | Continuation = (self.encoding.decode(vector), fidelity)
        else:
            vector, evaluated_by = promoted
            resumes = self.continue_promotions and fidelity > self.levels[level - 1]
            suggestion = Continuation(evaluated_by, fidelity) if resumes else (self.encoding.decode(vector), fidelity)
        self._asked = _Job(run, rung, level, slot, vector)
        return suggestion

    def _next_bracket(self) -> _BracketRun:
        """The oldest started bracket with a job to hand out, else a new bracket."""
        for run in self._active:
            if run.next_rung() is not None:
                return run
        bracket = self.brackets[self._started % len(self.brackets)]
        run = _BracketRun(self._started, bracket, self.s_max - bracket.s)
        self._started += 1
        self._active.append(run)
        return run

    def _promotion(self, run: _BracketRun, rung: int, level: int) -> tuple[np.ndarray, int] | None:
        """The next configuration promoted to ``level`` in this bracket's rung, with the trial
        that evaluated it at ``level - 1``; ``None`` when no candidate is left."""
        if rung not in run.promotions:
            lower, higher = self.populations[level - 1], self.populations[level]
            pending = [job.vector for job in self._jobs.values() if job.level == level]
            queue = []
            for i in lower.ranked():
                vector = lower.vectors[i]
                if len(queue) == run.bracket.rungs[rung].n_configs or not np.isfinite(lower.fitness[i]):
                    break
                if not higher.holds(vector) and not any(np.array_equal(vector, p) for p in pending):
                    queue.append((vector.copy(), lower.trial_ids[i]))
            run.promotions[rung] = queue
        queue = run.promotions[rung]
        return queue.pop(0) if queue else None

    def _evolve(self, run: _BracketRun, rung: int, level: int, slot: int) -> np.ndarray:
        """A DE trial for target ``slot`` of ``level`` (module docstring, "Evolution"); the
        first bracket's bottom rung returns the random target itself."""
        target = self.populations[level].vectors[slot]
        if run.index == 0 and rung == 0:
            return target.copy()
        lower = self.populations[level - 1 if rung > 0 else level]
        pool = lower.vectors[lower.ranked()[: run.bracket.rungs[rung].n_configs]]
        if len(pool) < MIN_POOL:
            everyone = np.concatenate([p.vectors for p in self.populations])
            extra = [self._mutant(everyone, target) for _ in range(MIN_POOL - len(pool) + 1)]
            pool = np.concatenate([pool, extra])
        trial = binomial_crossover(target, self._mutant(pool, target), self.crossover_prob, self.rng)
        return fix_boundary(trial, self.rng, self.boundary_fix)

    def _mutant(self, pool: np.ndarray, target: np.ndarray) -> np.ndarray:
        """rand/1 on three parents drawn from ``pool`` without ``target``."""
        return rand1(*draw_parents(pool, self.rng, self._random_rows, MIN_POOL, target), self.mutation_factor)

    def _random_rows(self, n: int) -> np.ndarray:
        """``n`` random individuals (``space.sample``, in the DE encoding), shape ``(n, d)``."""
        return self.encoding.encode_many(self.space.sample(self.rng, n))

    # tell ---------------------------------------------------------------------------------------
    def _observe(self, trial: Trial, observation: Observation) -> None:
        """DE selection against the job's target; a failure only counts as a told result.
        Observations the strategy did not ask for (``add_observation``) count for the
        recommendation only."""
        job = self._jobs.pop(trial.id, None)
        if job is None:
            return
        job.bracket.told[job.rung] += 1
        if observation.ok:
            self.populations[job.level].select(job.slot, job.vector, observation.value, trial.id)
        self._active = [run for run in self._active if not run.done]

    def options(self) -> dict[str, Any]:
        return {
            "eta": self.eta, "r_min": self.resources.r_min, "mutation_factor": self.mutation_factor,
            "crossover_prob": self.crossover_prob, "boundary_fix": self.boundary_fix,
            "continue_promotions": self.continue_promotions, "bracket_sizes": self.bracket_sizes,
        }

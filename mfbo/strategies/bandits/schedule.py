"""The resource schedule shared by the bandit strategies: successive halving's rungs,
Hyperband's brackets, the map from a problem's fidelity to resources, and the bookkeeping of one
synchronous bracket.

Hyperband (Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, "Hyperband: A Novel Bandit-Based
Approach to Hyperparameter Optimization", JMLR 18(185), 2018, Algorithm 1) with maximum resource
``R``, minimum resource ``r`` and halving rate ``eta`` runs the brackets ``s = s_max, ..., 0``::

    s_max = floor(log_eta(R / r))
    n(s)  = ceil((s_max + 1) / (s + 1) * eta**s)       # configurations of bracket s
    r(s)  = R * eta**(-s)                               # their first resource
    rung i = 0..s:  n_i = floor(n(s) * eta**(-i)) configurations at r_i = r(s) * eta**i

so every bracket ends at ``R``. For ``eta = 3, R = 81, r = 1`` this is the paper's table
(Table 1): ``n = 81, 34, 15, 8, 5`` at ``r = 1, 3, 9, 27, 81``. The paper states ``R`` in units
of the minimum resource (``r = 1``); with a general ``r`` the brackets stay anchored at ``R``
(as hpbandster and DEHB do), so the bottom resource ``R * eta**-s_max`` is at least ``r`` and
equals it when ``R / r`` is a power of ``eta``. ``s_max`` is computed in exact arithmetic where
it matters: ``floor(log(81) / log(3))`` is 3 in floating point, here it is 4.

A rung promotes ``n_{i+1} = floor(n * eta**-(i+1))`` configurations to the next, as hpbandster
does; the paper's ``floor(n_i / eta)`` is the same number for an integer ``eta`` and can be one
less for a fractional one.

Deviation (as hpbandster): ``n_i`` is at least 1, so a user-chosen successive-halving ``n`` that
is too small for its rungs still carries one configuration to ``R``. The brackets of the table
never need it.

Budget of a bracket: ``sum_i n_i r_i`` when every rung trains from scratch, and
``n_0 r_0 + sum_{i>0} n_i (r_i - r_{i-1})`` when promotions resume training
(:meth:`Bracket.total_resource`).

Fidelity to resource (:class:`Resources`)
-----------------------------------------
The resource is the fidelity value itself: epochs for an integer fidelity, the value (a subset
fraction, say) for a continuous one, the level for explicit levels. ``R`` is the fidelity's
target and ``r`` is ``r_min`` (default the fidelity's low end, which must be > 0). A rung's
resource is turned into the value a :class:`~mfbo.trial.Trial` carries by rounding *up*: the
smallest integer (or level) at or above it, within ``[low, target]``; a continuous fidelity
takes the resource as it is. So a rung is never cheaper than the schedule says, and the top rung
is exactly the target.

Synchronous bracket bookkeeping (:class:`BracketRun`)
-----------------------------------------------------
One bracket of successive halving as in the paper: rung 0's configurations are started one per
request, a rung is complete when all its results are in (a rung waits for its last result), and
then the top ``n_{i+1}`` successful configurations of rung ``i``, by observed value (lower is
better), are promoted to rung ``i + 1``. Ties are broken by trial id, the one asked first wins.
A failed trial is never promoted; if fewer than ``n_{i+1}`` succeeded, only those are promoted.
A promotion is a :class:`~mfbo.strategies.base.Continuation` of the configuration's last trial;
when two rungs round to the same fidelity value (coarse levels) the configuration keeps its
result and is not evaluated again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...space import Fidelity
from ...trial import Observation

__all__ = [
    "Rung", "Bracket", "successive_halving_rungs", "hyperband_brackets", "floored_brackets", "BRACKET_TABLES", "floor_log",
    "check_eta", "Resources", "rank_for_promotion", "BracketRun", "Job",
]

_EPS = 1e-9  # relative tolerance of the float comparisons below


@dataclass(frozen=True)
class Rung:
    """One rung of successive halving: ``n_configs`` configurations evaluated at ``resource``."""

    n_configs: int
    resource: float


@dataclass(frozen=True)
class Bracket:
    """Hyperband's bracket ``s``: its rungs, bottom rung first, the last at ``R``."""

    s: int
    rungs: tuple[Rung, ...]

    def total_resource(self, resumable: bool) -> float:
        """``sum_i n_i r_i`` from scratch; ``sum_i n_i (r_i - r_{i-1})`` (``r_{-1} = 0``) when a
        promotion resumes the training of the rung below."""
        total, below = 0.0, 0.0
        for rung in self.rungs:
            total += rung.n_configs * (rung.resource - (below if resumable else 0.0))
            below = rung.resource
        return total


def floor_log(x: float, eta: float) -> int:
    """``floor(log_eta(x))`` for ``x >= 1``, robust to float error: the largest integer ``k``
    with ``eta**k <= x`` (to a relative ``1e-9``)."""
    k = max(int(math.floor(math.log(x) / math.log(eta))), 0)
    while eta ** (k + 1) <= x * (1 + _EPS):
        k += 1
    while k > 0 and eta ** k > x * (1 + _EPS):
        k -= 1
    return k


def check_eta(eta: Any, strategy: str) -> float:
    """``eta`` as a float, or one ``ValueError`` naming the option and what is allowed."""
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 1:
        raise ValueError(f"strategy {strategy!r}: option eta must be a number > 1, got {eta!r}")
    return float(eta)


def successive_halving_rungs(n: int, eta: float, r_min: float, r_max: float) -> tuple[Rung, ...]:
    """The rungs of successive halving from ``n`` configurations: ``s + 1`` rungs with
    ``s = floor(log_eta(r_max / r_min))``, rung ``i`` holding ``max(1, floor(n * eta**-i))``
    configurations at ``r_max * eta**(i - s)``."""
    if not 0 < r_min <= r_max:
        raise ValueError(f"successive_halving_rungs: need 0 < r_min <= r_max, got r_min={r_min!r}, r_max={r_max!r}")
    s = floor_log(r_max / r_min, eta)
    return tuple(
        Rung(max(1, int(math.floor(n * eta ** -i * (1 + _EPS)))), r_max if i == s else r_max * eta ** (i - s))
        for i in range(s + 1)
    )


def hyperband_brackets(eta: float, r_min: float, r_max: float) -> tuple[Bracket, ...]:
    """Hyperband's brackets ``s = s_max, ..., 0`` (Li et al. 2018, Algorithm 1)."""
    s_max = floor_log(r_max / r_min, eta)
    brackets = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) / (s + 1) * eta ** s * (1 - _EPS)))
        rungs = successive_halving_rungs(n, eta, r_max * eta ** -s, r_max)
        brackets.append(Bracket(s, rungs))
    return tuple(brackets)


def floored_brackets(eta: float, r_min: float, r_max: float) -> tuple[Bracket, ...]:
    """The brackets of the reference packages hpbandster 0.7.4 (``HyperBand.get_next_iteration``)
    and dehb 0.1.1 (``DEHBBase.get_next_iteration``): Hyperband's, except that bracket ``s``
    starts ``floor((s_max + 1) / (s + 1)) * eta**s`` configurations instead of the paper's
    ``ceil((s_max + 1) / (s + 1) * eta**s)`` (81, 27, 9, 6, 5 for ``eta = 3, R / r = 81``
    where the paper has 81, 34, 15, 8, 5)."""
    s_max = floor_log(r_max / r_min, eta)
    return tuple(
        Bracket(s, successive_halving_rungs(int((s_max + 1) // (s + 1) * eta ** s), eta, r_max * eta ** -s, r_max))
        for s in range(s_max, -1, -1)
    )


#: Option ``bracket_sizes`` of Hyperband and BOHB: the paper's table, or the reference packages'.
BRACKET_TABLES = {"hyperband": hyperband_brackets, "hpbandster": floored_brackets}


class Resources:
    """Maps a problem's :class:`~mfbo.space.Fidelity` to Hyperband resources and back (module
    docstring): ``r_max`` is the target, ``r_min`` defaults to the fidelity's low end.

    Raises:
        ValueError: naming the strategy when there is no fidelity, and naming ``r_min`` when it
            is not a number in ``[low, target]`` and > 0.
    """

    def __init__(self, fidelity: Fidelity | None, r_min: float | None = None, *, strategy: str = "hyperband"):
        if fidelity is None:
            raise ValueError(f"strategy {strategy!r} needs a multi-fidelity problem (a fidelity to allocate as its resource); this problem has none")
        self.fidelity = fidelity
        low, target = float(fidelity.low), float(fidelity.target)
        value = low if r_min is None else r_min
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (max(low, 0.0) <= value <= target) or value <= 0:
            raise ValueError(
                f"strategy {strategy!r}: option r_min must be a number > 0 in [{fidelity.low}, {fidelity.target}] "
                f"(the fidelity {fidelity.name!r} from its low end to its target), got {r_min!r}"
                + (" (the default, the fidelity's low end, is not > 0: give r_min)" if r_min is None else "")
            )
        self.r_min = float(value)
        self.r_max = target

    def fidelity_value(self, resource: float) -> Any:
        """The fidelity value of a rung at ``resource``: the resource itself (continuous), or the
        smallest integer / level at or above it, within ``[low, target]``."""
        fid = self.fidelity
        if resource >= self.r_max * (1 - _EPS):
            return fid.target
        if fid.levels is not None:
            return next(level for level in fid.levels if level >= resource * (1 - _EPS))
        if fid.integer:
            return int(min(max(math.ceil(resource * (1 - _EPS)), fid.low), fid.target))
        return fid.validate(min(max(float(resource), float(fid.low)), float(fid.target)))


def rank_for_promotion(results: Sequence[tuple[int, Observation]]) -> list[int]:
    """The trial ids of the successful results, best first: by value, ties by trial id (the
    trial asked first wins). Failed results are left out: they are never promoted."""
    ok = [(obs.value, trial_id) for trial_id, obs in results if obs.ok]
    return [trial_id for _, trial_id in sorted(ok)]


@dataclass(frozen=True)
class Job:
    """What a :class:`BracketRun` asks for next: a new configuration at rung 0 (``continues``
    is ``None``) or the promotion of the trial ``continues`` to ``rung``."""

    rung: int
    fidelity: Any
    continues: int | None = None


@dataclass
class _Slot:
    """One configuration's place in a rung: its trial (once asked) and its result (once told)."""

    trial_id: int | None = None
    observation: Observation | None = None


class BracketRun:
    """One synchronous bracket in progress (module docstring). The strategy calls
    :meth:`next_job` when a worker asks, :meth:`started` with the id of the trial it asked for
    that job, and :meth:`record` when that trial's result is told."""

    def __init__(self, bracket: Bracket, resources: Resources):
        self.bracket = bracket
        self.resources = resources
        self.rungs: list[list[_Slot]] = [[] for _ in bracket.rungs]
        self._by_trial: dict[int, tuple[int, int]] = {}  # trial id -> (rung, slot)
        self._expected = [bracket.rungs[0].n_configs] + [0] * (len(bracket.rungs) - 1)  # entrants per rung
        self._queue = [Job(0, self.fidelity(0)) for _ in range(bracket.rungs[0].n_configs)]

    def fidelity(self, rung: int) -> Any:
        """The fidelity value of rung ``rung`` (:meth:`Resources.fidelity_value`)."""
        return self.resources.fidelity_value(self.bracket.rungs[rung].resource)

    @property
    def finished(self) -> bool:
        """No job left to hand out and no result outstanding."""
        return not self._queue and all(slot.observation is not None for rung in self.rungs for slot in rung)

    def next_job(self) -> Job | None:
        """The next job of this bracket, or ``None`` while its current rung waits for results
        (or once it is finished)."""
        return self._queue.pop(0) if self._queue else None

    def started(self, job: Job, trial_id: int) -> None:
        """File the trial asked for ``job`` in its rung."""
        self._by_trial[trial_id] = (job.rung, len(self.rungs[job.rung]))
        self.rungs[job.rung].append(_Slot(trial_id))

    def owns(self, trial_id: int) -> bool:
        """Whether trial ``trial_id`` was asked for this bracket."""
        return trial_id in self._by_trial

    def record(self, trial_id: int, observation: Observation) -> None:
        """File a result; when it completes its rung, queue the promotions to the next rung."""
        rung, slot = self._by_trial[trial_id]
        self.rungs[rung][slot].observation = observation
        while rung + 1 < len(self.rungs) and not self._expected[rung + 1] and self._complete(rung):
            self._promote(rung)
            rung += 1

    def _complete(self, rung: int) -> bool:
        slots = self.rungs[rung]
        return len(slots) == self._expected[rung] > 0 and all(s.observation is not None for s in slots)

    def _promote(self, rung: int) -> None:
        """Queue the top ``n_{rung+1}`` of ``rung``. A promotion to the fidelity value it already
        has (two rungs rounded to one level) keeps its result instead of asking again."""
        results = [(s.trial_id, s.observation) for s in self.rungs[rung]]
        winners = rank_for_promotion(results)[: self.bracket.rungs[rung + 1].n_configs]
        fidelity, observed = self.fidelity(rung + 1), dict(results)
        self._expected[rung + 1] = len(winners)
        for trial_id in winners:
            if fidelity == self.fidelity(rung):
                self.rungs[rung + 1].append(_Slot(trial_id, observed[trial_id]))
            else:
                self._queue.append(Job(rung + 1, fidelity, continues=trial_id))

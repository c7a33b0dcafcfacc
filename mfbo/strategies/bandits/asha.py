"""ASHA: asynchronous successive halving.

Paper: Li, Jamieson, Rostamizadeh, Gonina, Ben-tzur, Hardt, Recht & Talwalkar, "A System for
Massively Parallel Hyperparameter Tuning", MLSys 2020. Version followed: Algorithm 2
(asynchronous successive halving, ``get_job``)::

    for k = K - 1, ..., 0:                      # the highest rung below the top first
        candidates = top_k(rung k, floor(|rung k| / eta))
        promotable = {t in candidates : t not yet promoted}
        if promotable: return the best of them, promoted to rung k + 1
    return a new random configuration at rung 0

``|rung k|`` counts the results told at rung ``k`` (failures included, as the paper counts every
finished job); the candidates are ranked by observed value, lower is better, ties broken by
trial id (the one asked first wins), and a failed trial is never a candidate. A promotion is a
:class:`~mfbo.strategies.base.Continuation`, so a resumable problem charges only the extra
resource; a promotion whose continuation fails sits in its new rung as a failure and goes no
further. No worker ever waits: every request gets a promotion or a new configuration.

Resources (:class:`~.schedule.Resources`): ``R`` is the problem's target fidelity. Rung ``k`` is at
``R * eta**(k - K)``, ``k = 0, ..., K``, rounded up to the next integer or level for integer or
level fidelities. Names of the options: ``r_min`` is the paper's minimum resource ``r`` (Ray
Tune's ``grace_period``); ``max_rung`` is ``K``, the number of promotions from the bottom rung
to ``R``, by default ``floor(log_eta(R / r_min))``. The paper's minimum early-stopping rate
``s`` is ``max_rung = floor(log_eta(R / r)) - s``: a smaller ``max_rung`` starts configurations
higher up (at ``R * eta**-max_rung``).

Defaults and deviations (not in the paper): ``eta = 3``; ``r_min`` = the fidelity's low end;
rungs are anchored at ``R`` (the paper anchors them at ``r``, so its top rung may fall short of
``R`` when ``R / r`` is not a power of ``eta``); the run stops where mfbo's budget ends (the
paper's ASHA runs until a time limit, with ``R`` reached by the survivors); when two rungs round
to the same fidelity value a promotion between them keeps its result instead of asking again.
``recommend()`` is Hyperband's: the best observed configuration at the highest fidelity reached
(:class:`~mfbo.strategies.base.BestAtHighestFidelity`).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from ...problems.base import Problem
from ...space import Fidelity, Space
from ...trial import Observation, Trial
from ..base import Continuation, Strategy
from .schedule import Resources, check_eta, floor_log

__all__ = ["ASHA"]


class ASHA(Strategy):
    """Asynchronous successive halving (module docstring).

    Options:
        eta: the reduction factor, > 1 (default 3).
        r_min: the minimum resource (grace period), a fidelity value in ``[low, target]``
            (default ``low``).
        max_rung: promotions from the bottom rung to the target, an integer in
            ``[0, floor(log_eta(target / r_min))]`` (default the largest).
    """

    name = "asha"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: float = 3.0, r_min: float | None = None, max_rung: int | None = None):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        self.eta = check_eta(eta, self.name)
        self.resources = Resources(fidelity, r_min, strategy=self.name)
        largest = floor_log(self.resources.r_max / self.resources.r_min, self.eta)
        if max_rung is not None and (isinstance(max_rung, bool) or not isinstance(max_rung, int) or not 0 <= max_rung <= largest):
            raise ValueError(f"strategy {self.name!r}: option max_rung must be an integer in [0, {largest}] or None (the default, {largest}), got {max_rung!r}")
        self.max_rung = largest if max_rung is None else max_rung
        self.fidelities = [self.resources.fidelity_value(self.resources.r_max * self.eta ** (k - self.max_rung))
                           for k in range(self.max_rung + 1)]
        self.results: list[list[tuple[int, Observation]]] = [[] for _ in self.fidelities]  # told, per rung
        self._ranked: list[list[tuple[float, int]]] = [[] for _ in self.fidelities]  # (value, id) of the successes, sorted
        self.promoted: list[set[int]] = [set() for _ in self.fidelities]  # trial ids promoted out of each rung
        self._rung_of: dict[int, int] = {}  # trial id -> its rung (pending and told)
        self._asked_rung = 0

    def _suggest(self) -> tuple[dict[str, Any], Any] | Continuation:
        """Algorithm 2's ``get_job``."""
        while True:
            found = self._promotable()
            if found is None:
                self._asked_rung = 0
                return self.space.sample(self.rng), self.fidelities[0]
            trial_id, k = found
            self.promoted[k].add(trial_id)
            if self.fidelities[k + 1] != self.fidelities[k]:
                self._asked_rung = k + 1
                return Continuation(trial_id, self.fidelities[k + 1])
            observed = dict(self.results[k])[trial_id]  # same fidelity value: keep the result
            self._file(k + 1, trial_id, observed)

    def _promotable(self) -> tuple[int, int] | None:
        """``(trial id, rung)`` of the best configuration in the top ``1/eta`` of the highest
        rung below the top that has one not yet promoted, or ``None``."""
        for k in range(self.max_rung - 1, -1, -1):
            quota = math.floor(len(self.results[k]) / self.eta * (1 + 1e-9))
            for _, trial_id in self._ranked[k][:quota]:
                if trial_id not in self.promoted[k]:
                    return trial_id, k
        return None

    def ask(self) -> Trial:
        """:meth:`Strategy.ask`, filing the trial in the rung it runs at."""
        trial = super().ask()
        self._rung_of[trial.id] = self._asked_rung
        return trial

    def _observe(self, trial: Trial, observation: Observation) -> None:
        if trial.id in self._rung_of:  # else told through add_observation: not in a rung
            self._file(self._rung_of[trial.id], trial.id, observation)

    def _file(self, rung: int, trial_id: int, observation: Observation) -> None:
        """Add a result to ``rung``, and a success to its ranking (value, then trial id, as
        :func:`~.schedule.rank_for_promotion`)."""
        self.results[rung].append((trial_id, observation))
        if observation.ok:
            bisect.insort(self._ranked[rung], (observation.value, trial_id))

    def options(self) -> dict[str, Any]:
        return {"eta": self.eta, "r_min": self.resources.r_min, "r_max": self.resources.r_max, "max_rung": self.max_rung}

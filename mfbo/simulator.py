"""Simulated asynchronous workers: a clock and a deterministic queue of running evaluations.

:func:`mfbo.minimize` runs ``workers`` evaluations at once on a **simulated clock**, as Syne
Tune's simulator backend does for tabulated and surrogate benchmarks: an evaluation is computed
at once (in the real process), but its result becomes visible only at its simulated end time
``end = start + duration``, where the duration is the evaluation's cost (cost units are read as
time units). Meanwhile the other workers go on with the trials they were given, so a strategy
asks with trials still pending, exactly as it would on a real cluster with ``workers`` machines.

Events, in order
----------------
- At ``t = 0`` every worker is free; the free workers are filled in increasing worker id, one
  ask each.
- The clock then jumps to the earliest end time ``t`` among the running evaluations; **all**
  evaluations that end at ``t`` complete together, in increasing ``(worker, trial id)`` order
  (ties broken by worker id, then trial id), and are told to the strategy in that order before
  the freed workers are refilled (again in increasing worker id), each new evaluation starting at
  ``t``.

Nothing here depends on real time or on the order of a hash, so the same spec gives the same
sequence of asks, tells and times. With one worker the clock is the cumulative cost and the
events reduce to the plain loop: ask, evaluate, tell.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Job", "SimulatedWorkers"]


@dataclass(frozen=True)
class Job:
    """One evaluation on one simulated worker, from ``start`` to ``end`` (simulated time)."""

    worker: int
    trial_id: int
    start: float
    end: float
    payload: Any = field(default=None, compare=False)


class SimulatedWorkers:
    """``n_workers`` simulated workers sharing one clock (:attr:`now`).

    >>> pool = SimulatedWorkers(2)
    >>> a = pool.start(trial_id=0, duration=3.0); b = pool.start(trial_id=1, duration=1.0)
    >>> [j.trial_id for j in pool.complete_next()], pool.now
    ([1], 1.0)
    """

    def __init__(self, n_workers: int) -> None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise ValueError(f"SimulatedWorkers: n_workers must be an integer >= 1, got {n_workers!r}")
        self.n_workers = n_workers
        self.now = 0.0
        self._free = list(range(n_workers))  # kept sorted: the lowest free worker id starts next
        self._running: list[tuple[float, int, int, Job]] = []  # heap of (end, worker, trial id, job)

    @property
    def has_free_worker(self) -> bool:
        return bool(self._free)

    @property
    def busy(self) -> bool:
        """Whether any evaluation is still running."""
        return bool(self._running)

    @property
    def running(self) -> list[Job]:
        """The running jobs, in completion order."""
        return [entry[-1] for entry in sorted(self._running)]

    def start(self, trial_id: int, duration: float, payload: Any = None) -> Job:
        """Start ``trial_id`` now on the lowest free worker; it ends at ``now + duration``."""
        if not self._free:
            raise RuntimeError("SimulatedWorkers.start: no free worker (call complete_next first)")
        if not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"SimulatedWorkers.start: duration must be a finite number >= 0, got {duration!r}")
        worker = self._free.pop(0)
        job = Job(worker=worker, trial_id=trial_id, start=self.now, end=self.now + float(duration), payload=payload)
        heapq.heappush(self._running, (job.end, job.worker, job.trial_id, job))
        return job

    def complete_next(self) -> list[Job]:
        """Advance the clock to the earliest end time and return every job that ends then, in
        ``(worker, trial id)`` order; their workers become free."""
        if not self._running:
            raise RuntimeError("SimulatedWorkers.complete_next: nothing is running")
        end = self._running[0][0]
        done = []
        while self._running and self._running[0][0] == end:
            done.append(heapq.heappop(self._running)[-1])
        self.now = end
        self._free = sorted(self._free + [job.worker for job in done])
        return done

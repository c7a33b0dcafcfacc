"""Hyperband: brackets of successive halving with different aggressiveness, repeated.

Paper: Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, "Hyperband: A Novel Bandit-Based
Approach to Hyperparameter Optimization", JMLR 18(185), 2018. Version followed: Algorithm 1
(finite horizon), with its bracket table (:mod:`.schedule`): for ``s = s_max, ..., 0``, bracket
``s`` draws ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` random configurations, evaluates them at
``r = R * eta**-s`` and keeps the top ``floor(n_i / eta)`` of each rung for the next, up to ``R``.

Resources: ``R`` is the problem's target fidelity and ``r_min`` (default its low end) the
smallest resource; integer fidelities (epochs) and explicit levels round each rung up to the
next integer or level, a continuous fidelity (a data fraction) takes the rung's value as it is
(:class:`~.schedule.Resources`). A promotion is a :class:`~mfbo.strategies.base.Continuation` of
the configuration's trial, so a resumable problem charges only the extra resource and any other
problem charges a full evaluation at the higher fidelity (:mod:`mfbo.loop`).

Promotion rule: a rung waits for its last result (synchronous successive halving, as in the
paper); then its successful trials are ranked by observed value, lower is better, ties broken
by trial id (the one asked first wins), and the top ``n_{i+1}`` are continued. A failed trial is
never promoted, nor is a promotion whose continuation failed; fewer successes than places
promote fewer configurations.

Defaults and deviations (not in the paper):

- ``eta = 3`` (the paper's suggestion) and ``r_min`` = the fidelity's low end.
- ``bracket_sizes = "hpbandster"`` (not the default) starts the brackets with hpbandster's
  ``floor((s_max + 1) / (s + 1)) * eta**s`` configurations, for a like-for-like comparison.
- The cycle ``s_max, ..., 0`` repeats until mfbo's budget ends (the paper's infinite-horizon
  variant instead grows ``R``); the run loop stops the last bracket where the budget runs out.
- Several workers (as hpbandster's master does): when no started bracket has a job, because
  each waits for results of its current rung, the next bracket of the cycle starts; the oldest
  bracket with a job is always served first. With one worker this is the paper's sequence.
- New configurations are drawn one per request through :meth:`Hyperband._sample_configs`
  (uniform from the space; BOHB overrides it), so a model-based sampler sees every result told
  before the request.
- ``recommend()``: the configuration with the lowest observed value at the highest fidelity any
  trial reached successfully (the target once a bracket has finished), ties by trial id.
- Brackets are anchored at ``R`` when ``R / r_min`` is not a power of ``eta`` (the bottom rung is
  ``R * eta**-s_max >= r_min``), as in hpbandster; rungs keep at least one configuration.
"""

from __future__ import annotations

from typing import Any

from ...problems.base import Problem
from ...space import Fidelity, Space
from ...trial import Observation, Trial
from ..base import Continuation, Strategy
from .schedule import BRACKET_TABLES, Bracket, BracketRun, Job, Resources, Rung, check_eta

__all__ = ["Hyperband"]


class Hyperband(Strategy):
    """Hyperband (module docstring).

    Options:
        eta: the halving rate, > 1 (default 3): each rung keeps the top ``1/eta``.
        r_min: the smallest resource, a fidelity value in ``[low, target]`` (default ``low``).
        bracket_sizes: ``"hyperband"`` (default), the paper's table; ``"hpbandster"``, the
            reference package's (:func:`~.schedule.floored_brackets`), for comparisons with it.
    """

    name = "hyperband"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: float = 3.0, r_min: float | None = None, bracket_sizes: str = "hyperband"):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        self.eta = check_eta(eta, self.name)
        if bracket_sizes not in BRACKET_TABLES:
            raise ValueError(f"strategy {self.name!r}: option bracket_sizes must be one of {list(BRACKET_TABLES)}, got {bracket_sizes!r}")
        self.bracket_sizes = bracket_sizes
        self.resources = Resources(fidelity, r_min, strategy=self.name)
        self.brackets = self._brackets()
        self._running: list[BracketRun] = []  # started, not finished; oldest first
        self._n_started = 0  # brackets started so far: the position in the cycle
        self._owner: dict[int, BracketRun] = {}  # pending trial id -> its bracket
        self._asked: tuple[BracketRun, Job] | None = None

    def _brackets(self) -> tuple[Bracket, ...]:
        """The brackets of one cycle, in the order they run."""
        return BRACKET_TABLES[self.bracket_sizes](self.eta, self.resources.r_min, self.resources.r_max)

    def _sample_configs(self, n: int, rung: Rung, bracket: Bracket) -> list[dict[str, Any]]:
        """``n`` new configurations for ``rung`` (always the bottom one) of ``bracket``: uniform
        draws from the space. The one hook that BOHB overrides."""
        return [self.space.sample(self.rng) for _ in range(n)]

    # ask / tell --------------------------------------------------------------------------------
    def _suggest(self) -> tuple[dict[str, Any], Any] | Continuation:
        run, job = self._next_job()
        self._asked = (run, job)
        if job.continues is not None:
            return Continuation(job.continues, job.fidelity)
        return self._sample_configs(1, run.bracket.rungs[0], run.bracket)[0], job.fidelity

    def _next_job(self) -> tuple[BracketRun, Job]:
        """The oldest running bracket's next job, else the first job of the cycle's next bracket."""
        for run in self._running:
            job = run.next_job()
            if job is not None:
                return run, job
        run = BracketRun(self.brackets[self._n_started % len(self.brackets)], self.resources)
        self._n_started += 1
        self._running.append(run)
        return run, run.next_job()

    def ask(self) -> Trial:
        """:meth:`Strategy.ask`, filing the trial in the bracket whose job it is."""
        trial = super().ask()
        run, job = self._asked
        run.started(job, trial.id)
        self._owner[trial.id] = run
        return trial

    def _observe(self, trial: Trial, observation: Observation) -> None:
        run = self._owner.pop(trial.id, None)
        if run is None:  # told through add_observation: data, not part of a bracket
            return
        run.record(trial.id, observation)
        self._running = [r for r in self._running if not r.finished]

    def options(self) -> dict[str, Any]:
        return {"eta": self.eta, "r_min": self.resources.r_min, "r_max": self.resources.r_max, "bracket_sizes": self.bracket_sizes}

"""Asynchronous workers on a simulated clock: completion order, pending trials, stopping rules,
and the reduction to the plain serial loop with one worker."""

from __future__ import annotations

import pytest

import mfbo
from mfbo import Fidelity, Float, Problem, Space
from mfbo.loop import TIMING_FIELDS
from mfbo.runlog import read_run
from mfbo.simulator import SimulatedWorkers
from mfbo.strategies import make
from mfbo.strategies.base import Strategy


def timed_problem():
    """Cost = the fidelity (1, 2 or 3 time units); value = x + fidelity."""
    return Problem.from_function(
        lambda c, z: c["x"] + z, Space(x=Float(0.0, 1.0)), Fidelity("z", 1, 3, integer=True),
        cost=lambda z: float(z), name="timed",
    )


class Scripted(Strategy):
    """Asks the fidelities of ``script`` in order; remembers which trials were pending at each ask."""

    name = "scripted-test"

    def __init__(self, space, fidelity=None, *, seed=0, problem=None, script=(3, 1, 2, 1, 1, 1, 1, 1)):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        self.script = list(script)
        self.pending_at_ask: list[list[int]] = []
        self.told: list[int] = []

    def _suggest(self):
        self.pending_at_ask.append(sorted(self.pending))
        return {"x": 0.1 * self._next_id}, self.script[self._next_id]

    def _observe(self, trial, observation):
        self.told.append(trial.id)


def scripted_run(budget, stop="cost", workers=2, **kwargs):
    problem = timed_problem()
    strategy = Scripted(problem.space, problem.fidelity, **kwargs)
    return mfbo.minimize(problem, strategy, budget, workers=workers, stop=stop), strategy


def test_completion_order_computed_by_hand():
    # fidelities (= durations) 3, 1, 2, 1, 1 on two workers:
    #   t=0: w0 <- trial 0 (ends 3), w1 <- trial 1 (ends 1)
    #   t=1: trial 1 ends; w1 <- trial 2 (ends 3)
    #   t=3: trials 0 (w0) and 2 (w1) end together, told in worker order; w0 <- 3, w1 <- 4 (end 4)
    #   t=4: trials 3 and 4 end; 8 units committed = the budget, so nothing more starts
    result, strategy = scripted_run(budget=8)
    trials = result.trials
    assert [t.id for t in trials] == [1, 0, 2, 3, 4]
    assert strategy.told == [1, 0, 2, 3, 4]
    assert [(t.worker, t.start, t.end) for t in trials] == [(1, 0, 1), (0, 0, 3), (1, 1, 3), (0, 3, 4), (1, 3, 4)]
    assert [t.cum_cost for t in trials] == [1, 4, 6, 7, 8]
    assert result.wall_clock == 4 and result.total_cost == 8 and result.stop_reason == "budget"
    # the strategy asked with the running trials pending
    assert strategy.pending_at_ask == [[], [0], [0], [], [3]]


def test_a_trial_that_would_exceed_the_budget_is_not_started():
    result, strategy = scripted_run(budget=7.5)  # trial 4 (cost 1) would take the committed cost to 8
    assert [t.id for t in result.trials] == [1, 0, 2, 3]
    assert result.stop_reason == "budget (next trial would exceed it)"
    assert result.total_cost == 7 and result.wall_clock == 4  # trial 3, still running, completes


def test_wall_clock_rule_stops_on_simulated_time():
    # same schedule; the clock reaches 4 after 5 trials, which cost 8 in total
    result, _ = scripted_run(budget=4, stop="wall_clock")
    assert [t.id for t in result.trials] == [1, 0, 2, 3, 4]
    assert result.stop_reason == "wall_clock" and result.wall_clock == 4 and result.total_cost == 8
    # a trial whose known cost would end after the budget does not start
    result, _ = scripted_run(budget=3.5, stop="wall_clock")
    assert [t.id for t in result.trials] == [1, 0, 2]
    assert result.stop_reason == "wall_clock (next trial would end after it)"


def test_more_workers_than_trials_and_footer(tmp_path):
    result, strategy = scripted_run(budget=6, workers=4, script=(3, 1, 2, 1, 1))
    # t=0: four trials start (costs 3+1+2+1 = 7 > 6: the fourth would exceed the budget)
    assert strategy.pending_at_ask[:3] == [[], [0], [0, 1]]
    assert [t.id for t in result.trials] == [1, 2, 0]
    assert [t.end for t in result.trials] == [1, 2, 3]
    path = tmp_path / "run.jsonl"
    problem = timed_problem()
    mfbo.minimize(problem, Scripted(problem.space, problem.fidelity), 8, workers=2, log_path=path)
    run = read_run(path)
    assert run.header["execution"] == {"workers": 2, "stop": "cost"}
    assert run.footer["wall_clock"] == 4 and [t["worker"] for t in run.trials] == [1, 0, 1, 0, 1]


def test_ties_are_broken_by_worker_then_trial_id():
    pool = SimulatedWorkers(3)
    jobs = [pool.start(trial_id=i, duration=d) for i, d in enumerate((2.0, 1.0, 2.0))]
    assert [j.worker for j in jobs] == [0, 1, 2]
    assert [j.trial_id for j in pool.complete_next()] == [1] and pool.now == 1.0
    pool.start(trial_id=3, duration=1.0)  # on worker 1, also ends at 2
    assert [(j.worker, j.trial_id) for j in pool.complete_next()] == [(0, 0), (1, 3), (2, 2)]
    assert pool.now == 2.0 and not pool.busy
    with pytest.raises(ValueError, match="n_workers must be an integer >= 1"):
        SimulatedWorkers(0)


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def test_one_worker_is_the_plain_ask_evaluate_tell_loop():
    problem = mfbo.problems.get("park")
    result = mfbo.minimize(problem, "random", budget=6, seed=4, workers=1)
    strategy = make("random", problem, seed=4)
    for record in result.trials:  # drive the same strategy by hand
        trial = strategy.ask()
        obs = problem.evaluate(trial.config, trial.fidelity)
        strategy.tell(trial, obs)
        assert (record.id, record.config, record.fidelity, record.value, record.cost) == (trial.id, trial.config, trial.fidelity, obs.value, obs.cost)
    assert [(t.start, t.end, t.worker) for t in result.trials] == [(c - 1.0, c, 0) for c in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]
    # both stopping rules give the same trials with one worker
    wall = mfbo.minimize(problem, "random", budget=6, seed=4, workers=1, stop="wall_clock")
    assert strip(t.to_dict() for t in wall.trials) == strip(t.to_dict() for t in result.trials)


def test_parallel_gp_ei_is_deterministic_and_sees_pending_trials():
    opts = {"n_init": 3, "num_restarts": 2, "raw_samples": 32}
    runs = [mfbo.minimize("forrester", "gp-ei", budget=5, seed=2, workers=3, strategy_options=opts) for _ in range(2)]
    a, b = (strip(t.to_dict() for t in r.trials) for r in runs)
    assert a == b and len(a) == 5
    xs = [t["config"]["x"] for t in a]
    assert len(set(xs)) == len(xs)  # the asks with pending trials are distinct points
    assert sorted(t["worker"] for t in a[:3]) == [0, 1, 2]


def test_failures_are_accounted_once_with_workers():
    def flaky(config, z):
        if config["x"] < 0.5:
            raise RuntimeError("boom")
        return config["x"]

    problem = Problem.from_function(flaky, Space(x=Float(0.0, 1.0)), Fidelity("z", 0, 1), cost=lambda z: 1.0, name="flaky")
    result = mfbo.minimize(problem, "random", budget=10, seed=0, workers=3)
    failed = [t for t in result.trials if t.status == "failed"]
    assert failed and all("RuntimeError: boom" in t.error and t.cost == 1.0 for t in failed)
    assert len(result.trials) == 10 and result.total_cost == 10 and result.wall_clock == pytest.approx(4.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"workers must be an integer >= 1"):
        mfbo.minimize("forrester", "random", budget=2, workers=0)
    with pytest.raises(ValueError, match=r"stop must be one of \['cost', 'wall_clock'\]"):
        mfbo.minimize("forrester", "random", budget=2, stop="time")
    with pytest.raises(ValueError, match=r"log_header may not set \['spec'\]"):
        mfbo.minimize("forrester", "random", budget=2, log_header={"spec": {}})

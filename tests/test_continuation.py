"""Continuing a trial to a higher fidelity: the Trial request, the strategy helper, the loop's
cost accounting on resumable and non-resumable problems."""

from __future__ import annotations

import pytest

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo.strategies import Continuation, Strategy


class EpochProblem(Problem):
    """Value 1/epochs + x; cost = epochs; resumable unless told otherwise."""

    def __init__(self, resumable: bool):
        super().__init__("epochs", Space(x=Float(0, 1)), Fidelity("epochs", 1, 9, integer=True))
        self.resumable = resumable
        self.calls: list[tuple[float, float | None]] = []

    def _evaluate(self, config, fidelity):
        self.calls.append((fidelity, None))
        return Observation(value=1 / fidelity + config["x"], cost=float(fidelity), curve=[1 / e + config["x"] for e in range(1, int(fidelity) + 1)])

    def _resume(self, config, fidelity, resume_from):
        self.calls.append((fidelity, resume_from))
        full = self._evaluate(config, fidelity)
        self.calls.pop()
        return Observation(value=full.value, cost=fidelity - resume_from, curve=full.curve)

    def cost(self, config, fidelity=None):
        return float(self.fidelity.target if fidelity is None else fidelity)


class Promote(Strategy):
    """Trial 0 at 1 epoch, then continue it to 3, then to 9."""

    name = "promote-test"

    def _suggest(self):
        if not self.history:
            return {"x": 0.5}, 1
        last, _ = self.history[-1]
        return Continuation(last.id, last.fidelity * 3)


@pytest.mark.parametrize("resumable, charged", [(True, [1, 2, 6]), (False, [1, 3, 9])])
def test_continuations_charge_the_increment_only_when_the_problem_resumes(resumable, charged):
    problem = EpochProblem(resumable)
    result = mfbo.minimize(problem, Promote(problem.space, problem.fidelity), budget=sum(charged))
    assert [t.cost for t in result.trials] == charged
    assert [t.continues for t in result.trials] == [None, 0, 1]
    assert [t.fidelity for t in result.trials] == [1, 3, 9]
    assert [len(t.curve) for t in result.trials] == [1, 3, 9]
    assert problem.calls == ([(1, None), (3, 1), (9, 3)] if resumable else [(1, None), (3, None), (9, None)])
    assert result.total_cost == sum(charged)


def test_the_budget_check_uses_the_increment():
    problem = EpochProblem(resumable=True)
    result = mfbo.minimize(problem, Promote(problem.space, problem.fidelity), budget=3)  # 1 + 2 fit, + 6 does not
    assert [t.cost for t in result.trials] == [1, 2]
    assert result.stop_reason.startswith("budget")
    assert problem.increment_cost({"x": 0.1}, 9, 3) == 6 and problem.increment_cost({"x": 0.1}, 9) == 9


def test_bad_continuations_are_refused_with_the_reason():
    problem = EpochProblem(resumable=True)
    s = Promote(problem.space, problem.fidelity)
    trial = s.ask()
    s._suggest = lambda: Continuation(trial.id, 3)
    with pytest.raises(ValueError, match="can only continue a told trial"):
        s.ask()
    s.tell(trial, Observation(value=1.0, cost=1.0))
    s._suggest = lambda: Continuation(trial.id, 1)
    with pytest.raises(ValueError, match="must raise the fidelity"):
        s.ask()
    failed = s.add_observation({"x": 0.2}, 1, Observation.failure("boom"))
    s._suggest = lambda: Continuation(failed.id, 3)
    with pytest.raises(ValueError, match="failed and cannot be continued"):
        s.ask()
    with pytest.raises(ValueError, match="resume_from must be a fidelity below"):
        problem.evaluate({"x": 0.1}, 3, resume_from=5)

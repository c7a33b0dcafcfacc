"""lc-extrapolation: Domhan et al. (2015)'s predictive termination criterion on top of random
search or GP-EI (issue #16)."""

import numpy as np
import pytest

import mfbo
from mfbo import Fidelity, Float, Space
from mfbo.problems.base import Problem
from mfbo.strategies.lc_extrapolation import LCExtrapolation
from mfbo.trial import Observation

EPOCHS = 20
FAST = {"n_steps": 40, "burn_in": 20, "thin": 5}


def accuracy(x: float, epochs: np.ndarray) -> np.ndarray:
    """A power-law learning curve whose final accuracy peaks at x = 0.3."""
    return 0.95 - 2.0 * (x - 0.3) ** 2 - 0.5 * epochs ** -0.7


class PowerLawProblem(Problem):
    """Resumable: loss ``1 - accuracy`` per epoch, one cost unit per epoch, the curve of epochs
    ``1..e``; resuming charges the new epochs only."""

    resumable = True

    def __init__(self):
        super().__init__("power-law", Space(x=Float(0.0, 1.0)), Fidelity("epoch", 1, EPOCHS, integer=True))

    def _curve(self, config, epochs):
        return list(1.0 - accuracy(config["x"], np.arange(1, epochs + 1, dtype=float)))

    def _evaluate(self, config, fidelity):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=float(fidelity), curve=curve)

    def _resume(self, config, fidelity, resume_from):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=float(fidelity - resume_from), curve=curve)

    def cost(self, config, fidelity=None):
        return float(self.target_fidelity if fidelity is None else fidelity)


def strategy(seed=0, **options):
    problem = PowerLawProblem()
    return LCExtrapolation(problem.space, problem.fidelity, seed=seed, problem=problem, **{**FAST, **options})


def trial_log(seed):
    s = strategy(seed)
    result = mfbo.minimize(s.problem, s, budget=2 * EPOCHS)
    return [(t.config["x"], t.fidelity, t.continues, t.value, t.cost) for t in result.trials], s


def test_checkpoints_and_defaults():
    s = strategy()
    assert (s.warmup, s.check_every, s.delta, s.proposer) == (5, 2, 0.05, "random")
    assert s.checkpoints == (5, 7, 9, 11, 13, 15, 17, 19, 20)


def test_same_seed_same_log_and_continuations_charge_only_the_extra_epochs():
    log, s = trial_log(1)
    again, _ = trial_log(1)
    assert log == again
    reached = {}
    for (x, fidelity, continues, _, cost), trial in zip(log, range(len(log))):
        expected = fidelity - (reached[continues] if continues is not None else 0)
        assert cost == expected  # 5 epochs for a new run, then 2 (or 1: 19 -> 20) per check
        reached[trial] = fidelity
    assert sum(c for *_, c in log) <= 2 * EPOCHS
    assert s.stopped_runs(), "some run was stopped early"
    assert len({x for x, *_ in log}) > 2  # more configurations than 2 full runs would allow


def run_to_first_check(s, curve_accuracy):
    """Ask a new run, tell it the given accuracies up to the warm-up epoch, return the next ask."""
    trial = s.ask()
    assert trial.fidelity == s.warmup and trial.continues is None
    curve = list(1.0 - np.asarray(curve_accuracy[: trial.fidelity]))
    s.tell(trial, Observation(value=curve[-1], cost=float(trial.fidelity), curve=curve))
    return trial, s.ask()


def test_stop_rule_kills_a_clearly_bad_run_and_keeps_a_clearly_good_one():
    s = strategy(seed=1)
    epochs = np.arange(1, EPOCHS + 1, dtype=float)
    s.add_observation({"x": 0.3}, EPOCHS, Observation(value=0.1, cost=float(EPOCHS)))  # incumbent: accuracy 0.9
    _, after_bad = run_to_first_check(s, 0.5 - 0.3 * epochs ** -0.7)  # heads to 0.5
    assert after_bad.continues is None and after_bad.fidelity == s.warmup  # stopped: a new run starts
    assert "stopped" in s.drain_notes()[-1]
    s.pending.clear()  # forget the new run's ask (never told)
    s._run_of.clear()
    s._runs = [r for r in s._runs if r.state != "pending"]
    good, after_good = run_to_first_check(s, 0.99 - 0.4 * epochs ** -0.7)  # heads to 0.98 > 0.9
    assert after_good.continues == good.id and after_good.fidelity == 7  # continued to the next check
    assert [r["epochs"] for r in s.stopped_runs()] == [s.warmup]


def test_no_incumbent_no_check():
    s = strategy()
    epochs = np.arange(1, EPOCHS + 1, dtype=float)
    trial, following = run_to_first_check(s, 0.2 - 0.1 * epochs ** -0.7)  # bad, but nothing to compare with
    assert following.continues == trial.id
    assert s.drain_notes() == []


def test_a_failed_trial_ends_its_run():
    s = strategy()
    trial = s.ask()
    s.tell(trial, Observation.failure("diverged", cost=1.0))
    following = s.ask()
    assert following.continues is None and following.config != trial.config


def test_gp_ei_proposer_is_told_finished_and_predicted_values():
    s = strategy(seed=2, proposer="gp-ei")
    result = mfbo.minimize(s.problem, s, budget=2 * EPOCHS)
    inner = s._inner
    assert len(inner.history) == sum(r.state in ("finished", "stopped", "failed") for r in s._runs) > 0
    new_configs = [t.config for t in result.trials if t.continues is None]
    assert [dict(t.config) for t, _ in inner.history] == new_configs[: len(inner.history)]
    assert any(o.info.get("predicted") for _, o in inner.history) == bool(s.stopped_runs())


@pytest.mark.parametrize("options, message", [
    ({"proposer": "tpe"}, r"option proposer must be one of \['random', 'gp-ei'\], got 'tpe'"),
    ({"delta": 0.0}, r"option delta must be a number in \(0, 1\), got 0.0"),
    ({"warmup": 1}, r"option warmup must be an integer in \[2, 19\] \(epochs\), got 1"),
    ({"check_every": 0}, r"option check_every must be an integer in \[1, 20\] \(epochs\), got 0"),
    ({"n_steps": 10, "burn_in": 10}, r"option MCMCSettings: burn_in must be an integer in \[0, n_steps=10\)"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        strategy(**options)


def test_refuses_problems_without_learning_curves():
    problem = mfbo.problems.get("currin")
    with pytest.raises(ValueError, match="needs a problem that reports learning curves: a resumable problem with an epoch"):
        LCExtrapolation(problem.space, problem.fidelity, problem=problem)
    with pytest.raises(ValueError, match="needs a problem that reports learning curves.*got no problem"):
        LCExtrapolation(PowerLawProblem().space, PowerLawProblem().fidelity)

"""Problem.from_function: return conventions, cost sources, validation, and the registry."""

import time

import pytest

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space

SPACE = Space(x=Float(0.0, 1.0))
FID = Fidelity("epochs", 1, 9, integer=True)


def test_float_return_uses_the_cost_callable():
    p = Problem.from_function(lambda c, e: c["x"] / e, SPACE, FID, cost=lambda e: e / 9)
    obs = p.evaluate({"x": 0.5}, 3)
    assert obs == Observation(value=0.5 / 3, cost=3 / 9)
    assert p.cost({"x": 0.5}, 3) == pytest.approx(1 / 3)
    assert p.evaluate({"x": 0.5}).cost == pytest.approx(1.0)  # default: the target fidelity


def test_float_return_without_cost_measures_wall_time():
    def slow(config, epochs):
        time.sleep(0.01)
        return 1.0

    obs = Problem.from_function(slow, SPACE, FID).evaluate({"x": 0.1}, 2)
    assert obs.cost >= 0.01


def test_pair_and_observation_returns():
    p = Problem.from_function(lambda c, e: (c["x"], 2.5), SPACE, FID)
    assert p.evaluate({"x": 0.25}, 1) == Observation(0.25, 2.5)
    q = Problem.from_function(lambda c, e: Observation(1.0, 0.5, curve=[3, 2, 1], info={"test": 0.9}), SPACE, FID)
    obs = q.evaluate({"x": 0.25}, 3)
    assert obs.curve_list() == [3.0, 2.0, 1.0] and obs.info == {"test": 0.9}


def test_single_fidelity_function():
    p = Problem.from_function(lambda c: c["x"] ** 2, SPACE, optimum=0.0, target_value=lambda c: c["x"] ** 2)
    assert p.fidelity is None and p.target_fidelity is None
    assert p.evaluate({"x": 0.5}).value == 0.25 and p.target_value({"x": 0.5}) == 0.25
    with pytest.raises(ValueError, match="has no fidelity, but fidelity=3 was given"):
        p.evaluate({"x": 0.5}, 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: p.evaluate({"x": 2.0}, 1), r"parameter 'x': value 2.0 is outside the allowed range \[0.0, 1.0\]"),
        (lambda p: p.evaluate({"y": 0.5}, 1), r"unknown parameter\(s\) \['y'\]"),
        (lambda p: p.evaluate({"x": 0.5}, 10), r"fidelity 'epochs': value 10 is outside the allowed range \[1, 9\]"),
        (lambda p: p.evaluate({"x": 0.5}, 1.5), r"fidelity 'epochs': value 1.5 must be an integer"),
    ],
)
def test_bad_input(call, match):
    p = Problem.from_function(lambda c, e: c["x"], SPACE, FID, cost=lambda e: 1.0)
    with pytest.raises(ValueError, match=match):
        call(p)


def test_non_positive_cost_is_rejected():
    p = Problem.from_function(lambda c, e: (c["x"], 0.0), SPACE, FID)
    with pytest.raises(ValueError, match=r"cost must be a finite number > 0, got 0.0"):
        p.evaluate({"x": 0.5}, 1)


def test_registry_errors():
    with pytest.raises(ValueError, match=r"unknown problem 'forester' \(did you mean 'forrester'"):
        mfbo.problems.get("forester")
    with pytest.raises(ValueError, match=r"problem 'forrester': unknown option\(s\) wrong; its options: none"):
        mfbo.problems.get("forrester", wrong=1)


def test_problems_declare_whether_their_target_evaluations_are_noiseless():
    """Problem.noiseless_target: off unless declared; from_function takes it; the synthetic suite
    derives it from its noise bound at the target (the noisy mf-prior-bench forms' noise vanishes
    there); the surrogate, table and training problems are deterministic."""
    assert Problem.noiseless_target is False
    assert Problem.from_function(lambda c, e: c["x"], SPACE, FID).noiseless_target is False
    assert Problem.from_function(lambda c, e: c["x"], SPACE, FID, noiseless_target=True).noiseless_target is True
    with pytest.raises(ValueError, match="noiseless_target must be True or False, got 'yes'"):
        Problem.from_function(lambda c, e: c["x"], SPACE, FID, noiseless_target="yes")
    for name in ("hartmann3", "mfhartmann6-terrible", "forrester", "quadratic-ladder", "digits-mlp", "digits-svm"):
        assert mfbo.problems.get(name).noiseless_target is True, name
    noisy = mfbo.problems.get("mfhartmann3-terrible")
    assert noisy.evaluate(noisy.optimizer, 1).value != noisy.target_value(noisy.optimizer)  # noisy below the target ...
    assert noisy.evaluate(noisy.optimizer).value == noisy.target_value(noisy.optimizer)  # ... exact at it
    from mfbo.problems.tabular import TabularProblem
    from mfbo.problems.yahpo import YahpoProblem

    assert TabularProblem.noiseless_target is True and YahpoProblem.noiseless_target is True

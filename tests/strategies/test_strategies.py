"""The strategy registry, option checking, and the behaviour of the two baselines."""

import numpy as np
import pytest
import torch

import mfbo
from mfbo import Categorical, Fidelity, Float, Int, Observation, Space
from mfbo.strategies import make, names, option_names
from mfbo.strategies.base import Strategy

FAST = {"n_init": 4, "num_restarts": 2, "raw_samples": 64}


def test_registry():
    assert {"random", "gp-ei"} <= set(names())
    assert option_names("gp-ei") == ["n_init", "num_restarts", "raw_samples", "mc_samples", "recommendation"]
    assert option_names("random") == []


def test_options_are_type_checked():
    problem = mfbo.problems.get("forrester")
    assert make("gp-ei", problem, n_init=5.0).n_init == 5  # an exact float is accepted as an int
    with pytest.raises(ValueError, match=r"strategy 'gp-ei': option n_init must be int or None, got 'many'"):
        make("gp-ei", problem, n_init="many")
    with pytest.raises(ValueError, match=r"option num_restarts must be int, got 2.5"):
        make("gp-ei", problem, num_restarts=2.5)
    with pytest.raises(ValueError, match=r"option raw_samples must be an integer >= 1, got 0"):
        make("gp-ei", problem, raw_samples=0)
    with pytest.raises(ValueError, match=r"expected a Problem or a Space, got str"):
        make("random", "forrester")


def test_random_search_stays_at_target_and_is_seeded():
    problem = mfbo.problems.get("currin")
    a, b = make("random", problem, seed=3), make("random", problem, seed=3)
    trials_a = [a.ask() for _ in range(5)]
    assert [t.config for t in trials_a] == [b.ask().config for _ in range(5)]
    assert all(t.fidelity == problem.fidelity.target for t in trials_a)
    assert [t.id for t in trials_a] == [0, 1, 2, 3, 4]


def test_gp_ei_handles_mixed_spaces():
    space = Space(x=Float(-2.0, 2.0), k=Int(1, 8, log=True), c=Categorical(["a", "b", "c"]))
    target = {"x": 0.5, "k": 4, "c": "b"}

    def fn(config):
        return (config["x"] - 0.5) ** 2 + (np.log2(config["k"]) - 2) ** 2 + (config["c"] != "b")

    problem = mfbo.Problem.from_function(fn, space, cost=lambda _: 1.0, optimum=0.0, target_value=fn)
    result = mfbo.minimize(problem, "gp-ei", budget=16, seed=0, strategy_options=FAST)
    assert all(space.validate(t.config) == t.config for t in result.trials)
    assert result.regret < result.trials[FAST["n_init"] - 1].regret or result.regret < 0.05
    assert fn(target) == 0.0


def test_gp_ei_beats_its_initial_design_on_a_smooth_problem():
    result = mfbo.minimize("hartmann3", "gp-ei", budget=14, seed=0, strategy_options=FAST)
    after_design = result.trials[FAST["n_init"] - 1].regret
    assert result.regret < 0.5 * after_design
    assert result.regret < 0.2


@pytest.mark.parametrize("noiseless", [False, True])
def test_gp_ei_recommends_by_rule_and_logs_the_other(noiseless):
    """"evaluated": the posterior-mean argmin among the evaluated points; "observed": the best
    observed value; "auto" is "observed" on a problem that declares a noiseless target."""
    forrester = mfbo.problems.get("forrester")
    problem = mfbo.Problem.from_function(forrester.target_value, forrester.space, cost=lambda s: 1.0, noiseless_target=noiseless)
    strategy = make("gp-ei", problem, seed=0, **FAST)
    assert strategy.recommendation_rule == ("observed" if noiseless else "evaluated")
    for _ in range(8):
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    model, X, _ = strategy._model()
    with torch.no_grad():
        mean = model.posterior(X).mean.squeeze(-1)
    by_mean = strategy.space.decode(X[int(mean.argmax())].numpy())
    best_seen = min(strategy.history, key=lambda h: h[1].value)[0].config
    rules = {strategy.recommendation_rule: strategy.recommend(), **strategy.other_recommendations()}
    assert set(rules) == {"observed", "evaluated"} and rules["observed"] == best_seen
    assert np.allclose(strategy.space.encode(rules["evaluated"]), strategy.space.encode(by_mean))
    with pytest.raises(ValueError, match=r"option recommendation must be one of \['auto', 'observed', 'evaluated'\], got 'best'"):
        make("gp-ei", problem, recommendation="best")


def test_strategy_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mfbo.minimize("hartmann3", "gp-ei", budget=7, seed=0, strategy_options=FAST)
    assert torch.equal(torch.rand(3), expected)


def test_tell_rejects_bad_observations():
    strategy = make("random", mfbo.problems.get("forrester"))
    trial = strategy.ask()
    with pytest.raises(ValueError, match="observation must be an mfbo.Observation, got float"):
        strategy.tell(trial, 1.0)
    strategy.tell(trial, Observation.failure("crashed", cost=1.0))
    assert strategy.recommend() is None  # nothing succeeded yet


def test_add_observation_warm_starts_and_skips_the_design():
    problem = mfbo.problems.get("hartmann3")
    strategy = make("gp-ei", problem, seed=0, **FAST)
    for config in problem.space.sample(np.random.default_rng(0), FAST["n_init"]):
        trial = strategy.add_observation(config, 1.0, problem.evaluate(config, 1.0))
        assert not strategy.pending and strategy.history[-1][0] is trial
    design_head = strategy._design[0]
    assert strategy.ask().config != design_head  # straight to the GP: the design is not used


def test_the_default_recommendation_is_the_best_at_the_highest_fidelity_up_to_the_target():
    """Strategy.recommend: best value at the highest fidelity reached, ties by trial id, never a
    trial beyond the target (a fidelity whose target is below its high end)."""
    strategy = Strategy(Space(x=Float(0.0, 1.0)), Fidelity("epochs", 1, 100, integer=True, target=50))
    assert strategy.recommend() is None
    for x, epochs, value in [(0.1, 1, 0.2), (0.2, 10, 0.9), (0.3, 10, 0.5), (0.4, 10, 0.5), (0.5, 80, 0.0)]:
        strategy.add_observation({"x": x}, epochs, Observation(value=value, cost=1.0))
    assert strategy.recommend() == {"x": 0.3}  # epoch 10, the earlier of the tie; epoch 80 is beyond the target
    strategy.add_observation({"x": 0.6}, 50, Observation.failure("crashed", cost=1.0))
    assert strategy.recommend() == {"x": 0.3}
    strategy.add_observation({"x": 0.7}, 50, Observation(value=0.95, cost=1.0))
    assert strategy.recommend() == {"x": 0.7}  # the target reached: worse than at epoch 10, still preferred

"""The multi-fidelity GP strategies: design, fidelity choice, pending trials, recommendation."""

import math

import numpy as np
import pytest

import mfbo
from mfbo import Fidelity, Float, Problem, Space
from mfbo.strategies import make, names
from mfbo.models.warping import OutputWarp
from mfbo.strategies.mf_gp import initial_design

MF = ("mf-kg", "mf-mes", "mf-gibbon", "mf-ei", "mf-ucb")


def bowl(x):
    return (x - 0.3) ** 2 + 0.1 * math.sin(9 * x)


def one_d_problem(low_fidelity: str):
    """x in [0, 1], z in [0, 1], cost 0.05 + 0.95 z^2, target value bowl(x).

    'perfect': f(x, z) = bowl(x) at every z (a free lunch: cheap = exact);
    'unrelated': below the target the value is a smooth function unrelated to the target's.
    """

    def fn(config, z):
        x = config["x"]
        if low_fidelity == "perfect" or z == 1.0:
            return bowl(x)
        return math.cos(11 * x + 1.0)  # a smooth function unrelated to the target

    # the unrelated source is a separate information source: two levels, not a continuum
    fidelity = Fidelity("z", 0.0, 1.0) if low_fidelity == "perfect" else Fidelity("z", levels=[0.0, 1.0])
    return Problem.from_function(
        fn, Space(x=Float(0.0, 1.0)), fidelity, cost=lambda z: 0.05 + 0.95 * z**2,
        name=f"bowl-{low_fidelity}", target_value=lambda c: bowl(c["x"]), optimum=min(bowl(x) for x in np.linspace(0, 1, 100001)),
    )


def test_registered():
    assert set(MF) <= set(names())
    opts = mfbo.strategies.option_names("mf-kg")
    assert {"kernel", "cost_model", "q", "init_fraction"} <= set(opts)


@pytest.mark.parametrize(
    "costs, budget, min_target, expected",
    [
        ([0.1, 0.325, 1.0], 3.0, 1, [10, 3, 1]), ([0.05, 1.0], 1.0, 1, [10, 1]), ([0.5, 1.0], 0.5, 1, [2, 1]),
        ([0.1, 0.325, 1.0], 3.0, 3, [10, 3, 3]),  # three target points: the design budget pays for them
        ([0.1, 0.325, 1.0], 2.0, 3, [6, 2, 2]),  # only two are affordable
        ([0.5, 1.0], 0.5, 3, [2, 1]),  # none is: one all the same
        ([0.6, 1.0], 3.0, 3, [3, 3]),  # the target's configurations also run at the cheapest level
    ],
)
def test_initial_design_counts(costs, budget, min_target, expected):
    assert initial_design(costs, budget, min_points=3, min_target=min_target) == expected


def test_initial_design_is_nested_and_cheap_levels_dominate():
    problem = mfbo.problems.get("hartmann3")
    strategy = make("mf-ei", problem, seed=0)
    strategy.set_budget(30.0)
    design = [strategy.ask()]
    design += [strategy.ask() for _ in range(len(strategy._design))]
    assert len(design) == 13  # [6, 3, 1, 0, 3] points at s = 0, .25, .5, .75, 1
    fids = [t.fidelity for t in design]
    assert fids == sorted(fids) and fids.count(0.0) > fids.count(1.0) == 3
    top = {tuple(t.config.values()) for t in design if t.fidelity == 1.0}
    bottom = {tuple(t.config.values()) for t in design if t.fidelity == 0.0}
    assert top <= bottom  # nested
    # init_fraction of the budget per level, plus the target points beyond the target's share
    assert sum(problem.cost(t.config, t.fidelity) for t in design) <= 0.1 * 30.0 + 2 * problem.cost(None, 1.0) + 1e-9


@pytest.mark.parametrize("name", ["mf-kg", "mf-mes"])
def test_perfectly_correlated_cheap_fidelity_is_exploited(name):
    result = mfbo.minimize(one_d_problem("perfect"), name, budget=4.0, seed=0)
    model_phase = result.trials[3:]  # after the design ([2, 0, 0, 0, 1] points)
    assert sum(t.fidelity < 0.5 for t in model_phase) >= 0.75 * len(model_phase)
    assert result.regret < 0.01


@pytest.mark.parametrize("name", ["mf-kg", "mf-mes"])
def test_uncorrelated_cheap_fidelity_is_abandoned(name):
    result = mfbo.minimize(one_d_problem("unrelated"), name, budget=5.0, seed=0)
    model_phase = result.trials[3:]  # after the design
    at_target = sum(t.cost for t in model_phase if t.fidelity == 1.0)
    assert at_target >= 0.7 * sum(t.cost for t in model_phase)
    # it ends at the target, until less is left than a target evaluation costs (then the rest
    # of the budget goes to the cheap level rather than unspent); between target evaluations
    # (the acquisition's or the verification's, every other step) a cheap query may remain
    affordable = [t for t in result.trials if 5.0 - (t.cum_cost - t.cost) >= 1.0]
    assert affordable[-1].fidelity == 1.0
    assert sum(t.fidelity < 1.0 for t in affordable[3:]) <= sum(t.fidelity == 1.0 for t in affordable[3:])
    assert result.regret < 0.05


@pytest.mark.parametrize("name", MF)
def test_every_strategy_runs_and_recommends_a_target_optimum(name):
    # a free lunch: the posterior rule names the optimum the cheap level found; the default rule
    # ("evaluated") waits for a target evaluation of it (mf-kg, seed 1: regret 0.18 at this budget)
    result = mfbo.minimize(one_d_problem("perfect"), name, budget=5.0, seed=1, strategy_options={"recommendation": "posterior"})
    assert result.recommendation is not None and result.regret < 0.05
    assert all(0.0 <= t.fidelity <= 1.0 for t in result.trials)


@pytest.mark.parametrize("name", ["mf-kg", "mf-ucb"])
def test_the_design_recommends_the_best_at_the_highest_fidelity_reached(name):
    """Before the surrogate exists the recommendation is the bandit methods' rule, never
    ``None`` after a success: rbv2 designs that had not reached the target scored +inf."""
    problem = mfbo.problems.get("currin")
    strategy = make(name, problem, seed=0)
    strategy.set_budget(30.0)
    assert strategy.recommend() is None
    rng = np.random.default_rng(1)
    while not strategy._ready():
        trial = strategy.ask()
        strategy.tell(trial, mfbo.Observation(value=float(rng.normal()), cost=1.0))
        if strategy._ready():
            break
        done = [(t, o) for t, o in strategy.history if o.ok]
        top = max(t.fidelity for t, _ in done)
        best = min((o.value, t.id) for t, o in done if t.fidelity == top)
        assert strategy.recommend() == strategy.history[strategy._told[best[1]]][0].config
    assert {t.fidelity for t, _ in strategy.history} != {problem.fidelity.target}  # the design looked below the target


def test_the_acquisition_is_told_how_many_trials_the_design_asked_for(monkeypatch):
    """``ctx.options["design_size"]`` separates the design from the model's own choices (BOCA's
    target-share controller replays only the latter)."""
    problem = mfbo.problems.get("currin")
    strategy = make("mf-ucb", problem, seed=0)
    strategy.set_budget(20.0)
    seen = []
    propose = type(strategy.acquisition).propose
    monkeypatch.setattr(
        type(strategy.acquisition), "propose", lambda self, ctx, q=1: seen.append(dict(ctx.options)) or propose(self, ctx, q)
    )
    asked = 0
    while not seen:
        trial = strategy.ask()
        asked += 1
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    assert seen[0]["design_size"] == asked - 1 > 0
    assert seen[0]["budget"] == 20.0 and seen[0]["spent"] > 0


@pytest.mark.parametrize("name", ["mf-kg", "mf-ei"])
def test_pending_trials_get_distinct_suggestions(name):
    problem = mfbo.problems.get("currin")
    strategy = make(name, problem, seed=0)
    strategy.set_budget(20.0)
    while strategy._design is None or strategy._design:
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    batch = [strategy.ask() for _ in range(3)]
    points = [tuple(t.config.values()) + (t.fidelity,) for t in batch]
    assert len(set(points)) == 3


def test_batches_q_greater_than_one():
    problem = mfbo.problems.get("currin")
    result = mfbo.minimize(problem, "mf-gibbon", budget=4.0, seed=0, strategy_options={"q": 3})
    assert len(result.trials) >= 6


def test_discrete_fidelities_stay_on_levels_and_icm_works():
    problem = mfbo.problems.get("quadratic-ladder")
    for kernel in ("linear-truncated", "icm"):
        result = mfbo.minimize(problem, "mf-ei", budget=3.0, seed=0, strategy_options={"kernel": kernel})
        assert {t.fidelity for t in result.trials} <= {1, 2, 3, 4, 5}


def test_learned_cost_model_is_used_when_the_cost_is_only_observed():
    def fn(config, z):
        return bowl(config["x"]), 0.05 + 0.95 * z**2  # cost reported, not declared

    problem = Problem.from_function(fn, Space(x=Float(0.0, 1.0)), Fidelity("z", 0.0, 1.0), target_value=lambda c: bowl(c["x"]), optimum=-0.0657)
    strategy = make("mf-ei", problem, seed=0)
    assert strategy._known_cost is None
    with pytest.raises(ValueError, match="cost_model='known' is not possible"):
        make("mf-ei", problem, cost_model="known")
    result = mfbo.minimize(problem, strategy, budget=3.0)
    assert result.recommendation is not None


def test_fit_survives_constant_outcomes():
    problem = Problem.from_function(lambda c, z: 1.0, Space(x=Float(0, 1)), Fidelity("z", 0.0, 1.0), cost=lambda z: 0.1 + z)
    result = mfbo.minimize(problem, "mf-kg", budget=3.0, seed=0)
    assert all(t.status == "ok" for t in result.trials)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"kernel": "rbf"}, r"option kernel must be one of \['linear-truncated'"),
        ({"cost_model": "magic"}, r"option cost_model must be one of \['auto', 'known', 'learned', 'learned-trend'\]"),
        ({"q": 0}, r"option q must be an integer >= 1"),
        ({"init_fraction": 1.5}, r"option init_fraction must be in \(0, 1\)"),
        ({"kernel": "icm"}, r"kernel 'icm' needs a discrete fidelity"),
        ({"output_warp": "log"}, r"option output_warp must be one of \['none', 'copula', 'copula-upper', 'power'\], got 'log'"),
    ],
)
def test_option_errors(options, match):
    with pytest.raises(ValueError, match=match):
        make("mf-kg", mfbo.problems.get("currin"), **options)


def test_single_fidelity_problem_is_refused():
    with pytest.raises(ValueError, match="needs a problem with a fidelity; use 'gp-ei'"):
        make("mf-ei", Problem.from_function(lambda c: c["x"], Space(x=Float(0, 1))))


def test_same_seed_same_trials():
    runs = [mfbo.minimize("currin", "mf-ei", budget=2.5, seed=4) for _ in range(2)]
    assert [(t.config, t.fidelity, t.value) for t in runs[0].trials] == [(t.config, t.fidelity, t.value) for t in runs[1].trials]


def test_hyperparameters_are_refitted_on_growth_only(monkeypatch):
    import mfbo.strategies.mf_gp as mf_gp

    calls = []
    real = mf_gp.fit_model
    monkeypatch.setattr(mf_gp, "fit_model", lambda model, **kw: calls.append(model.train_inputs[0].shape[0]) or real(model, **kw))
    problem = mfbo.problems.get("currin")
    strategy = make("mf-ei", problem, seed=0, refit_growth=0.5, num_restarts=2, raw_samples=64)
    for config in problem.space.sample(np.random.default_rng(0), 10):
        strategy.add_observation(config, 0.0, problem.evaluate(config, 0.0))
    for _ in range(6):
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    assert calls[:2] == [10, 15]  # fitted at n = 10, then again only once n >= 1.5 * 10
    assert len(calls) == 2


def test_many_integer_levels_are_optimised_as_continuous_and_rounded():
    problem = mfbo.problems.get("mfhartmann3-good")  # z in {1, ..., 100}
    strategy = make("mf-ei", problem, seed=0, num_restarts=2, raw_samples=64)
    assert strategy._levels is None  # not enumerated
    result = mfbo.minimize(problem, strategy, budget=1.5)
    assert all(isinstance(t.fidelity, int) and 1 <= t.fidelity <= 100 for t in result.trials)
    assert make("mf-ei", problem, kernel="icm")._levels.shape == (100,)


def test_predict_reports_the_posterior_in_the_problems_units():
    problem = mfbo.problems.get("forrester")
    strategy = make("mf-ei", problem, seed=0)
    with pytest.raises(RuntimeError, match="no surrogate yet"):
        strategy.predict([{"x": 0.5}])
    result = mfbo.minimize(problem, strategy, budget=4.0, seed=0)
    configs = [t.config for t in result.trials if t.fidelity == 1]
    mean, std = strategy.predict(configs)
    observed = np.array([t.value for t in result.trials if t.fidelity == 1])
    assert mean.shape == std.shape == (len(configs),)
    np.testing.assert_allclose(mean, observed, atol=0.5)  # near-interpolation (forrester spans about 22)
    assert np.all(std >= 0)
    cheap_mean, _ = strategy.predict(configs, fidelity=0)
    assert not np.allclose(cheap_mean, mean)  # forrester's cheap level is biased


@pytest.mark.parametrize("strategy_name, warp", [("mf-ei", "copula"), ("mf-kg", "power")])
def test_output_warp_fits_the_gp_to_warped_values_and_predicts_in_the_problems_units(strategy_name, warp):
    problem = mfbo.problems.get("forrester")
    strategy = make(strategy_name, problem, seed=0, output_warp=warp)
    assert strategy.options()["output_warp"] == warp
    result = mfbo.minimize(problem, strategy, budget=4.0, seed=0)
    assert result.recommendation is not None
    _, X, Y, _ = strategy._surrogate()
    values = np.array([o.value for _, o in strategy.successes()])
    expected = OutputWarp.fit(warp, values)(values)  # forrester reports no learning curves: nothing augmented
    np.testing.assert_allclose(-Y.reshape(-1).numpy(), expected)
    assert not np.allclose(expected, values)
    configs = [t.config for t in result.trials if t.fidelity == 1]
    mean, std = strategy.predict(configs)
    observed = np.array([t.value for t in result.trials if t.fidelity == 1])
    np.testing.assert_allclose(mean, observed, atol=1.0)  # mapped back: near-interpolation in forrester's units (span about 22)
    assert np.all(std >= 0)


class RuntimeProblem(Problem):
    """A predicted runtime in seconds that depends on the configuration: ``100 (1 + x) (0.05 + 0.95 z)``."""

    def __init__(self, predicts_cost: bool = True):
        super().__init__("runtime", Space(x=Float(0.0, 1.0)), Fidelity("z", 0.0, 1.0))
        self.predicts_cost = predicts_cost

    def _evaluate(self, config, fidelity):
        return mfbo.Observation(value=(config["x"] - 0.3) ** 2, cost=100 * (1 + config["x"]) * (0.05 + 0.95 * fidelity))

    def cost(self, config, fidelity=None):
        if not self.predicts_cost:
            return None
        z = self.target_fidelity if fidelity is None else fidelity
        return 100 * (1 + config["x"]) * (0.05 + 0.95 * z)


@pytest.mark.parametrize("predicts_cost", [True, False])
def test_the_design_is_sized_in_the_problems_cost_units(predicts_cost):
    problem = RuntimeProblem(predicts_cost)
    strategy = make("mf-ei", problem, seed=0)
    strategy.set_budget(30 * 150.0)  # 30 evaluations of a typical configuration at the target
    first = strategy.ask()
    design = [first] + [strategy.ask() for _ in range(len(strategy._design))]
    if predicts_cost:  # the config-dependent cost is averaged over a probe: the design spends about init_fraction
        spent = sum(problem._evaluate(t.config, t.fidelity).cost for t in design)
        assert 0.5 * 0.1 * strategy.budget < spent < 0.1 * strategy.budget + 3 * 200
        assert sum(t.fidelity == 1.0 for t in design) == 3
    else:  # no cost in any unit: min_target_init target points, nested in as many cheapest ones
        assert [t.fidelity for t in design] == [0.0] * 3 + [1.0] * 3


def test_mf_mes_samples_the_max_value_from_the_posterior_by_default_and_mf_gibbon_by_the_gumbel():
    problem = one_d_problem("perfect")
    assert make("mf-mes", problem).options()["mv_sampler"] == "posterior"
    assert mfbo.strategies._lookup("mf-mes").option_signature()["mv_sampler"].default == "posterior"
    assert make("mf-mes", problem, mv_sampler="gumbel").acquisition.mv_sampler == "gumbel"
    assert make("mf-gibbon", problem).options()["mv_sampler"] == "gumbel"
    assert mfbo.strategies._lookup("mf-gibbon").option_signature()["mv_sampler"].default == "gumbel"

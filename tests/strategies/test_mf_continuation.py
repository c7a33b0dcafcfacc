"""Freeze-thaw continuation, the ladder design, learning-curve points and the recommendation
rules of the multi-fidelity GP strategies (issue #12)."""

import math

import numpy as np
import pytest
import torch

import mfbo
from mfbo import Fidelity, Float, Space
from mfbo.acquisition.base import AcquisitionContext
from mfbo.acquisition.optimize import optimize_joint
from mfbo.models import ContinuationCost, KnownCost
from mfbo.models.noise import SharedResidualKernel
from mfbo.problems.base import Problem
from mfbo.strategies import make
from mfbo.strategies.mf_design import _bracket_cost, bracket_design
from mfbo.strategies import mf_gp
from mfbo.strategies.mf_gp import geometric_ladder, ladder_design
from mfbo.trial import Observation

EPOCHS = 27


def final_loss(x: float) -> float:
    return (x - 0.3) ** 2 + 0.05 * math.sin(12 * x)


class CurveProblem(Problem):
    """A resumable learning-curve problem: loss ``final(x) + (1 - x) / epoch`` at epoch ``e``,
    cost one unit per epoch; the curve holds epochs ``1..e``; resuming charges the new epochs."""

    resumable = True

    def __init__(self):
        super().__init__("curve", Space(x=Float(0.0, 1.0)), Fidelity("epoch", 1, EPOCHS, integer=True))
        self.optimum = float(min(self.target_value({"x": x}) for x in np.linspace(0, 1, 200001)))

    def _curve(self, config, epochs):
        x = config["x"]
        return [final_loss(x) + (1 - x) / e for e in range(1, epochs + 1)]

    def _evaluate(self, config, fidelity):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=float(fidelity), curve=curve)

    def _resume(self, config, fidelity, resume_from):
        curve = self._curve(config, fidelity)
        return Observation(value=curve[-1], cost=float(fidelity - resume_from), curve=curve)

    def cost(self, config, fidelity=None):
        return float(self.target_fidelity if fidelity is None else fidelity)

    def target_value(self, config):
        return final_loss(config["x"]) + (1 - config["x"]) / EPOCHS


# -- the pieces ---------------------------------------------------------------------------------
def test_geometric_ladder_of_epochs_and_of_a_data_fraction():
    epochs = Fidelity("epoch", 1, 52, integer=True)
    assert [epochs.denormalize(s) for s in geometric_ladder(epochs)] == [1, 3, 9, 27, 52]
    fraction = Fidelity("trainsize", 0.03, 1.0)
    assert [round(fraction.denormalize(s), 6) for s in geometric_ladder(fraction)] == [0.03, 0.09, 0.27, 1.0]  # 0.81 is too close to 1
    unit = Fidelity("z", 0.0, 1.0)  # no geometric ladder from 0: the evenly spaced design levels
    assert geometric_ladder(unit) == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(
    "costs, budget, min_points, expected",
    [
        ([1.0, 2.0, 6.0, 18.0, 25.0], 104.0, 9, [2, 2, 2, 2, 2]),  # two climbs of 52
        ([1.0, 2.0, 6.0], 10.0, 6, [4, 1, 1]),  # one climb of 9, topped up at the cheapest rung
        ([1.0, 2.0, 6.0], 1.0, 3, [1, 1, 1]),  # not even one is affordable: one all the same
        ([1.0, 2.0], None, 5, [3, 3]),  # no budget: ceil(5 / 2) climbs
    ],
)
def test_ladder_design_counts(costs, budget, min_points, expected):
    assert ladder_design(costs, budget, min_points) == expected


def test_continuation_cost_charges_the_increment_and_prices_out_repeats():
    base = KnownCost(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([1.0, 10.0, 30.0]))
    cost = ContinuationCost(base, configs=torch.tensor([[0.2, 0.4], [0.7, 0.1]]), reached=torch.tensor([0.5, 1.0]), repeat_factor=100.0)
    X = torch.tensor([
        [0.2, 0.4, 1.0],  # reached 0.5: the increment 30 - 10
        [0.2, 0.4, 0.25],  # below what it reached: a repeat, its curve holds the value
        [0.7, 0.1, 1.0],  # already at the top: a repeat
        [0.2, 0.41, 1.0],  # another configuration: a new evaluation
    ], dtype=torch.double)
    assert cost(X).tolist() == [20.0, 550.0, 3000.0, 30.0]
    # an integer fidelity: s just above the reached epoch rounds back to it, so it is a repeat too
    rounded = ContinuationCost(base, torch.tensor([[0.2, 0.4]]), torch.tensor([0.5]), repeat_below=torch.tensor([0.52]), repeat_factor=100.0)
    Z = torch.tensor([[0.2, 0.4, 0.51], [0.2, 0.4, 1.0]], dtype=torch.double)
    assert rounded(Z).tolist() == pytest.approx([100 * base(Z[:1]).item(), 20.0])
    with pytest.raises(ValueError, match="repeat_factor must be >= 1, got 0.5"):
        ContinuationCost(base, torch.zeros(1, 2), torch.zeros(1), repeat_factor=0.5)
    assert cost(X.reshape(2, 2, 1, 3)).shape == (2, 2, 1)  # any batch shape
    Xg = X.clone().requires_grad_(True)
    cost(Xg).sum().backward()
    assert torch.isfinite(Xg.grad).all()


def test_the_optimiser_scores_explicit_candidates_it_would_never_find():
    """A spike too narrow for Sobol points and L-BFGS-B is found when it is a candidate."""
    spike = torch.tensor([0.123456, 0.654321, 0.5], dtype=torch.double)

    def acqf(X):
        return torch.exp(-((X - spike) ** 2).sum(-1) / 1e-10).reshape(-1) + 1e-3 * X[..., 0].reshape(-1)

    ctx = AcquisitionContext(
        model=None, cost=None, dim=2, fidelities=None, train_X=torch.zeros(1, 3), train_Y=torch.zeros(1, 1),
        X_pending=None, seed=0, project=lambda Z: Z,
    )
    without, _ = optimize_joint(acqf, ctx, num_restarts=2, raw_samples=64)
    assert not torch.allclose(without, spike)
    ctx.candidates = spike.reshape(1, 3)
    with_candidate, value = optimize_joint(acqf, ctx, num_restarts=2, raw_samples=64)
    assert torch.equal(with_candidate.reshape(-1), spike) and value > 1.0
    fixed, _ = optimize_joint(acqf, ctx, num_restarts=2, raw_samples=64, fixed_s=1.0)  # a target-only search ignores them
    assert fixed[0, -1] == 1.0


# -- the strategy on a resumable problem ----------------------------------------------------------------
@pytest.fixture(scope="module")
def curve_run():
    problem = CurveProblem()
    strategy = make("mf-kg", problem, seed=0)
    result = mfbo.minimize(problem, strategy, budget=12 * EPOCHS, seed=0)
    return problem, strategy, result


def test_the_cost_model_learns_costs_from_scratch_not_the_increments_charged(curve_run):
    problem, strategy, result = curve_run
    assert any(t.continues is not None for t in result.trials)
    charged = {t.id: t.cost for t in result.trials}
    X, _, costs = strategy._data()
    done = strategy.successes()
    assert costs.tolist() == pytest.approx([problem.cost(t.config, t.fidelity) for t, _ in done])
    assert any(charged[t.id] < c for (t, _), c in zip(done, costs.tolist()))  # the continuations


def test_the_ladder_design_climbs_by_continuation(curve_run):
    problem, strategy, result = curve_run
    assert strategy.options()["design"] == "auto" and strategy._design_rule == "ladder"
    design = result.trials[: strategy._design_size]
    rungs = [1, 3, 9, EPOCHS]
    assert sorted({t.fidelity for t in design}) == rungs
    by_id = {t.id: t for t in result.trials}
    climbs = [t for t in design if t.continues is not None]
    assert climbs and all(t.fidelity > by_id[t.continues].fidelity for t in climbs)
    assert all(t.config == by_id[t.continues].config for t in climbs)
    # the design fits its share of the budget because a climb pays each rung once
    assert sum(t.cost for t in design) <= 0.1 * 12 * EPOCHS + 1e-9


def test_every_continuation_is_charged_the_increment_and_the_acquisition_continues_runs(curve_run):
    problem, strategy, result = curve_run
    by_id = {t.id: t for t in result.trials}
    runs = [(t.config["x"], t.fidelity) for t in result.trials]
    assert len(set(runs)) == len(runs)  # no configuration is run twice at one fidelity
    for t in result.trials:
        expected = t.fidelity - (by_id[t.continues].fidelity if t.continues is not None else 0)
        assert t.cost == pytest.approx(expected)
    model_phase = result.trials[strategy._design_size:]
    assert any(t.continues is not None for t in model_phase)
    assert result.total_cost <= 12 * EPOCHS + 1e-9
    after_design = result.trials[strategy._design_size - 1].regret
    assert result.regret < min(0.02, after_design / 2)  # target values span about 0.5


def test_the_gp_gets_the_curve_values_at_the_rungs_below_each_run(curve_run):
    problem, strategy, _ = curve_run
    X, Y = strategy._augmented()
    assert len(X) > 0 and len(X) <= len(strategy.successes())
    for row, y in zip(X, Y):
        config, epoch = strategy._decode(row)
        assert epoch in (1, 3, 9)
        assert -float(y) == pytest.approx(problem._curve(config, epoch)[-1])
    evaluated = {(strategy._key(t.config), t.fidelity) for t, _ in strategy.successes()}
    assert all((strategy._key(strategy._decode(r)[0]), strategy._decode(r)[1]) not in evaluated for r in X)  # no duplicates


def test_correlated_noise_fits_each_configurations_shared_residual_from_both_starts(monkeypatch):
    """``noise="correlated"``: the GP links the curve points and evaluations of one configuration
    (:class:`SharedResidualKernel`), and every refit also tries the shared-residual start."""
    starts = []

    def spy(model, **options):
        starts.append(options.get("alternative_starts", ()))
        return fit(model, **options)

    fit = mf_gp.fit_model
    monkeypatch.setattr(mf_gp, "fit_model", spy)
    problem = CurveProblem()
    strategy = make("mf-ucb", problem, seed=0, noise="correlated")
    mfbo.minimize(problem, strategy, budget=4 * EPOCHS, seed=0)
    model, X, _, _ = strategy._surrogate()
    assert isinstance(model.covar_module.kernels[-1], SharedResidualKernel) and strategy.options()["noise"] == "correlated"
    assert starts and all(len(s) == 1 and any(name.endswith("raw_shared_noise") for name in s[0]) for s in starts)
    configs = [strategy._key(strategy._decode(row)[0]) for row in X]
    assert len(set(configs)) < len(configs)  # curve points and rungs share configurations: the term has work to do


def test_no_continuation_when_it_is_switched_off_or_the_problem_cannot_resume():
    problem = CurveProblem()
    off = mfbo.minimize(problem, "mf-ei", budget=4 * EPOCHS, seed=0, strategy_options={"continuation": False, "design": "ladder"})
    assert all(t.continues is None for t in off.trials)
    assert sorted({t.fidelity for t in off.trials[:5]}) == [1, 3, 9, EPOCHS][: len({t.fidelity for t in off.trials[:5]})]
    problem.resumable = False
    strategy = make("mf-ei", problem, seed=0)
    assert not strategy._continues and strategy._design_rule == "budget-share"  # 'auto' shares the budget instead


def test_mf_ucb_defaults_to_a_cooled_bracket_where_runs_continue_and_the_others_keep_theirs():
    problem = CurveProblem()
    ucb = make("mf-ucb", problem, seed=0)
    assert ucb._design_rule == "bracket" and ucb.options()["init_fraction"] == 0.2 and ucb.options()["cost_cooling"] is True
    signature = mfbo.strategies._lookup("mf-ucb").option_signature()
    assert (signature["init_fraction"].default, signature["cost_cooling"].default, signature["design"].default) == (0.2, True, "auto")
    assert list(signature)[:2] == ["kernel", "noise"]  # the strategy's options first, as for the others
    kg = make("mf-kg", problem, seed=0)
    assert kg._design_rule == "ladder" and kg.options()["init_fraction"] == 0.1
    assert mfbo.strategies._lookup("mf-kg").option_signature()["init_fraction"].default == 0.1
    # options given explicitly win over the strategy's defaults
    chosen = make("mf-ucb", problem, seed=0, design="ladder", init_fraction=0.1, cost_cooling=False)
    assert chosen._design_rule == "ladder" and chosen.init_fraction == 0.1 and chosen.acquisition.cost_cooling is False
    problem.resumable = False
    assert make("mf-ucb", problem, seed=0)._design_rule == "budget-share"


def test_recommendation_rules_are_logged_side_by_side(curve_run):
    problem, strategy, result = curve_run
    last = result.trials[-1]
    assert strategy.recommendation_rule == "evaluated"  # "auto" on a problem that does not declare noiseless_target
    assert set(last.other_recommendations) == {"observed", "posterior", "confident"}
    for rule, rec in last.other_recommendations.items():
        assert rec["rec_value"] == pytest.approx(problem.target_value(rec["config"]))
        assert rec["regret"] == pytest.approx(rec["rec_value"] - problem.optimum)
    at_target = [t.config for t, _ in strategy.successes(at_target=True)]
    assert last.recommendation in at_target  # the default rule, "evaluated"
    assert last.other_recommendations["confident"]["config"] in (last.recommendation, last.other_recommendations["posterior"]["config"])
    best_seen = min(result.trials, key=lambda t: t.value if t.status == "ok" and t.fidelity == EPOCHS else math.inf)
    assert last.other_recommendations["observed"]["config"] == best_seen.config


def test_auto_recommends_the_best_observed_target_value_where_the_problem_declares_it_noiseless():
    """On a noiseless target, "auto" is "observed": at every record its regret is that of the best
    target value seen so far, never above the "evaluated" rule's logged beside it; the search is
    the same whichever rule is chosen."""
    problem = CurveProblem()
    problem.noiseless_target = True
    strategy = make("mf-ei", problem, seed=1)
    assert strategy.recommendation_rule == "observed" and strategy.options()["recommendation"] == "auto"
    result = mfbo.minimize(problem, strategy, budget=5 * EPOCHS, seed=1)
    scored = [t for t in result.trials if t.best_value is not None and "evaluated" in t.other_recommendations]
    assert len(scored) > 5
    for t in scored:
        assert t.regret == pytest.approx(t.best_value - problem.optimum)
        assert t.regret <= t.other_recommendations["evaluated"]["regret"] + 1e-12
    evaluated = mfbo.minimize(CurveProblem(), "mf-ei", budget=5 * EPOCHS, seed=1, strategy_options={"recommendation": "evaluated"})
    assert [(t.config, t.fidelity) for t in evaluated.trials] == [(t.config, t.fidelity) for t in result.trials]
    assert [t.recommendation for t in evaluated.trials] == [
        t.other_recommendations["evaluated"]["config"] if "evaluated" in t.other_recommendations else t.recommendation for t in result.trials
    ]


def test_the_evaluated_rule_recommends_a_configuration_seen_at_the_target():
    problem = CurveProblem()
    result = mfbo.minimize(problem, "mf-ei", budget=5 * EPOCHS, seed=1)  # the default rule
    at_target = [t.config for t in result.trials if t.fidelity == EPOCHS and t.status == "ok"]
    assert all(t.recommendation in at_target for t in result.trials if t.recommendation is not None and at_target)
    assert set(result.trials[-1].other_recommendations) == {"observed", "posterior", "confident"}


def test_fidelity_scale_option():
    problem = CurveProblem()
    log = make("mf-kg", problem, fidelity_scale="log")
    assert log.fidelity.log and log._encode({"x": 0.5}, 3)[-1] == pytest.approx(math.log(3) / math.log(EPOCHS))
    assert make("mf-kg", problem, fidelity_scale="linear")._encode({"x": 0.5}, 3)[-1] == pytest.approx(2 / 26)
    with pytest.raises(ValueError, match=r"option fidelity_scale must be one of \['problem', 'linear', 'log'\], got 'cubic'"):
        make("mf-kg", problem, fidelity_scale="cubic")
    with pytest.raises(ValueError, match="fidelity_scale='log' needs a fidelity with a positive lower bound"):
        make("mf-kg", mfbo.problems.get("currin"), fidelity_scale="log")


def test_by_default_value_per_cost_acquisitions_use_the_ladder_where_runs_continue_and_boca_every_level():
    resumable, rungs = CurveProblem(), [0.0, 1 / 13, 4 / 13, 1.0]  # epochs 1, 3, 9, 27
    for name in ("mf-kg", "mf-ei", "mf-mes", "mf-gibbon"):
        assert make(name, resumable)._levels.tolist() == pytest.approx(rungs), name
        assert make(name, resumable, continuation=False)._levels is None, name  # no continuing: every epoch
        assert make(name, resumable, fidelity_levels="all")._levels is None, name
    assert make("mf-ucb", resumable)._levels is None
    assert make("mf-ucb", resumable, fidelity_levels="ladder")._levels.tolist() == pytest.approx(rungs)
    assert make("mf-kg", resumable).options()["fidelity_levels"] == "auto"


def test_ladder_fidelity_levels_restrict_every_choice_to_the_rungs():
    problem = CurveProblem()
    result = mfbo.minimize(problem, "mf-ei", budget=4 * EPOCHS, seed=0, strategy_options={"fidelity_levels": "ladder"})
    assert {t.fidelity for t in result.trials} <= {1, 3, 9, EPOCHS}
    assert len({t.fidelity for t in result.trials}) > 1


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("fidelity_levels", "some", r"option fidelity_levels must be one of \['auto', 'all', 'ladder'\], got 'some'"),
        ("design", "grid", r"option design must be one of \['auto', 'ladder', 'bracket', 'budget-share'\], got 'grid'"),
        ("recommendation", "best", r"option recommendation must be one of \['auto', 'observed', 'evaluated', 'posterior', 'confident'\], got 'best'"),
        ("continuation", "yes", "option continuation must be bool, got 'yes'"),
        ("verify", "yes", "option verify must be bool, got 'yes'"),
        ("augment_curves", -1, "option augment_curves must be an integer >= 0, got -1"),
    ],
)
def test_bad_options_name_the_option_and_the_allowed_values(option, value, message):
    with pytest.raises(ValueError, match=message):
        make("mf-kg", CurveProblem(), **{option: value})


def test_verification_evaluates_the_posterior_favourite_at_the_target_every_other_step():
    problem = CurveProblem()
    strategy = make("mf-ei", problem, seed=0)
    strategy.set_budget(30 * EPOCHS)
    grid = [{"x": float(x)} for x in np.linspace(0.0, 1.0, 8)]
    for config in grid:
        strategy.add_observation(config, 9, problem.evaluate(config, 9))
    strategy.add_observation({"x": 0.95}, EPOCHS, problem.evaluate({"x": 0.95}, EPOCHS))
    strategy._design = []  # as if the design were done
    mean, _ = strategy.predict(grid + [{"x": 0.95}])
    favourite = (grid + [{"x": 0.95}])[int(np.argmin(mean))]
    assert favourite != {"x": 0.95}
    trial = strategy.ask()
    assert trial.config == favourite and trial.fidelity == EPOCHS and trial.continues is not None  # resumed
    strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity, resume_from=9))
    strategy.ask()
    assert not strategy._verified_last  # the acquisition's step
    off = make("mf-ei", problem, seed=0, verify=False)
    off.set_budget(30 * EPOCHS)
    for config in grid:
        off.add_observation(config, 9, problem.evaluate(config, 9))
    off._design = []
    assert off._verification() is None


class FixedCurveProblem(CurveProblem):
    """The curve problem whose runs cannot be resumed (each evaluation trains from scratch)."""

    resumable = False


def test_verification_on_a_problem_that_cannot_resume_is_a_fresh_target_evaluation():
    # a value per unit cost prefers a fidelity just below the target, which the recommendation
    # (configurations evaluated at the target) can never name: the verification step is what
    # evaluates the favourite there, at full cost; BOCA's test takes the target by itself
    problem = FixedCurveProblem()
    grid = [{"x": float(x)} for x in np.linspace(0.0, 1.0, 8)]
    strategies = {name: make(name, problem, seed=0) for name in ("mf-kg", "mf-ucb")}
    for strategy in strategies.values():
        strategy.set_budget(30 * EPOCHS)
        for config in grid:
            strategy.add_observation(config, 9, problem.evaluate(config, 9))
        strategy.add_observation({"x": 0.95}, EPOCHS, problem.evaluate({"x": 0.95}, EPOCHS))
        strategy._design = []
    kg = strategies["mf-kg"]
    # the configuration the GP is confident beats the incumbent at the target (the "confident"
    # recommendation rule; the default rule keeps the only target evaluation, x = 0.95)
    favourite = kg.other_recommendations()["confident"]
    assert favourite != {"x": 0.95} and kg.recommend() == {"x": 0.95}
    trial = kg.ask()
    assert trial.config == favourite and trial.fidelity == EPOCHS and trial.continues is None
    kg.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    kg.ask()
    assert not kg._verified_last  # the acquisition's step
    assert strategies["mf-ucb"]._verification() is None


def test_the_last_target_evaluation_the_budget_affords_exploits_the_posterior():
    # once the budget affords one more target evaluation and not two, there is nothing left to
    # learn for: the fresh verification takes the "posterior" rule's configuration (not only one
    # the GP is confident about), even right after another verification
    problem = FixedCurveProblem()
    grid = [{"x": float(x)} for x in np.linspace(0.0, 1.0, 8)]
    spent = len(grid) * 9 + EPOCHS

    def strategy_with(left):
        kg = make("mf-kg", problem, seed=0)
        kg.set_budget(spent + left)
        for config in grid:
            kg.add_observation(config, 9, problem.evaluate(config, 9))
        kg.add_observation({"x": 0.95}, EPOCHS, problem.evaluate({"x": 0.95}, EPOCHS))
        kg._design, kg._verified_last = [], True
        return kg

    last = strategy_with(1.5 * EPOCHS)
    favourite = last.other_recommendations()["posterior"]
    assert favourite != {"x": 0.95}
    trial = last.ask()
    assert trial.config == favourite and trial.fidelity == EPOCHS and last._verified_last
    assert strategy_with(2.5 * EPOCHS)._verification() is None  # two more fit: never twice in a row
    assert strategy_with(0.5 * EPOCHS)._verification() is None  # none fits


def test_cost_cadence_verifies_once_the_acquisition_has_spent_what_a_target_evaluation_costs():
    # verify_cadence="cost": after a verification, the next fresh one waits until the trials
    # since have cost a target evaluation (27 epochs); "alternate" waits one step, whatever it cost
    problem = FixedCurveProblem()
    grid = [{"x": float(x)} for x in np.linspace(0.0, 1.0, 8)]
    strategies = {cadence: make("mf-kg", problem, seed=0, verify_cadence=cadence) for cadence in ("cost", "alternate")}
    for kg in strategies.values():
        kg.set_budget(30 * EPOCHS)
        for config in grid:
            kg.add_observation(config, 9, problem.evaluate(config, 9))
        kg._design = []
    kg = strategies["cost"]
    assert kg._fresh_favourite() == kg.other_recommendations()["confident"]  # no verification yet: the design paid
    trial = kg.ask()
    assert trial.fidelity == EPOCHS and kg._last_verification_id == trial.id
    kg.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    for x, epochs in ((0.11, 9), (0.42, 9), (0.77, 8)):  # 26 epochs: one short of a target evaluation
        kg.add_observation({"x": x}, epochs, problem.evaluate({"x": x}, epochs))
        assert kg._spent_since_verification() < EPOCHS and kg._fresh_favourite() is None
    kg.add_observation({"x": 0.6}, 1, problem.evaluate({"x": 0.6}, 1))
    assert kg._spent_since_verification() == EPOCHS
    assert kg._fresh_favourite() == kg.other_recommendations()["confident"]
    alternate = strategies["alternate"]
    alternate._verified_last = False  # one step after a verification
    assert alternate._fresh_favourite() == alternate.other_recommendations()["confident"]
    with pytest.raises(ValueError, match=r"verify_cadence.*'alternate'.*'cost'.*'weekly'"):
        make("mf-kg", problem, verify_cadence="weekly")


# -- the bracket design -----------------------------------------------------------------------------
def test_bracket_design_starts_at_the_lowest_rung_the_budget_pays_for():
    costs = [1.0, 3.0, 9.0, 27.0]
    # from scratch, 27 + 9 + 3 + 1 configurations cost 27 * 1 + 9 * 3 + 3 * 9 + 27 = 108; resumed,
    # the promoted ones pay the increments: 27 + 9 * 2 + 3 * 6 + 18 = 81
    assert _bracket_cost([27, 9, 3, 1], costs, resumable=False) == 108
    assert _bracket_cost([27, 9, 3, 1], costs, resumable=True) == 81
    assert bracket_design(costs, 81, min_points=3, resumable=True) == [27, 9, 3, 1]
    assert bracket_design(costs, 162, min_points=3, resumable=True) == [54, 18, 6, 2]  # scale 2
    # half the standard bracket from the cheapest rung (13, 4, 1, 1: 13 + 12 + 9 + 27 = 61 from
    # scratch) is the least the design accepts before it starts a rung higher (5, 2, 1: 60)
    assert bracket_design(costs, 61, min_points=3, resumable=False) == [13, 4, 1, 1]
    assert bracket_design(costs, 60, min_points=3, resumable=False) == [0, 5, 2, 1]
    assert bracket_design(costs, 10, min_points=3, resumable=False) == [3, 0, 0, 1]  # no bracket fits: the best of 3 to the target
    assert bracket_design(costs, 81, min_points=40, resumable=True) == [40, 9, 3, 1]  # topped up
    assert bracket_design(costs, None, min_points=3, resumable=True) == [27, 9, 3, 1]
    # three configurations reach the target: 27 + 9 * 2 + 3 * 6 + 3 * 18 = 117 resumed
    assert bracket_design(costs, 117, min_points=3, resumable=True, min_top=3) == [27, 9, 3, 3]


def _tell(strategy, trial, value):
    observation = Observation(value=value, cost=1.0) if value is not None else Observation.failure("diverged", cost=1.0)
    strategy.tell(trial, observation)


def test_the_bracket_design_promotes_the_best_of_each_rung_by_continuation():
    problem = CurveProblem()
    strategy = make("mf-ucb", problem, seed=0, design="bracket", init_fraction=0.25, min_target_init=1)
    strategy.set_budget(12 * EPOCHS)  # design budget 81: the standard bracket 27, 9, 3, 1
    bottom = [strategy.ask() for _ in range(27)]
    assert {t.fidelity for t in bottom} == {1} and len({t.config["x"] for t in bottom}) == 27
    values = [0.5 + 0.01 * i for i in range(27)]
    values[3] = None  # a failure is never promoted
    values[20] = values[7] = 0.0  # a tie: the earlier trial first
    values[21] = 0.001
    # all results but one: the rung is not complete, so nothing is promoted yet
    for trial, value in zip(bottom[:-1], values):
        _tell(strategy, trial, value)
    waiting = strategy.ask()
    assert waiting.continues is None and not strategy._design
    _tell(strategy, bottom[-1], values[-1])
    _tell(strategy, waiting, 1.0)
    promoted = [strategy.ask() for _ in range(9)]
    expected = [7, 20, 21, 0, 1, 2, 4, 5, 6]  # ids of the nine best successes at epoch 1
    assert [t.continues for t in promoted] == [bottom[i].id for i in expected]
    assert all(t.fidelity == 3 and t.config == bottom[i].config for t, i in zip(promoted, expected))
    for trial, value in zip(promoted, [0.3, 0.2, 0.1, 0.9, 0.8, None, 0.7, 0.6, 0.5]):
        _tell(strategy, trial, value)
    third = [strategy.ask() for _ in range(3)]
    assert [t.continues for t in third] == [promoted[i].id for i in (2, 1, 0)] and {t.fidelity for t in third} == {9}
    for trial, value in zip(third, [0.05, 0.04, 0.06]):
        _tell(strategy, trial, value)
    top = strategy.ask()
    assert top.continues == third[1].id and top.fidelity == EPOCHS
    assert strategy._design_size == 27 + 9 + 3 + 1 and not strategy._promotions


def test_the_bracket_design_restarts_promotions_where_runs_cannot_be_continued():
    problem = CurveProblem()
    problem.resumable = False
    result = mfbo.minimize(problem, "mf-ucb", budget=12 * EPOCHS, seed=0, strategy_options={"design": "bracket", "init_fraction": 0.5})
    counts = bracket_design([1.0, 3.0, 9.0, 27.0], 0.5 * 12 * EPOCHS, min_points=3, resumable=False, min_top=3)
    assert counts == [27, 9, 3, 3]  # 27 + 9 * 3 + 3 * 9 + 3 * 27 = 162, from scratch
    design = result.trials[: sum(counts)]
    assert [t.fidelity for t in design] == [r for r, n in zip([1, 3, 9, EPOCHS], counts) for _ in range(n)]
    assert all(t.continues is None for t in result.trials)
    for low, high, n in ((1, 3, counts[1]), (3, 9, counts[2]), (9, EPOCHS, counts[3])):
        best = sorted((t for t in design if t.fidelity == low), key=lambda t: (t.value, t.id))[:n]
        assert [t.config for t in design if t.fidelity == high] == [t.config for t in best]  # run again from scratch



def test_auto_cost_model_extrapolates_costs_up_the_fidelity_where_runs_continue():
    # where runs are continued the learned cost prices increments along one configuration's
    # fidelity axis, so "auto" gives it the power-law mean; elsewhere the constant mean stays
    trend = make("mf-ucb", CurveProblem(), cost_model="auto")._cost_trend
    assert trend is not None and (trend.low, trend.target) == (1.0, float(EPOCHS))
    assert make("mf-kg", CurveProblem())._cost_trend is not None
    assert make("mf-ucb", FixedCurveProblem())._cost_trend is None
    assert make("mf-ucb", CurveProblem(), continuation=False)._cost_trend is None
    assert make("mf-ucb", CurveProblem(), cost_model="learned")._cost_trend is None
    assert make("mf-ucb", FixedCurveProblem(), cost_model="learned-trend")._cost_trend is not None

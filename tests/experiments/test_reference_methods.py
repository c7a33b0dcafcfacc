"""experiments/reference_methods.py (DEHB, SMAC3 and Optuna as mfbo strategies) and the helpers of
experiments/bench_real.py.

The reference methods need the ``reference`` extra; each of their tests skips when its package does
not import. They run on ``digits-mlp-table`` (a recorded table shipped with mfbo: resumable, with a
cost model, no data download) and ``quadratic-ladder`` (levels, not resumable).
"""

import numpy as np
import pytest
import reference_methods as rm

import mfbo
from mfbo.loop import TIMING_FIELDS
from mfbo.space import Categorical, Fidelity, Float, InCondition, Int, Space

PACKAGES = {"dehb-ref": "dehb", "smac-mf": "smac", "optuna-tpe-hb": "optuna"}
#: digits-mlp-table: the mean target-fidelity cost (bench_real.mean_full_cost; budgets are multiples of it).
DIGITS_FULL_COST = 1.43


def run(name, problem, budget, seed=0, **options):
    pytest.importorskip(PACKAGES[name])
    return mfbo.minimize(problem, rm.make(name, problem, seed=seed, **options), budget)


def records(result):
    return [{k: v for k, v in t.to_dict().items() if k not in TIMING_FIELDS} for t in result.trials]


# Budgets and spaces ----------------------------------------------------------------------------------
def test_the_resource_scale_is_proportional_to_the_fidelity_and_ends_at_the_target():
    epochs = rm.ResourceScale(Fidelity("epoch", 1, 52, integer=True))
    assert epochs.max_resource == 52 and [epochs.to_fidelity(r) for r in (1, 1.93, 5.78, 17.3, 52)] == [1, 2, 6, 17, 52]
    trainsize = rm.ResourceScale(Fidelity("trainsize", 0.03, 1.0))
    assert trainsize.max_resource == 33 and trainsize.to_fidelity(33) == 1.0 and trainsize.to_fidelity(1) == pytest.approx(1 / 33)
    levels = rm.ResourceScale(Fidelity("level", levels=[1, 2, 3, 4, 5]))
    assert levels.max_resource == 5 and [levels.to_fidelity(r) for r in (1, 1.67, 3, 5)] == [1, 2, 3, 5]
    assert rm.ResourceScale(Fidelity("z", 0.0, 1.0)).max_resource == rm.RESOURCES_WITHOUT_UNIT
    with pytest.raises(ValueError, match=r"fidelity 'f': target / low = 1.5 leaves no budget range for Hyperband"):
        rm.ResourceScale(Fidelity("f", 1.0, 1.5))


def conditional_space():
    return Space({"kind": Categorical(("linear", "tree")), "lr": Float(1e-4, 1.0, log=True), "depth": Int(1, 15),
                  "width": Int(16, 512, log=True), "order": Categorical((1, 2, 3), ordered=True)},
                 conditions={"depth": InCondition("kind", ["tree"]), "width": InCondition("depth", [1, 2, 3])})


def test_configspace_samples_are_valid_configurations_with_only_the_active_parameters():
    pytest.importorskip("ConfigSpace")
    space = conditional_space()
    cs = rm.configspace(space, seed=0)
    configs = [rm.from_configspace(c, space) for c in cs.sample_configuration(200)]
    assert all(space.validate(c) == c for c in configs)
    assert {c["kind"] for c in configs} == {"linear", "tree"} and {c["order"] for c in configs} == {1, 2, 3}
    assert all(("depth" in c) == (c["kind"] == "tree") for c in configs)
    assert any("width" in c for c in configs) and all(("width" in c) == (c.get("depth", 99) <= 3) for c in configs)


def test_optuna_suggests_conditional_parameters_only_when_active():
    optuna = pytest.importorskip("optuna")
    space = conditional_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    configs = [rm.suggest_config(study.ask(), space) for _ in range(100)]
    assert all(space.validate(c) == c for c in configs)
    assert all(("depth" in c) == (c["kind"] == "tree") for c in configs) and any("width" in c for c in configs)


# Runs -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PACKAGES))
def test_a_run_keeps_the_budget_uses_fidelities_in_range_up_to_the_target_and_is_reproducible(name):
    problem = mfbo.problems.get("digits-mlp-table")
    budget = 5 * DIGITS_FULL_COST
    first, again = run(name, problem, budget), run(name, problem, budget)
    assert first.total_cost <= budget and first.stop_reason.startswith("budget")
    fidelities = {t.fidelity for t in first.trials}
    assert problem.target_fidelity in fidelities and all(1 <= f <= 50 and f == int(f) for f in fidelities)
    assert records(first) == records(again)
    other = mfbo.minimize(problem, rm.make(name, problem, seed=1), budget, max_trials=10)
    assert records(first)[:10] != records(other)
    assert first.spec["strategy"] == name and first.spec["options"]["package"].startswith(PACKAGES[name])


@pytest.mark.parametrize("name", list(PACKAGES))
def test_continuations_on_a_resumable_problem_are_charged_only_the_increment(name):
    problem = mfbo.problems.get("digits-mlp-table")
    result = run(name, problem, 4.5 * DIGITS_FULL_COST)
    by_id = {t.id: t for t in result.trials}
    continued = [t for t in result.trials if t.continues is not None]
    assert continued, "a Hyperband-based method promotes some configurations"
    for t in continued:
        before = by_id[t.continues]
        assert t.config == before.config and t.fidelity > before.fidelity
        assert t.cost == pytest.approx(problem.increment_cost(t.config, t.fidelity, before.fidelity))
        assert t.cost < problem.cost(t.config, t.fidelity)


@pytest.mark.parametrize("name", ["dehb-ref", "smac-mf"])
def test_without_continue_promotions_every_evaluation_is_charged_from_scratch(name):
    problem = mfbo.problems.get("digits-mlp-table")
    result = run(name, problem, 3 * DIGITS_FULL_COST, continue_promotions=False)
    assert all(t.continues is None and t.cost == pytest.approx(problem.cost(t.config, t.fidelity)) for t in result.trials)
    assert result.spec["options"]["continue_promotions"] is False


@pytest.mark.parametrize("name", list(PACKAGES))
def test_on_a_problem_that_cannot_resume_a_continuation_pays_the_full_cost(name):
    problem = mfbo.problems.get("quadratic-ladder")
    result = run(name, problem, 5.0)  # a target evaluation costs 0.5
    assert result.total_cost <= 5.0 and {t.fidelity for t in result.trials} <= set(problem.fidelity.levels)
    assert any(t.continues is not None for t in result.trials)
    assert all(t.cost == pytest.approx(problem.cost(t.config, t.fidelity)) for t in result.trials)


def test_optuna_runs_each_trial_up_the_rung_steps_of_the_first_bracket():
    problem = mfbo.problems.get("digits-mlp-table")
    pytest.importorskip("optuna")
    strategy = rm.make("optuna-tpe-hb", problem, seed=0)
    assert strategy.steps == [1, 3, 9, 27, 50]
    result = mfbo.minimize(problem, strategy, 5 * DIGITS_FULL_COST)
    by_id = {t.id: t for t in result.trials}
    for t in result.trials:
        expected = 1 if t.continues is None else strategy.steps[strategy.steps.index(by_id[t.continues].fidelity) + 1]
        assert t.fidelity == expected


@pytest.mark.parametrize("name", list(PACKAGES))
def test_the_recommendation_is_the_best_observed_at_the_highest_fidelity_reached(name):
    problem = mfbo.problems.get("digits-mlp-table")
    pytest.importorskip(PACKAGES[name])
    early = mfbo.minimize(problem, rm.make(name, problem, seed=0), 100.0, max_trials=3)
    top = max(t.fidelity for t in early.trials)
    assert top < problem.target_fidelity
    assert early.recommendation == min((t for t in early.trials if t.fidelity == top), key=lambda t: t.value).config
    full = run(name, problem, 5 * DIGITS_FULL_COST)
    at_target = [t for t in full.trials if t.fidelity == problem.target_fidelity]
    assert full.recommendation == min(at_target, key=lambda t: t.value).config
    assert full.recommendation_value == problem.target_value(full.recommendation)


def test_bad_options_and_problems_are_named():
    with pytest.raises(ValueError, match=r"strategy 'optuna-tpe-hb': needs a problem with a fidelity"):
        rm.OptunaTPEHyperbandStrategy(Space({"x": Float(0.0, 1.0)}), None)
    problem = mfbo.problems.get("digits-mlp-table")
    with pytest.raises(ValueError, match=r"strategy 'dehb-ref': eta must be an integer >= 2, got 1"):
        rm.DEHBStrategy(problem.space, problem.fidelity, eta=1)
    with pytest.raises(ValueError, match=r"unknown reference method 'hyperband'; known: dehb-ref, smac-mf, optuna-tpe-hb"):
        rm.make("hyperband", problem)


def test_a_reference_method_cannot_be_told_a_trial_it_did_not_ask_for():
    pytest.importorskip("optuna")
    problem = mfbo.problems.get("digits-mlp-table")
    strategy = rm.make("optuna-tpe-hb", problem)
    config = problem.space.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"optuna can only be told the trials it asked for"):
        strategy.add_observation(config, 50, problem.evaluate(config, 50))


def test_unavailable_says_in_one_line_why_a_method_cannot_run(monkeypatch):
    monkeypatch.setattr(rm.DEHBStrategy, "module", "no_such_module_for_dehb")
    reason = rm.unavailable("dehb-ref")
    assert reason.startswith("dehb-ref: skipped, package 'dehb' does not import (No module named 'no_such_module_for_dehb')")
    assert reason.endswith("pip install -e '.[reference]'") and "\n" not in reason
    pytest.importorskip("optuna")
    assert rm.unavailable("optuna-tpe-hb") is None

"""experiments/bandit_references.py (the bandit methods' reference packages as mfbo strategies) and
the arithmetic and tables of experiments/bench_reference.py.

A test of a reference skips when its package does not import (the ``reference`` extra); a test
of one of mfbo's bandit strategies skips while it is not registered yet.
"""

import math

import bandit_references as br
import bench_reference as bb
import numpy as np
import pytest

import mfbo
from mfbo.problems.base import Problem
from mfbo.space import Fidelity, Float, Space
from mfbo.trial import Observation


def need(label):
    reason = bb.unavailable(label)
    if reason:
        pytest.skip(reason)


def counts(label, max_evaluations=None):
    need(label)
    problem = bb.count_problem()
    return bb.cycle_counts(bb.make_strategy(label, problem, seed=0), problem, max_evaluations)


# a. One Hyperband cycle, eta = 3, R = 81, r = 1 ----------------------------------------------------
def test_the_paper_tables_are_li_et_al_table_1_summed_over_brackets():
    brackets = {81: (1, 3, 9, 27, 81), 34: (3, 9, 27, 81), 15: (9, 27, 81), 8: (27, 81), 5: (81,)}
    total = {}
    for n, resources in brackets.items():
        for i, r in enumerate(resources):
            total[r] = total.get(r, 0) + math.floor(n / 3**i)
    assert total == bb.PAPER_CYCLE and sum(bb.PAPER_CYCLE.values()) == 206 == bb.ASHA_EVALUATIONS
    assert bb.PAPER_SH_BRACKET == {r: 81 // r for r in (1, 3, 9, 27, 81)}


@pytest.mark.parametrize("label, expected", [
    ("hyperband-smac", bb.PAPER_CYCLE), ("sh-smac", bb.PAPER_SH_BRACKET),
    ("hyperband-hpbandster", bb.HPBANDSTER_CYCLE), ("dehb-ref", bb.HPBANDSTER_CYCLE),
])
def test_the_references_evaluate_their_documented_bracket_sizes_over_one_cycle(label, expected):
    assert counts(label) == expected


@pytest.mark.parametrize("label, reference", [
    ("hyperband", "hyperband-smac"), ("sh", "sh-smac"), ("dehb:bracket_sizes=dehb", "dehb-ref"),
    ("bohb:bracket_sizes=hpbandster", "bohb-hpbandster"),
])
def test_ours_evaluates_exactly_what_its_reference_does_over_one_cycle(label, reference):
    assert counts(label) == counts(reference)


def test_a_cycle_ends_before_the_next_cycles_first_new_configuration_at_the_bottom():
    fidelities = iter([1, 1, 3, 1, 9])  # the fifth ask is never reached

    class Scripted(mfbo.strategies.Strategy):
        name = "scripted"

        def _suggest(self):
            return self.space.sample(self.rng), next(fidelities)

    problem = bb.count_problem()
    assert bb.cycle_counts(Scripted(problem.space, problem.fidelity), problem) == {1: 2, 3: 1}


def test_asha_counts_are_taken_over_a_fixed_number_of_evaluations():
    assert sum(counts("asha-synetune", 50).values()) == 50


# The wrappers -------------------------------------------------------------------------------------------
def records(result):
    return [(t.config, t.fidelity, t.continues, t.value) for t in result.trials]


@pytest.mark.parametrize("label", ["bohb-hpbandster", "asha-synetune", "asha-optuna", "hyperband-smac"])
def test_a_reference_run_keeps_the_budget_and_is_reproducible_and_leaves_numpys_global_state(label):
    need(label)
    problem = mfbo.problems.get("digits-mlp-table")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    runs = [mfbo.minimize(problem, bb.make_strategy(label, problem, seed=0), 8.0) for _ in range(2)]
    assert np.array_equal(np.random.get_state()[1], before)
    assert records(runs[0]) == records(runs[1]) and runs[0].total_cost <= 8.0
    assert problem.target_fidelity in {t.fidelity for t in runs[0].trials}


def test_bohb_hpbandster_proposes_from_its_kdes_once_it_has_enough_points():
    need("bohb-hpbandster")
    problem = bb.count_problem(27)
    strategy = bb.make_strategy("bohb-hpbandster", problem, seed=0)
    first = [strategy.ask() for _ in range(27)]  # the first bracket's bottom rung, before any result
    assert strategy.model_based_picks() == 0
    for trial in first:
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    for _ in range(60):
        trial = strategy.ask()
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    assert strategy.model_based_picks() > 10  # ConfigSpace 1.x did not make it fall back to random


def test_synetune_asha_evaluates_its_rung_milestones_and_the_target_only():
    need("asha-synetune")
    problem = mfbo.problems.get("digits-mlp-table")
    strategy = bb.make_strategy("asha-synetune", problem, seed=0)
    assert strategy.steps == [1, 3, 9, 27, 50]
    result = mfbo.minimize(problem, strategy, 5.0)
    assert {t.fidelity for t in result.trials} <= {1, 3, 9, 27, 50}
    assert all(t.continues is not None for t in result.trials if t.fidelity > 1)


def flaky_problem() -> Problem:
    """Fails for x > 0.6; otherwise (x - 0.3)^2 + 1 / epochs."""
    def fn(config, epochs):
        if config["x"] > 0.6:
            return Observation.failure("diverged", cost=epochs / 27)
        return (config["x"] - 0.3) ** 2 + 1.0 / epochs

    return Problem.from_function(fn, Space(x=Float(0.0, 1.0)), Fidelity("epochs", 1, 27, integer=True), cost=lambda e: e / 27)


@pytest.mark.parametrize("label", ["hyperband-hpbandster", "bohb-hpbandster", "asha-synetune"])
def test_a_failed_evaluation_is_never_continued_and_the_run_goes_on(label):
    need(label)
    problem = flaky_problem()
    result = mfbo.minimize(problem, bb.make_strategy(label, problem, seed=1), 15.0)
    failed = {t.id for t in result.trials if t.error is not None}
    assert failed and not any(t.continues in failed for t in result.trials)
    assert result.best_value is not None and result.total_cost > 10.0


def test_the_private_numpy_state_is_reproducible_and_restores_the_callers():
    state = br.PrivateGlobalNumpyState(5)
    np.random.seed(0)
    with state.active():
        a = np.random.rand(3)
    outside = np.random.rand()
    np.random.seed(0)
    assert outside == np.random.rand()
    with br.PrivateGlobalNumpyState(5).active():
        assert np.array_equal(np.random.rand(3), a)
    with state.active():
        assert not np.array_equal(np.random.rand(3), a)  # the private stream went on


# b, c. Statistics and tables -------------------------------------------------------------------------------
def test_mann_whitney_does_not_reject_equal_samples_and_rejects_separated_ones():
    assert bb.mann_whitney([1.0] * 10, [1.0] * 10) == 1.0
    assert bb.mann_whitney(list(range(10)), list(range(100, 110))) < 0.001
    assert bb.mann_whitney([], [1.0]) is None


def row(problem, strategy, seed, regret, overhead=1.0, n_trials=10):
    return {"problem": problem, "strategy": strategy, "seed": seed, "regret_100": regret, "overhead": overhead, "n_trials": n_trials}


def test_regret_rows_pair_ours_and_variants_with_the_reference():
    rows = ([row("p", "hyperband", s, s) for s in range(10)] + [row("p", "hyperband-smac", s, s + 0.5) for s in range(10)]
            + [row("p", "dehb:bracket_sizes=dehb", s, 100 + s) for s in range(10)] + [row("p", "dehb-ref", s, s) for s in range(10)]
            + [row("p", "random", s, 1.0) for s in range(10)])
    table = {r["ours"]: r for r in bb.regret_rows(rows, ["p"])}
    assert set(table) == {"hyperband", "dehb:bracket_sizes=dehb"}
    assert table["hyperband"]["reference"] == "hyperband-smac" and table["hyperband"]["passes"]
    assert table["hyperband"]["ours_regret"] == "4.5 [2.25, 6.75]" and table["hyperband"]["random"] == "1 [1, 1]"
    assert table["dehb:bracket_sizes=dehb"]["reference"] == "dehb-ref" and table["dehb:bracket_sizes=dehb"]["passes"] is False


def test_overhead_per_suggestion_is_total_seconds_over_total_trials():
    rows = [row("p", "sh", 0, 0.0, overhead=1.0, n_trials=10), row("q", "sh", 0, 0.0, overhead=3.0, n_trials=30)]
    assert bb.overhead_per_suggestion(rows, "sh") == pytest.approx(0.1)
    assert math.isnan(bb.overhead_per_suggestion(rows, "asha"))

"""The bandit schedule (issue #14): Hyperband's bracket table, the budget of one cycle, the map
from fidelities to resources and the bookkeeping of one synchronous bracket."""

import math

import pytest

from mfbo import Fidelity
from mfbo.strategies.bandits.schedule import (
    Bracket, BracketRun, Resources, floor_log, floored_brackets, hyperband_brackets, rank_for_promotion, successive_halving_rungs,
)
from mfbo.trial import Observation

#: Li et al. (JMLR 2018), Table 1: eta = 3, R = 81, r = 1; per bracket s, (n_i, r_i) per rung.
PAPER_TABLE = {
    4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    3: [(34, 3), (11, 9), (3, 27), (1, 81)],
    2: [(15, 9), (5, 27), (1, 81)],
    1: [(8, 27), (2, 81)],
    0: [(5, 81)],
}


def table(rungs):
    return [(rung.n_configs, round(rung.resource, 9)) for rung in rungs]


def test_hyperband_table_of_the_paper():
    brackets = hyperband_brackets(3, 1, 81)
    assert [b.s for b in brackets] == [4, 3, 2, 1, 0]
    for bracket in brackets:
        assert table(bracket.rungs) == PAPER_TABLE[bracket.s]
        assert bracket.rungs[-1].resource == 81.0  # exactly R


def test_budget_of_one_full_cycle_by_hand():
    brackets = hyperband_brackets(3, 1, 81)
    # from scratch: sum n_i r_i per bracket
    scratch = [81 * 1 + 27 * 3 + 9 * 9 + 3 * 27 + 1 * 81, 34 * 3 + 11 * 9 + 3 * 27 + 81, 15 * 9 + 5 * 27 + 81, 8 * 27 + 2 * 81, 5 * 81]
    assert scratch == [405, 363, 351, 378, 405]
    assert [b.total_resource(resumable=False) for b in brackets] == pytest.approx(scratch)
    assert sum(b.total_resource(False) for b in brackets) == pytest.approx(1902)
    # resumed: rung i pays only r_i - r_{i-1}
    resumed = [81 * 1 + 27 * 2 + 9 * 6 + 3 * 18 + 1 * 54, 34 * 3 + 11 * 6 + 3 * 18 + 54, 15 * 9 + 5 * 18 + 54, 8 * 27 + 2 * 54, 5 * 81]
    assert resumed == [297, 276, 279, 324, 405]
    assert [b.total_resource(resumable=True) for b in brackets] == pytest.approx(resumed)
    assert sum(b.total_resource(True) for b in brackets) == pytest.approx(1581)


def test_floored_brackets_are_hpbandsters(monkeypatch):
    """hpbandster 0.7.4's HyperBand (and dehb 0.1.1) start bracket s with
    floor((s_max + 1) / (s + 1)) * eta**s configurations; its master is built with a stub
    dispatcher (no name server) and asked for one cycle of iterations."""
    pytest.importorskip("hpbandster")
    ConfigSpace = pytest.importorskip("ConfigSpace")
    import hpbandster.core.master
    from hpbandster.optimizers.hyperband import HyperBand

    class NoDispatcher:
        def __init__(self, *args, **kwargs):
            pass

        def run(self):
            pass

    monkeypatch.setattr(hpbandster.core.master, "Dispatcher", NoDispatcher)
    space = ConfigSpace.ConfigurationSpace(seed=0)
    space.add(ConfigSpace.UniformFloatHyperparameter("x", 0.0, 1.0))
    reference = HyperBand(configspace=space, eta=3, min_budget=1, max_budget=81, run_id="test")
    iterations = [reference.get_next_iteration(i) for i in range(5)]
    expected = [[(n, round(float(b), 9)) for n, b in zip(it.num_configs, it.budgets)] for it in iterations]
    assert [table(b.rungs) for b in floored_brackets(3, 1, 81)] == expected
    assert [e[0][0] for e in expected] == [81, 27, 9, 6, 5]


def test_floor_log_is_exact_where_floats_are_not():
    assert math.floor(math.log(243) / math.log(3)) == 4  # float error: log(243)/log(3) = 4.999...
    assert floor_log(243, 3) == 5 and floor_log(81, 3) == 4 and floor_log(80.9, 3) == 3
    assert floor_log(1000, 10) == 3 and floor_log(1, 3) == 0 and floor_log(52, 3) == 3


def test_brackets_stay_anchored_at_the_target_when_the_ratio_is_not_a_power_of_eta():
    brackets = hyperband_brackets(3, 1, 50)  # s_max = 3; bottom resource 50/27 > 1
    assert [b.s for b in brackets] == [3, 2, 1, 0]
    assert [r.resource for r in brackets[0].rungs] == pytest.approx([50 / 27, 50 / 9, 50 / 3, 50])
    assert [r.n_configs for r in brackets[0].rungs] == [27, 9, 3, 1]


def test_successive_halving_rungs_keep_at_least_one_configuration():
    rungs = successive_halving_rungs(5, 3, 1, 27)
    assert table(rungs) == [(5, 1), (1, 3), (1, 9), (1, 27)]


def test_resources_of_integer_continuous_and_level_fidelities():
    epochs = Resources(Fidelity("epochs", 1, 50, integer=True))
    assert (epochs.r_min, epochs.r_max) == (1.0, 50.0)
    assert [epochs.fidelity_value(r) for r in (50 / 27, 50 / 9, 50 / 3, 50.0, 3.0000000001)] == [2, 6, 17, 50, 3]
    fraction = Resources(Fidelity("subset", 0.0, 1.0), r_min=1 / 9)
    assert [fraction.fidelity_value(r) for r in (1 / 9, 1 / 3, 1.0)] == pytest.approx([1 / 9, 1 / 3, 1.0])
    levels = Resources(Fidelity("level", levels=[1, 2, 3, 4, 5]))
    assert [levels.fidelity_value(r) for r in (5 / 9, 5 / 3, 5.0)] == [1, 2, 5]


@pytest.mark.parametrize("fidelity, r_min", [
    (Fidelity("epochs", 1, 50, integer=True), 51),
    (Fidelity("epochs", 1, 50, integer=True), 0.5),
    (Fidelity("subset", 0.0, 1.0), None),  # the default r_min (low = 0) is no resource
    (Fidelity("subset", 0.0, 1.0), "0.5"),
])
def test_bad_r_min_is_one_error_naming_it(fidelity, r_min):
    with pytest.raises(ValueError, match="option r_min must be"):
        Resources(fidelity, r_min, strategy="hyperband")


def test_no_fidelity_is_one_error_naming_the_strategy():
    with pytest.raises(ValueError, match="strategy 'sh' needs a multi-fidelity problem"):
        Resources(None, strategy="sh")


def ok(value):
    return Observation(value=value, cost=1.0)


def test_ranking_breaks_ties_by_trial_id_and_leaves_failures_out():
    results = [(4, ok(0.5)), (2, ok(0.5)), (7, Observation.failure("boom")), (1, ok(0.9)), (3, ok(0.1))]
    assert rank_for_promotion(results) == [3, 2, 4, 1]


def test_bracket_run_waits_for_its_rung_then_promotes_the_best():
    bracket = hyperband_brackets(3, 1, 9)[0]  # 9 @ 1, 3 @ 3, 1 @ 9
    run = BracketRun(bracket, Resources(Fidelity("epochs", 1, 9, integer=True)))
    jobs = [run.next_job() for _ in range(9)]
    assert [j.fidelity for j in jobs] == [1] * 9 and run.next_job() is None
    for i, job in enumerate(jobs):
        run.started(job, i)
    values = [0.5, 0.2, float("nan"), 0.9, 0.2, 0.7, 0.6, 0.8, 0.4]
    for i, v in enumerate(values[:-1]):
        run.record(i, ok(v) if v == v else Observation.failure("nan"))
        assert run.next_job() is None  # the rung waits for its last result
    run.record(8, ok(values[-1]))
    promoted = [run.next_job() for _ in range(3)]
    assert [(j.continues, j.fidelity, j.rung) for j in promoted] == [(1, 3, 1), (4, 3, 1), (8, 3, 1)]
    for trial_id, job in zip((10, 11, 12), promoted):
        run.started(job, trial_id)
    run.record(10, ok(0.3))
    run.record(11, Observation.failure("diverged"))  # a failed continuation goes no further
    assert run.next_job() is None
    run.record(12, ok(0.25))
    final = run.next_job()
    assert (final.continues, final.fidelity) == (12, 9) and run.next_job() is None
    run.started(final, 13)
    assert not run.finished
    run.record(13, ok(0.2))
    assert run.finished


def test_bracket_run_carries_a_result_over_when_two_rungs_round_to_one_level():
    rungs = successive_halving_rungs(4, 2, 1, 4)  # 4 @ 1, 2 @ 2, 1 @ 4
    run = BracketRun(Bracket(2, rungs), Resources(Fidelity("level", levels=[1, 4])))
    jobs = [run.next_job() for _ in range(4)]
    assert [j.fidelity for j in jobs] == [1] * 4
    for i, job in enumerate(jobs):
        run.started(job, i)
        run.record(i, ok([0.4, 0.1, 0.3, 0.2][i]))
    # rung 1 (resource 2) rounds up to level 4 as rung 2 does; the two best are evaluated at 4
    promoted = [run.next_job() for _ in range(2)]
    assert [(j.continues, j.fidelity) for j in promoted] == [(1, 4), (3, 4)]
    for trial_id, job in zip((4, 5), promoted):
        run.started(job, trial_id)
        run.record(trial_id, ok([0.15, 0.05][trial_id - 4]))
    assert run.next_job() is None and run.finished  # rung 2 keeps the better of the two, no new trial
    assert [s.trial_id for s in run.rungs[2]] == [5]

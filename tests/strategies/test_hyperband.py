"""Successive halving, Hyperband and ASHA (issue #14): promotions on scripted results (ties,
failed trials, failed continuations), one full Hyperband cycle through the run loop (counts per
fidelity and its budget, resumed and from scratch), several workers, the recommendation rule and
ASHA's benefit with four simulated workers."""

from collections import Counter

import pytest

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo.strategies import make
from mfbo.strategies.bandits import ASHA, Hyperband, SuccessiveHalving

SPACE = Space(x=Float(0.0, 1.0))
NINE = Fidelity("epochs", 1, 9, integer=True)
FAIL = float("nan")


class Epochs(Problem):
    """Value ``x + 1/epochs``, cost one unit per epoch (``1 + 9 x**4`` units when ``slow_tail``:
    a few configurations train much slower, as real ones do); resuming charges only the new
    epochs when ``resumable``."""

    def __init__(self, top: int = 81, resumable: bool = False, slow_tail: bool = False):
        super().__init__(f"epochs-{top}", SPACE, Fidelity("epochs", 1, top, integer=True), optimum=1 / top)
        self.resumable, self.slow_tail = resumable, slow_tail

    def _evaluate(self, config, fidelity):
        return Observation(value=config["x"] + 1 / fidelity, cost=self.cost(config, fidelity))

    def _resume(self, config, fidelity, resume_from):
        return Observation(value=config["x"] + 1 / fidelity, cost=self.cost(config, fidelity) - self.cost(config, resume_from))

    def cost(self, config, fidelity=None):
        epochs = self.target_fidelity if fidelity is None else fidelity
        return float(epochs) * (1 + 9 * config["x"] ** 4 if self.slow_tail else 1.0)

    def target_value(self, config):
        return config["x"] + 1 / self.target_fidelity


def tell(strategy, trial, value):
    obs = Observation.failure("diverged") if value != value else Observation(value=value, cost=float(trial.fidelity))
    strategy.tell(trial, obs)


def expect(strategy, continues, fidelity):
    """Ask once; the trial must continue ``continues`` (``None``: a new configuration) at ``fidelity``."""
    trial = strategy.ask()
    assert (trial.continues, trial.fidelity) == (continues, fidelity), trial
    return trial


# -- successive halving on scripted results -----------------------------------------------------------
def test_sh_promotes_the_top_third_breaking_ties_by_id_and_never_a_failure():
    sh = SuccessiveHalving(SPACE, NINE, seed=0)  # n = 9 at 1 epoch, 3 at 3, 1 at 9
    assert sh.n == 9
    bottom = [expect(sh, None, 1) for _ in range(9)]
    values = [0.5, FAIL, 0.3, 0.3, 0.9, 0.1, FAIL, 0.3, 0.8]  # three-way tie for places 2 and 3
    for trial, value in zip(bottom, values):
        tell(sh, trial, value)
    first, second, third = expect(sh, 5, 3), expect(sh, 2, 3), expect(sh, 3, 3)  # 7 loses the tie: asked later
    tell(sh, second, FAIL)  # a promotion whose continuation fails
    tell(sh, first, 0.2)
    tell(sh, third, 0.1)
    top = expect(sh, third.id, 9)  # the best of the two that succeeded
    tell(sh, top, 0.05)
    fresh = expect(sh, None, 1)  # the bracket is done: it starts again with new configurations
    assert fresh.config not in [t.config for t in bottom]
    assert sh.recommend() == top.config


def test_sh_rung_waits_for_its_last_result_and_a_rung_of_failures_ends_the_bracket():
    sh = SuccessiveHalving(SPACE, NINE, seed=0, n=3)  # 3 at 1, 1 at 3, 1 at 9
    trials = [expect(sh, None, 1) for _ in range(3)]
    tell(sh, trials[0], FAIL)
    tell(sh, trials[1], FAIL)
    assert sh.ask().id == 3 and sh._running[0] is not sh._running[-1]  # rung waits: the next bracket serves the ask
    tell(sh, trials[2], FAIL)  # all failed: bracket 0 ends with no promotion
    assert len(sh._running) == 1 and sh.recommend() is None


# -- Hyperband -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("resumable, budget", [(True, 1581), (False, 1902)])
def test_one_full_hyperband_cycle_counts_and_budget(resumable, budget):
    """eta = 3, R = 81, r = 1 through the run loop: the evaluations per fidelity are the paper's
    table summed over brackets, and one cycle costs exactly its budget computed by hand
    (test_bandit_schedule): the next trial would exceed it."""
    result = mfbo.minimize(Epochs(81, resumable), "hyperband", budget=budget, seed=0)
    assert result.total_cost == pytest.approx(budget) and result.stop_reason.startswith("budget")
    assert Counter(t.fidelity for t in result.trials) == {1: 81, 3: 27 + 34, 9: 9 + 11 + 15, 27: 3 + 3 + 5 + 8, 81: 1 + 1 + 1 + 2 + 5}
    assert Counter(t.fidelity for t in result.trials if t.continues is None) == {1: 81, 3: 34, 9: 15, 27: 8, 81: 5}
    continued = {t.id: t for t in result.trials}
    assert all(continued[t.continues].fidelity < t.fidelity for t in result.trials if t.continues is not None)
    best_at_target = min((t for t in result.trials if t.fidelity == 81), key=lambda t: t.value)
    assert result.recommendation == best_at_target.config


def test_a_cycle_with_hpbandsters_bracket_sizes():
    result = mfbo.minimize(Epochs(81, True), "hyperband", budget=10_000, seed=0, max_trials=81 + 54 + 27 + 15 + 10,
                           strategy_options={"bracket_sizes": "hpbandster"})
    assert Counter(t.fidelity for t in result.trials) == {1: 81, 3: 27 + 27, 9: 9 + 9 + 9, 27: 3 + 3 + 3 + 6, 81: 1 + 1 + 1 + 2 + 5}


@pytest.mark.parametrize("name", ["sh", "hyperband", "asha"])
@pytest.mark.parametrize("problem, budget, options, fidelities", [
    ("augmented-branin", 150, {"r_min": 1 / 9}, {1 / 9, 1 / 3, 1.0}),  # continuous: the rungs' values (cost 5 + s)
    ("quadratic-ladder", 8, {}, {2, 5}),  # levels 1..5: 5/3 rounds up to level 2
    ("mfhartmann3-good", 8, {}, {2, 4, 12, 34, 100}),  # integer 1..100: 100/81 .. 100/3 rounded up
])
def test_fidelity_kinds_map_to_the_rungs(name, problem, budget, options, fidelities):
    result = mfbo.minimize(problem, name, budget=budget, seed=0, strategy_options=options)
    assert {round(t.fidelity, 12) for t in result.trials} == {round(f, 12) for f in fidelities}


def test_hyperband_starts_the_next_bracket_while_one_waits_and_serves_the_oldest_first():
    hb = Hyperband(SPACE, NINE, seed=0)  # brackets: 9 @ 1 -> 3 @ 3 -> 1 @ 9; 5 @ 3 -> 1 @ 9; 3 @ 9
    assert [(b.s, [r.n_configs for r in b.rungs]) for b in hb.brackets] == [(2, [9, 3, 1]), (1, [5, 1]), (0, [3])]
    asked = [hb.ask() for _ in range(9 + 5 + 3 + 1)]
    assert [t.fidelity for t in asked] == [1] * 9 + [3] * 5 + [9] * 3 + [1]  # the cycle wraps around
    for trial in asked[9:14]:  # bracket s = 1 completes its rung first
        tell(hb, trial, trial.config["x"])
    best = min(asked[9:14], key=lambda t: t.config["x"])
    expect(hb, best.id, 9)
    for trial in asked[:9]:
        tell(hb, trial, trial.config["x"])
    ranked = sorted(asked[:9], key=lambda t: t.config["x"])
    assert [expect(hb, t.id, 3).continues for t in ranked[:3]] == [t.id for t in ranked[:3]]


def test_sample_configs_is_the_one_hook_for_new_configurations():
    class Fixed(Hyperband):
        def _sample_configs(self, n, rung, bracket):
            assert rung is bracket.rungs[0]
            return [{"x": 0.25}] * n

    hb = Fixed(SPACE, NINE, seed=0)
    assert all(hb.ask().config == {"x": 0.25} for _ in range(20))


def test_recommendation_is_the_best_at_the_highest_fidelity_reached_ties_by_id():
    hb = Hyperband(SPACE, NINE, seed=0)
    assert hb.recommend() is None
    trials = [hb.ask() for _ in range(9)]
    for trial, value in zip(trials, [0.4, 0.1, FAIL, 0.1, 0.7, 0.6, 0.5, 0.9, 0.8]):
        tell(hb, trial, value)
    assert hb.recommend() == trials[1].config  # fidelity 1 only: the best there, the earlier of the tie
    promoted = [hb.ask() for _ in range(3)]
    tell(hb, promoted[2], 0.95)  # worse than at 1 epoch, but at the highest fidelity reached
    assert hb.recommend() == promoted[2].config


# -- ASHA ------------------------------------------------------------------------------------------------
def test_asha_promotes_asynchronously_on_scripted_results():
    asha = ASHA(SPACE, NINE, seed=0)  # rungs at 1, 3, 9
    assert asha.fidelities == [1, 3, 9]
    t0 = expect(asha, None, 1)
    tell(asha, t0, 0.5)
    t1 = expect(asha, None, 1)  # one result: floor(1/3) = 0 promotable
    tell(asha, t1, 0.2)
    t2 = expect(asha, None, 1)
    tell(asha, t2, FAIL)  # three results, quota 1: the best of them (t1)
    c1 = expect(asha, t1.id, 3)
    t4 = expect(asha, None, 1)  # t1 is promoted already, nobody else in the top third
    tell(asha, t4, 0.2)  # ties with t1
    t5 = expect(asha, None, 1)
    tell(asha, t5, 0.1)  # quota 1 of 5: t5 leads and was not promoted
    c5 = expect(asha, t5.id, 3)
    tell(asha, c1, FAIL)  # t1's continuation fails: it stays in rung 1 as a failure
    t7 = expect(asha, None, 1)
    tell(asha, c5, 0.05)
    tell(asha, t7, 0.2)  # three-way tie t1, t4, t7 at 0.2; quota 2 of 6 = t5, t1: both promoted
    tell(asha, expect(asha, None, 1), 0.3)
    tell(asha, expect(asha, None, 1), 0.4)
    tell(asha, expect(asha, None, 1), 0.6)  # nine results, quota 3: t5, t1, then t4 (before t7 by id)
    c4 = expect(asha, t4.id, 3)
    tell(asha, c4, 0.3)  # rung 1: c1 failed, c5, c4; quota 1: c5, never the failure
    top = expect(asha, c5.id, 9)
    tell(asha, top, 0.01)
    assert asha.recommend() == t5.config
    assert asha.promoted == [{t1.id, t5.id, t4.id}, {c5.id}, set()]


def test_asha_max_rung_starts_configurations_higher_up():
    asha = ASHA(SPACE, Fidelity("epochs", 1, 81, integer=True), seed=0, max_rung=2)
    assert asha.fidelities == [9, 27, 81]


def first_target_end(result, target):
    return min(t.end for t in result.trials if t.fidelity == target)


def no_worker_waits(result) -> bool:
    """Every worker runs its trials back to back from time 0 (no idle gap between them)."""
    by_worker: dict[int, list] = {}
    for t in sorted(result.trials, key=lambda t: t.start):
        by_worker.setdefault(t.worker, []).append(t)
    return all(ts[0].start == 0 and all(abs(a.end - b.start) < 1e-9 for a, b in zip(ts, ts[1:])) for ts in by_worker.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_asha_with_four_workers_never_waits_and_reaches_the_target_sooner_than_sh(seed):
    """With training times that vary by configuration, synchronous SH's rungs wait for their
    slowest member (its workers meanwhile start the next bracket, so none idles either); ASHA
    promotes as soon as a configuration is in the top third of its rung."""
    problem = Epochs(27, resumable=True, slow_tail=True)
    asha = mfbo.minimize(problem, "asha", budget=600, seed=seed, workers=4)
    sh = mfbo.minimize(problem, "sh", budget=600, seed=seed, workers=4)
    assert no_worker_waits(asha) and no_worker_waits(sh)
    assert first_target_end(asha, 27) < first_target_end(sh, 27)


# -- options ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, message", [
    ("sh", {"n": 0}, "option n must be an integer >= 1"),
    ("asha", {"max_rung": 3}, r"option max_rung must be an integer in \[0, 2\]"),
    ("hyperband", {"eta": 1}, "option eta must be a number > 1"),
    ("hyperband", {"bracket_sizes": "paper"}, r"option bracket_sizes must be one of \['hyperband', 'hpbandster'\]"),
])
def test_bad_options_name_the_option(name, options, message):
    with pytest.raises(ValueError, match=message):
        make(name, Epochs(9), **options)

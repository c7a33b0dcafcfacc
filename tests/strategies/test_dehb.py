"""DEHB (issue #14): the DE operators by hand and against the ``dehb`` package on a fixed seed,
the sub-populations and the Hyperband cycle, promotions as continuations, selection, the
asynchronous mode, failures, seeds and option checks."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest

import mfbo
from mfbo import Categorical, Fidelity, Float, Int, Observation, Space
from mfbo.problems.base import Problem
from mfbo.strategies.bandits.dehb import DEHB, SubPopulation, population_sizes
from mfbo.strategies.bandits.evolution import binomial_crossover, de_space, draw_parents, fix_boundary, rand1
from mfbo.strategies.bandits.schedule import hyperband_brackets

R = 81
TABLE = {4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)], 3: [(34, 3), (11, 9), (3, 27), (1, 81)],
         2: [(15, 9), (5, 27), (1, 81)], 1: [(8, 27), (2, 81)], 0: [(5, 81)]}  # Li et al. 2018, Table 1


class Bowl(Problem):
    """A resumable 2-d bowl with epochs ``1..81``: ``(x - 0.3)^2 + (y - 0.6)^2 + 1 / epoch``,
    one cost unit per epoch; ``x > fail_above`` raises."""

    resumable = True

    def __init__(self, fail_above: float = math.inf):
        super().__init__("bowl", Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0)), Fidelity("epoch", 1, R, integer=True))
        self.fail_above = fail_above
        self.optimum = 1 / R

    def _value(self, config, epochs):
        if config["x"] > self.fail_above:
            raise RuntimeError("diverged")
        return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2 + 1 / epochs

    def _evaluate(self, config, fidelity):
        return Observation(value=self._value(config, fidelity), cost=float(fidelity))

    def _resume(self, config, fidelity, resume_from):
        return Observation(value=self._value(config, fidelity), cost=float(fidelity - resume_from))

    def cost(self, config, fidelity=None):
        return float(R if fidelity is None else fidelity)

    def target_value(self, config):
        return self._value(config, R)


def drive(strategy: DEHB, problem: Problem, n: int) -> list:
    """Ask, evaluate and tell ``n`` trials one at a time; returns the told (trial, observation)."""
    for _ in range(n):
        trial = strategy.ask()
        reached = {t.id: t.fidelity for t, _ in strategy.history}
        try:
            obs = problem.evaluate(trial.config, trial.fidelity, resume_from=reached.get(trial.continues))
        except RuntimeError as err:
            obs = Observation.failure(str(err))
        strategy.tell(trial, obs)
    return strategy.history


class Scripted:
    """A stand-in for ``numpy.random.Generator`` that returns scripted draws."""

    def __init__(self, random=(), integers=(), uniform=(), choice=()):
        self._random, self._integers = list(random), list(integers)
        self._uniform, self._choice = list(uniform), list(choice)

    def random(self, n):
        return np.array([self._random.pop(0) for _ in range(n)])

    def integers(self, low, high):
        return self._integers.pop(0)

    def uniform(self, low, high, size):
        return np.array([self._uniform.pop(0) for _ in range(size)])

    def choice(self, n, size, replace):
        return np.array(self._choice.pop(0))


# -- DE operators ---------------------------------------------------------------------------------
def test_rand1_bin_and_the_boundary_fix_by_hand():
    target = np.array([0.1, 0.2, 0.3, 0.4])
    r1, r2, r3 = np.full(4, 0.5), np.array([0.9, 0.1, 0.8, 0.2]), np.array([0.1, 0.9, 0.2, 1.0])
    mutant = rand1(r1, r2, r3, 0.5)
    np.testing.assert_allclose(mutant, [0.9, 0.1, 0.8, 0.1])
    # dimension j from the mutant where rand_j < CR = 0.5: only j = 1
    crossed = binomial_crossover(target, mutant, 0.5, Scripted(random=[0.7, 0.2, 0.5, 0.9]))
    np.testing.assert_allclose(crossed, [0.1, 0.1, 0.3, 0.4])
    # no rand_j < CR: dimension j* = 2 is forced from the mutant
    forced = binomial_crossover(target, mutant, 0.5, Scripted(random=[0.6, 0.7, 0.8, 0.9], integers=[2]))
    np.testing.assert_allclose(forced, [0.1, 0.2, 0.8, 0.4])
    # components outside [0, 1] redrawn uniformly, or clipped; the others kept
    outside = rand1(np.array([0.9, 0.1, 0.5, 0.5]), np.array([1.0, 0.0, 0.5, 0.5]), np.array([0.2, 0.6, 0.5, 0.5]), 0.5)
    np.testing.assert_allclose(outside, [1.3, -0.2, 0.5, 0.5])
    np.testing.assert_allclose(fix_boundary(outside, Scripted(uniform=[0.25, 0.75])), [0.25, 0.75, 0.5, 0.5])
    np.testing.assert_allclose(fix_boundary(outside, Scripted(), "clip"), [1.0, 0.0, 0.5, 0.5])


def test_parents_leave_out_the_target_and_a_small_pool_is_filled_with_random_individuals():
    pool = np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]])
    parents = draw_parents(pool, Scripted(choice=[[2, 0, 1]]), lambda k: None, 3, target=pool[1])
    np.testing.assert_allclose(parents, [[0.4, 0.4], [0.1, 0.1], [0.3, 0.3]])  # from rows 0, 2, 3
    filler = np.array([[0.9, 0.9]])
    parents = draw_parents(pool[:3], Scripted(choice=[[0, 1, 2]]), lambda k: filler[:k], 3, target=pool[0])
    np.testing.assert_allclose(parents, [[0.2, 0.2], [0.3, 0.3], [0.9, 0.9]])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pool_size", [2, 6])
def test_operators_draw_what_the_dehb_package_draws_on_the_same_seed(seed, pool_size):
    """One DE step (parents without the target, rand/1, bin crossover, random boundary fix) gives
    the vector of ``dehb`` 0.1.1's AsyncDE from a generator with the same seed."""
    de_module = pytest.importorskip("dehb.optimizers.de")
    d = 5
    pool = np.random.default_rng(100 + seed).uniform(-0.2, 1.2, size=(pool_size, d))
    target = pool[0].copy()
    ref = de_module.AsyncDE(cs=None, dimensions=d, pop_size=pool_size, mutation_factor=0.5, crossover_prob=0.5,
                            strategy="rand1_bin", rng=np.random.default_rng(seed))
    expected = ref.boundary_check(ref.crossover_bin(target, ref.mutation(current=target, alt_pop=pool)))
    rng = np.random.default_rng(seed)
    parents = draw_parents(pool, rng, lambda k: rng.uniform(low=0.0, high=1.0, size=(k, d)), 3, target)
    ours = fix_boundary(binomial_crossover(target, rand1(*parents, 0.5), 0.5, rng), rng)
    np.testing.assert_array_equal(ours, expected)


def test_de_encoding_has_one_column_per_parameter_with_categorical_bins():
    space = Space(x=Float(0.0, 2.0), k=Int(1, 4), c=Categorical(["a", "b", "c"]))
    enc = de_space(space)
    assert enc.dim == 3 and space.dim == 5
    assert enc.decode([0.5, 0.1, 0.34]) == {"x": 1.0, "k": 1, "c": "b"}  # floor(0.34 * 3) = 1
    assert enc.decode([0.5, 0.99, 0.33]) == {"x": 1.0, "k": 4, "c": "a"}
    np.testing.assert_allclose(enc.encode({"x": 0.5, "k": 2, "c": "c"}), [0.25, 0.375, 5 / 6])


# -- populations and the Hyperband cycle ----------------------------------------------------------
def test_population_sizes_are_the_most_any_bracket_evaluates_at_a_level():
    brackets = hyperband_brackets(3, 1, R)
    assert [[(r.n_configs, r.resource) for r in b.rungs] for b in brackets] == [TABLE[s] for s in range(4, -1, -1)]
    assert population_sizes(brackets) == [81, 34, 15, 8, 5]
    problem = Bowl()
    strategy = DEHB(problem.space, problem.fidelity, problem=problem)
    assert strategy.levels == [1, 3, 9, 27, 81]
    assert [len(p.vectors) for p in strategy.populations] == [81, 34, 15, 8, 5]


@pytest.fixture(scope="module")
def one_cycle():
    """Two runs through one full Hyperband cycle (206 jobs) and the first job after it."""
    problem = Bowl()
    runs = {}
    for continue_promotions in (True, False):
        strategy = DEHB(problem.space, problem.fidelity, seed=1, problem=problem, continue_promotions=continue_promotions)
        initial = strategy.encoding.decode_many(strategy.populations[0].vectors)
        runs[continue_promotions] = (strategy, initial, list(drive(strategy, problem, 207)))
    return runs


def test_one_cycle_evaluates_the_hyperband_table(one_cycle):
    _, _, history = one_cycle[True]
    expected = [r for s in range(4, -1, -1) for n, r in TABLE[s] for _ in range(n)]
    assert len(expected) == 206
    assert [t.fidelity for t, _ in history[:206]] == expected
    assert history[206][0].fidelity == 1 and history[206][0].continues is None  # the next cycle starts


def test_first_bracket_is_random_search_then_successive_halving_by_continuation(one_cycle):
    strategy, initial, history = one_cycle[True]
    assert [t.config for t, _ in history[:81]] == initial
    ranked = sorted(history[:81], key=lambda pair: pair[1].value)
    promoted = history[81:108]
    assert [t.continues for t, _ in promoted] == [t.id for t, _ in ranked[:27]]
    assert all(t.config == strategy.history[t.continues][0].config for t, _ in promoted)
    assert [t.continues for t, _ in history[108:117]] == [t.id for t, _ in sorted(promoted, key=lambda p: p[1].value)[:9]]
    # the next brackets' bottom rungs are DE trials, their higher rungs promotions (first iteration)
    bracket_3 = history[121:170]
    assert all(t.continues is None for t, _ in bracket_3[:34]) and all(t.continues is not None for t, _ in bracket_3[34:])
    seen = {tuple(t.config.values()) for t, _ in history[:121]}
    assert not any(tuple(t.config.values()) in seen for t, _ in bracket_3[:34])


def test_without_continuation_the_same_configurations_start_from_scratch(one_cycle):
    with_, _, history = one_cycle[True]
    without, _, scratch = one_cycle[False]
    assert [t.config for t, _ in scratch] == [t.config for t, _ in history]
    assert all(t.continues is None for t, _ in scratch)
    assert sum(o.cost for _, o in scratch[:121]) == sum(n * r for n, r in TABLE[4])
    assert sum(o.cost for _, o in history[:121]) == hyperband_brackets(3, 1, R)[0].total_resource(resumable=True)


def test_the_package_bracket_sizes_give_the_dehb_package_jobs_in_its_order(tmp_path):
    """With ``bracket_sizes="dehb"`` two cycles ask, one worker, the fidelities that ``dehb``
    0.1.1's ``DEHB.ask`` gives for ``min_fidelity=1, max_fidelity=81, eta=3``, in the same order,
    and promote (ask again a configuration evaluated before) exactly where it does: at the higher
    rungs of the first cycle only."""
    problem = Bowl()
    strategy = DEHB(problem.space, problem.fidelity, seed=0, problem=problem, bracket_sizes="dehb")
    assert [len(p.vectors) for p in strategy.populations] == [81, 27, 9, 6, 5]
    history = drive(strategy, problem, 2 * 187)
    ours = [(t.fidelity, t.continues is not None) for t, _ in history]
    assert Counter(f for f, _ in ours[:187]) == {1: 81, 3: 54, 9: 27, 27: 15, 81: 10}
    assert not any(promoted for _, promoted in ours[187:])
    dehb = pytest.importorskip("dehb")
    from ConfigSpace import ConfigurationSpace, Float as CSFloat
    from loguru import logger

    cs = ConfigurationSpace(seed=0)
    cs.add([CSFloat("x", (0.0, 1.0)), CSFloat("y", (0.0, 1.0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dehb 0.1.1 calls ConfigSpace 0.x names
        ref = dehb.DEHB(cs=cs, dimensions=2, min_fidelity=1, max_fidelity=R, eta=3, seed=0, n_workers=1,
                        output_path=str(tmp_path), save_freq="end")
        logger.remove()
        theirs, seen = [], []
        for _ in range(2 * 187):
            job = ref.ask()
            config = dict(job["config"])
            theirs.append((round(float(job["fidelity"])), config in seen))  # a promotion: a configuration seen before
            seen.append(config)
            ref.tell(job, {"fitness": problem.target_value(config) + 1 / job["fidelity"], "cost": 1.0})
    assert ours == theirs


def test_mixed_and_conditional_spaces():
    """Integers, log scales, categoricals and a conditional parameter go through the DE encoding
    and back to valid configurations; the inactive parameter is left out."""
    space = Space({"opt": Categorical(["sgd", "adam", "rmsprop"]), "lr": Float(1e-4, 1e-1, log=True),
                   "units": Int(16, 256, log=True), "momentum": Float(0.0, 0.99)},
                  conditions={"momentum": mfbo.space.InCondition("opt", ["sgd"])})

    def fn(config, epochs):
        return abs(math.log10(config["lr"]) + 2) + (config["opt"] != "adam") + config.get("momentum", 0.0) + 1 / epochs

    problem = Problem.from_function(fn, space, Fidelity("epochs", 1, 27, integer=True), cost=lambda epochs: float(epochs))
    strategy = DEHB(space, problem.fidelity, seed=0, problem=problem)
    history = drive(strategy, problem, 150)
    assert all(space.validate(t.config) == t.config for t, _ in history)
    assert all(("momentum" in t.config) == (t.config["opt"] == "sgd") for t, _ in history)
    assert {t.config["opt"] for t, _ in history} == {"sgd", "adam", "rmsprop"}
    assert Counter(t.config["opt"] for t, _ in history[-40:]).most_common(1)[0][0] == "adam"


def test_selection_keeps_the_better_of_parent_and_trial():
    pop = SubPopulation.unevaluated(np.array([[0.1, 0.1], [0.2, 0.2]]))
    assert pop.select(0, np.array([0.5, 0.5]), 2.0, trial_id=7)  # anything beats an unevaluated parent
    assert not pop.select(0, np.array([0.6, 0.6]), 2.5, trial_id=8)
    np.testing.assert_array_equal(pop.vectors[0], [0.5, 0.5])
    assert pop.select(0, np.array([0.7, 0.7]), 2.0, trial_id=9)  # a tie goes to the trial
    assert (pop.fitness[0], pop.trial_ids[0]) == (2.0, 9)
    assert [pop.next_slot() for _ in range(3)] == [0, 1, 0]


def test_populations_only_improve_and_later_cycles_evolve():
    problem = Bowl()
    strategy = DEHB(problem.space, problem.fidelity, seed=2, problem=problem)
    drive(strategy, problem, 206)
    before = [p.fitness.copy() for p in strategy.populations]
    history = drive(strategy, problem, 206)[206:]
    assert all(t.continues is None for t, _ in history)  # after the first iteration: DE at every rung
    assert all(np.all(p.fitness <= b) for p, b in zip(strategy.populations, before))
    assert any(np.any(p.fitness < b) for p, b in zip(strategy.populations, before))
    best = [min(o.value for t, o in h if t.fidelity == R) for h in (strategy.history[:206], history)]
    assert best[1] <= best[0]


# -- asynchronous mode, failures, seeds -------------------------------------------------------------
def test_a_waiting_bracket_lets_the_next_one_start_and_resumes_first():
    problem = Bowl()
    strategy = DEHB(problem.space, problem.fidelity, seed=0, problem=problem)
    bottom = [strategy.ask() for _ in range(81)]
    assert {t.fidelity for t in bottom} == {1}
    second = strategy.ask()  # bracket s=4 waits for its bottom rung: bracket s=3 starts
    assert (second.fidelity, second.continues) == (3, None)
    for trial in bottom:
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    promoted = strategy.ask()  # the oldest bracket goes first again
    assert promoted.fidelity == 3 and promoted.continues in {t.id for t in bottom}
    assert set(strategy.pending) == {second.id, promoted.id}


def test_failed_trials_are_never_promoted_and_the_run_goes_on():
    problem = Bowl(fail_above=0.7)
    strategy = DEHB(problem.space, problem.fidelity, seed=3, problem=problem)
    history = drive(strategy, problem, 300)
    told = {t.id: o for t, o in history}
    assert sum(not o.ok for o in told.values()) > 20
    assert all(told[t.continues].ok for t, _ in history if t.continues is not None)
    for pop in strategy.populations:
        finite = np.isfinite(pop.fitness)
        assert all(told[pop.trial_ids[i]].ok for i in np.flatnonzero(finite))
    assert strategy.recommend()["x"] <= 0.7


def _log(workers: int, seed: int) -> list[tuple]:
    result = mfbo.minimize(Bowl(), DEHB(Bowl().space, Bowl().fidelity, seed=seed), budget=3000, workers=workers)
    return [(t.id, t.continues, t.config, t.fidelity, t.value, t.start, t.worker) for t in result.trials]


@pytest.mark.parametrize("workers", [1, 4])
def test_same_seed_same_log(workers):
    assert _log(workers, 5) == _log(workers, 5)
    assert _log(workers, 5) != _log(workers, 6)


# -- options ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, message",
    [
        ({"mutation_factor": 0.0}, r"option mutation_factor must be a number in \(0, 2\], got 0.0"),
        ({"mutation_factor": 2.5}, r"option mutation_factor must be a number in \(0, 2\], got 2.5"),
        ({"crossover_prob": -0.1}, r"option crossover_prob must be a number in \[0, 1\], got -0.1"),
        ({"crossover_prob": 1.5}, r"option crossover_prob must be a number in \[0, 1\], got 1.5"),
        ({"boundary_fix": "wrap"}, r"option boundary_fix must be one of \['random', 'clip'\], got 'wrap'"),
        ({"eta": 1.0}, r"option eta must be a number > 1, got 1.0"),
        ({"r_min": 100.0}, r"option r_min must be a number > 0 in \[1, 81\]"),
        ({"continue_promotions": 1}, r"option continue_promotions must be True or False, got 1"),
    ],
)
def test_bad_options_name_the_option(options, message):
    problem = Bowl()
    with pytest.raises(ValueError, match=r"strategy 'dehb': " + message):
        DEHB(problem.space, problem.fidelity, problem=problem, **options)


def test_a_problem_without_fidelity_is_refused():
    with pytest.raises(ValueError, match=r"strategy 'dehb' needs a multi-fidelity problem"):
        DEHB(Space(x=Float(0.0, 1.0)))


def test_registered_under_dehb_with_its_options():
    from mfbo.strategies import make, option_names

    assert option_names("dehb") == ["eta", "r_min", "mutation_factor", "crossover_prob", "boundary_fix",
                                    "continue_promotions", "bracket_sizes"]
    strategy = make("dehb", Bowl(), seed=4, eta=2, crossover_prob=1)
    assert (strategy.eta, strategy.crossover_prob, strategy.levels[-1]) == (2.0, 1.0, R)
    with pytest.raises(ValueError, match=r"strategy 'dehb': option mutation_factor must be float, got 'big'"):
        make("dehb", Bowl(), mutation_factor="big")
    with pytest.raises(ValueError, match=r"strategy 'dehb': option bracket_sizes must be one of \['hyperband', 'dehb'\]"):
        make("dehb", Bowl(), bracket_sizes="bohb")

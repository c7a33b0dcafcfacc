"""BOHB (issue #14): the KDE machinery (mfbo.strategies.bandits.kde) and the sampler that BOHB
puts into Hyperband (mfbo.strategies.bandits.bohb)."""

import math
import sys

import numpy as np
import pytest

pytest.importorskip("statsmodels", reason="BOHB needs statsmodels: pip install 'mfbo[bandits]'")

import mfbo  # noqa: E402
from mfbo import Categorical, Fidelity, Float, Int, Observation, Space  # noqa: E402
from mfbo.space import InCondition  # noqa: E402
from mfbo.strategies.bandits.bohb import BOHB  # noqa: E402
from mfbo.strategies.bandits.kde import (  # noqa: E402
    KDEColumns,
    ProductKDE,
    good_bad_split,
    propose_by_density_ratio,
    require_statsmodels,
)

SPACE = Space(x=Float(0.0, 1.0), y=Float(0.0, 1.0))  # d = 2: N_min = 3
EPOCHS = Fidelity("epochs", 1, 9, integer=True)  # eta = 3: brackets of 9, 5 and 3 configurations


def loss(config, epochs=9):
    return (config["x"] - 0.2) ** 2 + (config["y"] - 0.7) ** 2 + 0.1 / epochs


def problem():
    return mfbo.Problem.from_function(loss, SPACE, EPOCHS, cost=lambda epochs: epochs / 9, target_value=loss, optimum=0.1 / 9)


def feed(strategy, configs, fidelity, values=None):
    """Tell ``strategy`` results it did not ask for (data outside its brackets)."""
    for config, value in zip(configs, values if values is not None else [loss(c) for c in configs]):
        obs = Observation.failure("scripted") if value is None else Observation(value=value, cost=1.0)
        strategy.add_observation(config, fidelity, obs)


def bottom(strategy):
    bracket = strategy.brackets[0]
    return bracket.rungs[0], bracket


# -- the KDE -------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:After 0.17:FutureWarning")  # statsmodels' default generator, unused here
def test_pdf_and_bandwidths_are_statsmodels_when_every_choice_is_in_the_data():
    from statsmodels.nonparametric.kernel_density import KDEMultivariate

    rng = np.random.default_rng(0)
    data = np.column_stack([rng.random(15), rng.random(15), rng.integers(0, 3, 15)])
    data[:3, 2] = [0, 1, 2]
    ours = ProductKDE(data, [0, 0, 3], min_bandwidth=1e-3)
    theirs = KDEMultivariate(data, var_type="ccu", bw="normal_reference")
    np.testing.assert_allclose(ours.bandwidth, theirs.bw)
    points = np.column_stack([rng.random(7), rng.random(7), rng.integers(0, 3, 7)])
    np.testing.assert_allclose(ours.pdf(points), theirs.pdf(points), rtol=1e-10)


def test_bandwidth_floor():
    data = np.column_stack([np.full(6, 0.4), np.linspace(0, 1, 6)])
    kde = ProductKDE(data, [0, 0], min_bandwidth=0.05)
    assert kde.bandwidth[0] == 0.05  # a constant column: the normal-reference rule gives 0
    assert kde.bandwidth[1] == pytest.approx(1.06 * np.std(data[:, 1]) * 6 ** (-1 / 6))
    bohb = BOHB(SPACE, EPOCHS, min_bandwidth=0.02)  # the option reaches both KDEs
    feed(bohb, [{"x": 0.5, "y": y} for y in np.linspace(0, 1, 8)], 1)
    model = bohb.model()
    assert model.good.bandwidth[0] == model.bad.bandwidth[0] == 0.02 and min(model.good.bandwidth[1], model.bad.bandwidth[1]) > 0.02


def test_aitchison_aitken_kernel_over_all_choices():
    # one level present: kernel 1 - h at it, h / (c - 1) at each of the other choices, h = the floor
    kde = ProductKDE(np.zeros((4, 1)), [4], min_bandwidth=0.01)
    np.testing.assert_allclose(kde.pdf(np.arange(4.0)[:, None]), [0.99, 0.01 / 3, 0.01 / 3, 0.01 / 3])
    # a spread that the normal-reference rule turns into h > (c-1)/c is capped there: uniform
    spread = ProductKDE(np.array([[0.0], [3.0], [0.0], [3.0]]), [4], min_bandwidth=1e-3)
    assert spread.bandwidth[0] == 0.75
    np.testing.assert_allclose(spread.pdf(np.arange(4.0)[:, None]), [0.25] * 4)
    # the density sums to one over the choices, whatever is in the data
    mixed = ProductKDE(np.array([[0.0], [1.0], [1.0], [1.0], [0.0]]), [5], min_bandwidth=1e-3)
    assert mixed.pdf(np.arange(5.0)[:, None]).sum() == pytest.approx(1.0)


def test_sampling_follows_the_kernels():
    rng = np.random.default_rng(1)
    data = np.column_stack([np.full(5, 0.5), np.zeros(5)])
    kde = ProductKDE(data, [0, 4], min_bandwidth=0.05)  # h = 0.05 on both columns
    draws = kde.sample(rng, 20000, bandwidth_factor=3.0)
    assert draws[:, 0].min() >= 0.0 and draws[:, 0].max() <= 1.0
    assert np.std(draws[:, 0]) == pytest.approx(0.15, rel=0.03)  # widened 3x; truncation at 3.3 sd
    counts = np.bincount(draws[:, 1].astype(int), minlength=4)
    sd = math.sqrt(20000 * 0.05 * 0.95)
    assert abs(counts[0] - 20000 * 0.95) < 4 * sd  # kept with probability 1 - h
    assert all(abs(c - 20000 * 0.05 / 3) < 4 * math.sqrt(20000 * 0.05 / 3) for c in counts[1:])
    edge = ProductKDE(np.zeros((3, 1)), [0], min_bandwidth=0.1).sample(rng, 2000, bandwidth_factor=3.0)
    assert edge.min() >= 0.0 and 0.15 < edge.mean() < 0.3  # a half normal at the boundary: mean 0.24


def test_density_ratio_proposal_is_the_best_candidate():
    rng = np.random.default_rng(2)
    good = ProductKDE(0.2 + 0.05 * rng.standard_normal((6, 1)), [0], min_bandwidth=1e-3)
    bad = ProductKDE(rng.random((20, 1)), [0], min_bandwidth=1e-3)
    proposal = propose_by_density_ratio(good, bad, np.random.default_rng(3), 64, 3.0)
    candidates = good.sample(np.random.default_rng(3), 64, 3.0)  # the same draws
    ratio = np.maximum(good.pdf(candidates), 1e-32) / np.maximum(bad.pdf(candidates), 1e-32)
    np.testing.assert_array_equal(proposal, candidates[np.argmax(ratio)])


@pytest.mark.parametrize(
    "n, q, min_points, d, good, bad",
    [
        (5, 15, 3, 2, None, None),  # 3 good leave 2 bad: not more than d
        (6, 15, 3, 2, 3, 3),
        (20, 15, 3, 2, 3, 17),  # floor(0.15 * 20) = 3
        (40, 15, 3, 2, 6, 34),  # floor(0.15 * 40) = 6
        (47, 15, 3, 2, 7, 40),  # floor(7.05) = 7
        (14, 15, 7, 6, 7, 7),  # N_min = d + 1 = 7: needs 14 results
        (13, 15, 7, 6, None, None),
        (10, 50, 3, 2, 5, 5),
    ],
)
def test_good_bad_split_sizes(n, q, min_points, d, good, bad):
    split = good_bad_split(list(range(n, 0, -1)), q, min_points, d)
    if good is None:
        assert split is None
    else:
        assert (len(split[0]), len(split[1])) == (good, bad)
        assert list(split[0]) == list(range(n - 1, n - 1 - good, -1))  # the lowest losses, best first


def test_failures_and_ties_in_the_split():
    good, bad = good_bad_split([1.0, float("nan"), 0.5, 0.5, float("inf"), 2.0, 3.0], 15, 3, 2)
    assert list(good) == [2, 3, 0]  # the tie keeps tell order
    assert list(bad) == [5, 6, 1, 4]  # failures last


def test_columns_encode_decode_and_impute():
    space = Space(
        {"lr": Float(1e-4, 1e-1, log=True), "units": Int(1, 8), "act": Categorical(["relu", "tanh", "elu"]),
         "size": Categorical(["s", "m", "l"], ordered=True), "mom": Float(0.0, 1.0)},
        conditions={"mom": InCondition("act", ["tanh"])},
    )
    columns = KDEColumns.of(space)
    assert columns.levels == (0, 0, 3, 0, 0) and columns.var_type == "ccucc"
    configs = [{"lr": 1e-2, "units": 3, "act": "tanh", "size": "l", "mom": 0.9}, {"lr": 1e-3, "units": 8, "act": "elu", "size": "s"}]
    vectors = columns.vectors(configs)
    np.testing.assert_allclose(vectors[0], [2 / 3, 2.5 / 8, 1, 2.5 / 3, 0.9])  # log scale, integer bins, index, ordinal bin
    assert np.isnan(vectors[1, 4])  # inactive
    imputed = columns.impute(vectors, np.random.default_rng(0))
    decoded = [columns.config(v) for v in imputed]
    assert [c["lr"] for c in decoded] == pytest.approx([1e-2, 1e-3])
    assert [{**c, "lr": 0} for c in decoded] == [{**c, "lr": 0} for c in configs]
    assert imputed[1, 4] == 0.9  # from the one point where it is active
    lonely = columns.impute(vectors[1:], np.random.default_rng(0))
    assert 0.0 <= lonely[0, 4] <= 1.0  # no donor: a random value


def test_missing_statsmodels_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels.nonparametric.kernel_density", None)
    with pytest.raises(ImportError, match=r"pip install 'mfbo\[bandits\]'"):
        require_statsmodels()
    with pytest.raises(ImportError, match=r"strategy 'bohb' needs statsmodels.*pip install 'mfbo\[bandits\]'"):
        BOHB(SPACE, EPOCHS)


# -- BOHB -----------------------------------------------------------------------------------------
def test_random_until_enough_results_then_the_kde():
    """One worker: rung 0 of the first bracket (9 configurations at 1 epoch) is told as it goes;
    with d = 2 the split needs 6 results (3 good, 3 bad), so the 7th configuration is the first
    that can come from the model."""
    bohb, prob = BOHB(SPACE, EPOCHS, seed=0, problem=problem()), problem()
    for k in range(9):
        assert (bohb.model() is None) == (k < 6)
        trial = bohb.ask()
        assert trial.fidelity == 1
        bohb.tell(trial, prob.evaluate(trial.config, trial.fidelity))
    assert bohb.picks[:6] == ["prior"] * 6 and set(bohb.picks[6:]) <= {"model", "random"}
    model = bohb.model()
    assert (model.budget, model.n_good, model.n_bad) == (1, 3, 6)
    best = sorted((o.value, t.config["x"], t.config["y"]) for t, o in bohb.history)[:3]
    np.testing.assert_allclose(np.sort(model.good.data, axis=0), np.sort(np.array(best)[:, 1:], axis=0))


def test_model_uses_the_largest_budget_with_enough_results():
    bohb = BOHB(SPACE, EPOCHS, seed=0)
    rng = np.random.default_rng(5)
    feed(bohb, SPACE.sample(rng, 10), 1)
    feed(bohb, SPACE.sample(rng, 5), 3)
    feed(bohb, SPACE.sample(rng, 2), 9)
    assert bohb.model().budget == 1  # 5 at epoch 3 split 3 / 2: too few bad
    feed(bohb, SPACE.sample(rng, 1), 3, values=[None])  # a failure counts, as the worst
    model = bohb.model()
    assert (model.budget, model.n_good, model.n_bad) == (3, 3, 3)
    failed = bohb.columns.vectors([bohb.history[-1][0].config])
    assert any(np.allclose(row, failed) for row in model.bad.data)
    assert bohb.drain_notes() == [
        "bohb: KDEs fitted on budget 1 (10 results: 3 good, 7 bad)",
        "bohb: KDEs fitted on budget 3 (6 results: 3 good, 3 bad)",
    ]
    assert bohb.model() is model  # cached until a result arrives at its budget


def test_random_fraction_is_the_stated_fraction():
    rng = np.random.default_rng(6)
    for fraction in (1 / 3, 0.0, 1.0):
        bohb = BOHB(SPACE, EPOCHS, seed=7, random_fraction=fraction, num_samples=4)
        feed(bohb, SPACE.sample(rng, 20), 1)
        n = 1500
        bohb._sample_configs(n, *bottom(bohb))
        randoms = bohb.picks.count("random")
        assert randoms + bohb.picks.count("model") == n
        assert abs(randoms - n * fraction) <= 4 * math.sqrt(n * fraction * (1 - fraction))


def test_model_picks_concentrate_on_the_good_region():
    bohb = BOHB(SPACE, EPOCHS, seed=8, random_fraction=0.0)
    feed(bohb, SPACE.sample(np.random.default_rng(9), 40), 9)
    picks = bohb._sample_configs(100, *bottom(bohb))
    assert np.median([loss(c) for c in picks]) < 0.25 * np.median([loss(c) for c in SPACE.sample(np.random.default_rng(10), 100)])


def test_mixed_and_conditional_spaces_give_valid_configurations():
    space = Space(
        {"lr": Float(1e-4, 1e-1, log=True), "units": Int(1, 8, log=True), "act": Categorical(["relu", "tanh", "elu"]),
         "mom": Float(0.0, 1.0)},
        conditions={"mom": InCondition("act", ["tanh"])},
    )
    bohb = BOHB(space, EPOCHS, seed=11, random_fraction=0.0, num_samples=8)
    feed(bohb, space.sample(np.random.default_rng(12), 30), 1, values=list(np.random.default_rng(13).random(30)))
    configs = bohb._sample_configs(50, *bottom(bohb))
    assert bohb.picks == ["model"] * 50
    assert all(space.validate(c) == c for c in configs)
    assert {c["act"] for c in configs} <= {"relu", "tanh", "elu"} and any("mom" in c for c in configs)


def test_same_seed_same_configurations():
    def run(seed):
        return [t.config for t in mfbo.minimize(problem(), "bohb", budget=12, seed=seed, strategy_options={"num_samples": 16}).trials]

    first = run(3)
    assert len(first) > 20 and first == run(3) and first != run(4)


def test_options_and_their_errors():
    bohb = mfbo.strategies.make("bohb", problem())
    assert bohb.options().items() >= {
        "eta": 3.0, "r_min": 1.0, "r_max": 9.0, "min_points_in_model": 3, "top_n_percent": 15.0, "num_samples": 64,
        "random_fraction": 1 / 3, "bandwidth_factor": 3.0, "min_bandwidth": 1e-3,
    }.items()  # the paper's defaults, and Hyperband's
    hpbandster = mfbo.strategies.make("bohb", problem(), bracket_sizes="hpbandster", eta=2)
    assert hpbandster.brackets == mfbo.strategies.make("hyperband", problem(), bracket_sizes="hpbandster", eta=2).brackets
    for option, value, allowed in [
        ("random_fraction", 1.5, r"a number in \[0, 1\]"),
        ("random_fraction", -0.1, r"a number in \[0, 1\]"),
        ("top_n_percent", 0, r"a number in \(0, 100\)"),
        ("top_n_percent", 100, r"a number in \(0, 100\)"),
        ("min_points_in_model", 2, r"an integer >= d \+ 1 = 3 \(d = 2 hyperparameters\) or None"),
        ("num_samples", 0, "an integer >= 1"),
        ("bandwidth_factor", 0.0, "a finite number > 0"),
        ("min_bandwidth", -1e-3, "a finite number > 0"),
    ]:
        with pytest.raises(ValueError, match=rf"strategy 'bohb': option {option} must be {allowed}, got {value!r}"):
            mfbo.strategies.make("bohb", problem(), **{option: value})
    with pytest.raises(ValueError, match="option eta must be a number > 1"):
        mfbo.strategies.make("bohb", problem(), eta=1)
    with pytest.raises(ValueError, match="needs a multi-fidelity problem"):
        BOHB(SPACE, None)


@pytest.mark.filterwarnings("ignore")  # ConfigSpace's deprecation warnings inside hpbandster
def test_model_matches_hpbandsters_config_generator_on_the_same_results():
    """The same results told to hpbandster 0.7.4's BOHB config generator and to ours: the same
    model budget after every result, the same good points, the same bad points but for the worst
    ones that hpbandster's floor((100 - q) N / 100) leaves out, the same bandwidths but for the
    categorical one, which ours caps at (c - 1) / c."""
    CS = pytest.importorskip("ConfigSpace")
    reference = pytest.importorskip("hpbandster.optimizers.config_generators.bohb")
    import types

    space = Space(x=Float(0.0, 1.0), lr=Float(1e-4, 1e-1, log=True), c=Categorical(["a", "b", "c"]))
    cs = CS.ConfigurationSpace(seed=0)
    cs.add([CS.UniformFloatHyperparameter("x", 0, 1), CS.UniformFloatHyperparameter("lr", 1e-4, 1e-1, log=True),
            CS.CategoricalHyperparameter("c", ["a", "b", "c"])])
    columns = [list(space).index(name) for name in cs.keys()]  # ConfigSpace sorts the names
    ref, ours = reference.BOHB(cs), BOHB(space, EPOCHS, seed=0)
    rng, dropped, capped = np.random.default_rng(14), 0, False
    for i, budget in enumerate([1] * 41 + [3] * 9 + [9] * 3):
        config, value = space.sample(rng), float(rng.random())
        ref.new_result(types.SimpleNamespace(kwargs={"config": config, "budget": float(budget)}, result={"loss": value}, exception=None, id=i))
        ours.add_observation(config, budget, Observation(value, 1.0))
        model = ours.model()
        assert (model and model.budget) == (max(ref.kde_models) if ref.kde_models else None)
        kde = ref.kde_models[model.budget] if model else None
        if model and model.budget == budget:  # refitted by both
            good, bad = model.good.data[:, columns], model.bad.data[:, columns]
            np.testing.assert_allclose(kde["good"].data, good)
            np.testing.assert_allclose(kde["bad"].data, bad[: len(kde["bad"].data)])
            assert len(kde["bad"].data) == min(len(bad), max(4, (85 * (len(good) + len(bad))) // 100))
            dropped = max(dropped, len(bad) - len(kde["bad"].data))
            capped = capped or max(kde["good"].bw[0], kde["bad"].bw[0]) > 2 / 3
            cap = np.array([2 / 3, np.inf, np.inf])
            np.testing.assert_allclose(model.good.bandwidth[columns], np.minimum(kde["good"].bw, cap))
            if len(bad) == len(kde["bad"].data):
                np.testing.assert_allclose(model.bad.bandwidth[columns], np.minimum(kde["bad"].bw, cap))
    assert model.budget == 3 and dropped == 1  # at N = 41 on budget 1: 6 good, 35 bad, hpbandster's 34
    assert capped  # statsmodels' rule gave the categorical a bandwidth above (c - 1) / c

"""The learning-curve ensemble of Domhan et al. (2015): the 11 families, the least-squares fits,
the prior, the MCMC and its predictions (issue #16)."""

import numpy as np
import pytest

from mfbo.models.learning_curves import FAMILIES, MCMCSettings, fit_ensemble, fit_family

SMALL = MCMCSettings(n_walkers=100, n_steps=200, burn_in=100, thin=5)
EPOCHS = np.arange(1, 14, dtype=float)


def power_law(x):
    return 0.9 - 0.5 * x ** -0.7


def test_the_papers_eleven_families_evaluate_vectorised_over_walkers():
    assert list(FAMILIES) == ["pow3", "loglog_linear", "hill3", "log_power", "pow4", "mmf", "exp4", "janoschek", "weibull", "ilog2", "vap"]
    x = np.array([1.0, 2.0, 10.0])
    for family in FAMILIES.values():
        P = np.array([family.default, family.default])  # (W=2, p)
        values = family(x, P)
        assert values.shape == (2, 3)
        np.testing.assert_allclose(values[0], family(x, np.array(family.default)))
    pow3 = FAMILIES["pow3"]
    np.testing.assert_allclose(pow3(x, np.array([0.9, 0.5, 0.7])), power_law(x))
    np.testing.assert_allclose(FAMILIES["ilog2"](x, np.array([1.0, 0.5])), 1 - 0.5 / np.log(x + 1))


def test_least_squares_recovers_a_noise_free_power_law():
    p = fit_family(FAMILIES["pow3"], EPOCHS, power_law(EPOCHS), horizon=52)
    np.testing.assert_allclose(p, [0.9, 0.5, 0.7], rtol=1e-4)


def test_the_prior_rejects_decreasing_or_unbounded_fits():
    falling = 0.9 - 0.02 * EPOCHS  # accuracy that falls: no family may extrapolate it as increasing
    assert fit_family(FAMILIES["pow3"], EPOCHS, falling, horizon=52) is None
    above_one = 1.5 - 0.5 * EPOCHS ** -0.7  # heads to 1.5 > 1
    assert fit_family(FAMILIES["pow3"], EPOCHS, above_one, horizon=52) is None


def test_ensemble_covers_the_true_final_value_of_a_power_law_curve():
    rng = np.random.default_rng(0)
    y = power_law(EPOCHS) + 0.005 * rng.standard_normal(len(EPOCHS))
    ensemble = fit_ensemble(y, 52, np.random.default_rng(1), SMALL)
    truth = power_law(52.0)
    means, sigma = ensemble.final_means()
    assert means.shape == sigma.shape == ((SMALL.n_steps - SMALL.burn_in) // SMALL.thin * max(SMALL.n_walkers, 2 * ensemble.ndim),)
    low, high = np.percentile(ensemble.sample_final(np.random.default_rng(2)), [2.5, 97.5])
    assert low <= truth <= high
    assert abs(ensemble.predict() - truth) < 0.06
    assert ensemble.prob_exceeds(0.99) < 0.05
    assert ensemble.prob_exceeds(0.6) > 0.95
    assert np.isclose(sum(ensemble.weights().values()), 1.0)
    # every posterior sample satisfies the prior: positive weights, f_comb increasing and in [0, 1]
    assert np.all(np.isfinite(ensemble.log_posterior(ensemble.samples)))
    assert np.all((means >= 0) & (means <= 1))


def test_same_generator_same_samples():
    y = power_law(EPOCHS)
    a = fit_ensemble(y, 52, np.random.default_rng(5), MCMCSettings(n_steps=30, burn_in=10))
    b = fit_ensemble(y, 52, np.random.default_rng(5), MCMCSettings(n_steps=30, burn_in=10))
    np.testing.assert_array_equal(a.samples, b.samples)


def test_a_curve_no_family_can_extrapolate_gives_none():
    # above 1 and falling: pow3's least-squares fits end above 1 or decrease, off the prior
    assert fit_ensemble(1.5 - 0.02 * EPOCHS, 52, np.random.default_rng(0), SMALL, families=["pow3"]) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"y": [0.5], "horizon": 10}, "y must hold >= 2 finite values"),
    ({"y": [0.5, np.nan], "horizon": 10}, "y must hold >= 2 finite values"),
    ({"y": [0.5, 0.6, 0.7], "horizon": 2}, "horizon must be >= the curve length 3"),
    ({"y": [0.5, 0.6], "horizon": 10, "families": ["pow3", "pow5"]}, "families must be a non-empty subset"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_ensemble(rng=np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_walkers": 0}, "n_walkers must be an integer >= 1"),
    ({"n_steps": 10, "burn_in": 10}, r"burn_in must be an integer in \[0, n_steps=10\)"),
    ({"thin": 1.5}, "thin must be an integer >= 1"),
])
def test_bad_mcmc_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MCMCSettings(**kwargs)

"""Output warps: monotone, invertible, the copula's known values, the power transform's fit."""

import numpy as np
import pytest
from scipy import stats

from mfbo.models.warping import OUTPUT_WARPS, OutputWarp


def skewed(n=200, seed=0):
    """Error-rate-like values: most near a floor of 0.05, a long tail up to chance."""
    rng = np.random.default_rng(seed)
    return 0.05 + np.minimum(rng.lognormal(-2.5, 1.2, n), 0.85)


def test_copula_maps_ranks_to_normal_quantiles_and_ties_share_one():
    values = np.array([0.3, 0.1, 0.3, 0.9, 0.2])
    warp = OutputWarp.fit("copula", values)
    ranks = np.array([3.5, 1, 3.5, 5, 2])  # average ranks, the two 0.3 tie
    np.testing.assert_allclose(warp(values), stats.norm.ppf((ranks - 0.5) / 5))
    assert warp(np.array([0.3]))[0] == warp(values)[0] == warp(values)[2]


@pytest.mark.parametrize("name", OUTPUT_WARPS)
def test_each_warp_is_increasing_and_inverted_on_its_data(name):
    values = skewed()
    warp = OutputWarp.fit(name, values)
    warped = warp(values)
    order = np.argsort(values)
    assert np.all(np.diff(warped[order]) >= 0)
    np.testing.assert_allclose(warp.inverse(warped), values, rtol=1e-9, atol=1e-12)
    grid = np.linspace(-4, 4, 81)  # and beyond the data, the inverse stays increasing and finite
    back = warp.inverse(grid)
    assert np.all(np.isfinite(back)) and np.all(np.diff(back) > 0)


def test_the_warps_make_a_long_tail_gaussian_and_none_is_the_identity():
    values = skewed()
    assert stats.skew(values) > 1.5
    for name in ("copula", "power"):
        assert abs(stats.skew(OutputWarp.fit(name, values)(values))) < 0.5
    np.testing.assert_array_equal(OutputWarp.fit("none", values)(values), values)


def test_copula_continues_linearly_beyond_the_observed_values():
    warp = OutputWarp.fit("copula", np.arange(10.0))
    z = warp(np.arange(10.0))
    slope = (z[-1] - z[-5]) / 4
    np.testing.assert_allclose(warp(np.array([11.0])), z[-1] + 2 * slope)
    np.testing.assert_allclose(warp.inverse(z[-1] + 2 * slope), 11.0)


@pytest.mark.parametrize("sign", [1, -1])
def test_power_continues_along_its_tangent_where_the_exponent_bounds_its_range(sign):
    values = sign * skewed()  # a long upper tail fits lambda < 0 (range bounded above); a lower one, lambda > 2
    warp = OutputWarp.fit("power", values)
    lam = warp.knots[2]
    assert lam < 0 if sign == 1 else lam > 2
    far = np.array([values.min() - 5.0, values.max() + 5.0])
    np.testing.assert_allclose(warp.inverse(warp(far)), far)
    z = warp(values)
    assert np.all(np.isfinite(warp.inverse(np.array([z.min() - 50.0, z.max() + 50.0]))))


def test_copula_upper_is_the_copula_above_the_median_and_a_straight_line_below_it():
    values = np.array([-6.0, -5.81, -5.80, -5.79, -3.0, 0.0, 1.0, 5.0, 17.0, 100.0])  # median -1.5
    copula, upper = OutputWarp.fit("copula", values), OutputWarp.fit("copula-upper", values)
    above = values > -1.5
    np.testing.assert_allclose(upper(values[above]), copula(values[above]))
    below = upper(values[~above])
    slopes = np.diff(below) / np.diff(values[~above])
    np.testing.assert_allclose(slopes, slopes[0])  # differences among the better half kept in proportion
    assert upper(values)[0] == copula(values)[0]  # through the copula's point at the least value
    np.testing.assert_allclose(upper(np.array([-1.5])), copula(np.array([-1.5])))  # and at the median
    # the copula spreads the three near-ties over whole quantile steps, the straight line does not
    assert np.ptp(copula(values[1:4])) > 0.6 and np.ptp(upper(values[1:4])) < 0.01
    # beyond the least value it continues along the same line
    np.testing.assert_allclose(upper(np.array([-7.0])), upper(values[:1]) - slopes[0])


def test_degenerate_values_give_the_identity_or_a_constant():
    assert OutputWarp.fit("power", np.ones(5)).name == "none"
    for name in ("copula", "copula-upper"):
        np.testing.assert_array_equal(OutputWarp.fit(name, np.ones(5))(np.ones(2)), [0.0, 0.0])


def test_unknown_warp_names_the_option_and_the_allowed_values():
    with pytest.raises(ValueError, match=r"output_warp must be one of \['none', 'copula', 'copula-upper', 'power'\], got 'log'"):
        OutputWarp.fit("log", np.ones(3))

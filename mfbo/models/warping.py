"""Monotone output warpings: the objective values a GP is fitted to, made closer to Gaussian.

An HPO objective is rarely Gaussian across a search space. An error rate is bounded below, a
few diverged or near-chance runs make a long upper tail, and on a learning-curve problem the
cheapest fidelity's values crowd near chance. A stationary GP fitted to such values spends its
signal variance on the tail, and its upper posterior samples of ``-value`` run past what the
objective can reach (:mod:`mfbo.acquisition.mes` measured ``f*`` samples far above the best
observed value on LCBench). A monotone increasing warp ``w`` changes none of that ordering: the
GP is fitted to ``w(value)`` and every acquisition, incumbent and recommendation works in the
warped scale, where minimising ``w(value)`` is minimising ``value``.

Warps (:data:`OUTPUT_WARPS`), each refitted on all values the GP is given:

- ``"none"``: the identity.
- ``"copula"``: the Gaussian copula transform of Salinas, Shen & Perrone, "A Quantile-based
  Approach for Hyperparameter Transfer Learning", ICML 2020:
  ``w(y) = Phi^{-1}(F(y))``, ``F`` the empirical distribution of the ``n`` values. Deviation:
  ``F`` uses the midpoint plotting position ``(r - 1/2) / n`` of average ranks ``r`` (ties share
  one value) instead of their winsorised estimate; both keep ``F`` inside ``(0, 1)``. It
  depends on the ranks only, so a tail of any length is mapped to a Gaussian one.
- ``"copula-upper"``: mfbo's one-sided variant of the copula: the copula above the median
  value (the worse half, as every value here is minimised) and, at and below it, the straight
  line through the copula's points at the least value and at the median. The worse half's tail
  (diverged or near-chance runs) is compressed as by the copula, while the better half keeps
  its differences in proportion. Why: on the synthetic suite (``experiments/bench_quality.py``,
  ``mf-ucb``, seeds 0-4) the copula spread near-ties among the best values into whole
  quantile steps, and the runs stalled near the optimum (``forrester`` seed 0: 23 target
  evaluations within 0.725-0.738, best value -5.81, the optimum -6.02 at 0.757; the median
  regret over seeds worse than without a warp on five of the eight problems, e.g.
  ``borehole`` 0.17 against 0.0017), and the power transform, which also reshapes the better
  tail, was worse on ``borehole`` in all five seeds. Measured (same benchmark, seeds 0-9):
  not enough. Against no warp it was worse in 8 of 10 seeds on ``forrester`` (median regret
  0.0024 against 3.5e-6) and 7 of 10 on ``borehole`` (0.65 against 0.0009), 5 of 10 on
  ``mfhartmann6-terrible`` (0.25 against 0.18); better in median on ``currin``,
  ``hartmann6`` and ``augmented-hartmann`` (seeds 0-4). A likely cause, common to every warp here: the warp is
  one map fitted on the values of all fidelities, and where a cheaper fidelity's values lie
  in another range (``forrester``'s low fidelity, ``0.5 f(x) + 10 (x - 0.5) + 5``, sits
  mostly above the target's values, so in the copula's half) it bends the linear relation
  between fidelities that the autoregressive kernel models. On LCBench and rbv2 every
  fidelity reports the same metric.
- ``"power"``: the Yeo-Johnson power transform (Yeo & Johnson, Biometrika 2000) of the
  standardised values, its exponent ``lambda`` the maximum-likelihood one
  (:func:`scipy.stats.yeojohnson_normmax`), as HEBO does (Cowen-Rivers et al., JAIR 2022; HEBO
  applies Box-Cox to positive values and Yeo-Johnson otherwise; here Yeo-Johnson always).

:meth:`OutputWarp.inverse` maps warped values back, e.g. a posterior mean for
:meth:`mfbo.strategies.mf_gp.MultiFidelityGPStrategy.predict`: the copula by linear
interpolation between the observed pairs, the power transform in closed form. Beyond the
fitted values both warps continue linearly, so that both directions are defined everywhere
and inverse to each other: the copula along the chord over the :data:`TAIL_POINTS` outermost
distinct values, the power transform along its tangent at the smallest and the largest value
(where ``lambda < 0`` or ``lambda > 2`` the transform itself is bounded, and a posterior mean
past that bound would otherwise have no preimage).

>>> warp = OutputWarp.fit("copula", np.array([0.05, 0.1, 0.9]))
>>> warp(np.array([0.05, 0.1, 0.9])).round(3).tolist()
[-0.967, 0.0, 0.967]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

OUTPUT_WARPS = ("none", "copula", "copula-upper", "power")
#: the warps stored as increasing knots ``(values, images)`` and applied by linear interpolation
_INTERPOLATED = ("copula", "copula-upper")
#: distinct values each side whose chord gives the copula's slope beyond the observed range
TAIL_POINTS = 5


@dataclass(frozen=True)
class OutputWarp:
    """A monotone increasing map of objective values, fitted by :meth:`fit`.

    Attributes:
        name: one of :data:`OUTPUT_WARPS`.
        knots: ``"copula"`` and ``"copula-upper"``: ``(values (m,), warped (m,))``, the
            distinct values in increasing order and their images; ``"power"``: ``(mean,
            std, lambda, low, high)``, ``low`` and ``high`` the least and the largest
            standardised value; ``"none"``: ``()``.
    """

    name: str
    knots: tuple = ()

    @classmethod
    def fit(cls, name: str, values: np.ndarray) -> OutputWarp:
        """The warp ``name`` fitted on ``values`` (``(n,)``, finite).

        Raises:
            ValueError: ``name`` is not one of :data:`OUTPUT_WARPS`.
        """
        if name not in OUTPUT_WARPS:
            raise ValueError(f"output_warp must be one of {list(OUTPUT_WARPS)}, got {name!r}")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if name == "none" or len(values) == 0:
            return cls("none")
        if name in _INTERPOLATED:
            distinct, first = np.unique(values, return_index=True)
            ranks = stats.rankdata(values)  # average ranks: ties share one value
            warped = stats.norm.ppf((ranks - 0.5) / len(values))[first]
            if name == "copula-upper":
                distinct, warped = _straightened_below_median(distinct, warped, float(np.median(values)))
            return cls(name, (distinct, warped))
        mean, std = float(values.mean()), float(values.std())
        if std == 0.0:
            return cls("none")
        standardised = (values - mean) / std
        lam = float(stats.yeojohnson_normmax(standardised))
        return cls("power", (mean, std, lam, float(standardised.min()), float(standardised.max())))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``w(values)``, elementwise, for values within (copula: among) those it was fitted on."""
        values = np.asarray(values, dtype=np.float64)
        if self.name == "none":
            return values
        if self.name in _INTERPOLATED:
            distinct, warped = self.knots
            return _interpolate(values, distinct, warped)
        mean, std, lam, low, high = self.knots
        transform = lambda v: stats.yeojohnson(v, lmbda=lam)  # noqa: E731
        return _continued(transform, (values - mean) / std, low, high, _yeojohnson_slope(low, lam), _yeojohnson_slope(high, lam))

    def inverse(self, warped: np.ndarray) -> np.ndarray:
        """``w^{-1}(warped)``, elementwise; beyond the fitted values, as the module docstring says."""
        warped = np.asarray(warped, dtype=np.float64)
        if self.name == "none":
            return warped
        if self.name in _INTERPOLATED:
            distinct, images = self.knots
            return _interpolate(warped, images, distinct)
        mean, std, lam, low, high = self.knots
        z_low, z_high = stats.yeojohnson(np.array([low, high]), lmbda=lam)
        inverse = lambda z: _yeojohnson_inverse(z, lam)  # noqa: E731
        return mean + std * _continued(inverse, warped, z_low, z_high, 1 / _yeojohnson_slope(low, lam), 1 / _yeojohnson_slope(high, lam))


def _straightened_below_median(distinct: np.ndarray, warped: np.ndarray, median: float) -> tuple[np.ndarray, ...]:
    """The copula's knots ``(distinct, warped)`` (increasing values and their images) with the
    median added as a knot and the images at and below it replaced by the straight line
    through the copula's points at the least value and at the median (unchanged when the
    least value is the median)."""
    if distinct[0] >= median:
        return distinct, warped
    at_median = float(np.interp(median, distinct, warped))
    slope = (at_median - warped[0]) / (median - distinct[0])
    knots = np.union1d(distinct, [median])
    return knots, np.where(knots <= median, at_median + slope * (knots - median), np.interp(knots, distinct, warped))


def _continued(f, x: np.ndarray, low: float, high: float, low_slope: float, high_slope: float) -> np.ndarray:
    """``f(x)`` on ``[low, high]``, continued beyond each end by the line through ``f`` there
    with the given slope."""
    x = np.asarray(x, dtype=np.float64)
    inside = f(np.clip(x, low, high))
    return inside + low_slope * np.minimum(x - low, 0.0) + high_slope * np.maximum(x - high, 0.0)


def _interpolate(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The increasing piecewise-linear map through ``(xs, ys)`` (both increasing), continued
    linearly beyond each end along the chord over the :data:`TAIL_POINTS` outermost knots (a
    single knot: slope 1)."""
    k = min(TAIL_POINTS, len(xs)) - 1
    low_slope = (ys[k] - ys[0]) / (xs[k] - xs[0]) if k else 1.0
    high_slope = (ys[-1] - ys[-1 - k]) / (xs[-1] - xs[-1 - k]) if k else 1.0
    return _continued(lambda t: np.interp(t, xs, ys), x, xs[0], xs[-1], low_slope, high_slope)


def _yeojohnson_slope(v: float, lam: float) -> float:
    """The Yeo-Johnson transform's derivative at ``v``: ``(1 + v)^(lam - 1)`` for ``v >= 0``,
    ``(1 - v)^(1 - lam)`` below."""
    return float((1.0 + v) ** (lam - 1.0) if v >= 0 else (1.0 - v) ** (1.0 - lam))


def _yeojohnson_inverse(z: np.ndarray, lam: float) -> np.ndarray:
    """The inverse of :func:`scipy.stats.yeojohnson` with exponent ``lam``, for ``z`` in the
    transform's range."""
    z = np.asarray(z, dtype=np.float64)
    positive = np.maximum(z, 0.0)
    negative = np.minimum(z, 0.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        up = np.expm1(positive) if abs(lam) < 1e-12 else np.power(positive * lam + 1.0, 1.0 / lam) - 1.0
        down = -np.expm1(-negative) if abs(lam - 2.0) < 1e-12 else 1.0 - np.power(1.0 - (2.0 - lam) * negative, 1.0 / (2.0 - lam))
    return np.where(z >= 0, up, down)

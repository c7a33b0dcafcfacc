"""Multivariate product-kernel density estimators and the TPE density-ratio proposal, as used by
BOHB (Falkner, Klein & Hutter, ICML 2018) and written once here for any TPE-style method.

The KDE's vector representation (:class:`KDEColumns`)
------------------------------------------------------
One column per hyperparameter of the :class:`~mfbo.space.Space` (so ``p = len(space)``, not
``space.dim``), as in ConfigSpace's vector representation that hpbandster's BOHB models:

* ``Float`` and ``Int``: their :meth:`Space.encode` column in ``[0, 1]`` (log scale applied,
  each integer at the centre of its bin), a *continuous* column (statsmodels var type ``'c'``).
  ConfigSpace 0.4, which hpbandster was written for, also puts integers on bins
  (``low - 0.5 .. high + 0.5``); ConfigSpace >= 1.0 maps ``low`` and ``high`` to 0 and 1, so
  under it hpbandster's integer bandwidths are ``(high - low + 1) / (high - low)`` times ours;
* an ordered ``Categorical``: its one ordinal encoding column, also continuous, i.e. it is
  modelled as an integer parameter (hpbandster refuses ordinals and asks for exactly this);
* an unordered ``Categorical`` with ``c`` choices: the index of the choice, ``0 .. c-1``, an
  *unordered* column (var type ``'u'``), whatever its one-hot width in :meth:`Space.encode`;
* an inactive conditional parameter: ``NaN``, imputed before fitting (:meth:`KDEColumns.impute`).

The density (:class:`ProductKDE`)
---------------------------------
With data ``X_1 .. X_n`` and bandwidths ``h_j``,

    p(x) = (1/n) sum_i prod_j K_j(x_j, X_ij),

    K_j = N(x_j; X_ij, h_j^2)                        for a continuous column,
    K_j = 1 - h_j  if x_j == X_ij  else h_j / (c_j - 1)   (Aitchison & Aitken, 1976) for an
                                                       unordered column with c_j choices.

The bandwidths are statsmodels' normal-reference rule (``KDEMultivariate(bw="normal_reference")``,
``h_j = 1.06 std_j n^(-1/(4+p))``, what hpbandster uses), floored at ``min_bandwidth``.
Two differences from evaluating statsmodels' ``KDEMultivariate.pdf``, which hpbandster does:

* statsmodels' Aitchison-Aitken kernel takes ``c`` from the levels *present in the data*; here
  ``c`` is the number of choices of the parameter, so the kernel sums to one over the choices and
  a choice absent from the data keeps the finite density ``h / (c - 1)`` (statsmodels divides by
  zero when the data hold a single level, which hpbandster catches as a non-finite ratio);
* the normal-reference rule applied to category indices can exceed the kernel's valid range
  ``[0, (c-1)/c]`` (it is not bounded for unordered data), where the kernel would weight the
  choices *not* observed above the observed one; ``h_j`` is capped at ``(c-1)/c`` (at which
  the kernel is uniform). hpbandster does not cap: with three choices it fits ``h = 0.78``
  in a test of ours, weighting the observed choice 0.22 and each other one 0.39.

Where every choice appears in the data and no cap applies, :meth:`ProductKDE.pdf` equals
statsmodels' (a test checks it); it is computed vectorised, in log space, over all points at
once.

Sampling (:meth:`ProductKDE.sample`) draws a data point uniformly, then each continuous column
from a normal around it with standard deviation ``bandwidth_factor * h_j`` truncated to
``[0, 1]`` (scipy's ``truncnorm``), and each unordered column from its Aitchison-Aitken kernel
(keep the value with probability ``1 - h_j``, else one of the other ``c - 1`` uniformly).
hpbandster keeps it with probability ``1 - h_j`` and otherwise draws among *all* ``c`` choices,
so it keeps slightly more often than its own density says; the bandwidth factor is not applied
to unordered columns (as in hpbandster: ``3 h_j`` would mostly exceed the cap).

statsmodels is an optional dependency (``pip install 'mfbo[bandits]'``), imported when a KDE
is first fitted.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import truncnorm

from ...space import Categorical, Space

__all__ = ["KDEColumns", "ProductKDE", "good_bad_split", "propose_by_density_ratio", "require_statsmodels"]

#: hpbandster's floor of both densities in the ratio ``g(x) / l(x)``.
DENSITY_FLOOR = 1e-32


def require_statsmodels(what: str = "BOHB") -> Any:
    """statsmodels' ``KDEMultivariate``, or one ``ImportError`` naming the extra to install."""
    try:
        from statsmodels.nonparametric.kernel_density import KDEMultivariate
    except ImportError:
        raise ImportError(f"{what} needs statsmodels for its kernel density estimators: pip install 'mfbo[bandits]'") from None
    return KDEMultivariate


def _var_type(levels: Sequence[int]) -> str:
    """statsmodels' variable types of columns with these levels: ``'c'`` for 0, else ``'u'``."""
    return "".join("u" if c else "c" for c in levels)


def _normal_reference_bandwidth(data: np.ndarray, var_type: str) -> np.ndarray:
    """statsmodels' normal-reference bandwidths of ``data``. Its generator (unused by this rule)
    is passed explicitly where statsmodels accepts one (>= 0.15), which keeps it from warning
    about its legacy global default."""
    kde_multivariate = require_statsmodels()
    extra = {"rng": np.random.default_rng(0)} if "rng" in inspect.signature(kde_multivariate).parameters else {}
    kde = kde_multivariate(data, var_type=var_type, bw="normal_reference", **extra)
    return np.asarray(kde.bw, dtype=float)


@dataclass(frozen=True)
class KDEColumns:
    """The KDE's vector representation of a :class:`Space` (see the module docstring).

    Attributes:
        space: the search space.
        levels: per hyperparameter, ``0`` for a continuous column, else the number of choices
            ``c`` of an unordered categorical.
    """

    space: Space
    levels: tuple[int, ...]

    @classmethod
    def of(cls, space: Space) -> KDEColumns:
        levels = tuple(
            len(p.choices) if isinstance(p, Categorical) and not p.ordered else 0
            for p in space.values()
        )
        return cls(space, levels)

    @property
    def var_type(self) -> str:
        """statsmodels' variable types: ``'c'`` continuous, ``'u'`` unordered."""
        return _var_type(self.levels)

    def vectors(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Configurations as an ``(n, p)`` array; ``NaN`` where a parameter is inactive."""
        rows = []
        for config in configs:
            config = self.space.validate(config)
            row = np.full(len(self.levels), np.nan)
            for j, (name, param) in enumerate(self.space.items()):
                if name in config:
                    row[j] = param.choices.index(config[name]) if self.levels[j] else param.encode(config[name])[0]
            rows.append(row)
        return np.array(rows).reshape(len(rows), len(self.levels))

    def config(self, vector: np.ndarray) -> dict[str, Any]:
        """The configuration of one vector (continuous values clipped to ``[0, 1]`` and decoded by
        :meth:`Space.decode`; categorical indices rounded)."""
        u = np.zeros(self.space.dim)
        for j, name in enumerate(self.space):
            cols = self.space.columns(name)
            if self.levels[j]:
                u[cols.start + int(np.clip(np.rint(vector[j]), 0, self.levels[j] - 1))] = 1.0
            else:
                u[cols] = vector[j]
        return self.space.decode(u)

    def impute(self, data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill the ``NaN`` (inactive) entries of ``data``: each from a row of ``data`` drawn at
        random among those where that column is active, or, if none is, with a random valid value
        (uniform on ``[0, 1]``, or a uniform choice index). hpbandster copies all of a row's
        inactive entries from one donor row; here each entry draws its own donor."""
        out = np.array(data, dtype=float, copy=True)
        for i, j in zip(*np.nonzero(np.isnan(data))):
            donors = np.flatnonzero(~np.isnan(data[:, j]))
            if donors.size:
                out[i, j] = data[donors[rng.integers(donors.size)], j]
            else:
                out[i, j] = rng.integers(self.levels[j]) if self.levels[j] else rng.random()
        return out


class ProductKDE:
    """A product-kernel KDE over :class:`KDEColumns` vectors (see the module docstring).

    Args:
        data: ``(n, p)`` array without ``NaN``; continuous columns in ``[0, 1]``, unordered ones
            holding choice indices.
        levels: :attr:`KDEColumns.levels`.
        min_bandwidth: floor of every bandwidth.

    Attributes:
        bandwidth: ``(p,)`` bandwidths after the floor and the Aitchison-Aitken cap.
    """

    def __init__(self, data: np.ndarray, levels: Sequence[int], min_bandwidth: float):
        self.data = np.asarray(data, dtype=float)
        self.levels = np.asarray(levels, dtype=int)
        if self.data.ndim != 2 or self.data.shape[1] != self.levels.size or np.isnan(self.data).any():
            raise ValueError(f"ProductKDE: data must be an (n, {self.levels.size}) array without NaN, got shape {self.data.shape}")
        bandwidth = _normal_reference_bandwidth(self.data, _var_type(self.levels))
        bandwidth = np.maximum(bandwidth, min_bandwidth)
        cap = np.where(self.levels > 0, (self.levels - 1) / np.maximum(self.levels, 1), np.inf)
        self.bandwidth = np.minimum(bandwidth, cap)

    @property
    def _unordered(self) -> np.ndarray:
        return self.levels > 0

    def log_pdf(self, points: np.ndarray) -> np.ndarray:
        """``log p(x)`` at ``(m, p)`` points, shape ``(m,)``."""
        x = np.atleast_2d(np.asarray(points, dtype=float))[:, None, :]  # m x 1 x p
        log_kernel = np.zeros((x.shape[0], self.data.shape[0]))  # m x n
        cont, unord = ~self._unordered, self._unordered
        if cont.any():
            h = self.bandwidth[cont]
            z = (x[..., cont] - self.data[None, :, cont]) / h
            log_kernel += (-0.5 * z**2 - np.log(h * math.sqrt(2 * math.pi))).sum(axis=2)
        if unord.any():
            h, c = self.bandwidth[unord], self.levels[unord]
            same = np.rint(x[..., unord]) == self.data[None, :, unord]
            with np.errstate(divide="ignore"):  # c = 1: h = 0, and every value is the same
                log_kernel += np.where(same, np.log1p(-h), np.log(h / np.maximum(c - 1, 1))).sum(axis=2)
        top = log_kernel.max(axis=1, keepdims=True)  # finite: every kernel value is > 0
        return top[:, 0] + np.log(np.exp(log_kernel - top).sum(axis=1)) - math.log(self.data.shape[0])

    def pdf(self, points: np.ndarray) -> np.ndarray:
        """``p(x)`` at ``(m, p)`` points, shape ``(m,)``."""
        return np.exp(self.log_pdf(points))

    def sample(self, rng: np.random.Generator, n: int, bandwidth_factor: float = 1.0) -> np.ndarray:
        """``n`` draws from the KDE with its continuous bandwidths multiplied by
        ``bandwidth_factor``, each continuous column truncated to ``[0, 1]``; shape ``(n, p)``."""
        out = self.data[rng.integers(self.data.shape[0], size=n)]
        cont = np.flatnonzero(~self._unordered)
        if cont.size:
            m, s = out[:, cont], bandwidth_factor * self.bandwidth[cont]
            out[:, cont] = truncnorm.rvs(-m / s, (1 - m) / s, loc=m, scale=s, size=m.shape, random_state=rng)
        for j in np.flatnonzero(self.levels > 1):
            c = int(self.levels[j])
            change = rng.random(n) < self.bandwidth[j]
            shift = rng.integers(1, c, size=n)  # uniform among the other c - 1 choices
            out[:, j] = np.where(change, (out[:, j] + shift) % c, out[:, j])
        return out


def good_bad_split(losses: Sequence[float], top_n_percent: float, min_points: int, n_params: int) -> tuple[np.ndarray, np.ndarray] | None:
    """BOHB's split of the observations of one budget into good and bad, or ``None`` when there
    are too few to fit both KDEs.

    With ``N`` observations sorted by loss (stable, so ties keep their order; failures count as
    ``+inf``), the ``N_l = max(min_points, floor(top_n_percent * N / 100))`` best are good
    (Eq. 3 of the paper; hpbandster's rounding) and the other ``N - N_l`` are bad. Both KDEs need
    more points than parameters (hpbandster's condition), so the split exists when
    ``N - N_l > n_params``; with the default ``min_points = n_params + 1`` that is
    ``N - N_l >= min_points``. The paper's ``N_g = max(min_points, N - N_l)`` would let the two
    sets overlap; hpbandster's ``n_bad = max(min_points, floor((100 - top_n_percent) N / 100))``
    can leave the worst point or two out; here the bad set is every point not good.

    Returns:
        the indices (into ``losses``) of the good and of the bad observations, best first.
    """
    losses = np.asarray(losses, dtype=float)
    losses = np.where(np.isfinite(losses), losses, np.inf)
    n_good = max(min_points, math.floor(top_n_percent * losses.size / 100))
    if losses.size - n_good <= n_params:
        return None
    order = np.argsort(losses, kind="stable")
    return order[:n_good], order[n_good:]


def propose_by_density_ratio(good: ProductKDE, bad: ProductKDE, rng: np.random.Generator, num_samples: int, bandwidth_factor: float) -> np.ndarray:
    """The TPE proposal: draw ``num_samples`` vectors from ``good`` with its bandwidths widened by
    ``bandwidth_factor`` and return the one maximising ``l(x) / g(x)``, i.e. minimising
    ``max(g(x), 1e-32) / max(l(x), 1e-32)`` (hpbandster's floors), evaluated with the
    *unwidened* densities ``l = good``, ``g = bad``; ties go to the first drawn."""
    candidates = good.sample(rng, num_samples, bandwidth_factor)
    floor = math.log(DENSITY_FLOOR)
    score = np.maximum(bad.log_pdf(candidates), floor) - np.maximum(good.log_pdf(candidates), floor)
    return candidates[int(np.argmin(score))]

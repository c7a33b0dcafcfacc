"""BOHB: Hyperband whose new configurations come from a TPE-style pair of multivariate KDEs.

Paper: Falkner, Klein & Hutter, "BOHB: Robust and Efficient Hyperparameter Optimization at
Scale", ICML 2018 (PMLR 80:1437-1446). Version followed: the paper's Algorithm 2 (sampling) on
top of Hyperband (:mod:`.hyperband`, whose schedule, promotions and recommendation BOHB keeps
unchanged), with the details that the paper leaves open taken from the authors' reference code,
hpbandster 0.7.4 (``hpbandster/optimizers/config_generators/bohb.py``).

Sampling a new configuration (:meth:`BOHB._sample_configs`, one per request of Hyperband)
-------------------------------------------------------------------------------------------------
Let ``D_b`` be the results told so far at budget (fidelity value) ``b``, with losses; a failed
trial, or a non-finite value, counts as loss ``+inf`` (hpbandster), so it lands in the bad set.

1. The model's budget is the largest ``b`` whose results can be split into a good and a bad set
   of more than ``d`` points each (``d = len(space)``, one KDE column per hyperparameter)::

       N_l = max(N_min, floor(q N / 100))   best results: good, density l(x)
       N_g = N - N_l                        the rest: bad, density g(x)
       enough  <=>  N_g > d                 (N_min = d + 1 by default)

   (:func:`.kde.good_bad_split`). No such budget: the configuration is uniform from the space.
2. With probability ``random_fraction`` the configuration is uniform from the space anyway.
3. Otherwise ``num_samples`` vectors are drawn from ``l`` with its continuous bandwidths
   multiplied by ``bandwidth_factor`` (truncated to the unit interval) and the one with the
   largest ``l(x) / g(x)`` is returned (:func:`.kde.propose_by_density_ratio`); ``l`` and ``g``
   are product-kernel KDEs, Gaussian on continuous columns and Aitchison-Aitken on categorical
   ones, with statsmodels' normal-reference bandwidths floored at ``min_bandwidth``
   (:class:`.kde.ProductKDE`).

The KDEs work in the space's encoding (:class:`.kde.KDEColumns`): a ``Float`` or ``Int``
column is its :meth:`~mfbo.space.Space.encode` value (log scales applied; each integer at the
centre of its bin, as in ConfigSpace 0.4's vector representation, and modelled as continuous, as in
hpbandster), an unordered ``Categorical`` is its choice index (kernel ``'u'``), an ordered
``Categorical`` is its ordinal column modelled like an integer (hpbandster refuses ordinal
parameters and asks for exactly this encoding), and an inactive conditional parameter is
imputed from a random good (or bad) point where it is active, else drawn at random.

Defaults (all the paper's): ``top_n_percent = 15``, ``min_points_in_model = d + 1``,
``num_samples = 64``, ``random_fraction = 1/3``, ``bandwidth_factor = 3``,
``min_bandwidth = 1e-3``; ``eta = 3``, ``r_min`` (the fidelity's low end) and the bracket
sizes of Li et al.'s table as Hyperband's (hpbandster floors them: ``bracket_sizes =
"hpbandster"``).

Checked against the reference: a test tells the same results to hpbandster 0.7.4's config
generator and to this one, and after every result both model the same budget with the same good
points and the same bandwidths, but for the two deviations below that concern them (the bad set's
worst points, the categorical bandwidth cap).

Deviations, and choices not in the paper
----------------------------------------
- Enough points (step 1): the paper asks ``|D_b| >= N_min + 2`` and sets
  ``N_g = max(N_min, N - N_l)``, which lets the two sets share points; hpbandster needs more
  than ``d`` points in each of two disjoint sets, which is followed here. hpbandster's bad set
  holds ``max(N_min, floor((100 - q) N / 100))`` points and can leave the worst point or two
  out; here it is every point not good (the paper's ``N - N_l``).
- The categorical kernel counts the parameter's choices, not the levels present in the data,
  and its bandwidth is capped at ``(c - 1)/c``; categorical samples follow the kernel exactly;
  the KDE is evaluated in log space (no overflow in high dimension); see :mod:`.kde`.
- The model is fitted when a configuration is requested, on every result told by then (cached
  until a result arrives at its budget); hpbandster refits when a result arrives, which gives
  the same model. Pending trials are not in the model (as in hpbandster).
- The random-fraction coin is tossed only once a model exists (hpbandster); the paper tosses it
  first. The distribution of the picks is the same.
- ``min_points_in_model`` below ``d + 1`` is refused (hpbandster raises it to ``d + 1`` with a
  warning).
- Budgets are the fidelity values the trials ran at (Hyperband's rung resources rounded up to
  whole epochs or levels); results given through ``add_observation`` are data at their fidelity.
- Duplicate proposals are not filtered (as in hpbandster).

:attr:`BOHB.picks` records, per new configuration, ``"model"``, ``"random"`` (the coin) or
``"prior"`` (no model yet); a note in the trial log says when the model moves to a new budget.
statsmodels is needed (``pip install 'mfbo[bandits]'``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...problems.base import Problem
from ...space import Fidelity, Space
from ...trial import Observation, Trial
from .hyperband import Hyperband
from .kde import KDEColumns, ProductKDE, good_bad_split, propose_by_density_ratio, require_statsmodels
from .schedule import Bracket, Rung

__all__ = ["BOHB"]


@dataclass(frozen=True)
class KDEModel:
    """The pair of KDEs fitted on the results at ``budget``: ``good`` (density ``l``) on the
    ``n_good`` best, ``bad`` (``g``) on the ``n_bad`` others."""

    budget: Any
    n_results: int
    good: ProductKDE
    bad: ProductKDE

    @property
    def n_good(self) -> int:
        return self.good.data.shape[0]

    @property
    def n_bad(self) -> int:
        return self.bad.data.shape[0]


class BOHB(Hyperband):
    """BOHB (module docstring).

    Options:
        eta, r_min, bracket_sizes: as :class:`~.hyperband.Hyperband` (``bracket_sizes =
            "hpbandster"`` runs hpbandster's BOHB schedule, for comparisons with it).
        min_points_in_model: ``N_min``, at least ``d + 1`` (default ``d + 1``, ``d`` the number
            of hyperparameters).
        top_n_percent: ``q``, the percentage of results that are good, in ``(0, 100)``.
        num_samples: candidates drawn from ``l`` per model-based pick, ``>= 1``.
        random_fraction: the probability of a uniform configuration once a model exists, in
            ``[0, 1]``.
        bandwidth_factor: widens ``l``'s continuous bandwidths for drawing candidates, ``> 0``.
        min_bandwidth: the floor of every KDE bandwidth, ``> 0``.
    """

    name = "bohb"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: float = 3.0, r_min: float | None = None, bracket_sizes: str = "hyperband",
                 min_points_in_model: int | None = None,
                 top_n_percent: float = 15.0, num_samples: int = 64, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3.0, min_bandwidth: float = 1e-3):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta, r_min=r_min, bracket_sizes=bracket_sizes)
        require_statsmodels(f"strategy {self.name!r}")
        d = len(space)
        self.min_points_in_model = d + 1 if min_points_in_model is None else int(self._checked(
            "min_points_in_model", min_points_in_model, f"an integer >= d + 1 = {d + 1} (d = {d} hyperparameters) or None",
            lambda v: _is_int(v) and v >= d + 1))
        self.top_n_percent = float(self._checked("top_n_percent", top_n_percent, "a number in (0, 100)", lambda v: 0 < v < 100))
        self.num_samples = int(self._checked("num_samples", num_samples, "an integer >= 1", lambda v: _is_int(v) and v >= 1))
        self.random_fraction = float(self._checked("random_fraction", random_fraction, "a number in [0, 1]", lambda v: 0 <= v <= 1))
        self.bandwidth_factor = float(self._checked("bandwidth_factor", bandwidth_factor, "a finite number > 0", lambda v: 0 < v < math.inf))
        self.min_bandwidth = float(self._checked("min_bandwidth", min_bandwidth, "a finite number > 0", lambda v: 0 < v < math.inf))
        self.columns = KDEColumns.of(space)
        self.picks: list[str] = []
        self._results: dict[Any, tuple[list[np.ndarray], list[float]]] = {}  # budget -> KDE vectors, losses
        self._model: KDEModel | None = None

    def _checked(self, option: str, value: Any, allowed: str, ok: Any) -> Any:
        """``value`` if it is a real number (not a bool) and ``ok(value)``; else one ValueError."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not ok(value):
            raise ValueError(f"strategy {self.name!r}: option {option} must be {allowed}, got {value!r}")
        return value

    # The one hook BOHB overrides ------------------------------------------------------------------
    def _sample_configs(self, n: int, rung: Rung, bracket: Bracket) -> list[dict[str, Any]]:
        """``n`` new configurations, each from the KDEs or uniform (module docstring)."""
        model = self.model()
        configs = []
        for _ in range(n):
            if model is None or self.rng.random() < self.random_fraction:
                self.picks.append("prior" if model is None else "random")
                configs.append(self.space.sample(self.rng))
            else:
                self.picks.append("model")
                vector = propose_by_density_ratio(model.good, model.bad, self.rng, self.num_samples, self.bandwidth_factor)
                configs.append(self.columns.config(vector))
        return configs

    # The model ------------------------------------------------------------------------------------
    def _observe(self, trial: Trial, observation: Observation) -> None:
        """File the result under its budget (fidelity value) for the model, then let Hyperband
        record it; a failure, or a non-finite value, is the loss ``+inf``."""
        vectors, losses = self._results.setdefault(trial.fidelity, ([], []))
        vectors.append(self.columns.vectors([trial.config])[0])
        losses.append(float(observation.value) if observation.ok else math.inf)
        super()._observe(trial, observation)

    def model(self) -> KDEModel | None:
        """The KDEs on the largest budget with enough results, or ``None`` (refitted only when
        that budget or its number of results changes)."""
        d = len(self.space)
        for budget in sorted(self._results, reverse=True):
            vectors, losses = self._results[budget]
            if self._model is not None and (self._model.budget, self._model.n_results) == (budget, len(losses)):
                return self._model
            split = good_bad_split(losses, self.top_n_percent, self.min_points_in_model, d)
            if split is not None:
                return self._fit(budget, np.array(vectors), split)
        return None

    def _fit(self, budget: Any, data: np.ndarray, split: tuple[np.ndarray, np.ndarray]) -> KDEModel:
        good, bad = (
            ProductKDE(self.columns.impute(data[idx], self.rng), self.columns.levels, self.min_bandwidth)
            for idx in split
        )
        if self._model is None or self._model.budget != budget:
            self.note(f"bohb: KDEs fitted on budget {budget} ({len(data)} results: {len(split[0])} good, {len(split[1])} bad)")
        self._model = KDEModel(budget, len(data), good, bad)
        return self._model

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "min_points_in_model": self.min_points_in_model, "top_n_percent": self.top_n_percent,
            "num_samples": self.num_samples, "random_fraction": self.random_fraction,
            "bandwidth_factor": self.bandwidth_factor, "min_bandwidth": self.min_bandwidth,
        }


def _is_int(value: Any) -> bool:
    return float(value).is_integer()

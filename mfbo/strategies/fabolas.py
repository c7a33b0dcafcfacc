"""FABOLAS: Bayesian optimisation over the configuration and the training-data subset size.

Klein, Falkner, Bartels, Hennig & Hutter, *Fast Bayesian Optimization of Machine Learning
Hyperparameters on Large Datasets*, AISTATS 2017 (arXiv:1605.07079). Authors' code: RoBO,
``robo/fmin/fabolas.py`` with ``robo/models/fabolas_gp.py``, ``robo/priors/env_priors.py``,
``robo/acquisition_functions/information_gain{,_per_unit_cost}.py``,
``robo/acquisition_functions/marginalization.py``, ``robo/maximizers/random_sampling.py``,
``robo/util/epmgp.py``, ``robo/util/incumbent_estimation.py``.

The method
----------
- Fidelity: the data-subset fraction ``s in [s_min, s_max]``, encoded
  ``s̃ = (log2 s - log2 s_min) / (log2 s_max - log2 s_min)``.
- Loss model: a GP on ``log(validation error)`` over ``(x, s̃)`` (``x`` the unit-cube encoding
  of the space) with kernel ``θ0 · Π_d Matérn-5/2(x_d, x'_d) · φ(s̃)ᵀ Σ_φ φ(s̃')``,
  ``φ(s̃) = (1, (1 - s̃)²)``; cost model: the same on ``log(cost)`` with ``φ_c(s̃) = (1, s̃)``.
  Both marginalise their hyperparameters by MCMC (emcee, the ``mcmc`` extra) under the priors
  of RoBO's ``EnvPrior`` (:mod:`mfbo.models.fabolas_gp`).
- Acquisition, per hyperparameter sample and averaged over the samples (RoBO's
  ``MarginalizationGPMCMC``, which pairs loss sample ``i`` with cost sample ``i``)::

      a(x, s̃) = mean_i  IG_i(x, s̃) / exp(μ_cost,i(x, s̃))

  with ``IG_i`` the Entropy Search information gain about the location of the minimum **at
  s = s_max** (:mod:`mfbo.acquisition.entropy_search`), on ``n_representer = 50`` representer
  points drawn at ``s̃ = 1`` by MCMC from EI projected to ``s̃ = 1`` and p_min by EP
  (:mod:`mfbo.acquisition.epmgp`).
- Maximisation: RoBO's random sampling, ``n_candidates = 500`` points, 70 % uniform on
  ``[0, 1]^{d+1}`` and 30 % Gaussian (sd 0.1, clipped) around the incumbent at ``s̃ = 1``.
- Initial design: ``n_init`` Latin-hypercube configurations, each evaluated on every subset of
  ``init_subsets`` (RoBO: ``s_max/256, s_max/128, s_max/64``).
- Incumbent (:meth:`Fabolas.recommend`): among the evaluated configurations, the argmin of
  the predicted loss at ``s = s_max`` averaged over the samples (RoBO's
  ``projected_incumbent_estimation``); during the initial design the best observed value.

Deviations from the paper and from RoBO
---------------------------------------
1. Subset fractions below ``s_min`` are impossible here (the problem's fidelity has a floor;
   ``digits-svm`` starts at 1/64). The initial subsets are ``s_max / {256, 128, 64}`` where they
   are ``>= s_min``; otherwise the ladder is moved up to start at ``s_min``
   (``s_min · {1, 2, 4}``, capped at ``s_max``). RoBO's default ``n_init = 40`` (120
   evaluations) is reduced to 5 (15 evaluations).
2. Targets are standardised before the GP fit and the amplitude prior is
   ``log θ0 ~ N(0, 1)`` (a log-normal amplitude). RoBO keeps the raw targets (GP mean = data
   mean) and evaluates ``scipy.stats.lognorm.logpdf(log θ0, 1, loc=-2)``, which is a
   log-normal density on ``log θ0 + 2``, not on ``θ0``.
3. The representer points are drawn from a density proportional to EI (log density = log EI,
   as the issue and Hennig & Schuler's ``LogEI`` proposal). RoBO's FABOLAS passes ``EI`` as
   the sampler's *log* density (density ``∝ exp(EI)``, close to uniform). EI uses each sample's
   own projected incumbent, as RoBO. The sampler is the same affine-invariant stretch move
   (50 walkers, 20 steps, uniform start), run for all samples as one batch instead of one
   emcee run per sample.
4. The information gain's innovation uses the predictive variance with noise, ``v = v_f +
   σ_n²``, for both the mean and the covariance update (the Gaussian update of an observation);
   RoBO divides by the noise-free variance and multiplies by the noisy standard deviation. Its
   second-order Taylor prediction is computed in closed form
   (:mod:`mfbo.acquisition.entropy_search`), without RoBO's element-wise ``Zm * Zm`` where the
   normalisation needs an outer product.
5. EP's ``z < -6`` failure gives that point ``log Z = -500`` (as RoBO) but does not stop the
   other points; rows are swept only while their sites still move.
6. The objective is modelled as ``log(max(value, 1e-4))`` (a validation error of 0 has no
   log; RoBO takes the log unguarded) and the cost as ``log(max(cost, 1e-9))``;
   ``log_objective=False`` models the raw value (for objectives that can be negative).
7. A suggestion's subset is the fraction ``s`` itself (the problem rounds it to examples);
   RoBO rounds ``s`` to an integer number of data points.
8. Budget: where the problem knows costs in advance, candidates whose known cost exceeds what
   the budget has left are dropped before the argmax (as every mfbo strategy does); RoBO runs
   a fixed number of iterations.
9. Pending trials (parallel workers) are not modelled: FABOLAS is sequential; with several
   workers each ask uses the data told so far. Failed trials (error or NaN) are left out of
   both GPs.

10. The number of MCMC walkers (= hyperparameter samples) is ``max(n_hypers, 2 P)``,
    ``P = d + 4`` hyperparameters (emcee refuses fewer than ``2 P`` walkers); RoBO raises
    ``n_hypers`` to ``3 (P - 1)`` when it is below ``2 (P - 1)``.

Defaults not in the paper: ``n_hypers = 12``, ``burnin = 100``, ``chain_length = 100``
(RoBO's), ``n_innovations = 400`` (RoBO's ``Np``), ``n_candidates = 500`` (RoBO's random
sampling), ``n_init = 5``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..acquisition.entropy_search import (
    information_gain,
    log_expected_improvement,
    sample_representers,
)
from ..acquisition.epmgp import pmin_ep
from ..models.fabolas_gp import (
    COST_BASIS,
    LOSS_BASIS,
    MarginalisedGP,
    subset_decoding,
    subset_encoding,
)
from .base import Strategy

__all__ = ["Fabolas"]

_VALUE_FLOOR, _COST_FLOOR = 1e-4, 1e-9


class Fabolas(Strategy):
    """FABOLAS (module docstring). Needs a continuous data-subset fidelity.

    Options:
        n_init: Latin-hypercube configurations of the initial design (each on every initial subset).
        n_hypers: MCMC hyperparameter samples (= walkers) of each GP.
        burnin, chain_length: MCMC steps of the first and of every later fit.
        n_representer: representer points of p_min at ``s_max``.
        n_innovations: quantiles of the hallucinated observation.
        n_candidates: random candidates scored per suggestion.
        log_objective: model ``log(value)`` (the paper) or the raw value.
    """

    name = "fabolas"

    def __init__(self, space, fidelity=None, *, seed: int = 0, problem=None, n_init: int = 5, n_hypers: int = 12, burnin: int = 100,
                 chain_length: int = 100, n_representer: int = 50, n_innovations: int = 400, n_candidates: int = 500, log_objective: bool = True) -> None:
        super().__init__(space, fidelity, seed=seed, problem=problem)
        self._check_fidelity(fidelity)
        for key, value, low in (("n_init", n_init, 1), ("n_hypers", n_hypers, 2), ("burnin", burnin, 0), ("chain_length", chain_length, 1),
                                ("n_representer", n_representer, 2), ("n_innovations", n_innovations, 1), ("n_candidates", n_candidates, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"strategy 'fabolas': option {key} must be an integer >= {low}, got {value!r}")
        if n_hypers % 2:
            raise ValueError(f"strategy 'fabolas': option n_hypers must be even (emcee's ensemble splits the walkers in halves), got {n_hypers!r}")
        self.n_init, self.n_hypers, self.burnin, self.chain_length = int(n_init), int(n_hypers), int(burnin), int(chain_length)
        self.n_representer, self.n_innovations, self.n_candidates = int(n_representer), int(n_innovations), int(n_candidates)
        self.log_objective = bool(log_objective)
        self.s_min, self.s_max = float(fidelity.low), float(fidelity.high)
        self.init_subsets = self._initial_subsets(self.s_min, self.s_max)
        d = space.dim
        self.loss_gp = MarginalisedGP(LOSS_BASIS, d, n_hypers=self.n_hypers, burnin=self.burnin, chain_length=self.chain_length)
        self.cost_gp = MarginalisedGP(COST_BASIS, d, n_hypers=self.n_hypers, burnin=self.burnin, chain_length=self.chain_length)
        lhs = (self.rng.permuted(np.tile(np.arange(self.n_init), (d, 1)), axis=1).T + self.rng.uniform(size=(self.n_init, d))) / self.n_init
        self._design = [(config, s) for config in space.decode_many(lhs) for s in self.init_subsets]
        self._fitted_at = -1

    @staticmethod
    def _check_fidelity(fidelity) -> None:
        ok = fidelity is not None and not fidelity.is_discrete and 0.0 < fidelity.low < fidelity.high <= 1.0 and fidelity.target == fidelity.high
        if not ok:
            got = "no fidelity" if fidelity is None else f"fidelity {fidelity.name!r} with low={fidelity.low}, high={fidelity.high}, target={fidelity.target}, discrete={fidelity.is_discrete}"
            raise ValueError("strategy 'fabolas': needs a continuous data-subset fidelity, the fraction s of the training data, "
                             f"with 0 < low < high <= 1 and target = high (e.g. digits-svm's subset, YAHPO's trainsize); got {got}")

    @staticmethod
    def _initial_subsets(s_min: float, s_max: float) -> tuple[float, ...]:
        """RoBO's ``s_max / {256, 128, 64}``, moved up to ``s_min · {1, 2, 4}`` when below ``s_min``."""
        paper = [s_max / k for k in (256, 128, 64)]
        if paper[0] >= s_min:
            return tuple(paper)
        return tuple(sorted({min(s_min * 2.0**j, s_max) for j in range(3)}))

    def options(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "n_hypers": self.n_hypers, "burnin": self.burnin, "chain_length": self.chain_length, "n_representer": self.n_representer,
                "n_innovations": self.n_innovations, "n_candidates": self.n_candidates, "log_objective": self.log_objective, "init_subsets": list(self.init_subsets)}

    # Data and models ---------------------------------------------------------------------------
    def _data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """``X (n, d)``, ``s̃ (n,)``, modelled loss ``(n,)``, log cost ``(n,)`` and the configs
        of the successful trials (failures and NaNs left out)."""
        done = [(t, o) for t, o in self.successes() if np.isfinite(o.value)]
        configs = [dict(t.config) for t, _ in done]
        X = self.space.encode_many(configs).reshape(len(done), self.space.dim)
        st = subset_encoding(np.array([float(t.fidelity) for t, _ in done]), self.s_min, self.s_max)
        values = np.array([o.value for _, o in done], dtype=float)
        y = np.log(np.maximum(values, _VALUE_FLOOR)) if self.log_objective else values
        c = np.log(np.maximum(np.array([o.cost for _, o in done], dtype=float), _COST_FLOOR))
        return X, st, y, c, configs

    def _ready(self) -> bool:
        """The model phase: the initial design is told (or skipped by added data) and two trials succeeded."""
        n = len(self._data()[4])
        return (not self._design or n >= len(self.init_subsets) * self.n_init) and n >= 2

    def _fit(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Advance both GPs' chains on the current data (once per history length); returns the
        evaluated configurations' encodings and the configurations."""
        X, st, y, c, configs = self._data()
        if self._fitted_at != len(self.history):
            self.loss_gp.fit(X, st, y, self.rng)
            self.cost_gp.fit(X, st, c, self.rng)
            self._fitted_at = len(self.history)
        return X, configs

    def _projected_means(self, X: np.ndarray) -> np.ndarray:
        """Predicted loss at ``s = s_max`` of the configurations ``X (n, d)``, per sample ``(S, n)``."""
        return self.loss_gp.predict(X, np.ones(len(X)))[0]

    def recommend(self) -> dict[str, Any] | None:
        """Projected incumbent: argmin over the evaluated configurations of the sample-averaged
        predicted loss at ``s_max``; the best observed value (any subset) before the model phase."""
        if not self._ready():
            done = [(t, o) for t, o in self.successes() if np.isfinite(o.value)]
            return dict(min(done, key=lambda pair: pair[1].value)[0].config) if done else None
        X, configs = self._fit()
        return configs[int(np.argmin(self._projected_means(X).mean(axis=0)))]

    # Suggestion --------------------------------------------------------------------------------
    def _suggest(self) -> tuple[dict[str, Any], float]:
        if self._design and not self._ready():
            return self._design.pop(0)
        if not self._ready():  # the design failed: keep exploring on small subsets
            return self.space.sample(self.rng), float(self.rng.choice(self.init_subsets))
        X, _ = self._fit()
        means = self._projected_means(X)  # (S, n)
        incumbent = X[int(np.argmin(means.mean(axis=0)))]
        candidates = self._candidates(incumbent)
        scores = self._acquisition(candidates, means.min(axis=1))
        config, s = self._pick(candidates, scores)
        return config, s

    def _candidates(self, incumbent: np.ndarray) -> np.ndarray:
        """RoBO's random sampling: ``(C, d + 1)`` points, 70 % uniform, 30 % around ``(incumbent, s̃ = 1)``."""
        d, n_uniform = self.space.dim, int(self.n_candidates * 0.7)
        uniform = self.rng.uniform(size=(n_uniform, d + 1))
        around = np.append(incumbent, 1.0) + 0.1 * self.rng.standard_normal((self.n_candidates - n_uniform, d + 1))
        return np.clip(np.vstack([uniform, around]), 0.0, 1.0)

    def _acquisition(self, candidates: np.ndarray, best: np.ndarray) -> np.ndarray:
        """Information gain about the minimiser at ``s_max`` per predicted cost, averaged over
        the samples, for ``candidates (C, d + 1)``; ``best (S,)`` the per-sample incumbents'
        predicted losses (EI's reference for the representer points)."""
        S, d, N = len(best), self.space.dim, self.n_representer

        def log_ei(Z: np.ndarray) -> np.ndarray:  # (S, m, d) -> (S, m)
            mean, var = self.loss_gp.predict(Z, np.ones(Z.shape[:2]))
            return log_expected_improvement(mean, var, best[:, None])

        Z, lmb = sample_representers(log_ei, S, N, d, steps=20, rng=self.rng)
        Xc, sc = candidates[:, :d], candidates[:, d]
        mean_z, cov_zz, cov_zc, var_c = self.loss_gp.joint(Z, np.ones((S, N)), Xc, sc)
        log_p, grad = pmin_ep(mean_z, cov_zz)
        v = (var_c + self.loss_gp.noise[:, None]).T  # (C, S)
        gain = information_gain(log_p, grad, lmb, cov_zc.transpose(2, 0, 1), v, self.n_innovations)
        log_cost = self.cost_gp.predict(Xc, sc)[0].T  # (C, S)
        return (gain / np.exp(log_cost)).mean(axis=1)

    def _pick(self, candidates: np.ndarray, scores: np.ndarray) -> tuple[dict[str, Any], float]:
        """The best candidate whose known cost fits the budget left (the best if costs are
        unknown or none fits), decoded to ``(config, s)``."""
        d = self.space.dim
        configs = [self.space.decode(row[:d]) for row in candidates]
        subsets = np.clip(subset_decoding(candidates[:, d], self.s_min, self.s_max), self.s_min, self.s_max)
        left = self.budget_left()
        if left is not None and self.problem is not None:
            costs = [self.problem.cost(config, float(s)) for config, s in zip(configs, subsets)]
            if all(c is not None for c in costs):
                fits = np.array([c <= left for c in costs])
                if fits.any():
                    scores = np.where(fits, scores, -np.inf)
        best = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
        return configs[best], float(subsets[best])

"""Bayesian extrapolation of one learning curve by a weighted ensemble of parametric families.

Paper: Domhan, Springenberg & Hutter, "Speeding up Automatic Hyperparameter Optimization of Deep
Neural Networks by Extrapolation of Learning Curves", IJCAI 2015, Section 3. Reference code: the
authors' ``pylearningcurvepredictor`` (read in a public fork, ``hyunghunny/pylearningcurvepredictor``:
``curvemodels.MCMCCurveModelCombination``, ``modelfactory``, ``terminationcriterion``; the curve
functions and their default parameters in ``automl/pybnn``'s copy of ``curvefunctions.py``).

Model. A curve ``y_1..y_n`` (a performance that *increases*, e.g. an accuracy in ``[0, 1]``) at
epochs ``x = 1..n`` is modelled as::

    y_j = f_comb(x_j | xi) + eps_j,   eps_j ~ N(0, sigma^2),
    f_comb(x | xi) = sum_k w_k f_k(x | theta_k) / sum_k w_k,   xi = (theta_1..theta_K, sigma, w_1..w_K)

with the paper's ``K = 11`` families :data:`FAMILIES` (``x`` in epochs)::

    pow3          c - a x^-alpha                    pow4       c - (a x + b)^-alpha
    loglog_linear log(a log x + b)                  mmf        alpha - (alpha - beta) / (1 + (kappa x)^delta)
    hill3         theta x^eta / (kappa^eta + x^eta)  exp4       c - exp(-a x^alpha + b)
    log_power     a / (1 + (x / e^b)^c)             janoschek  alpha - (alpha - beta) exp(-kappa x^delta)
    weibull       alpha - (alpha - beta) exp(-(kappa x)^delta)
    ilog2         c - a / log(x + 1)                vap        exp(a + b / x + c log x)

Prior (the paper's, flat elsewhere): every weight ``w_k > 0`` (sampled unnormalised and
normalised in ``f_comb``, as the authors' code), ``sigma > 0``, and for every family in the
ensemble the curve increases over the horizon, ``f_k(1) <= f_k(m)``, and its final value is
bounded, ``0 <= f_k(m) <= 1`` (``m`` the horizon, the epoch to predict); with positive
normalised weights ``f_comb`` then satisfies both too. Parameters outside these sets, or giving
non-finite values, have prior 0.

Inference, as the paper: each family is first fitted alone by least squares (Levenberg-Marquardt,
:func:`fit_family`); families whose fit
fails or violates the prior are left out of the ensemble. The joint ``xi`` is initialised at those
fits, with ``sigma`` the residual std of their weighted average, and
``n_walkers`` walkers start in a ball of radius ``1e-6`` around it; ``emcee``'s affine-invariant
ensemble sampler runs ``n_steps`` steps and the first ``burn_in`` are dropped; every ``thin``-th
remaining sample (per walker) is kept (:class:`MCMCSettings`; defaults 100 walkers, 2500 steps,
500 burn-in, thinning 10: the authors' ``MCMCCurveModelCombination`` defaults and their
termination criterion's ``PREDICTION_THINNING``). The log posterior is vectorised over walkers
(``emcee``'s ``vectorize=True``): one call evaluates all 11 families on an array
``(walkers, epochs)``.

Predictions, from the ``S`` kept samples ``xi_s``:

- :meth:`CurveEnsemble.final_means`: ``f_comb(m | xi_s)``, shape ``(S,)``; their mean is the
  prediction of ``y_m`` (the authors' ``predict``);
- :meth:`CurveEnsemble.prob_exceeds`: ``P(y_m > y_hat | y_1:n) = 1/S sum_s (1 - Phi((y_hat -
  f_comb(m | xi_s)) / sigma_s))`` (the paper's Eq. for the termination criterion);
- :meth:`CurveEnsemble.sample_final`: draws of ``y_m`` itself (``f_comb + sigma eps``).

Deviations and choices not in the paper (or not in the authors' code):

- ``ilog2`` takes ``log(x + 1)`` (pybnn's copy of the authors' function) since ``log 1 = 0``.
- The monotonicity constraint is the paper's ``f(1) <= f(m)`` applied to each family (the
  authors' default ``soft_monotonicity_constraint`` compares ``x = 2`` with ``m``); the bound is
  ``[0, 1]`` (the authors' code accepts ``[0, 100]``).
- The least-squares fits use ``scipy.optimize.least_squares`` from the authors' default and four
  perturbed starts, keeping the best admissible fit (:func:`fit_family`; the authors: one
  ``leastsq`` from the default, then L-BFGS-B), since the default alone often diverges (``pow3``
  on a power-law curve); ``loglog_linear``, which has no default in the authors' code, starts at ``a = b = 1``
  as their code's fallback default.
- Initial weights: the non-negative least-squares combination of the fitted families (the
  authors' ``get_ml_model_weights``, floored at 1 % of the largest; :func:`_nnls_weights`), not the
  constant ``w_k = 10`` of their default: from equal weights and a ``1e-6`` ball the chain hardly
  moves the weights in a few thousand steps, so the average of all fits (some extrapolating badly)
  dominated the prediction.
- No recency weighting of the likelihood (the authors' termination script enables it; the paper
  does not describe it) and no cut of the curve's flat beginning (the script's ``cut_beginning``).
- ``sigma`` starts at least at ``1e-4`` so that a perfectly flat curve has a finite likelihood.
- All randomness (the initial ball, emcee's moves) comes from the ``numpy`` generator passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import ndtr

__all__ = ["FAMILIES", "CurveEnsemble", "CurveFamily", "MCMCSettings", "fit_ensemble", "fit_family"]

Array = np.ndarray


@dataclass(frozen=True)
class CurveFamily:
    """One parametric family ``f(x | theta)``: ``params`` names, ``default`` start of the least
    squares fit, and ``fn(x (1, n), P (W, p)) -> (W, n)`` evaluating ``W`` parameter vectors."""

    name: str
    params: tuple[str, ...]
    default: tuple[float, ...]
    fn: Callable[[Array, Array], Array]

    @property
    def n_params(self) -> int:
        return len(self.params)

    def __call__(self, x: Array, P: Array) -> Array:
        """Values at epochs ``x (n,)`` for parameters ``P (W, p)`` (or ``(p,)``): ``(W, n)``
        (or ``(n,)``); invalid arithmetic gives ``nan``/``inf``, never a warning."""
        P = np.asarray(P, dtype=float)
        single = P.ndim == 1
        P2 = P[None, :] if single else P
        with np.errstate(all="ignore"):
            out = self.fn(np.asarray(x, dtype=float)[None, :], P2)
        return out[0] if single else out


def _col(P: Array, j: int) -> Array:
    return P[:, j : j + 1]


def _families() -> dict[str, CurveFamily]:
    c = _col
    specs = [
        ("pow3", ("c", "a", "alpha"), (0.84, 0.52, 0.01),
         lambda x, P: c(P, 0) - c(P, 1) * x ** (-c(P, 2))),
        ("loglog_linear", ("a", "b"), (1.0, 1.0),
         lambda x, P: np.log(c(P, 0) * np.log(x) + c(P, 1))),
        ("hill3", ("theta", "eta", "kappa"), (0.772320, 0.586449, 2.460843),
         lambda x, P: c(P, 0) * x ** c(P, 1) / (c(P, 2) ** c(P, 1) + x ** c(P, 1))),
        ("log_power", ("a", "b", "c"), (0.77, 2.98, -0.51),
         lambda x, P: c(P, 0) / (1.0 + (x / np.exp(c(P, 1))) ** c(P, 2))),
        ("pow4", ("c", "a", "b", "alpha"), (0.8, 200.0, 0.0, 0.1),
         lambda x, P: c(P, 0) - (c(P, 1) * x + c(P, 2)) ** (-c(P, 3))),
        ("mmf", ("alpha", "beta", "kappa", "delta"), (0.7, 0.1, 0.01, 5.0),
         lambda x, P: c(P, 0) - (c(P, 0) - c(P, 1)) / (1.0 + (c(P, 2) * x) ** c(P, 3))),
        ("exp4", ("c", "a", "b", "alpha"), (0.7, 0.8, -0.8, 0.3),
         lambda x, P: c(P, 0) - np.exp(-c(P, 1) * x ** c(P, 3) + c(P, 2))),
        ("janoschek", ("alpha", "beta", "kappa", "delta"), (0.73, 0.07, 0.355, 0.46),
         lambda x, P: c(P, 0) - (c(P, 0) - c(P, 1)) * np.exp(-c(P, 2) * x ** c(P, 3))),
        ("weibull", ("alpha", "beta", "kappa", "delta"), (0.7, 0.1, 0.01, 1.0),
         lambda x, P: c(P, 0) - (c(P, 0) - c(P, 1)) * np.exp(-((c(P, 2) * x) ** c(P, 3)))),
        ("ilog2", ("c", "a"), (0.78, 0.43),
         lambda x, P: c(P, 0) - c(P, 1) / np.log(x + 1.0)),
        ("vap", ("a", "b", "c"), (-0.622028, -0.470050, 0.042322),
         lambda x, P: np.exp(c(P, 0) + c(P, 1) / x + c(P, 2) * np.log(x))),
    ]
    return {name: CurveFamily(name, params, default, fn) for name, params, default, fn in specs}


#: The paper's 11 families, in the order of its Table 1 (names as the authors' code, ``hill3`` =
#: their ``dr_hill_zero_background``, ``vap`` = vapor pressure).
FAMILIES: dict[str, CurveFamily] = _families()


@dataclass(frozen=True)
class MCMCSettings:
    """emcee settings (module docstring): walkers, steps, burn-in steps, thinning of the rest."""

    n_walkers: int = 100
    n_steps: int = 2500
    burn_in: int = 500
    thin: int = 10

    def __post_init__(self) -> None:
        for key in ("n_walkers", "n_steps", "thin"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"MCMCSettings: {key} must be an integer >= 1, got {value!r}")
        if isinstance(self.burn_in, bool) or not isinstance(self.burn_in, (int, np.integer)) or not 0 <= self.burn_in < self.n_steps:
            raise ValueError(f"MCMCSettings: burn_in must be an integer in [0, n_steps={self.n_steps}), got {self.burn_in!r}")


def _admissible(values: Array) -> Array:
    """Prior support of one family, from its values at ``[1, m]``, shape ``(W, 2)`` -> ``(W,)``:
    finite, increasing ``f(1) <= f(m)`` and bounded ``0 <= f(m) <= 1``."""
    first, last = values[:, 0], values[:, 1]
    ok = np.isfinite(first) & np.isfinite(last)
    return ok & (first <= last) & (last >= 0.0) & (last <= 1.0)


def fit_family(family: CurveFamily, x: Array, y: Array, horizon: float, n_starts: int = 5) -> Array | None:
    """Least-squares parameters ``(p,)`` of ``family`` on the curve ``(x, y)``, or ``None`` if no
    fit is finite and admissible at ``horizon`` (module docstring).

    Starts: the authors' default parameters, then ``n_starts - 1`` perturbations of them
    (``default * exp(N(0, 1))``, from a generator with the fixed seed 0, so the fit is a
    deterministic function of the curve); each is fitted by Levenberg-Marquardt (or, with fewer
    points than parameters, a trust-region method); the admissible fit with the least squared
    error wins."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def residuals(p: Array) -> Array:
        r = family(x, p) - y
        return np.where(np.isfinite(r), r, 1e6)

    default = np.array(family.default)
    perturb = np.exp(np.random.default_rng(0).standard_normal((max(n_starts, 1) - 1, family.n_params)))
    method = "lm" if len(x) >= family.n_params else "trf"
    best, best_sse = None, np.inf
    for start in [default, *(default * perturb)]:
        try:
            p = least_squares(residuals, start, method=method, max_nfev=200 * (family.n_params + 1)).x
        except (ValueError, np.linalg.LinAlgError):
            continue
        sse = float(np.sum((family(x, p) - y) ** 2))
        admissible = _admissible(family(np.array([1.0, horizon]), p)[None, :])[0]
        if np.all(np.isfinite(p)) and np.isfinite(sse) and admissible and sse < best_sse:
            best, best_sse = p, sse
    return best


def _nnls_weights(curves: Array, y: Array) -> Array:
    """Initial weights ``(K,)`` from the fitted curves ``(K, n)``: the non-negative least-squares
    combination fitting ``y`` (the authors' ``get_ml_model_weights``), floored at 1 % of its
    largest entry so that every family starts in the ensemble, scaled to sum to ``10 K``."""
    from scipy.optimize import nnls

    try:
        w = nnls(curves.T, y)[0]
    except RuntimeError:
        w = np.ones(len(curves))
    if not np.any(w > 0):
        w = np.ones(len(curves))
    w = np.maximum(w, 0.01 * w.max())
    return 10.0 * len(w) * w / w.sum()


class CurveEnsemble:
    """The weighted ensemble of the families kept for one curve and its posterior samples.

    Built by :func:`fit_ensemble`. ``theta`` vectors are laid out as the authors' code:
    ``[theta_1, ..., theta_K, sigma, w_1, ..., w_K]`` (``D = sum_k p_k + 1 + K`` entries).

    Attributes:
        families: the families in the ensemble (those whose least-squares fit was admissible).
        horizon: the epoch ``m`` to predict.
        start: ``(D,)``, the least-squares initialisation.
        samples: ``(S, D)``, the kept posterior samples (after :meth:`run_mcmc`).
    """

    def __init__(self, families: Sequence[CurveFamily], fits: Sequence[Array], x: Array, y: Array, horizon: float):
        self.families = tuple(families)
        self.horizon = float(horizon)
        self.x, self.y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self._x_all = np.concatenate([self.x, [1.0, self.horizon]])  # observed epochs, then 1 and m
        self._slices, start = [], 0
        for family in self.families:
            self._slices.append(slice(start, start + family.n_params))
            start += family.n_params
        self._n_theta = start
        curves = np.array([family(self.x, p) for family, p in zip(self.families, fits)])  # (K, n)
        weights = _nnls_weights(curves, self.y)
        sigma = max(float(np.std(self.y - weights @ curves / weights.sum())), 1e-4)
        self.start = np.concatenate([*fits, [sigma], weights])
        self.samples: Array | None = None

    @property
    def ndim(self) -> int:
        return len(self.start)

    def _values(self, theta: Array, x: Array) -> tuple[Array, Array, Array]:
        """``(f_comb (W, n), sigma (W,), admissible (W,))`` at epochs ``x`` (the last two entries
        of ``x`` must be ``1`` and ``m``, where the prior is checked) for ``theta (W, D)``."""
        K = len(self.families)
        sigma, w = theta[:, self._n_theta], theta[:, self._n_theta + 1 :]
        ok = (sigma > 0) & np.all(w > 0, axis=1)
        comb = np.zeros((theta.shape[0], len(x)))
        with np.errstate(all="ignore"):
            for k in range(K):
                values = self.families[k](x, theta[:, self._slices[k]])
                ok &= _admissible(values[:, -2:]) & np.all(np.isfinite(values), axis=1)
                comb += w[:, k : k + 1] * np.where(np.isfinite(values), values, 0.0)
            comb /= w.sum(axis=1, keepdims=True)
        return comb, sigma, ok

    def log_posterior(self, theta: Array) -> Array:
        """Unnormalised log posterior of ``theta (W, D)``: ``(W,)``, ``-inf`` off the prior."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        comb, sigma, ok = self._values(theta, self._x_all)
        n = len(self.x)
        with np.errstate(all="ignore"):
            resid = (self.y[None, :] - comb[:, :n]) / sigma[:, None]
            loglik = -0.5 * np.sum(resid**2, axis=1) - n * np.log(sigma) - 0.5 * n * np.log(2 * np.pi)
        return np.where(ok & np.isfinite(loglik), loglik, -np.inf)

    def run_mcmc(self, settings: MCMCSettings, rng: np.random.Generator) -> None:
        """Sample the posterior with emcee from a ``1e-6`` ball around :attr:`start` and keep
        every ``thin``-th post-burn-in sample of every walker in :attr:`samples`."""
        try:
            import emcee
        except ImportError as err:  # pragma: no cover - the extra is installed in the test env
            raise ImportError("learning-curve extrapolation needs emcee: pip install 'mfbo[mcmc]'") from err
        n_walkers = max(settings.n_walkers, 2 * self.ndim)  # emcee's stretch move needs >= 2 D walkers (the authors raise it too)
        start = self.start[None, :] + 1e-6 * rng.standard_normal((n_walkers, self.ndim))
        start[:, self._n_theta :] = np.abs(start[:, self._n_theta :])  # sigma and weights stay positive
        start[~np.isfinite(self.log_posterior(start))] = self.start  # a walker off the prior restarts at the fit
        sampler = emcee.EnsembleSampler(n_walkers, self.ndim, self.log_posterior, vectorize=True)
        sampler.random_state = np.random.RandomState(int(rng.integers(2**31 - 1))).get_state()
        with np.errstate(all="ignore"):
            sampler.run_mcmc(start, settings.n_steps, progress=False, skip_initial_state_check=True)
        chain = sampler.get_chain()  # (steps, walkers, D)
        self.samples = chain[settings.burn_in :: settings.thin].reshape(-1, self.ndim)

    def final_means(self) -> tuple[Array, Array]:
        """``(f_comb(m | xi_s) (S,), sigma_s (S,))`` over the kept samples."""
        if self.samples is None:
            raise ValueError("CurveEnsemble: run_mcmc first")
        comb, sigma, _ = self._values(self.samples, np.array([1.0, self.horizon]))
        return comb[:, -1], sigma

    def predict(self) -> float:
        """The posterior mean of ``f_comb(m)``: the predicted final value."""
        return float(np.mean(self.final_means()[0]))

    def prob_exceeds(self, y_hat: float) -> float:
        """``P(y_m > y_hat | y_1:n)`` (module docstring)."""
        mean, sigma = self.final_means()
        return float(np.mean(1.0 - ndtr((float(y_hat) - mean) / sigma)))

    def sample_final(self, rng: np.random.Generator) -> Array:
        """One draw of ``y_m = f_comb(m | xi_s) + sigma_s eps`` per kept sample: ``(S,)``."""
        mean, sigma = self.final_means()
        return mean + sigma * rng.standard_normal(mean.shape)

    def weights(self) -> dict[str, float]:
        """Posterior mean of the normalised weight of each family in the ensemble."""
        if self.samples is None:
            raise ValueError("CurveEnsemble: run_mcmc first")
        w = self.samples[:, self._n_theta + 1 :]
        return dict(zip((f.name for f in self.families), (w / w.sum(axis=1, keepdims=True)).mean(axis=0).tolist()))


def fit_ensemble(
    y: Sequence[float], horizon: float, rng: np.random.Generator, settings: MCMCSettings = MCMCSettings(),
    families: Sequence[str] | None = None,
) -> CurveEnsemble | None:
    """Fit the ensemble to the curve ``y`` observed at epochs ``1..n`` and sample its posterior.

    Args:
        y: the increasing performance, shape ``(n,)`` (e.g. accuracies); ``n >= 2``.
        horizon: the epoch ``m >= n`` to predict.
        rng: the source of all randomness.
        settings: MCMC settings.
        families: names from :data:`FAMILIES` (default all 11).

    Returns:
        The sampled :class:`CurveEnsemble`, or ``None`` when no family has an admissible fit
        (then nothing can be predicted; the termination rule lets the run go on).
    """
    y = np.asarray(y, dtype=float).ravel()
    if len(y) < 2 or not np.all(np.isfinite(y)):
        raise ValueError(f"fit_ensemble: y must hold >= 2 finite values, got {len(y)} value(s) ({np.sum(~np.isfinite(y))} not finite)")
    if not horizon >= len(y):
        raise ValueError(f"fit_ensemble: horizon must be >= the curve length {len(y)}, got {horizon!r}")
    names = list(FAMILIES) if families is None else list(families)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"fit_ensemble: families must be a non-empty subset of {list(FAMILIES)}, got {names!r}")
    x = np.arange(1, len(y) + 1, dtype=float)
    kept, fits = [], []
    for name in names:
        p = fit_family(FAMILIES[name], x, y, horizon)
        if p is not None:
            kept.append(FAMILIES[name])
            fits.append(p)
    if not kept:
        return None
    ensemble = CurveEnsemble(kept, fits, x, y, horizon)
    ensemble.run_mcmc(settings, rng)
    return ensemble

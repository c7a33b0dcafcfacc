"""Robust type-II maximum-likelihood fitting of the surrogate's hyperparameters.

:func:`fit_model` maximises the exact log marginal likelihood plus the log hyperprior (MAP, as
BoTorch's ``fit_gpytorch_mll`` does) with L-BFGS-B, and never raises for numerical trouble:

1. **Warm start**: hyperparameters of the previous step's model (``previous_state``, any
   ``state_dict``) are loaded where names and shapes match. Only *parameters* are loaded, never
   buffers or frozen parameters, so the new model keeps its own outcome standardisation,
   training data and fixed hyperparameters. From a warm start a refit typically takes a few to
   a few tens of L-BFGS-B iterations instead of ~100 from scratch.
2. **Retries**: an attempt fails on any exception (``NotPSDError``, ``NanError``, ...), an
   ``OptimizationWarning`` that BoTorch's default handler treats as a failure (e.g. an abnormal
   line-search termination; reaching ``maxiter`` or a time-out is not one), or a non-finite
   loss or hyperparameter. Attempt ``k >= 2`` restarts from the
   initial hyperparameters with those that have a prior resampled from it (BoTorch's
   ``sample_all_priors``; the ICM correlations have one), under a raised
   Cholesky jitter ``1e-6, 1e-4, 1e-2`` (the jitter gpytorch adds when a Cholesky fails; the
   first attempt uses gpytorch's default, 1e-8 in double). Each attempt is a single
   ``fit_gpytorch_mll`` attempt, so the retry policy and its randomness are ours:
   all draws happen under :func:`mfbo.rng.torch_seed_scope` seeded from ``seed``.
3. **Fallback**: after ``max_attempts`` failures the model gets the ``previous_state``
   hyperparameters (``"previous"``) or, without them, its initial ones (``"initial"``), and the
   :class:`FitReport` says so.
4. **Subset fitting**: with more than ``max_fit_points`` observations the hyperparameters are
   fitted on a seeded random subset of ``max_fit_points`` of them that always contains the best
   ``max(1, max_fit_points // 10)`` (largest ``Y``, i.e. lowest value), and then the model
   conditions on all ``n`` points. Each marginal-likelihood evaluation costs ``O(m^3)`` instead
   of ``O(n^3)`` and a fit needs ~100 of them, whereas conditioning on all data needs one
   kernel matrix and Cholesky (~0.6 s at ``n = 2000`` on one loaded core, the Cholesky itself
   0.07 s). Hyperparameters estimated from ``m = 500``
   random points are close to the full-data ones for the smooth, low-dimensional kernels used
   here; the subset keeps the incumbent region in view. This is a deviation from an exact
   full-data fit, used only when ``n > max_fit_points``.

The model is returned in eval mode, conditioned on all its training data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from botorch.exceptions.errors import ModelFittingError
from botorch.exceptions.warnings import OptimizationWarning
from botorch.fit import fit_gpytorch_mll
from botorch.optim.core import OptimizationStatus
from botorch.optim.fit import fit_gpytorch_mll_scipy
from botorch.optim.closures import get_loss_closure
from botorch.optim.utils import sample_all_priors
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.settings import cholesky_jitter
from torch import Tensor

from ..rng import torch_seed_scope

__all__ = ["FitReport", "fit_model", "hyperparameters", "load_hyperparameters", "fit_subset", "JITTERS"]

#: Cholesky jitter of attempts 2, 3, 4, ... (attempt 1 uses gpytorch's default); the last repeats.
JITTERS = (1e-6, 1e-4, 1e-2)


@dataclass
class FitReport:
    """What :func:`fit_model` did, for the strategy's log.

    Attributes:
        ok: an attempt succeeded (the marginal-likelihood optimisation converged cleanly).
        attempts: number of attempts made.
        jitter: the raised Cholesky jitter of the last attempt made (``None``: gpytorch's default).
        fallback: ``None``; ``"previous"`` (``previous_state`` reloaded) or ``"initial"`` (the
            model's initial hyperparameters) when every attempt failed.
        n_fit: the number of points the hyperparameters were fitted on.
        message: a one-line human-readable summary.
    """

    ok: bool
    attempts: int
    jitter: float | None
    fallback: str | None
    n_fit: int
    message: str


def hyperparameters(model: torch.nn.Module) -> dict[str, Tensor]:
    """Detached copies of ``model``'s parameters (the raw hyperparameters), by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def load_hyperparameters(model: torch.nn.Module, state: dict[str, Tensor]) -> list[str]:
    """Load the entries of ``state`` that name a trainable parameter of ``model`` with the same
    shape and are finite; buffers (outcome transforms, priors, training data) and frozen
    parameters (``requires_grad=False``, fixed by construction) are never loaded.
    Returns the names loaded."""
    loaded = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            value = state.get(name)
            if isinstance(value, Tensor) and value.shape == p.shape and torch.isfinite(value).all():
                p.copy_(value.to(p))
                loaded.append(name)
    return loaded


def fit_subset(Y: Tensor, m: int, rng: np.random.Generator) -> Tensor:
    """Indices (sorted, ``(m,)``) of the fitting subset of ``n = Y.numel()`` points: the best
    ``max(1, m // 10)`` by ``Y`` (largest first) plus a uniform random draw of the rest."""
    n = Y.numel()
    if n <= m:
        return torch.arange(n)
    n_best = max(1, m // 10)
    order = torch.argsort(Y.reshape(-1), descending=True, stable=True)
    rest = order[n_best:]
    pick = torch.as_tensor(rng.choice(rest.numel(), size=m - n_best, replace=False), dtype=torch.long)
    return torch.sort(torch.cat([order[:n_best], rest[pick]])).values


def _attempt(mll: ExactMarginalLogLikelihood, jitter: float | None, maxiter: int, maxfun: int | None = None) -> tuple[float, int, int, str | None]:
    """One ``fit_gpytorch_mll`` attempt of at most ``maxiter`` L-BFGS-B iterations and ``maxfun``
    loss evaluations (``None``: scipy's default); returns the final loss (``-mll`` per point),
    the numbers of iterations and of loss-and-gradient evaluations, and which limit stopped it
    (``"maxiter"``, ``"maxfun"``, ``"other"`` for any other stop the optimiser reports, or
    ``None`` when it converged).

    No iteration ``callback`` is passed on purpose: BoTorch's ``scipy_minimize`` then evaluates
    the loss once more at every iteration to fill its ``OptimizationResult``, which doubled the
    cost of a fit. The iterations and the stopping reason come from the optimiser's result
    instead, and the evaluations are counted on ``mll.forward``.

    Raises on failure: the optimiser's exception (``NotPSDError``, ...), ``ModelFittingError``
    carrying the failing ``OptimizationWarning`` messages, or ``FloatingPointError`` for
    non-finite results. (``fit_gpytorch_mll`` rolls the parameters back on its own failures;
    :func:`fit_model` reloads them before each attempt and on fallback anyway.)"""
    evaluations, results = [], []

    def counted_forward(*args, **kwargs):  # gpytorch's Module.__call__ runs no torch hooks
        evaluations.append(1)
        return forward(*args, **kwargs)

    def optimizer(mll, **kwargs):
        results.append(fit_gpytorch_mll_scipy(mll, **kwargs))
        return results[-1]

    with warnings.catch_warnings(record=True) as caught, (
        cholesky_jitter(float_value=jitter, double_value=jitter) if jitter else nullcontext()
    ):
        warnings.simplefilter("always")
        options = {"maxiter": maxiter} if maxfun is None else {"maxiter": maxiter, "maxfun": maxfun}
        forward = mll.forward
        mll.forward = counted_forward
        try:
            fit_gpytorch_mll(mll, optimizer=optimizer, optimizer_kwargs={"options": options}, max_attempts=1,
                             caught_exception_types=())
        except ModelFittingError:
            reasons = sorted({str(w.message) for w in caught if issubclass(w.category, OptimizationWarning)})
            raise ModelFittingError("; ".join(reasons) or "the optimiser failed") from None
        finally:
            del mll.forward
        bad = [name for name, p in mll.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise FloatingPointError(f"non-finite hyperparameters {bad}")
        mll.train()
        with torch.no_grad():
            loss = float(get_loss_closure(mll)())
        mll.eval()
    if not math.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {loss}")
    result = results[-1]
    message = (result.message or "").upper()
    stop = None
    if result.status == OptimizationStatus.STOPPED:
        stop = "maxiter" if "ITERATIONS REACHED LIMIT" in message else "maxfun" if "EVALUATIONS EXCEEDS LIMIT" in message else "other"
    return loss, int(result.step), len(evaluations), stop


@dataclass
class _Attempts:
    """Where the retry loop of :func:`fit_model` stopped: the last attempt made (1-based), its
    jitter, whether it succeeded, its loss, L-BFGS-B iterations, loss evaluations and stop reason
    (see :func:`_attempt`), and one line per failed attempt."""

    ok: bool = False
    attempts: int = 0
    jitter: float | None = None
    loss: float = math.nan
    iterations: int = 0
    evaluations: int = 0
    stop: str | None = None
    errors: list[str] = field(default_factory=list)


def _fit_with_retries(mll: ExactMarginalLogLikelihood, start: dict[str, Tensor], initial: dict[str, Tensor],
                      rng: np.random.Generator, *, warm: bool, max_attempts: int, maxiter: int, warm_maxiter: int,
                      warm_maxfun: int) -> _Attempts:
    """Up to ``max_attempts`` fits, stopping at the first that succeeds. Attempt 1 starts from
    ``start`` (with the ``warm_*`` limits when that is a warm start); attempt ``k >= 2`` from
    ``initial`` with the hyperparameters that have a prior resampled (drawn from ``rng``) under the
    Cholesky jitter ``JITTERS[k - 2]`` (the module docstring's step 2)."""
    model, out = mll.model, _Attempts()
    for attempt in range(1, max_attempts + 1):
        out.attempts, out.jitter = attempt, (None if attempt == 1 else JITTERS[min(attempt - 2, len(JITTERS) - 1)])
        load_hyperparameters(model, start if attempt == 1 else initial)
        first_warm = attempt == 1 and warm
        try:
            with torch_seed_scope(rng):
                if attempt > 1:
                    sample_all_priors(model)
                out.loss, out.iterations, out.evaluations, out.stop = _attempt(
                    mll, out.jitter, warm_maxiter if first_warm else maxiter, warm_maxfun if first_warm else None,
                )
        except Exception as err:  # noqa: BLE001 (any numerical failure must not end the run)
            out.errors.append(f"attempt {attempt}: {type(err).__name__}: {_first_line(err)}")
            continue
        out.ok = True
        break
    return out


def _check_options(**options: int) -> None:
    for name, value in options.items():
        low = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"fit_model: option {name} must be an integer >= {low}, got {value!r}")


def _success_message(data: str, max_attempts: int, fit: _Attempts) -> str:
    """:attr:`FitReport.message` of a fit that succeeded (``data``: what it was fitted on)."""
    jit = f", Cholesky jitter {fit.jitter:g}" if fit.jitter else ""
    cap = {"maxiter": " (maxiter reached)", "maxfun": " (evaluation cap reached)", "other": " (stopped)", None: ""}[fit.stop]
    message = (
        f"fitted on {data} in attempt {fit.attempts}/{max_attempts}{jit}, "
        f"{fit.iterations} L-BFGS-B iterations, {fit.evaluations} loss evaluations{cap}; -mll/n = {fit.loss:.4g}"
    )
    return message + (f" (failed: {'; '.join(fit.errors)})" if fit.errors else "")


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else ""


def _best_of_starts(mll: ExactMarginalLogLikelihood, start: dict[str, Tensor], alternatives: Sequence[dict[str, Tensor]],
                    loss: float, jitter: float | None, maxiter: int, errors: list[str]) -> tuple[float, int]:
    """Fit from each alternative start (loaded over ``start``) and keep the lowest loss; ``loss``
    is that of the hyperparameters the model holds now. Returns the kept loss and which start
    won (0: the one already fitted, ``k``: alternative ``k``); failures are appended to ``errors``."""
    model = mll.model
    best, won = hyperparameters(model), 0
    for k, alternative in enumerate(alternatives, start=1):
        load_hyperparameters(model, start)
        load_hyperparameters(model, alternative)
        try:
            candidate = _attempt(mll, jitter, maxiter)[0]
        except Exception as err:  # noqa: BLE001 (a failed alternative keeps the fit already made)
            errors.append(f"alternative start {k}: {type(err).__name__}: {_first_line(err)}")
            continue
        if candidate < loss:
            best, won, loss = hyperparameters(model), k, candidate
    load_hyperparameters(model, best)
    return loss, won


def fit_model(
    model,
    *,
    seed: int,
    previous_state: dict | None = None,
    max_fit_points: int = 500,
    max_attempts: int = 3,
    maxiter: int = 200,
    warm_maxiter: int = 50,
    warm_maxfun: int = 60,
    alternative_starts: Sequence[dict[str, Tensor]] = (),
) -> FitReport:
    """Fit ``model``'s hyperparameters in place; never raises for numerical trouble.

    Args:
        model: an exact single-output BoTorch GP (e.g. from :func:`mfbo.models.build_mf_gp`).
        seed: seeds the fitting subset and the random restarts.
        previous_state: the last step's ``state_dict`` (or any ``name -> tensor`` dict); its
            matching parameters are the warm start and the fallback.
        max_fit_points: fit the hyperparameters on at most this many points (see the module
            docstring); the model always conditions on all of its data.
        max_attempts: attempts before falling back.
        maxiter: L-BFGS-B iterations per attempt. Reaching it is not a failure (BoTorch's
            convention): the fit is close, and the next step's warm start continues from it, so
            each refit's time stays bounded (the ICM's flat directions can otherwise take
            hundreds of iterations).
        warm_maxiter: L-BFGS-B iterations of the first attempt when it starts from
            ``previous_state``. A refit after a few per cent more data starts next to its
            optimum and mostly converges well within this; when it does not, the next refit
            goes on from where it stopped. This bounds the refit step: at ``n = 2000``
            (a 500-point fitting subset) 200 iterations took about 20 s on one core, 50 take
            about a quarter of that.
        warm_maxfun: loss-and-gradient evaluations of that first warm attempt. An L-BFGS-B
            iteration usually costs one evaluation, but a line search can take several, and the
            evaluations are what cost time (~0.05 s each on 500 points with the default kernel,
            one core): at ``n = 2000`` 50 warm iterations took up to ~110 evaluations and made
            the refit step of ``mf-ei`` 10.2 s. Capping them bounds the step the way
            ``warm_maxiter`` bounds the iterations, and is as harmless: the next refit goes on
            from where this one stopped.
        alternative_starts: partial hyperparameter states (parameter name -> raw value) for a
            marginal likelihood known to have separate modes (e.g.
            :func:`mfbo.models.noise.shared_residual_start`). After a successful fit, each is
            loaded over the start and fitted too (``maxiter`` iterations, no retries), and the
            lowest loss is kept; the report names the start that won.

    Returns:
        A :class:`FitReport`. The model is in eval mode.

    Raises:
        ValueError: a bad option (not for numerical trouble, which is reported instead).
    """
    _check_options(
        seed=seed, max_fit_points=max_fit_points, max_attempts=max_attempts, maxiter=maxiter, warm_maxiter=warm_maxiter,
        warm_maxfun=warm_maxfun,
    )
    rng = np.random.default_rng(seed)
    initial = hyperparameters(model)
    warm = load_hyperparameters(model, previous_state) if previous_state else []
    start = hyperparameters(model)

    inputs, targets = model.train_inputs, model.train_targets
    n = targets.shape[-1]
    subset = n > max_fit_points
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    won = 0
    try:
        if subset:
            idx = fit_subset(targets.reshape(-1, n).amax(dim=0), max_fit_points, rng)
            model.set_train_data(inputs=tuple(x[..., idx, :] for x in inputs), targets=targets[..., idx], strict=False)
        fit = _fit_with_retries(
            mll, start, initial, rng, warm=bool(warm), max_attempts=max_attempts, maxiter=maxiter,
            warm_maxiter=warm_maxiter, warm_maxfun=warm_maxfun,
        )
        if fit.ok and alternative_starts:
            fit.loss, won = _best_of_starts(mll, start, alternative_starts, fit.loss, fit.jitter, maxiter, fit.errors)
    finally:
        if subset:
            model.set_train_data(inputs=inputs, targets=targets, strict=False)
    fallback = None
    if not fit.ok:
        load_hyperparameters(model, initial)
        fallback = "previous" if warm and load_hyperparameters(model, previous_state) else "initial"
    model.eval()

    n_fit = max_fit_points if subset else n
    where = (f"{n_fit} of {n} points" if subset else f"{n} points") + (f", warm start ({len(warm)} hyperparameters)" if warm else "")
    if fit.ok:
        message = _success_message(where, max_attempts, fit)
        if alternative_starts:
            message += f"; best of {1 + len(alternative_starts)} starts: {'alternative ' + str(won) if won else 'the first'}"
    else:
        message = (
            f"fit on {where} failed {fit.attempts} times ({'; '.join(fit.errors)}); "
            f"fell back to the {'previous step' if fallback == 'previous' else 'initial'} hyperparameters"
        )
    return FitReport(ok=fit.ok, attempts=fit.attempts, jitter=fit.jitter, fallback=fallback, n_fit=n_fit, message=message)

"""Metrics of runs: regret curves on a common budget grid, final regret, cost to reach a target,
log-regret AUC, the fidelity allocation and the strategy's overhead per step.

All functions take the tidy frame of :func:`mfbo.analysis.load_study` (one row per trial).

Regret (values are minimised)
-----------------------------
- **inference regret** ``regret = f(x_rec) - f*``: the exact target-fidelity value of the
  strategy's recommendation minus the optimum, as the run loop logged it;
- **simple regret** ``simple_regret = y_best - f*``: the best value *observed at the target
  fidelity* so far minus the optimum (a multi-fidelity strategy that has not yet evaluated at
  the target has none);
- **normalised** regrets, for every problem and in particular for problems without a true
  optimum (YAHPO's stored reference values): ``(v - ref_low) / (ref_high - ref_low)``, where
  ``ref_low`` is the optimum when it is exact, else the lowest of the reference value and every
  target value the study observed or recommended on that problem (so normalised regret is
  ``>= 0``), and ``ref_high`` is the median over the study's runs of each run's *first*
  recommendation's value: the value of a typical first guess. Normalised regret is 0 at the
  optimum (or best known value) and about 1 at a typical first recommendation. When
  ``ref_high <= ref_low`` (a degenerate study) the scale is 1.

The sentinel values: ``nan`` means *undefined* (no optimum and no normalisation), ``+inf``
means *not yet*: no recommendation, or no target observation, so far. ``+inf`` ranks last and
keeps medians honest (a median over seeds is ``+inf`` while half the seeds have nothing).

Step interpolation
------------------
A run's metric is a step function of the budget spent: its value at budget fraction ``c`` is
the one of the **last record with** ``budget_frac <= c``; **before the first record it is**
``+inf`` (:func:`step_values`). Curves of all runs are evaluated on one grid of budget fractions
``[0, 1]`` (:func:`metric_curves`), so runs of different cost scales align; a run that stopped
before its budget (the next trial would have exceeded it) keeps its last value to the end.

Summaries of a run
------------------
- **final** value: the metric of the run's last record (its value at ``budget_frac = 1``);
- **cost to target**: the smallest budget fraction at which the metric is ``<= target``
  (``+inf`` if never reached) (:func:`cost_to_target`);
- **log-regret AUC**: the mean of ``log10(max(r(c), floor))`` over ``c in [0, 1]``, i.e. the
  area under the log-regret curve on the normalised budget axis, computed exactly for the step
  function (:func:`log_auc`). Where the curve is not finite (before the first record, before the
  first recommendation) it is charged ``fill``: in :func:`run_summaries`, the regret of a typical
  first recommendation (``ref_high - ref_low``, or 1 for normalised regrets). Lower is better.
  ``floor`` (default ``1e-10``) keeps a regret of exactly 0 finite.

Fidelity allocation
-------------------
The share of each run's total cost spent at each fidelity, averaged over the seeds of a
(problem, label). A discrete fidelity with at most ``max_levels`` values gets one category per
value; any other is binned into ``n_bins`` equal bins of the normalised fidelity ``s in [0, 1)``,
plus the target (``s >= 1``). A continuation's cost is its increment, at the fidelity it reached.

Overhead
--------
The strategy's ``overhead`` (seconds of ask + tell) of each step against the number of
observations the strategy holds after the step (``n_obs + 1``), pooled over problems and seeds
in geometric bins of that number; median, IQR and mean per bin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..space import Fidelity
from .stats import quantile

__all__ = [
    "METRICS", "add_regret_columns", "resolve_metric", "step_values", "budget_grid", "metric_curves",
    "cost_to_target", "log_auc", "run_summaries", "final_values", "fidelity_categories",
    "fidelity_allocation", "overhead_by_observations",
]

#: The regret metrics and their axis labels.
METRICS: dict[str, str] = {
    "regret": "inference regret",
    "simple_regret": "simple regret",
    "norm_regret": "normalised inference regret",
    "norm_simple_regret": "normalised simple regret",
}


def _values_or_inf(series, missing_means_not_yet: np.ndarray) -> np.ndarray:
    v = series.to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(v) & missing_means_not_yet, np.inf, v)


def add_regret_columns(df):
    """Add ``simple_regret``, ``norm_regret``, ``norm_simple_regret``, ``ref_low`` and
    ``ref_high`` (see the module docstring) and turn a missing ``regret`` into ``+inf`` where the
    problem has an optimum. Returns a new frame."""
    df = df.copy()
    optimum = df["optimum"].to_numpy(dtype=float, na_value=np.nan)
    has_optimum = ~np.isnan(optimum)
    rec = df["rec_value"].to_numpy(dtype=float, na_value=np.nan) if "rec_value" in df else np.full(len(df), np.nan)
    best = df["best_value"].to_numpy(dtype=float, na_value=np.nan) if "best_value" in df else np.full(len(df), np.nan)
    logged = df["regret"].to_numpy(dtype=float, na_value=np.nan) if "regret" in df else np.full(len(df), np.nan)
    df["regret"] = np.where(np.isnan(logged) & has_optimum, np.inf, logged)
    df["simple_regret"] = np.where(has_optimum, np.where(np.isnan(best), np.inf, best - optimum), np.nan)

    low = np.full(len(df), np.nan)
    high = np.full(len(df), np.nan)
    for problem, index in df.groupby("problem", sort=False).indices.items():
        sub = df.iloc[index]
        exact = bool(sub["optimum_exact"].iloc[0])
        observed = np.concatenate([rec[index], best[index]])
        observed = observed[np.isfinite(observed)]
        if exact:
            lo = float(optimum[index][0])
        else:
            candidates = list(observed) + ([float(optimum[index][0])] if has_optimum[index][0] else [])
            lo = min(candidates) if candidates else math.nan
        first = []
        for _, run_index in sub.groupby("run", sort=False).indices.items():
            run_rec = rec[index][run_index]
            finite = run_rec[np.isfinite(run_rec)]
            if finite.size:
                first.append(finite[0])
        hi = float(np.median(first)) if first else math.nan
        low[index], high[index] = lo, hi
    scale = np.where(np.isfinite(high) & (high > low), high - low, 1.0)
    df["ref_low"], df["ref_high"] = low, high
    defined = ~np.isnan(low)
    df["norm_regret"] = np.where(defined, np.where(np.isnan(rec), np.inf, (rec - low) / scale), np.nan)
    df["norm_simple_regret"] = np.where(defined, np.where(np.isnan(best), np.inf, (best - low) / scale), np.nan)
    return df


def resolve_metric(df_problem, metric: str) -> tuple[str, str]:
    """The column to use for ``metric`` on one problem, and its axis label.

    ``regret`` and ``simple_regret`` fall back to their normalised versions on a problem whose
    optimum is not exact (a reference value) or unknown.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if not metric.startswith("norm_") and not bool(df_problem["optimum_exact"].iloc[0]):
        metric = "norm_" + metric
    return metric, METRICS[metric]


def step_values(x: Sequence[float], y: Sequence[float], grid: Sequence[float], before: float = math.inf) -> np.ndarray:
    """The step function through ``(x_i, y_i)`` evaluated on ``grid``: the ``y`` of the last
    record with ``x_i <= g``, or ``before`` where no record has ``x_i <= g``.

    ``x`` must be non-decreasing (a run's spent budget); shapes ``(n,)``, ``(n,)``, ``(m,)`` ->
    ``(m,)``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    grid = np.asarray(grid, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"step_values: x and y must be 1-d of the same length, got shapes {x.shape} and {y.shape}")
    if x.size and np.any(np.diff(x) < 0):
        raise ValueError("step_values: x must be non-decreasing (the budget spent along a run)")
    index = np.searchsorted(x, grid, side="right") - 1
    return np.where(index >= 0, y[np.clip(index, 0, None)] if y.size else before, before)


def budget_grid(n_points: int = 101) -> np.ndarray:
    """``n_points`` evenly spaced budget fractions from 0 to 1."""
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    return np.linspace(0.0, 1.0, int(n_points))


def metric_curves(df, metric: str = "regret", grid: Sequence[float] | None = None):
    """Every run's ``metric`` on a common grid of budget fractions (step interpolation).

    Returns a long DataFrame with columns ``problem, label, seed, run, frac, value, metric``
    (``metric``: the column used on that problem, see :func:`resolve_metric`).
    """
    pd = _pd()
    grid = budget_grid() if grid is None else np.asarray(grid, dtype=float)
    parts = []
    for problem, sub in df.groupby("problem", sort=False):
        column, _ = resolve_metric(sub, metric)
        for (label, seed, run), runs in sub.groupby(["label", "seed", "run"], sort=False, dropna=False):
            x = runs["budget_frac"].to_numpy(dtype=float)
            values = step_values(x, runs[column].to_numpy(dtype=float), grid)
            parts.append(pd.DataFrame({"problem": problem, "label": label, "seed": seed, "run": run,
                                       "frac": grid, "value": values, "metric": column}))
    return pd.concat(parts, ignore_index=True)


def cost_to_target(x: Sequence[float], y: Sequence[float], target: float) -> float:
    """The smallest ``x_i`` with ``y_i <= target`` (``+inf`` if the run never gets there)."""
    x = np.asarray(x, dtype=float)
    hit = np.flatnonzero(np.asarray(y, dtype=float) <= target)
    return float(x[hit[0]]) if hit.size else math.inf


def log_auc(x: Sequence[float], y: Sequence[float], *, fill: float, floor: float = 1e-10) -> float:
    """Mean of ``log10(max(r(c), floor))`` over ``c in [0, 1]`` for the step function through
    ``(x_i, y_i)`` (``x`` non-decreasing budget fractions, clipped to ``[0, 1]``); ``r`` is
    ``fill`` before the first record and wherever ``y`` is not finite."""
    if not (fill > 0 and math.isfinite(fill)):
        raise ValueError(f"log_auc: fill must be a finite number > 0, got {fill!r}")
    if not floor > 0:
        raise ValueError(f"log_auc: floor must be > 0, got {floor!r}")
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    y = np.asarray(y, dtype=float)
    if x.size and np.any(np.diff(x) < 0):
        raise ValueError("log_auc: x must be non-decreasing (the budget spent along a run)")
    starts = np.concatenate([[0.0], x])
    ends = np.concatenate([x, [1.0]])
    heights = np.concatenate([[fill], np.where(np.isfinite(y), y, fill)])
    logs = np.log10(np.maximum(heights, floor))
    return float(np.sum((ends - starts) * logs))


def run_summaries(df, metric: str = "regret", target: float | None = None, floor: float = 1e-10):
    """One row per run: ``problem, label, seed, run, metric, final, auc`` and, when ``target`` is
    given, ``cost_to_target`` (a budget fraction, ``inf`` if never reached). See the module
    docstring for the definitions."""
    pd = _pd()
    rows = []
    for problem, sub in df.groupby("problem", sort=False):
        column, _ = resolve_metric(sub, metric)
        if column.startswith("norm_"):
            fill = 1.0
        else:
            fill = float(sub["ref_high"].iloc[0] - sub["ref_low"].iloc[0])
            if not (math.isfinite(fill) and fill > 0):
                fill = 1.0
        for (label, seed, run), runs in sub.groupby(["label", "seed", "run"], sort=False, dropna=False):
            x = runs["budget_frac"].to_numpy(dtype=float)
            y = runs[column].to_numpy(dtype=float)
            row: dict[str, Any] = {"problem": problem, "label": label, "seed": seed, "run": run, "metric": column,
                                   "final": float(y[-1]), "auc": log_auc(x, y, fill=fill, floor=floor)}
            if target is not None:
                row["cost_to_target"] = cost_to_target(x, y, target)
            rows.append(row)
    return pd.DataFrame(rows)


def final_values(df, metric: str = "regret"):
    """Each run's final ``metric`` as a frame ``problem, label, seed, run, metric, final``."""
    return run_summaries(df, metric)[["problem", "label", "seed", "run", "metric", "final"]]


def fidelity_categories(fidelity: dict[str, Any] | None, n_bins: int = 4, max_levels: int = 8) -> list[dict[str, Any]]:
    """The allocation categories of one problem's fidelity (the header's fidelity dict).

    Returns dicts ``{"name", "s_low", "s_high", "s_mid"}`` in increasing fidelity; a trial with
    normalised fidelity ``s`` falls in the first category with ``s_low <= s < s_high`` (the last
    one, the target, has ``s_high = inf``).
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    target = {"name": "target", "s_low": 1.0, "s_high": math.inf, "s_mid": 1.0}
    if fidelity is None:
        return [target]
    axis = Fidelity(**{k: fidelity[k] for k in ("name", "low", "high", "target", "integer", "levels", "log") if k in fidelity})
    if axis.is_discrete and len(axis.grid()) <= max_levels:
        values = [v for v in axis.grid() if v <= axis.target]
        s = [float(axis.normalize(v)) for v in values]
        cats = []
        for i, (v, si) in enumerate(zip(values, s)):
            upper = s[i + 1] if i + 1 < len(s) else math.inf
            name = f"{axis.name}={v:g}" + (" (target)" if v == axis.target else "")
            cats.append({"name": name, "s_low": si if i else -math.inf, "s_high": upper, "s_mid": si})
        return cats
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    cats = [{"name": f"s in [{lo:.2g}, {hi:.2g})", "s_low": lo if i else -math.inf, "s_high": hi, "s_mid": (lo + hi) / 2}
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
    return cats + [target]


def fidelity_allocation(df, n_bins: int = 4, max_levels: int = 8):
    """The mean share of the budget spent in each fidelity category per (problem, label).

    Returns a DataFrame ``problem, label, category, order, s_mid, share, n_runs``; the shares of
    a (problem, label) sum to 1. See the module docstring for the categories.
    """
    pd = _pd()
    rows = []
    for problem, sub in df.groupby("problem", sort=False):
        spec = json.loads(sub["fidelity_spec"].iloc[0])
        cats = fidelity_categories(spec, n_bins, max_levels)
        lows = np.array([c["s_low"] for c in cats])
        for label, by_label in sub.groupby("label", sort=False):
            shares = []
            for _, runs in by_label.groupby("run", sort=False):
                s = runs["fidelity_s"].to_numpy(dtype=float)
                cost = runs["cost"].to_numpy(dtype=float)
                which = np.searchsorted(lows, s + 1e-12, side="right") - 1
                total = cost.sum()
                if not total > 0:
                    continue
                shares.append(np.bincount(which, weights=cost, minlength=len(cats)) / total)
            if not shares:
                continue
            mean = np.mean(shares, axis=0)
            for order, (cat, share) in enumerate(zip(cats, mean)):
                rows.append({"problem": problem, "label": label, "category": cat["name"], "order": order,
                             "s_mid": cat["s_mid"], "share": float(share), "n_runs": len(shares)})
    return pd.DataFrame(rows)


def overhead_by_observations(df, n_bins: int = 24):
    """Strategy overhead per step against the number of observations, per label.

    Steps are pooled over problems and seeds in ``n_bins`` geometric bins of ``n = n_obs + 1``.
    Returns a DataFrame ``label, n_low, n_high, n_mid, median, q25, q75, mean, count`` (``n_mid``
    the geometric mean of the bin's edges; empty bins left out).
    """
    pd = _pd()
    n = df["n_obs"].to_numpy(dtype=float) + 1
    overhead = df["overhead"].to_numpy(dtype=float)
    edges = np.unique(np.round(np.geomspace(1, max(n.max(), 1) + 1, n_bins + 1)))
    if edges.size < 2:
        edges = np.array([1.0, 2.0])
    which = np.clip(np.searchsorted(edges, n, side="right") - 1, 0, edges.size - 2)
    rows = []
    labels = df["label"].to_numpy()
    for label in dict.fromkeys(labels):
        mask = (labels == label) & np.isfinite(overhead)
        for b in np.unique(which[mask]):
            values = overhead[mask & (which == b)]
            lo, hi = edges[b], edges[b + 1]
            rows.append({"label": label, "n_low": lo, "n_high": hi, "n_mid": math.sqrt(lo * (hi - 1)),
                         "median": quantile(values, 0.5), "q25": quantile(values, 0.25), "q75": quantile(values, 0.75),
                         "mean": float(values.mean()), "count": int(values.size)})
    return pd.DataFrame(rows)


def _pd():
    from ..runlog import require_pandas

    return require_pandas("mfbo.analysis")

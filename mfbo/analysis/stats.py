"""Statistics across seeds and problems: summaries, ranks, the Friedman test and its post-hoc
tests (Nemenyi critical difference, Wilcoxon-Holm), and the cliques of a critical-difference
diagram.

References: J. Demšar (2006), "Statistical comparisons of classifiers over multiple data sets",
JMLR 7:1-30 (Friedman, Iman-Davenport, Nemenyi, CD diagrams); A. Benavoli, G. Corani,
F. Mangili (2016), "Should we really use post-hoc tests based on mean-ranks?", JMLR 17 (the
pairwise Wilcoxon signed-rank tests with Holm's correction as the alternative post-hoc test);
S. Holm (1979), "A simple sequentially rejective multiple test procedure".

Conventions
-----------
- Lower is better everywhere (regrets): rank 1 is the lowest value; ties get the average rank.
  ``+inf`` ("nothing found yet") is a value like any other and ranks last.
- :func:`quantile` is linear interpolation between order statistics (numpy's default), except
  that it never forms ``inf - inf``: an interpolation that touches ``+inf`` with a non-zero
  weight is ``+inf``.
- **Blocks**: the Friedman test and the signed-rank tests need one score per strategy per
  block. :func:`score_matrix` makes the blocks the problems, each scored by the median over
  seeds (as Demšar's data sets are each scored by a mean over folds), or, with
  ``blocks="problem-seed"``, the (problem, seed) pairs where every strategy has a run.
- **Nemenyi**: two strategies differ when their average ranks differ by at least
  ``CD = q_alpha sqrt(k (k + 1) / (6 N))``, ``q_alpha`` the upper-``alpha`` point of the
  studentized range of ``k`` means with infinite degrees of freedom divided by ``sqrt(2)``
  (``scipy.stats.studentized_range``; reproduces Demšar's Table 5).
- **Wilcoxon-Holm over blocks** (:func:`pairwise_wilcoxon_holm`): a two-sided signed-rank test
  per pair of strategies over the blocks, zero differences split between the signed sums as in
  Demšar's Section 3.1.3 (``zero_method="zsplit"``), Holm-corrected over all ``k (k - 1) / 2``
  pairs. Differences are rounded to 12 significant digits first, so that differences equal in
  decimal data tie as they should.
- **Against the best within one problem** (:func:`compare_to_best`, the marks of the results
  table): a one-sided Wilcoxon rank-sum (Mann-Whitney U) test of each strategy's final values
  over seeds against those of the best strategy (lowest median, or mean), Holm-corrected over
  the ``k - 1`` comparisons. Seeds of different strategies are not paired, hence the rank-sum
  test. With few seeds it has little power: with 2 seeds against 2 no p-value is below 1/6, with
  3 against 3 none below 1/20.
- **Cliques** of a CD diagram (:func:`cd_cliques`): maximal runs of consecutive strategies (in
  rank order) in which no pair differs, runs contained in a longer one dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = [
    "quantile", "summarise", "rank_lower_better", "average_ranks", "score_matrix", "FriedmanResult",
    "friedman", "friedman_chi2_from_ranks", "iman_davenport", "nemenyi_q", "nemenyi_cd", "holm", "pairwise_wilcoxon_holm",
    "compare_to_best", "cd_cliques", "grouped_summaries", "summarise_curves", "rank_curves",
]


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile of the non-NaN ``values`` (linear interpolation, ``+inf``-safe);
    ``nan`` if there are none."""
    v = np.sort(np.asarray(values, dtype=float))
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile: q must be in [0, 1], got {q!r}")
    pos = q * (v.size - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, v.size - 1)
    weight = pos - lo
    if weight == 0.0 or v[lo] == v[hi]:
        return float(v[lo])
    if math.isinf(v[hi]):
        return math.inf
    return float(v[lo] + weight * (v[hi] - v[lo]))


def summarise(values: Sequence[float]) -> dict[str, float]:
    """``n, mean, se, median, q25, q75`` of the non-NaN ``values``. ``se`` is the standard error
    of the mean, ``std(ddof=1) / sqrt(n)`` (``nan`` for ``n < 2``, ``inf`` if a value is)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = v.size
    if n == 0:
        return {"n": 0, "mean": math.nan, "se": math.nan, "median": math.nan, "q25": math.nan, "q75": math.nan}
    finite = bool(np.all(np.isfinite(v)))
    mean = float(v.mean()) if finite else math.inf
    se = (float(v.std(ddof=1) / math.sqrt(n)) if finite else math.inf) if n > 1 else math.nan
    return {"n": n, "mean": mean, "se": se, "median": quantile(v, 0.5), "q25": quantile(v, 0.25), "q75": quantile(v, 0.75)}


def rank_lower_better(values: Sequence[float]) -> np.ndarray:
    """Ranks ``1..k`` of ``values`` (1 = lowest), ties averaged; ``+inf`` ranks last."""
    return sps.rankdata(np.asarray(values, dtype=float), method="average")


def average_ranks(scores):
    """Average rank of each column of a blocks x strategies frame (rank within each row)."""
    ranks = np.apply_along_axis(rank_lower_better, 1, scores.to_numpy(dtype=float))
    return _pd().Series(ranks.mean(axis=0), index=scores.columns, name="average rank")


def score_matrix(finals, blocks: str = "problem", stat: str = "median"):
    """The blocks x labels matrix of final scores for the Friedman and signed-rank tests.

    Args:
        finals: a frame with ``problem, label, seed, final`` (from
            :func:`mfbo.analysis.metrics.final_values`).
        blocks: ``"problem"`` (one block per problem, scored by ``stat`` over seeds) or
            ``"problem-seed"`` (one block per (problem, seed)).
        stat: ``"median"`` or ``"mean"`` over seeds (for ``blocks="problem"``).

    Blocks where some label has no score are dropped, and listed in ``attrs["dropped"]``.
    """
    if blocks not in ("problem", "problem-seed"):
        raise ValueError(f"blocks must be 'problem' or 'problem-seed', got {blocks!r}")
    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean', got {stat!r}")
    labels = list(dict.fromkeys(finals["label"]))
    if blocks == "problem":
        reduce = (lambda v: quantile(v, 0.5)) if stat == "median" else (lambda v: summarise(v)["mean"])
        table = finals.groupby(["problem", "label"], sort=False)["final"].agg(lambda s: reduce(s.to_numpy(dtype=float))).unstack("label")
    else:
        table = finals.pivot_table(index=["problem", "seed"], columns="label", values="final", aggfunc="first")
    table = table.reindex(columns=labels)
    missing = table.isna().any(axis=1)
    out = table[~missing]
    out.attrs["dropped"] = [str(i) for i in table.index[missing]]
    return out


@dataclass(frozen=True)
class FriedmanResult:
    """The Friedman test of ``n_labels`` strategies over ``n_blocks`` blocks.

    ``chi2`` and ``p_value`` are ``scipy.stats.friedmanchisquare``'s (with its correction for
    ties within a block); ``iman_davenport`` is Iman and Davenport's
    ``F = (N - 1) chi2 / (N (k - 1) - chi2)`` with ``k - 1`` and ``(k - 1)(N - 1)`` degrees of
    freedom (Demšar 2006, eq. 2), less conservative than ``chi2``.
    """

    chi2: float
    p_value: float
    iman_davenport: float
    iman_davenport_p: float
    average_ranks: dict[str, float]
    n_blocks: int
    n_labels: int


def friedman_chi2_from_ranks(average_ranks: Sequence[float], n_blocks: int) -> float:
    """Demšar's ``chi2_F = 12 N / (k (k + 1)) [sum_j R_j^2 - k (k + 1)^2 / 4]`` (no tie correction)."""
    r = np.asarray(average_ranks, dtype=float)
    k = r.size
    return float(12.0 * n_blocks / (k * (k + 1)) * (np.sum(r**2) - k * (k + 1) ** 2 / 4.0))


def iman_davenport(chi2: float, n_blocks: int, k: int) -> tuple[float, float]:
    """Iman and Davenport's ``F = (N - 1) chi2 / (N (k - 1) - chi2)`` and its p-value (F
    distribution with ``k - 1`` and ``(k - 1)(N - 1)`` degrees of freedom); ``(inf, 0)`` when
    every block ranks the strategies identically."""
    denominator = n_blocks * (k - 1) - chi2
    if denominator <= 0:
        return math.inf, 0.0
    ff = (n_blocks - 1) * chi2 / denominator
    return float(ff), float(sps.f.sf(ff, k - 1, (k - 1) * (n_blocks - 1)))


def friedman(scores) -> FriedmanResult:
    """Friedman test on a blocks x labels frame (lower is better). Needs >= 3 labels, >= 2 blocks."""
    matrix = scores.to_numpy(dtype=float)
    n, k = matrix.shape
    if k < 3:
        raise ValueError(f"friedman: needs at least 3 strategies (columns), got {k}")
    if n < 2:
        raise ValueError(f"friedman: needs at least 2 blocks (rows), got {n}")
    if np.isnan(matrix).any():
        raise ValueError("friedman: scores contain NaN; drop the incomplete blocks first (score_matrix does)")
    ranks = average_ranks(scores)
    constant = np.all(matrix == matrix[:, :1], axis=1)
    if constant.all():  # every block a complete tie: no evidence of any difference
        chi2, p = 0.0, 1.0
    else:
        result = sps.friedmanchisquare(*matrix.T)
        chi2, p = float(result.statistic), float(result.pvalue)
    ff, pf = iman_davenport(chi2, n, k)
    return FriedmanResult(chi2=chi2, p_value=p, iman_davenport=float(ff), iman_davenport_p=pf,
                          average_ranks={str(c): float(v) for c, v in ranks.items()}, n_blocks=n, n_labels=k)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """``q_alpha`` of the Nemenyi test for ``k`` strategies (Demšar's Table 5a at 0.05)."""
    if int(k) != k or k < 2:
        raise ValueError(f"nemenyi_q: k (the number of strategies) must be an integer >= 2, got {k!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"nemenyi_q: alpha must be in (0, 1), got {alpha!r}")
    return float(sps.studentized_range.ppf(1.0 - alpha, int(k), np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """The Nemenyi critical difference ``q_alpha sqrt(k (k + 1) / (6 N))`` of average ranks."""
    if int(n_blocks) != n_blocks or n_blocks < 1:
        raise ValueError(f"nemenyi_cd: n_blocks must be a positive integer, got {n_blocks!r}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as the input, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def _round_sig(x: np.ndarray, digits: int = 12) -> np.ndarray:
    return np.array([float(f"{v:.{digits}g}") if np.isfinite(v) else v for v in x])


def pairwise_wilcoxon_holm(scores, alpha: float = 0.05):
    """Two-sided Wilcoxon signed-rank tests of every pair of columns of a blocks x labels frame,
    Holm-corrected over the pairs (see the module docstring).

    Returns a DataFrame ``a, b, statistic, p_value, p_holm, significant`` (``statistic`` =
    ``min(R+, R-)``; ``p_value`` 1 when all differences are zero).
    """
    pd = _pd()
    labels = list(scores.columns)
    matrix = scores.to_numpy(dtype=float)
    rows = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            a, b = matrix[:, i], matrix[:, j]
            with np.errstate(invalid="ignore"):
                d = np.where(a == b, 0.0, a - b)  # inf - inf is a tie, not nan
            d = _round_sig(d)
            if np.all(d == 0):
                stat, p = 0.0, 1.0
            else:
                result = sps.wilcoxon(d, zero_method="zsplit")
                stat, p = float(result.statistic), float(result.pvalue)
            rows.append({"a": labels[i], "b": labels[j], "statistic": stat, "p_value": p})
    out = pd.DataFrame(rows, columns=["a", "b", "statistic", "p_value"])
    out["p_holm"] = holm(out["p_value"].to_numpy()) if len(out) else []
    out["significant"] = out["p_holm"] <= alpha
    return out


def compare_to_best(samples: Mapping[str, Sequence[float]], alpha: float = 0.05, stat: str = "median"):
    """Is each strategy worse than the best one? (one problem; see the module docstring).

    Args:
        samples: label -> final values over seeds (lower is better).
        alpha: the family-wise level of the Holm correction.
        stat: ``"median"`` or ``"mean"``: how the best strategy is chosen (ties: the first).

    Returns:
        A DataFrame ``label, center, best, p_value, p_holm, worse`` (``best`` True on the best
        label, whose p-values are ``nan``; ``worse`` True where significantly worse than it).
    """
    pd = _pd()
    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean', got {stat!r}")
    labels = list(samples)
    if not labels:
        raise ValueError("compare_to_best: samples is empty")
    data = {label: np.asarray(samples[label], dtype=float) for label in labels}
    data = {label: v[~np.isnan(v)] for label, v in data.items()}
    centre = {label: summarise(v)[stat] for label, v in data.items()}
    ranked = [label for label in labels if not math.isnan(centre[label])]
    if not ranked:
        raise ValueError("compare_to_best: no label has any finite or infinite value")
    best = min(ranked, key=lambda label: centre[label])
    others = [label for label in labels if label != best]
    p = []
    for label in others:
        x, y = data[label], data[best]
        if x.size == 0 or y.size == 0:
            p.append(math.nan)
        elif np.all(np.concatenate([x, y]) == x[0]):
            p.append(1.0)  # all values equal: no evidence either way
        else:
            p.append(float(sps.mannwhitneyu(x, y, alternative="greater").pvalue))
    p_arr = np.asarray(p, dtype=float)
    tested = ~np.isnan(p_arr)
    adjusted = np.full(p_arr.size, np.nan)
    adjusted[tested] = holm(p_arr[tested])
    rows = [{"label": best, "center": centre[best], "best": True, "p_value": math.nan, "p_holm": math.nan, "worse": False}]
    for label, pv, ph in zip(others, p_arr, adjusted):
        rows.append({"label": label, "center": centre[label], "best": False, "p_value": pv, "p_holm": ph,
                     "worse": bool(ph <= alpha) if not math.isnan(ph) else False})
    return pd.DataFrame(rows).set_index("label").loc[labels].reset_index()


def cd_cliques(n: int, not_different: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Maximal runs ``(i, j)``, ``i < j``, of consecutive positions ``0..n-1`` (strategies sorted
    by average rank) in which every pair is ``not_different``; runs inside a longer run dropped."""
    runs = []
    for i in range(n):
        j = i
        while j + 1 < n and all(not_different(a, j + 1) for a in range(i, j + 1)):
            j += 1
        if j > i:
            runs.append((i, j))
    return [(i, j) for i, j in runs if not any(a <= i and j <= b and (a, b) != (i, j) for a, b in runs)]


def _pd():
    from ..runlog import require_pandas

    return require_pandas("mfbo.analysis")


def grouped_summaries(codes: np.ndarray, values: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """:func:`summarise` of ``values`` within each group ``codes`` (integers ``0..n_groups-1``),
    vectorised; NaN values are left out. Returns arrays of length ``n_groups`` per statistic."""
    codes = np.asarray(codes, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    codes, values = codes[keep], values[keep]
    order = np.lexsort((values, codes))
    codes, values = codes[order], values[order]
    n = np.bincount(codes, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    out: dict[str, np.ndarray] = {"n": n}
    has = n > 0
    for name, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75)):
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        weight = pos - lo
        a = values[np.where(has, start + lo, 0)] if values.size else np.zeros(n_groups)
        b = values[np.where(has, start + hi, 0)] if values.size else np.zeros(n_groups)
        with np.errstate(invalid="ignore"):
            interpolated = np.where(np.isinf(b) & (weight > 0) & (a != b), np.inf, a + weight * np.where(a == b, 0.0, b - a))
        out[name] = np.where(has, np.where(weight == 0, a, interpolated), np.nan)
    finite = np.bincount(codes, weights=~np.isfinite(values), minlength=n_groups) == 0
    safe = np.where(np.isfinite(values), values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(codes, weights=safe, minlength=n_groups) / n
        squares = np.bincount(codes, weights=(safe - mean[codes]) ** 2, minlength=n_groups)
        se = np.sqrt(squares / (n - 1)) / np.sqrt(n)
    out["mean"] = np.where(has, np.where(finite, mean, np.inf), np.nan)
    out["se"] = np.where(n > 1, np.where(finite, se, np.inf), np.nan)
    return out


def summarise_curves(curves):
    """Summaries over seeds (as :func:`summarise`) of a curves frame (from
    :func:`mfbo.analysis.metrics.metric_curves`), one row per (problem, label, frac), with the
    problem's ``metric`` column kept."""
    grouped = curves.groupby(["problem", "label", "frac"], sort=False)
    codes = grouped.ngroup().to_numpy()
    first = grouped[["problem", "label", "frac", "metric"]].first().reset_index(drop=True)
    stats = grouped_summaries(codes, curves["value"].to_numpy(dtype=float), len(first))
    for name in ("n", "mean", "se", "median", "q25", "q75"):
        first[name] = stats[name]
    return first


def rank_curves(curves, by: str = "problem"):
    """Average rank of each label against the budget fraction, over problems.

    ``by="problem"``: at each budget fraction, rank the labels on each problem by their median
    over seeds, then average the ranks over problems. ``by="seed"``: rank within each (problem,
    seed) block instead. Only blocks where every label has a value are used (the others are
    listed in ``attrs["dropped"]``). Returns a frame ``label, frac, rank, n_blocks``.
    """
    pd = _pd()
    if by not in ("problem", "seed"):
        raise ValueError(f"by must be 'problem' or 'seed', got {by!r}")
    labels = list(dict.fromkeys(curves["label"]))
    if by == "problem":
        table = curves.groupby(["problem", "frac", "label"], sort=False)["value"].median().unstack("label")
    else:
        table = curves.pivot_table(index=["problem", "seed", "frac"], columns="label", values="value", aggfunc="first")
    table = table.reindex(columns=labels)
    complete = ~table.isna().any(axis=1)
    dropped = sorted({str(i[:-1]) for i in table.index[~complete]})
    table = table[complete]
    ranks = np.apply_along_axis(rank_lower_better, 1, table.to_numpy(dtype=float)) if len(table) else np.zeros((0, len(labels)))
    ranked = pd.DataFrame(ranks, index=table.index, columns=labels)
    fracs = ranked.index.get_level_values("frac")
    mean = ranked.groupby(fracs).mean()
    count = ranked.groupby(fracs).size()
    out = mean.stack().rename("rank").reset_index().rename(columns={"level_1": "label"})
    out.columns = ["frac", "label", "rank"]
    out["n_blocks"] = out["frac"].map(count)
    out.attrs["dropped"] = dropped
    return out[["label", "frac", "rank", "n_blocks"]]

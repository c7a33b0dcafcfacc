"""Fidelity calibration: how much each fidelity costs and how well it ranks configurations.

The first step of a multi-fidelity study is to measure, for a sample of configurations, the
cost and the bias of every fidelity against the target. :func:`calibrate` samples ``N``
configurations from the problem's space (seeded), evaluates each at a ladder of fidelities
``f_1 < ... < f_L`` that includes the target, and :func:`calibration_metrics` turns the two
``(N, L)`` arrays of values and costs into one :class:`LevelMetrics` per level.

Metrics of level ``l`` against the target column ``t`` (values are minimised)
-------------------------------------------------------------------------------
Let ``P_l`` be the configurations whose evaluations at ``l`` *and* at the target succeeded
(``n_pairs = |P_l|``); every comparison with the target uses ``P_l`` only.

- **cost**: mean, sample standard deviation (``ddof=1``), min, quartiles and max over the
  configurations whose evaluation at ``l`` succeeded; ``cost_fraction = mean cost(l) / mean
  cost(target)``. On a :attr:`~mfbo.problems.Problem.resumable` problem each configuration's
  levels are evaluated in increasing order, each continuing the previous one
  (``resume_from``), and the cost of a level is the **cumulative** cost of the chain up to it,
  i.e. the cost of reaching that level from scratch.
- **bias**: ``mean |v_l - v_t|``, ``max |v_l - v_t|`` and the signed ``mean (v_l - v_t)`` over
  ``P_l``. ``v_t`` is the *observed* value at the target, not the noiseless
  :meth:`~mfbo.problems.Problem.target_value`: on a problem with noise at the target, the bias
  then includes that noise (the mfhartmann family has none at the target, so it is exact there).
- **rank correlation**: Spearman's rho and Kendall's tau-b (``scipy.stats``) of ``v_l`` with
  ``v_t`` over ``P_l``; ``nan`` when fewer than two pairs or either side is constant.
- **decision precision** ("precision at x% of the full budget" in reviews of multi-fidelity
  HPO): for each fraction ``q`` in ``top_fractions``, ``k = floor(q * n_pairs)`` and
  ``precision = |top_k(v_l) ∩ top_k(v_t)| / k``, the share of the ``k`` best configurations at
  ``l`` that are also among the ``k`` best at the target. Ties are handled so that the number
  answers "is the decision taken at ``l`` a top-k decision at the target?":

  - at the level, ties at the boundary of the top-k set are broken uniformly at random *in
    expectation* (a configuration tied with ``m`` others for the last ``r`` places is picked with
    probability ``r / m``);
  - at the target, the top-k set is **tie-inclusive**, ``{c : v_t(c) <= k-th best v_t}``: a pick
    whose target value equals the ``k``-th best is as good a decision as any top-k pick.

  So ``precision = Σ_c P(c picked at l) · [v_t(c) <= v_t,(k)] / k``. Without ties this is the plain
  count; a level equal to the target scores 1 even when values tie (objectives such as an error
  rate on a finite validation set tie often; counting both sides' ties in expectation, as an
  earlier version did, scored the target itself 0.81 at 10 % on ``digits-mlp``); a constant
  (uninformative) level scores the chance level ``|tie-inclusive target set| / n_pairs``, which
  is ``k / n_pairs`` when the target has no tie at its boundary.

The target level is a row of its own (bias 0, correlations 1, precision 1, cost fraction 1).

Failures
--------
An evaluation that raises or returns a non-finite value is a failure, exactly as in a run
(:func:`mfbo.loop.minimize`): its value is ``nan`` in :attr:`CalibrationReport.values`, it is
left out of that configuration's metrics, and it is counted per level (``n_failed``) with its
error text in :attr:`CalibrationReport.failures`. A failure at the target removes that
configuration from every level's comparison. On a resumable problem the next level continues
from the last level that succeeded.

Reproducibility: the same problem, ``n_configs``, levels, ``top_fractions`` and ``seed`` give the
same report, apart from costs that are measured wall times.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from . import problems as problem_registry
from .loop import _evaluate as evaluate_safely
from .problems.base import Problem
from .space import Fidelity
from .trial import Trial

__all__ = [
    "LevelMetrics", "CalibrationReport", "calibrate", "calibration_metrics", "default_levels",
    "MIN_CONFIGS", "DEFAULT_TOP_FRACTIONS",
]

#: The fewest configurations a calibration accepts (rank correlations need a few pairs).
MIN_CONFIGS = 4
#: Top-k fractions of the decision precision: 10% and 25% of the configurations.
DEFAULT_TOP_FRACTIONS = (0.10, 0.25)
#: Number of levels in the default ladder of a continuous or integer-range fidelity.
DEFAULT_LADDER_SIZE = 7
#: Okabe & Ito (2008) colour-blind-safe palette: blue, vermillion, bluish green, orange, purple.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7")
_MARKERS = ("o", "s", "^", "D", "v")
_LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))


def _fraction_label(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def top_k_size(fraction: float, n: int) -> int:
    """``floor(fraction * n)`` (with a tolerance for binary round-off, so ``0.29 * 100`` is 29)."""
    return int(math.floor(fraction * n + 1e-9))


def _check_top_fractions(top_fractions: Sequence[float], n: int, what: str) -> tuple[float, ...]:
    fractions = tuple(float(q) for q in top_fractions)
    if not fractions:
        raise ValueError("top_fractions must hold at least one fraction in (0, 1], got none")
    for q in fractions:
        if not (0.0 < q <= 1.0):
            raise ValueError(f"top_fractions: each fraction must be in (0, 1], got {q!r}")
    for q in fractions:
        if top_k_size(q, n) < 1:
            need = math.ceil(1.0 / q - 1e-9)
            raise ValueError(
                f"{what} must be >= {need} so that the top {_fraction_label(q)} holds at least one "
                f"configuration, got {n}"
            )
    return fractions


def _check_n_configs(n: int, what: str) -> None:
    if n < MIN_CONFIGS:
        raise ValueError(f"{what} must be >= {MIN_CONFIGS}, got {n}")


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LevelMetrics:
    """The calibration of one fidelity level against the target (see the module docstring).

    ``precision`` and ``top_k`` are keyed by the top fraction's label (``"10%"``, ``"25%"``).
    Undefined statistics (no pairs, constant values) are ``nan``.
    """

    fidelity: float
    n_ok: int
    n_failed: int
    n_pairs: int
    cost_mean: float
    cost_std: float
    cost_min: float
    cost_q25: float
    cost_median: float
    cost_q75: float
    cost_max: float
    cost_fraction: float
    bias_mean: float
    bias_max: float
    bias_signed_mean: float
    spearman: float
    kendall: float
    precision: dict[str, float]
    top_k: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fidelity": self.fidelity,
            "n_ok": self.n_ok,
            "n_failed": self.n_failed,
            "n_pairs": self.n_pairs,
            "cost": {
                "mean": _json_float(self.cost_mean), "std": _json_float(self.cost_std),
                "min": _json_float(self.cost_min), "q25": _json_float(self.cost_q25),
                "median": _json_float(self.cost_median), "q75": _json_float(self.cost_q75),
                "max": _json_float(self.cost_max),
            },
            "cost_fraction": _json_float(self.cost_fraction),
            "bias": {
                "mean_abs": _json_float(self.bias_mean), "max_abs": _json_float(self.bias_max),
                "mean_signed": _json_float(self.bias_signed_mean),
            },
            "spearman": _json_float(self.spearman),
            "kendall": _json_float(self.kendall),
            "precision": {key: _json_float(v) for key, v in self.precision.items()},
            "top_k": dict(self.top_k),
        }


def _json_float(x: float) -> float | None:
    """``nan``/``inf`` are not JSON: write them as ``null``."""
    return float(x) if math.isfinite(x) else None


def _top_k_membership(values: np.ndarray, k: int) -> np.ndarray:
    """Probability that each entry is among the ``k`` smallest, ties broken uniformly at random."""
    threshold = np.sort(values)[k - 1]
    below = values < threshold
    tied = values == threshold
    membership = below.astype(np.float64)
    membership[tied] = (k - below.sum()) / tied.sum()
    return membership


def _rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(x, y).statistic
        tau = stats.kendalltau(x, y).statistic
    return float(rho), float(tau)


def _cost_summary(costs: np.ndarray) -> dict[str, float]:
    if costs.size == 0:
        return dict.fromkeys(("mean", "std", "min", "q25", "median", "q75", "max"), math.nan)
    q25, median, q75 = np.quantile(costs, [0.25, 0.5, 0.75])
    return {
        "mean": float(costs.mean()),
        # equal costs give exactly 0, not the round-off of the mean subtraction
        "std": math.nan if costs.size < 2 else 0.0 if np.ptp(costs) == 0 else float(costs.std(ddof=1)),
        "min": float(costs.min()), "q25": float(q25), "median": float(median), "q75": float(q75),
        "max": float(costs.max()),
    }


def calibration_metrics(
    values: np.ndarray,
    costs: np.ndarray,
    target_column: int,
    fidelities: Sequence[float] | None = None,
    top_fractions: Sequence[float] = DEFAULT_TOP_FRACTIONS,
) -> list[LevelMetrics]:
    """The metrics of every level (column) against the target column; a pure function.

    Args:
        values: ``(n_configs, n_levels)`` observed values; ``nan`` marks a failed evaluation.
        costs: ``(n_configs, n_levels)`` costs of reaching each level (cumulative on resumable
            problems); entries of failed evaluations are ignored.
        target_column: the column of the target fidelity (negative indices allowed).
        fidelities: the fidelity value of each column (default ``0, 1, ...``), copied into
            :attr:`LevelMetrics.fidelity`.
        top_fractions: fractions ``q`` of the decision precision, each in ``(0, 1]`` with
            ``floor(q * n_configs) >= 1``.

    Returns:
        One :class:`LevelMetrics` per column, in column order.
    """
    values = np.asarray(values, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-d array (n_configs, n_levels), got shape {values.shape}")
    if costs.shape != values.shape:
        raise ValueError(f"costs must have the shape of values {values.shape}, got {costs.shape}")
    n, n_levels = values.shape
    _check_n_configs(n, "values: the number of configurations (rows)")
    fractions = _check_top_fractions(top_fractions, n, "values: the number of configurations (rows)")
    if not (-n_levels <= int(target_column) < n_levels):
        raise ValueError(f"target_column must index one of the {n_levels} columns, got {target_column!r}")
    target_column = int(target_column) % n_levels
    if fidelities is None:
        fidelities = list(range(n_levels))
    if len(fidelities) != n_levels:
        raise ValueError(f"fidelities must give one value per column ({n_levels}), got {len(fidelities)}")

    ok = np.isfinite(values)
    target = values[:, target_column]
    target_cost = costs[ok[:, target_column], target_column]
    target_cost_mean = float(target_cost.mean()) if target_cost.size else math.nan
    out = []
    for j in range(n_levels):
        level_costs = _cost_summary(costs[ok[:, j], j])
        pairs = ok[:, j] & ok[:, target_column]
        v, t = values[pairs, j], target[pairs]
        n_pairs = int(pairs.sum())
        gap = v - t
        rho, tau = _rank_correlations(v, t)
        precision, top_k = {}, {}
        for q in fractions:
            k = top_k_size(q, n_pairs)
            top_k[_fraction_label(q)] = k
            precision[_fraction_label(q)] = (
                float(np.sum(_top_k_membership(v, k) * (t <= np.sort(t)[k - 1])) / k) if k >= 1 else math.nan
            )
        out.append(LevelMetrics(
            fidelity=fidelities[j],
            n_ok=int(ok[:, j].sum()),
            n_failed=int(n - ok[:, j].sum()),
            n_pairs=n_pairs,
            cost_mean=level_costs["mean"], cost_std=level_costs["std"], cost_min=level_costs["min"],
            cost_q25=level_costs["q25"], cost_median=level_costs["median"], cost_q75=level_costs["q75"],
            cost_max=level_costs["max"],
            cost_fraction=level_costs["mean"] / target_cost_mean if target_cost_mean > 0 else math.nan,
            bias_mean=float(np.abs(gap).mean()) if n_pairs else math.nan,
            bias_max=float(np.abs(gap).max()) if n_pairs else math.nan,
            bias_signed_mean=float(gap.mean()) if n_pairs else math.nan,
            spearman=rho,
            kendall=tau,
            precision=precision,
            top_k=top_k,
        ))
    return out


# ---------------------------------------------------------------------------------------------
@dataclass
class CalibrationReport:
    """The outcome of :func:`calibrate`: per-level metrics plus the raw evaluations.

    Attributes:
        problem: the problem's name.
        fidelity: the problem's fidelity axis.
        levels: the evaluated fidelity values, increasing; ``levels[target_column]`` is the target.
        target_column: index of the target in ``levels``.
        n_configs: the number of sampled configurations.
        seed: the seed of the configuration sample.
        top_fractions: the fractions of the decision precision.
        cumulative_cost: ``True`` if the problem is resumable and costs are cumulative.
        metrics: one :class:`LevelMetrics` per level.
        configs: the sampled configurations, ``n_configs`` dicts.
        values: ``(n_configs, n_levels)`` observed values, ``nan`` for failures.
        costs: ``(n_configs, n_levels)`` costs of reaching each level.
        failures: one ``{"config": i, "fidelity": f, "error": text}`` per failed evaluation.
    """

    problem: str
    fidelity: Fidelity
    levels: tuple[float, ...]
    target_column: int
    n_configs: int
    seed: int
    top_fractions: tuple[float, ...]
    cumulative_cost: bool
    metrics: list[LevelMetrics]
    configs: list[dict[str, Any]] = field(repr=False)
    values: np.ndarray = field(repr=False)
    costs: np.ndarray = field(repr=False)
    failures: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def n_failed(self) -> int:
        """The number of failed evaluations over all levels."""
        return len(self.failures)

    def file_stem(self) -> str:
        """``{problem}__calibration__n{N}__seed{S}``, with characters unsafe in file names replaced."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.problem)
        return f"{safe}__calibration__n{self.n_configs}__seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``nan`` written as ``null``)."""
        def matrix(a: np.ndarray) -> list[list[float | None]]:
            return [[_json_float(x) for x in row] for row in a.tolist()]

        return {
            "problem": self.problem,
            "fidelity": self.fidelity.to_dict(),
            "levels": list(self.levels),
            "target": self.levels[self.target_column],
            "n_configs": self.n_configs,
            "seed": self.seed,
            "top_fractions": list(self.top_fractions),
            "cumulative_cost": self.cumulative_cost,
            "target_value": "observed value at the target fidelity",
            "n_failed": self.n_failed,
            "metrics": [m.to_dict() for m in self.metrics],
            "failures": list(self.failures),
            "configs": list(self.configs),
            "values": matrix(self.values),
            "costs": matrix(self.costs),
        }

    def to_markdown(self) -> str:
        """A Markdown table, one row per level, with a short header."""
        labels = [_fraction_label(q) for q in self.top_fractions]
        name = self.fidelity.name
        cost_kind = "cumulative (resumed level by level)" if self.cumulative_cost else "per evaluation (from scratch)"
        lines = [
            f"**{self.problem}**: {self.n_configs} configurations (seed {self.seed}), fidelity {name!r}, "
            f"target {self.levels[self.target_column]}; cost {cost_kind}; "
            f"bias and ranks against the observed target value; {self.n_failed} failed evaluations; "
            f"a random ranking scores prec@q = q in expectation (slightly more where target values tie at the top-q boundary)",
            "",
        ]
        header = [name, "cost frac", "cost mean", "cost std", "cost min", "cost max", "bias mean", "bias max",
                  "Spearman", "Kendall", *(f"prec@{lab}" for lab in labels), "pairs", "failed"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---:" for _ in header) + "|")
        for m in self.metrics:
            row = [f"{m.fidelity:g}", _cell(m.cost_fraction, ".3g"), _cell(m.cost_mean, ".4g"), _cell(m.cost_std, ".3g"),
                   _cell(m.cost_min, ".4g"), _cell(m.cost_max, ".4g"), _cell(m.bias_mean, ".3g"), _cell(m.bias_max, ".3g"),
                   _cell(m.spearman, ".3f"), _cell(m.kendall, ".3f"), *(_cell(m.precision[lab], ".2f") for lab in labels),
                   str(m.n_pairs), str(m.n_failed)]
            lines.append("| " + " | ".join(row) + " |")
        for failure in self.failures[:3]:
            lines.append(f"\nfailed: config {failure['config']} at {name}={failure['fidelity']:g}: {failure['error']}")
        if self.n_failed > 3:
            lines.append(f"... and {self.n_failed - 3} more failures (see the JSON file)")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> tuple[Path, Path]:
        """Draw precision@q for each top fraction and Spearman's rho against the fraction of the
        target cost (log x-axis); write it as PDF and PNG (``path`` with suffix ``.pdf`` and
        ``.png``). Sized for one column of a two-column paper (3.4 x 2.5 in), Okabe-Ito colours,
        plus markers and line styles so it also reads in greyscale. Returns the two paths."""
        from matplotlib import rc_context
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, LogLocator

        base = Path(path)
        base = base.with_suffix("") if base.suffix.lower() in (".pdf", ".png") else base
        pdf, png = Path(f"{base}.pdf"), Path(f"{base}.png")
        pdf.parent.mkdir(parents=True, exist_ok=True)
        x = np.array([m.cost_fraction for m in self.metrics])
        series = [(f"precision@{lab}", np.array([m.precision[lab] for m in self.metrics]))
                  for lab in (_fraction_label(q) for q in self.top_fractions)]
        series.append(("Spearman $\\rho$", np.array([m.spearman for m in self.metrics])))
        style = {"font.size": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
                 "ytick.labelsize": 7, "axes.titlesize": 8, "pdf.fonttype": 42, "ps.fonttype": 42}
        with rc_context(style):
            fig = Figure(figsize=(3.4, 2.5), layout="constrained")
            ax = fig.add_subplot()
            for i, (label, y) in enumerate(series):
                keep = np.isfinite(x) & np.isfinite(y)
                ax.plot(x[keep], y[keep], label=label, color=_COLOURS[i % len(_COLOURS)],
                        marker=_MARKERS[i % len(_MARKERS)], linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                        markersize=3.5, linewidth=1.2)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_xlabel("fraction of the target cost")
            ax.set_ylabel("agreement with the target")
            finite = np.concatenate([y[np.isfinite(y)] for _, y in series] + [np.zeros(1)])
            ax.set_ylim(min(-0.05, float(finite.min()) - 0.05), 1.05)
            ax.axhline(0.0, color="0.6", linewidth=0.6, zorder=0)
            ax.grid(True, which="major", color="0.9", linewidth=0.5)
            ax.set_title(f"{self.problem}  (N={self.n_configs})")
            ax.legend(loc="lower right", frameon=False)
            fig.savefig(pdf)
            fig.savefig(png, dpi=300)
        return pdf, png


def _cell(x: float, spec: str) -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


# ---------------------------------------------------------------------------------------------
def default_levels(fidelity: Fidelity, n_levels: int = DEFAULT_LADDER_SIZE) -> tuple[float, ...]:
    """The default ladder of ``fidelity``, from its lowest value to the target.

    - Explicit levels: every level up to the target (``n_levels`` of them, evenly spaced by
      index and always keeping the lowest and the target, if there are more).
    - A range with ``low > 0`` (epochs, a data fraction, a log-scale fidelity): geometric,
      ``n_levels`` values ``low * (target / low) ** (i / (n_levels - 1))``, rounded to integers
      (and de-duplicated) on an integer fidelity, as the budgets of successive halving grow.
    - A range with ``low <= 0`` (e.g. ``z in [0, 1]``): ``n_levels`` evenly spaced values.
    """
    if n_levels < 2:
        raise ValueError(f"n_levels must be >= 2 (the cheapest level and the target), got {n_levels}")
    target = fidelity.target
    if fidelity.levels is not None:
        below = [v for v in fidelity.levels if v <= target]
        if len(below) > n_levels:
            picks = np.unique(np.round(np.linspace(0, len(below) - 1, n_levels)).astype(int))
            below = [below[i] for i in picks]
        return tuple(below)
    low = float(fidelity.low)
    raw = np.geomspace(low, float(target), n_levels) if low > 0 else np.linspace(low, float(target), n_levels)
    if fidelity.integer:
        raw = np.unique(np.round(raw))
    ladder = [fidelity.validate(min(max(v, low), float(target))) for v in raw[:-1]]
    return tuple(sorted(set(ladder) | {target}))


def _check_levels(problem: Problem, levels: Sequence[float] | None) -> tuple[tuple[float, ...], int]:
    fidelity = problem.fidelity
    if levels is None:
        ladder = default_levels(fidelity)
    else:
        if isinstance(levels, (str, bytes)) or not isinstance(levels, Iterable):
            raise ValueError(f"levels must be a sequence of fidelity values, got {levels!r}")
        levels = list(levels)
        checked = []
        for v in levels:
            try:
                checked.append(fidelity.validate(v, what="level"))
            except ValueError as err:
                raise ValueError(f"levels: {err}") from None
        ladder = tuple(sorted(set(checked) | {fidelity.target}))
    if len(ladder) < 2:
        raise ValueError(
            f"levels must include at least one fidelity other than the target {fidelity.target!r}, got {list(levels or [])!r}"
        )
    return ladder, ladder.index(fidelity.target)


def calibrate(
    problem: Problem | str,
    n_configs: int,
    levels: Sequence[float] | None = None,
    *,
    seed: int = 0,
    top_fractions: Sequence[float] = DEFAULT_TOP_FRACTIONS,
    problem_options: dict[str, Any] | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> CalibrationReport:
    """Evaluate ``n_configs`` sampled configurations at a ladder of fidelities and report each
    level's cost, bias, rank correlation and decision precision against the target.

    Args:
        problem: a :class:`~mfbo.problems.Problem` with a fidelity, or a registered name.
        n_configs: the number of configurations, ``>= 4`` and large enough that every top
            fraction holds at least one (``>= 10`` for the default 10%).
        levels: fidelity values in the fidelity's natural units (the target is added if
            missing); default :func:`default_levels`.
        seed: seeds the configuration sample (``numpy.random.default_rng(seed)``).
        top_fractions: fractions of the decision precision (default 10% and 25%).
        problem_options: constructor options when ``problem`` is a name.
        callback: called as ``callback(done, n_configs)`` after each configuration.

    Each configuration goes up the ladder in increasing order; on a resumable problem each level
    continues the previous successful one and is charged the cumulative cost (see the module
    docstring). Every evaluation goes through :meth:`Problem.evaluate`, so any problem works.
    """
    if isinstance(problem, str):
        problem = problem_registry.get(problem, **(problem_options or {}))
    elif problem_options:
        raise ValueError("calibrate: problem_options is only used when problem is given by name")
    if not isinstance(problem, Problem):
        raise ValueError(f"calibrate: problem must be a Problem or a registered name, got {type(problem).__name__}")
    if problem.fidelity is None:
        raise ValueError(f"problem {problem.name!r} has no fidelity; calibrate needs a multi-fidelity problem")
    if isinstance(n_configs, bool) or int(n_configs) != n_configs:
        raise ValueError(f"n_configs must be an integer >= {MIN_CONFIGS}, got {n_configs!r}")
    n_configs = int(n_configs)
    _check_n_configs(n_configs, "n_configs")
    fractions = _check_top_fractions(top_fractions, n_configs, "n_configs")
    ladder, target_column = _check_levels(problem, levels)

    configs = problem.space.sample(np.random.default_rng(seed), n_configs)
    values = np.full((n_configs, len(ladder)), math.nan)
    costs = np.full((n_configs, len(ladder)), math.nan)
    failures: list[dict[str, Any]] = []
    resumable = bool(problem.resumable)
    trial_id = 0
    for i, config in enumerate(configs):
        reached, spent = None, 0.0  # last level that succeeded, and its cumulative cost
        for j, level in enumerate(ladder):
            resume_from = reached if resumable else None
            obs, _ = evaluate_safely(problem, Trial(config, level, trial_id), None, resume_from)
            trial_id += 1
            if not obs.ok:
                failures.append({"config": i, "fidelity": level, "error": obs.error or f"non-finite value {obs.value!r}"})
                continue
            cost = spent + obs.cost if resumable else obs.cost
            values[i, j], costs[i, j] = obs.value, cost
            if resumable:
                reached, spent = level, cost
        if callback is not None:
            callback(i + 1, n_configs)

    metrics = calibration_metrics(values, costs, target_column, ladder, fractions)
    return CalibrationReport(
        problem=problem.name, fidelity=problem.fidelity, levels=ladder, target_column=target_column,
        n_configs=n_configs, seed=int(seed), top_fractions=fractions, cumulative_cost=resumable,
        metrics=metrics, configs=configs, values=values, costs=costs, failures=failures,
    )

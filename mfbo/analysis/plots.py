"""The figures of a study, each a :class:`matplotlib.figure.Figure` in the style of
:mod:`mfbo.analysis.style` (write them with :func:`~mfbo.analysis.style.save_figure`).

- :func:`plot_metric_vs_cost`: a regret against the budget fraction, log scale, one panel per
  problem, median with IQR band (or mean with a band of +- one standard error of the log of the
  mean, by the delta method: ``mean * exp(+-se / mean)``, so the band lives in log space and is
  never clipped at the axis' floor) over seeds, one shared legend on top whose title gives the
  number of seeds. A strategy with fewer than 3 seeds on a panel gets no band (an IQR of two runs
  is an interpolation between them): its two runs' range is drawn as thin lines instead. Curves are step functions (``steps-post``); where the centre is
  ``+inf`` (a majority of seeds has nothing yet) nothing is drawn. A regret of exactly 0 (the
  optimum found) is drawn at the panel's floor, a factor 2 below its smallest positive value,
  marked by a dotted line labelled "0".
- :func:`plot_rank_vs_cost`: average rank against the budget fraction, from the first fraction
  where the ranks are not all tied (before any evaluation every strategy ties).
- :func:`plot_cd_diagram`: a critical-difference diagram in the style of Demšar (2006), Fig. 1:
  the average-rank axis with rank 1 (best) on the left, each strategy hooked to it, the critical
  difference drawn to scale above it (cut at the axis' end, and labelled so, when it is longer
  than ``k - 1``), and a thick bar joining each clique of strategies that do not differ
  significantly.
- :func:`plot_fidelity_allocation`: stacked horizontal bars of the share of the budget spent in
  each fidelity category, one panel per problem, coloured by the normalised fidelity (cividis,
  dark = cheap, light = target) with one shared colour bar.
- :func:`plot_overhead`: strategy overhead per step against the number of observations, log-log.
- :func:`plot_calibration`: decision precision and Spearman's rho of each fidelity against its
  fraction of the target cost, from a calibration JSON dict (see :func:`calibration_series`),
  with the chance level of each ``prec@q`` (``q``: a random ranking's expected precision) and the
  fidelity values on a top axis.

Tick labels of log axes are written the same way in every panel (``0.01``, ``1``, ``1e-05``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .style import DOUBLE_COLUMN, FIDELITY_CMAP, SINGLE_COLUMN, LineStyle, new_figure, order_labels, paper_style

__all__ = [
    "XLABELS", "plot_metric_vs_cost", "plot_rank_vs_cost", "plot_cd_diagram", "plot_fidelity_allocation", "plot_overhead",
    "calibration_series", "plot_calibration", "panel_grid",
]

_PANEL_HEIGHT = 1.35  # inches per row of problem panels
_LEGEND_HEIGHT = 0.3  # inches per legend row


def panel_grid(n_panels: int, max_cols: int = 4) -> tuple[int, int, float]:
    """``(rows, cols, width)`` of a grid of ``n_panels`` problem panels: up to ``max_cols``
    columns on the full text width (one column's width for up to two panels)."""
    if n_panels < 1:
        raise ValueError(f"panel_grid: n_panels must be >= 1, got {n_panels}")
    cols = min(max_cols, n_panels)
    rows = math.ceil(n_panels / cols)
    return rows, cols, SINGLE_COLUMN if n_panels <= 2 else DOUBLE_COLUMN


def _legend_cols(n: int, width: float) -> int:
    per_row = 7 if width > SINGLE_COLUMN else 3
    rows = math.ceil(n / per_row)
    return math.ceil(n / rows)


def _shared_legend(fig, handles, labels, width: float, where: str = "lower", title: str | None = None) -> None:
    legend = fig.legend(handles, labels, loc=f"outside {where} center", ncol=_legend_cols(len(labels), width),
                        columnspacing=1.2, handletextpad=0.5, title=title)
    if title:
        legend.get_title().set_fontsize(7)


def _readable_log_ticks(ax, which: str = "y", plain: bool = False) -> None:
    """Log-axis ticks that stay legible: no minor tick labels, and on an axis with fewer than two
    powers of ten in range, major ticks at 1, 2 and 5 times powers of ten written plainly
    (``plain``: always written plainly, ``1``, ``10``, ``100``)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    low, high = ax.get_ylim() if which == "y" else ax.get_xlim()
    axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # one format in every panel (``plain`` kept for callers)
    if low > 0 and high > 0 and math.floor(math.log10(high)) - math.ceil(math.log10(low)) + 1 < 2:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))


def _for_log(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


#: The x label of the curves against each budget axis (see :func:`mfbo.analysis.load_study`).
XLABELS = {"budget": "fraction of the budget spent", "wall_clock": "fraction of the simulated wall-clock time"}


def plot_metric_vs_cost(summary, styles: Mapping[str, LineStyle], *, stat: str = "median", ylabel: str = "regret",
                        labels_by_metric: Mapping[str, str] | None = None, xlabel: str = XLABELS["budget"]):
    """Regret against the fraction of the budget, one log-scale panel per problem.

    Args:
        summary: a frame from :func:`mfbo.analysis.stats.summarise_curves` (``problem, label,
            frac, metric, n, mean, se, median, q25, q75``).
        styles: label -> :class:`LineStyle` (every label of ``summary``).
        stat: ``"median"`` (IQR band) or ``"mean"`` (+- one standard error band).
        ylabel: the figure's y label; panels whose ``metric`` differs from the most common one
            get their own label from ``labels_by_metric`` in the title.
        xlabel: the x label (:data:`XLABELS` for the budget and the simulated wall clock).
    """
    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean', got {stat!r}")
    problems = list(dict.fromkeys(summary["problem"]))
    labels = order_labels(summary["label"])
    rows, cols, width = panel_grid(len(problems))
    legend_rows = math.ceil(len(labels) / _legend_cols(len(labels), width))
    common = summary.groupby("problem", sort=False)["metric"].first().value_counts().index[0]
    with paper_style():
        fig = new_figure(width, rows * _PANEL_HEIGHT + 0.25 + legend_rows * _LEGEND_HEIGHT)
        axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
        handles = {}
        for ax, problem in zip(axes.flat, problems):
            sub = summary[summary["problem"] == problem]
            metric = sub["metric"].iloc[0]
            _regret_panel(ax, sub, labels, styles, stat, handles)
            title = problem if metric == common or not labels_by_metric else f"{problem} ({labels_by_metric.get(metric, metric)})"
            ax.set_title(title, pad=2)
        for ax in list(axes.flat)[len(problems):]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xticks([0, 0.5, 1])
            ax.set_xticklabels(["0", "0.5", "1"])
        for c in range(cols):  # an x axis whose panel below is hidden needs its own tick labels
            r = max(r for r in range(rows) if r * cols + c < len(problems)) if c < len(problems) else 0
            axes[r, c].tick_params(labelbottom=True)
        fig.supxlabel(xlabel, fontsize=7.5)
        fig.supylabel(f"{ylabel} ({'median, IQR' if stat == 'median' else 'mean ± s.e.'})", fontsize=7.5)
        few = "; thin lines: the range of the runs" if (summary["n"] < 3).any() else ""
        _shared_legend(fig, [handles[lab] for lab in labels if lab in handles], [lab for lab in labels if lab in handles],
                       width, where="upper", title=f"{_seeds(summary['n'])} seeds{few}")
    return fig


def _regret_panel(ax, sub, labels: list[str], styles: Mapping[str, LineStyle], stat: str, handles: dict) -> None:
    """One problem's panel of :func:`plot_metric_vs_cost`: each label's centre line (steps at
    the budget fractions) with its band (or, for one or two runs, their range), on a log scale
    whose zeros are drawn at a marked floor (half the smallest positive value shown). Adds each
    label's line to ``handles`` for the shared legend."""
    centre_col = "median" if stat == "median" else "mean"
    centre_all = sub[centre_col].to_numpy(dtype=float)
    low_all, high_all = _band(sub, stat)
    runs_low, runs_high = _two_runs(sub, stat)
    shown = np.concatenate([centre_all, low_all, high_all])
    positive = shown[np.isfinite(shown) & (shown > 0)]
    floor = positive.min() / 2 if positive.size else 1e-12
    if np.any(centre_all == 0):  # a solved problem: mark the level that stands for 0
        ax.axhline(floor, color="0.5", linewidth=0.5, linestyle=(0, (1, 2)), zorder=0)
        ax.text(0.02, floor, "0", transform=ax.get_yaxis_transform(), ha="left", va="bottom",
                fontsize=6.5, color="0.4")
    for label in labels:
        rows_ = sub[sub["label"] == label]
        if rows_.empty:
            continue
        mask = (sub["label"] == label).to_numpy()
        x = rows_["frac"].to_numpy(dtype=float)
        centre = np.maximum(_for_log(centre_all[mask]), floor)
        low = np.maximum(np.where(np.isfinite(centre_all[mask]), low_all[mask], np.nan), floor)
        high = np.maximum(_for_log(np.where(np.isfinite(centre_all[mask]), high_all[mask], np.nan)), floor)
        style = styles[label]
        (line,) = ax.plot(x, centre, drawstyle="steps-post", label=label, **style.line_kwargs())
        if rows_["n"].max() >= 3:
            ax.fill_between(x, low, high, step="post", color=style.colour, alpha=0.15, linewidth=0)
        else:  # one or two runs: their range, not a band
            for edge in (runs_low[mask], runs_high[mask]):
                ax.plot(x, np.maximum(_for_log(edge), floor), drawstyle="steps-post", color=style.colour,
                        linewidth=0.5, alpha=0.7)
        handles.setdefault(label, line)
    if positive.size:
        ax.set_yscale("log")
        _readable_log_ticks(ax)
    else:  # e.g. a simple regret with no target-fidelity evaluation in any run
        ax.text(0.5, 0.5, "no finite value", transform=ax.transAxes, ha="center", va="center", fontsize=7, color="0.4")
        ax.set_yticks([])
    ax.set_xlim(0, 1)
    ax.grid(True, which="major", axis="y")


def _band(sub, stat: str) -> tuple[np.ndarray, np.ndarray]:
    """The band's edges: the IQR, or the delta-method band ``mean * exp(+-se / mean)`` (module docstring)."""
    if stat == "median":
        return sub["q25"].to_numpy(dtype=float), sub["q75"].to_numpy(dtype=float)
    mean = sub["mean"].to_numpy(dtype=float)
    se = np.nan_to_num(sub["se"].to_numpy(dtype=float), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(mean > 0, np.exp(np.minimum(se / mean, 50.0)), 1.0)
    return mean / factor, mean * factor


def _two_runs(sub, stat: str) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper of two runs, recovered exactly from the summary: linear quantiles of
    ``a <= b`` give ``q25 = a + (b - a) / 4`` and ``q75 = a + 3 (b - a) / 4``; the mean and standard
    error give ``mean -+ se``. (For one run both are its value.)"""
    if stat == "median":
        q25, q75 = sub["q25"].to_numpy(dtype=float), sub["q75"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            return 1.5 * q25 - 0.5 * q75, 1.5 * q75 - 0.5 * q25
    mean, se = sub["mean"].to_numpy(dtype=float), np.nan_to_num(sub["se"].to_numpy(dtype=float), nan=0.0)
    return mean - se, mean + se


def _seeds(n) -> str:
    """``"5"`` or ``"3-5"``: the number of seeds behind the curves."""
    values = sorted({int(v) for v in n if v > 0})
    return "0" if not values else str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def plot_rank_vs_cost(ranks, styles: Mapping[str, LineStyle], *, n_blocks_label: str = "problems",
                      xlabel: str = XLABELS["budget"], seeds: Sequence[int] | None = None):
    """Average rank (1 = best) against the fraction of the budget; ``ranks`` from
    :func:`mfbo.analysis.stats.rank_curves`; ``seeds``: the number of seeds of each (problem,
    strategy), stated in the legend's title."""
    labels = order_labels(ranks["label"])
    width = SINGLE_COLUMN
    legend_rows = math.ceil(len(labels) / _legend_cols(len(labels), width))
    n_blocks = int(ranks["n_blocks"].max()) if len(ranks) else 0
    spread = ranks.groupby("frac")["rank"].agg(lambda r: r.max() - r.min())
    informative = spread.index[spread.to_numpy() > 1e-12]
    if len(informative):  # before any evaluation every strategy ties: start where they differ
        ranks = ranks[ranks["frac"] >= informative.min()]
    with paper_style():
        fig = new_figure(width, 2.0 + legend_rows * _LEGEND_HEIGHT)
        ax = fig.add_subplot()
        for label in labels:
            sub = ranks[ranks["label"] == label]
            ax.plot(sub["frac"], sub["rank"], drawstyle="steps-post", label=label, **styles[label].line_kwargs())
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])  # as the regret panels
        ax.set_ylim(0.8, len(labels) + 0.2)
        ax.set_yticks(range(1, len(labels) + 1))
        ax.grid(True, axis="y")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"average rank ({n_blocks} {n_blocks_label})")
        handles, names = ax.get_legend_handles_labels()
        _shared_legend(fig, handles, names, width, title=None if seeds is None else f"{_seeds(np.asarray(seeds))} seeds per problem")
    return fig


def plot_cd_diagram(average_ranks: Mapping[str, float], cliques: Sequence[tuple[int, int]], *,
                    cd: float | None = None, title: str | None = None):
    """A critical-difference diagram (see the module docstring).

    Args:
        average_ranks: label -> average rank (lower is better).
        cliques: index pairs ``(i, j)`` into the labels sorted by rank (from
            :func:`mfbo.analysis.stats.cd_cliques`): each is drawn as one bar.
        cd: the critical difference, drawn to scale above the axis (``None``: not drawn, e.g.
            for Wilcoxon-Holm cliques).
        title: drawn below the diagram (e.g. the Friedman p-value), if given.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    items = sorted(average_ranks.items(), key=lambda kv: kv[1])
    k = len(items)
    if k < 2:
        raise ValueError(f"plot_cd_diagram: needs at least 2 strategies, got {k}")
    n_left = math.ceil(k / 2)
    left, right = items[:n_left], items[n_left:][::-1]  # right side: the worst at the top
    step = 0.16  # inches between label rows
    top = 0.42 if cd is not None else 0.3  # inches above the axis (tick labels, CD bar)
    clique_h = 0.07 * len(cliques) + 0.08
    rows = max(len(left), len(right))
    height = top + clique_h + rows * step + 0.1 + (0.2 if title else 0.0)
    width = SINGLE_COLUMN
    texts = [f"{name} ({rank:.2f})" for name, rank in items]
    with paper_style():
        fig = new_figure(width, height)
        fig.set_layout_engine("none")
        FigureCanvasAgg(fig)
        renderer = fig.canvas.get_renderer()
        probe = [fig.text(0, 0, t) for t in texts]
        text_w = max(p.get_window_extent(renderer).width for p in probe) / fig.dpi
        for p in probe:
            p.remove()
        pad = 0.08
        axis_left, axis_right = text_w + 2 * pad, width - text_w - 2 * pad
        if axis_right - axis_left < 0.8:  # very long labels: keep a readable axis
            axis_left, axis_right = width * 0.3, width * 0.7
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, width)
        ax.set_ylim(-height + top, top)  # y in inches, 0 at the rank axis, up is positive

        def x_of(rank: float) -> float:
            return axis_left + (rank - 1) / max(k - 1, 1) * (axis_right - axis_left)

        ax.plot([axis_left, axis_right], [0, 0], color="black", linewidth=0.8)
        for r in range(1, k + 1):
            ax.plot([x_of(r), x_of(r)], [0, 0.05], color="black", linewidth=0.8)
            ax.text(x_of(r), 0.08, str(r), ha="center", va="bottom", fontsize=7)
            if r < k:
                ax.plot([x_of(r + 0.5)] * 2, [0, 0.03], color="black", linewidth=0.5)
        if cd is not None:
            y_cd = 0.33
            wider = 1 + cd > k  # no two strategies can differ: the bar spans the axis and says so
            x0, x1 = x_of(1), x_of(min(1 + cd, k))
            ax.plot([x0, x1], [y_cd, y_cd], color="black", linewidth=0.9)
            ax.plot([x0, x0], [y_cd - 0.03, y_cd + 0.03], color="black", linewidth=0.9)
            ax.plot([x1, x1], [y_cd - 0.03, y_cd + 0.03], color="black", linewidth=0.9)
            ax.text(x1 + 0.05, y_cd, f"CD = {cd:.2f}" + (" (> k - 1)" if wider else ""), ha="left", va="center", fontsize=7)
        first_row = -(clique_h + step * 0.6)
        for i, (name, rank) in enumerate(left):
            y = first_row - i * step
            ax.plot([x_of(rank), x_of(rank), axis_left - pad], [0, y, y], color="black", linewidth=0.6)
            ax.text(axis_left - pad - 0.03, y, f"{name} ({rank:.2f})", ha="right", va="center", fontsize=7)
        for i, (name, rank) in enumerate(right):
            y = first_row - i * step
            ax.plot([x_of(rank), x_of(rank), axis_right + pad], [0, y, y], color="black", linewidth=0.6)
            ax.text(axis_right + pad + 0.03, y, f"{name} ({rank:.2f})", ha="left", va="center", fontsize=7)
        ranks_sorted = [rank for _, rank in items]
        for n, (i, j) in enumerate(cliques):
            y = -0.1 - 0.07 * n
            ax.plot([x_of(ranks_sorted[i]) - 0.03, x_of(ranks_sorted[j]) + 0.03], [y, y], color="black",
                    linewidth=2.2, solid_capstyle="round")
        if title:
            ax.text(width / 2, -height + top + 0.06, title, ha="center", va="bottom", fontsize=7)
    return fig


def plot_fidelity_allocation(allocation, label_order: Sequence[str] | None = None):
    """Stacked bars of the budget share per fidelity category; ``allocation`` from
    :func:`mfbo.analysis.metrics.fidelity_allocation`."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    problems = list(dict.fromkeys(allocation["problem"]))
    labels = list(label_order) if label_order is not None else order_labels(allocation["label"])
    rows, cols, width = panel_grid(len(problems))
    cmap = colormaps[FIDELITY_CMAP]
    height_per_row = max(_PANEL_HEIGHT, 0.16 * len(labels) + 0.45)
    with paper_style():
        fig = new_figure(width, rows * height_per_row + 0.7)
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
        y = np.arange(len(labels))
        for ax, problem in zip(axes.flat, problems):
            sub = allocation[allocation["problem"] == problem].sort_values("order")
            left = np.zeros(len(labels))
            for order, cat in sub.groupby("order", sort=True):
                shares = np.array([cat.loc[cat["label"] == lab, "share"].sum() for lab in labels])
                colour = cmap(float(np.clip(cat["s_mid"].iloc[0], 0, 1)))
                ax.barh(y, shares, left=left, height=0.7, color=colour, edgecolor="white", linewidth=0.4)
                left += shares
            ax.set_title(problem, pad=2)
            ax.set_xlim(0, 1)
            ax.set_xticks([0, 0.5, 1])
            ax.set_xticklabels(["0", "0.5", "1"])
        for ax in list(axes.flat)[len(problems):]:
            ax.set_visible(False)
        for c in range(cols):
            r = max(r for r in range(rows) if r * cols + c < len(problems)) if c < len(problems) else 0
            axes[r, c].tick_params(labelbottom=True)
        axes[0, 0].set_yticks(y)
        axes[0, 0].set_yticklabels(labels)
        axes[0, 0].invert_yaxis()
        for ax in axes.flat:
            ax.tick_params(axis="y", length=0)
        fig.supxlabel("share of the budget", fontsize=7.5)
        bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=axes, orientation="horizontal",
                           location="top", shrink=0.45, aspect=40, pad=0.02)
        bar.set_label("normalised fidelity s of the spend (1 = target)")
        bar.set_ticks([0, 0.25, 0.5, 0.75, 1])
        bar.ax.tick_params(labelsize=7, length=2)
        bar.outline.set_linewidth(0.5)
    return fig


def plot_overhead(overhead, styles: Mapping[str, LineStyle]):
    """Median (IQR band) overhead per step against the number of observations, log-log;
    ``overhead`` from :func:`mfbo.analysis.metrics.overhead_by_observations`."""
    labels = order_labels(overhead["label"])
    width = SINGLE_COLUMN
    legend_rows = math.ceil(len(labels) / _legend_cols(len(labels), width))
    with paper_style():
        fig = new_figure(width, 2.1 + legend_rows * _LEGEND_HEIGHT)
        ax = fig.add_subplot()
        positive = overhead["q25"].to_numpy(dtype=float)
        floor = positive[positive > 0].min() / 2 if np.any(positive > 0) else 1e-9
        for label in labels:
            sub = overhead[overhead["label"] == label].sort_values("n_mid")
            style = styles[label]
            ax.plot(sub["n_mid"], np.maximum(sub["median"], floor), marker=style.marker, markersize=2.5,
                    label=label, **style.line_kwargs())
            ax.fill_between(sub["n_mid"], np.maximum(sub["q25"], floor), np.maximum(sub["q75"], floor),
                            color=style.colour, alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _readable_log_ticks(ax, "x", plain=True)
        _readable_log_ticks(ax, "y")
        ax.grid(True, which="major")
        ax.set_xlabel("observations")
        ax.set_ylabel("overhead per step (s, ask + tell)")
        handles, names = ax.get_legend_handles_labels()
        _shared_legend(fig, handles, names, width)
    return fig


def calibration_series(data: Mapping[str, Any]) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """``(title, cost_fraction, {series name: values})`` from a calibration JSON dict.

    Reads :meth:`mfbo.calibration.CalibrationReport.to_dict`'s layout (``metrics``: one dict per
    level with ``cost_fraction``, ``precision`` = ``{"10%": ...}`` and ``spearman``) and the
    flat layout ``{"levels": [{"cost_fraction", "precision@10%", ..., "spearman"}]}``.
    """
    if isinstance(data.get("metrics"), list):
        levels = [{"cost_fraction": m.get("cost_fraction"), "spearman": m.get("spearman"),
                   **{f"precision@{key}": v for key, v in (m.get("precision") or {}).items()}} for m in data["metrics"]]
    elif isinstance(data.get("levels"), list) and all(isinstance(m, dict) for m in data["levels"]):
        levels = data["levels"]
    else:
        raise ValueError("calibration data must have 'metrics' (CalibrationReport.to_dict) or 'levels' "
                         "(a list of dicts with cost_fraction, precision@..., spearman)")
    if not levels:
        raise ValueError("calibration data has no levels")
    x = np.array([np.nan if m.get("cost_fraction") is None else float(m["cost_fraction"]) for m in levels])
    keys = [key for key in levels[0] if key.startswith("precision@")]
    series = {key: np.array([np.nan if m.get(key) is None else float(m[key]) for m in levels]) for key in keys}
    series["Spearman $\\rho$"] = np.array([np.nan if m.get("spearman") is None else float(m["spearman"]) for m in levels])
    title = str(data.get("problem", ""))
    if data.get("n_configs"):
        title += f"  (N={data['n_configs']})"
    return title, x, series


def _chance_level(series_name: str) -> float | None:
    """``q`` for a ``precision@q`` series (``"precision@10%"`` -> 0.1), else None."""
    if not series_name.startswith("precision@"):
        return None
    text = series_name.split("@", 1)[1].strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return None


def _fidelity_axis(ax, x: np.ndarray, data: Mapping[str, Any]) -> bool:
    """A top axis with each level's fidelity value at its cost fraction (when the data has them);
    whether it was drawn."""
    metrics = data.get("metrics") if isinstance(data.get("metrics"), list) else data.get("levels") or []
    values = [m.get("fidelity") for m in metrics] if len(metrics) == len(x) else []
    keep = [(xi, v) for xi, v in zip(x, values) if v is not None and np.isfinite(xi) and xi > 0]
    if not keep:
        return False
    from matplotlib.ticker import NullLocator

    top = ax.secondary_xaxis("top")
    top.set_xticks([xi for xi, _ in keep], [f"{v:.3g}" if isinstance(v, (int, float)) else str(v) for _, v in keep])
    top.xaxis.set_minor_locator(NullLocator())
    top.tick_params(labelsize=6, length=2, pad=1)
    top.set_xlabel("fidelity", fontsize=6.5, labelpad=1)
    return True


def plot_calibration(data: Mapping[str, Any]):
    """Decision precision and Spearman's rho against the fraction of the target cost (log x)."""
    from matplotlib.ticker import FuncFormatter

    from .style import OKABE_ITO

    title, x, series = calibration_series(data)
    colours = [OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "orange", "reddish purple")]
    markers = ("o", "s", "^", "D", "v")
    linestyles = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
    with paper_style():
        fig = new_figure(SINGLE_COLUMN, 2.4)
        ax = fig.add_subplot()
        finite_values = [np.zeros(1)]
        for i, (name, y) in enumerate(series.items()):
            keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
            finite_values.append(y[keep])
            ax.plot(x[keep], y[keep], label=name, color=colours[i % 5], marker=markers[i % 5],
                    linestyle=linestyles[i % 5])
            chance = _chance_level(name)
            if chance is not None:  # a random ranking's expected precision
                ax.axhline(chance, color=colours[i % 5], linewidth=0.6, linestyle=(0, (1, 2)), zorder=0)
                ax.text(1.0, chance, f" chance {chance:g}", transform=ax.get_yaxis_transform(), ha="left",
                        va="center", fontsize=6, color=colours[i % 5])
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        marked = _fidelity_axis(ax, x, data)
        ax.set_xlabel("fraction of the target cost")
        ax.set_ylabel("agreement with the target")
        low = float(np.concatenate(finite_values).min())
        ax.set_ylim(min(-0.05, low - 0.05), 1.05)
        ax.axhline(0.0, color="0.6", linewidth=0.6, zorder=0)
        ax.grid(True, which="major")
        if title:
            ax.set_title(title, pad=20 if marked else 2)
        ax.legend(loc="lower right")
    return fig

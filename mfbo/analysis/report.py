"""Everything ``mfbo plot STUDY_DIR --out FIGDIR`` writes: :func:`write_report`.

Files (each figure as PDF and PNG, see :mod:`mfbo.analysis.plots`):

=============================  ====================================================================
``regret_vs_cost``             inference regret against the budget fraction, one panel per problem
``simple_regret_vs_cost``      the same for simple regret (best observed at the target)
``rank_vs_cost``               average rank against the budget fraction (ranked per problem on the
                               median over seeds, see :func:`mfbo.analysis.stats.rank_curves`)
``*_vs_wall_clock``            the three figures above against the simulated wall-clock time
                               (``load_study(axis="wall_clock")``), written when some run had
                               asynchronous workers and a cost budget
``critical_difference``        Nemenyi CD diagram of the final regret over problems (>= 3
                               strategies and >= 2 problems; else left out, with the reason in
                               ``statistics.md``)
``fidelity_allocation``        share of the budget per fidelity, per problem and strategy
``overhead``                   strategy overhead per step against the number of observations
``calibration__<name>``        one per calibration JSON file found under the study directory
``final_regret.md``/``.tex``   the results table of the final regret (:mod:`mfbo.analysis.tables`)
``log_regret_auc.md``/``.tex`` the same table for the log-regret AUC
``cost_to_target.md``/``.tex`` budget fraction to reach ``target`` regret (only when given)
``statistics.md``              Friedman / Iman-Davenport test, Nemenyi CD, average ranks, the
                               pairwise Wilcoxon-Holm tests, and what was left out
``ablation__<base>__<opt>``    one figure and Markdown table per option a study entry swept
                               (``sweep``): final regret and cost to ``target`` (else to the
                               upper quartile of the final regrets) against the value
                               (:mod:`.ablation`)
=============================  ====================================================================

The regret is the inference regret by default (``metric``); problems without an exact optimum
use the normalised regret (:func:`mfbo.analysis.metrics.resolve_metric`). Calibration files are
the ``*.json`` files under the study directory whose name contains ``calibration`` (as
``mfbo calibrate --out`` names them).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from .ablation import write_ablations
from .load import load_study
from .metrics import (METRICS, fidelity_allocation, metric_curves, overhead_by_observations, run_summaries)
from .plots import (XLABELS, plot_calibration, plot_cd_diagram, plot_fidelity_allocation, plot_metric_vs_cost, plot_overhead,
                    plot_rank_vs_cost)
from .stats import (cd_cliques, friedman, nemenyi_cd, pairwise_wilcoxon_holm, rank_curves, score_matrix,
                    summarise_curves)
from .style import order_labels, save_figure, strategy_styles
from .tables import results_table

__all__ = ["write_report", "find_calibration_files"]


def find_calibration_files(study_dir: str | os.PathLike) -> list[Path]:
    """The calibration JSON files under ``study_dir`` (``*calibration*.json``, recursively)."""
    root = Path(study_dir)
    return sorted(p for p in root.rglob("*.json") if "calibration" in p.name) if root.is_dir() else []


def write_report(study_dir: str | os.PathLike, out: str | os.PathLike, *, metric: str = "regret", stat: str = "median",
                 alpha: float = 0.05, blocks: str = "problem", grid_points: int = 101, target: float | None = None,
                 complete_only: bool = True) -> list[Path]:
    """Write the figures and tables of the study in ``study_dir`` into ``out``.

    Args:
        study_dir: the study's results directory (run logs, searched recursively).
        out: the output directory (created).
        metric: ``"regret"`` (inference) or ``"norm_regret"`` for the tables, ranks and CD diagram.
        stat: ``"median"`` (IQR) or ``"mean"`` (standard error) in figures and tables.
        alpha: significance level of the post-hoc tests and table marks.
        blocks: the blocks of the Friedman test (``"problem"`` or ``"problem-seed"``).
        grid_points: points of the budget-fraction grid of the curves.
        target: if given, also tabulate the budget fraction needed to reach this regret.
        complete_only: leave out unfinished runs (see :func:`mfbo.analysis.load_study`).

    Returns:
        The paths written, in the order above.
    """
    if metric not in ("regret", "norm_regret"):
        raise ValueError(f"metric must be 'regret' or 'norm_regret', got {metric!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    from .metrics import budget_grid

    df = load_study(study_dir, complete_only=complete_only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    styles = strategy_styles(df["label"])
    notes: list[str] = []
    if df.attrs.get("incomplete"):
        notes.append(f"{len(df.attrs['incomplete'])} incomplete run(s) {'left out' if complete_only else 'included'}.")
    written = _curve_figures(study_dir, df, out, metric, stat, styles, budget_grid(grid_points), complete_only, notes)
    summaries = run_summaries(df, metric, target=target)
    scores = score_matrix(summaries, blocks=blocks, stat=stat)
    if scores.attrs.get("dropped"):
        notes.append(f"Friedman test leaves out blocks where some strategy has no run: {', '.join(scores.attrs['dropped'])}.")
    stats_lines = ["# Statistics of the final regret", "",
                   f"Study: `{study_dir}`; {df['run'].nunique()} runs, {df['problem'].nunique()} problems, "
                   f"{df['label'].nunique()} strategies. Score per block: the {stat} over seeds of the final "
                   f"{METRICS[metric]} (normalised on problems without an exact optimum); blocks: {blocks}.", ""]
    written += _rank_statistics(scores, alpha, out, stats_lines, notes)
    written += _allocation_overhead_calibration(study_dir, df, out, styles, notes)
    written += _result_tables(summaries, out, metric, stat, alpha, target)
    written += write_ablations(df, out, metric=metric, target=target)
    stats_path = out / "statistics.md"
    stats_path.write_text("\n".join(stats_lines + (["## Notes", ""] + [f"- {n}" for n in notes] if notes else [])) + "\n")
    written.append(stats_path)
    return written


def _curve_figures(study_dir, df, out: Path, metric: str, stat: str, styles, grid, complete_only: bool, notes: list[str]) -> list[Path]:
    """Regret, simple regret and rank curves against the budget, and, when some run had
    asynchronous workers (whose simulated clock differs from the spent cost), against the
    simulated wall-clock time as well."""
    written: list[Path] = []
    axes = [("budget", df, "cost")]
    if (df["workers"] > 1).any() and (df["budget_axis"] == "cum_cost").any():
        try:
            axes.append(("wall_clock", load_study(study_dir, complete_only=complete_only, axis="wall_clock"), "wall_clock"))
        except ValueError as err:  # logs written before trials carried simulated times
            notes.append(f"No figures against the simulated wall clock: {err}.")
    for axis, frame, suffix in axes:
        axis_curves = {}
        for name, file in ((metric, "regret"), ("simple_regret" if metric == "regret" else "norm_simple_regret", "simple_regret")):
            axis_curves[name] = metric_curves(frame, name, grid)
            summary = summarise_curves(axis_curves[name])
            fig = plot_metric_vs_cost(summary, styles, stat=stat, ylabel=METRICS[summary["metric"].value_counts().index[0]],
                                      labels_by_metric={"norm_regret": "normalised", "norm_simple_regret": "normalised"},
                                      xlabel=XLABELS[axis])
            written += save_figure(fig, out / f"{file}_vs_{suffix}")
        ranks = rank_curves(axis_curves[metric], by="problem")
        if ranks.attrs.get("dropped") and axis == "budget":
            notes.append(f"Rank curves leave out blocks where some strategy has no run: {', '.join(ranks.attrs['dropped'])}.")
        if len(ranks):
            seeds = axis_curves[metric].groupby(["problem", "label"])["seed"].nunique()
            written += save_figure(plot_rank_vs_cost(ranks, styles, xlabel=XLABELS[axis], seeds=seeds.to_numpy()),
                                   out / f"rank_vs_{suffix}")
    return written


def _rank_statistics(scores, alpha: float, out: Path, stats_lines: list[str], notes: list[str]) -> list[Path]:
    """Friedman's test, Nemenyi's critical difference (the CD diagram) and Holm-corrected pairwise
    Wilcoxon tests on the block scores, appended to ``stats_lines``; a note when there are too
    few strategies or blocks."""
    k, n_blocks = scores.shape[1], scores.shape[0]
    if k < 3 or n_blocks < 2:
        notes.append(f"No Friedman test or CD diagram: it needs >= 3 strategies and >= 2 complete blocks, "
                     f"the study has {k} strategies and {n_blocks} blocks.")
        return []
    result = friedman(scores)
    cd = nemenyi_cd(k, n_blocks, alpha)
    order = sorted(result.average_ranks, key=result.average_ranks.get)
    cliques = cd_cliques(len(order), lambda i, j: abs(result.average_ranks[order[i]] - result.average_ranks[order[j]]) < cd)
    title = f"Friedman p = {result.p_value:.2g} (N = {n_blocks}, Nemenyi at {alpha:g})"
    written = save_figure(plot_cd_diagram(result.average_ranks, cliques, cd=cd, title=title), out / "critical_difference")
    pairs = pairwise_wilcoxon_holm(scores, alpha)
    stats_lines += [
        f"Friedman chi2 = {result.chi2:.3f}, p = {result.p_value:.3g}; Iman-Davenport F = {result.iman_davenport:.3f}, "
        f"p = {result.iman_davenport_p:.3g} (k = {k} strategies, N = {n_blocks} blocks).", "",
        f"Nemenyi critical difference at alpha = {alpha:g}: CD = {cd:.3f}. Groups not significantly different: "
        + ("; ".join("{" + ", ".join(order[i:j + 1]) + "}" for i, j in cliques) or "none") + ".", "",
        "| strategy | average rank |", "|---|---:|",
        *(f"| {lab} | {result.average_ranks[lab]:.3f} |" for lab in order), "",
        f"Pairwise two-sided Wilcoxon signed-rank tests over the blocks, Holm-corrected (alpha = {alpha:g}):", "",
        "| a | b | statistic | p | p (Holm) | significant |", "|---|---|---:|---:|---:|---|",
        *(f"| {r.a} | {r.b} | {r.statistic:g} | {r.p_value:.3g} | {r.p_holm:.3g} | {'yes' if r.significant else 'no'} |"
          for r in pairs.itertuples()), "",
    ]
    return written


def _allocation_overhead_calibration(study_dir, df, out: Path, styles, notes: list[str]) -> list[Path]:
    """The budget share per fidelity, the overhead per observation count, and a figure per
    ``mfbo calibrate`` file found under ``study_dir`` (one that cannot be plotted is noted)."""
    written: list[Path] = []
    allocation = fidelity_allocation(df)
    if len(allocation):
        written += save_figure(plot_fidelity_allocation(allocation, order_labels(df["label"])), out / "fidelity_allocation")
    overhead = overhead_by_observations(df)
    if len(overhead):
        written += save_figure(plot_overhead(overhead, styles), out / "overhead")
    for path in find_calibration_files(study_dir):
        try:
            data = json.loads(path.read_text())
            fig = plot_calibration(data)
        except (ValueError, KeyError, TypeError) as err:
            warnings.warn(f"{path}: not a calibration file mfbo can plot ({err}); skipped", RuntimeWarning, stacklevel=3)
            notes.append(f"Skipped `{path}`: {err}.")
            continue
        written += save_figure(fig, out / f"calibration__{path.stem}")
    return written


def _result_tables(summaries, out: Path, metric: str, stat: str, alpha: float, target: float | None) -> list[Path]:
    """The final-regret and log-regret-AUC tables (and the budget to reach ``target``), as
    Markdown and LaTeX."""
    written: list[Path] = []
    tables = [("final_regret", "final", f"final {METRICS[metric]}"),
              ("log_regret_auc", "auc", f"log10 {METRICS[metric]} AUC over the budget fraction")]
    if target is not None:
        tables.append(("cost_to_target", "cost_to_target", f"budget fraction to reach {METRICS[metric]} <= {target:g}"))
    for file, column, quantity in tables:
        table = results_table(summaries, value=column, stat=stat, alpha=alpha, quantity=quantity,
                              inf_text="not reached" if column == "cost_to_target" else "inf")
        md, tex = out / f"{file}.md", out / f"{file}.tex"
        md.write_text(table.to_markdown())
        tex.write_text(table.to_latex(label=f"tab:{file.replace('_', '-')}"))
        written += [md, tex]
    return written

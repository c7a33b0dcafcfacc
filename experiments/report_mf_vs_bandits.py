"""The report of the ``mf_vs_bandits`` study (issues #14-#16): every strategy's median normalised
regret at 25, 50 and 100 % of the budget, its average rank, and Friedman's test with Nemenyi's
critical difference.

The study (``experiments/mf_vs_bandits.toml`` and its reduced parts) runs most strategies on all
of its problems, and some only on the problems they need (an entry's ``problems``: BOIL and the
learning-curve extrapolation on those that report learning curves), and not every strategy on
the same seeds (the GP strategies on fewer, for time). The report therefore has two tables:

1. **Strategies that ran on every problem.** Median normalised regret (``mfbo.analysis.metrics``:
   0 at the best value known, about 1 at a typical first recommendation) over all their
   (problem, seed) runs; the average rank over problems (each ranked on its median over the
   strategy's seeds) and over (problem, seed) blocks (only the blocks where every one of them
   ran, i.e. the seeds they share); Friedman's test and Nemenyi's critical difference (alpha
   0.05) on those blocks at 100 %; the strategy's own seconds (ask + tell + recommend) per trial.
2. **Strategies that ran on some problems only**, each on its own problems: the same medians,
   and its rank among *all* strategies of table 1 plus itself on those problems and blocks.

Incomplete runs (no footer: stopped or still running) are left out (``load_study``).

    python experiments/report_mf_vs_bandits.py results/mf_vs_bandits
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from mfbo.analysis import stats

FRACTIONS = (0.25, 0.5, 1.0)


def load(results: Path):
    """The trial records of the study's complete runs (``mfbo.analysis.load_study``)."""
    from mfbo.analysis import load_study

    return load_study(results)


def regret_curves(trials):
    """Every run's normalised regret at :data:`FRACTIONS` of the budget
    (``problem, label, seed, run, frac, value, metric``); ``trials`` from :func:`load`.

    The inference regret (of the recommendation), except on the problems where no run has a
    recommendation's value (real training, such as digits-svm, whose recommendations the loop
    does not train again): there the simple regret (of the best value observed at the target),
    the only one defined, as the ``metric`` column says."""
    import pandas as pd

    from mfbo.analysis.metrics import metric_curves

    unevaluated = trials.groupby("problem")["rec_value"].apply(lambda v: v.isna().all())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        parts = [metric_curves(trials[trials["problem"].map(unevaluated) == simple], metric, grid=FRACTIONS)
                 for simple, metric in ((False, "norm_regret"), (True, "norm_simple_regret")) if (unevaluated == simple).any()]
    return pd.concat(parts, ignore_index=True)


def seconds_per_trial(trials) -> dict[str, float]:
    """Per label, the strategy's seconds (ask + tell + recommend, the log's ``overhead`` and
    ``recommend_time``) per trial, over all its runs: total seconds / total trials."""
    spent = trials["overhead"].fillna(0.0) + trials["recommend_time"].fillna(0.0)
    return (spent.groupby(trials["label"]).sum() / trials.groupby("label").size()).to_dict()


def split_by_coverage(curves) -> tuple[list[str], list[str]]:
    """(labels that ran on every problem of ``curves``, labels that ran on some only), each in
    the order of first appearance."""
    labels = list(dict.fromkeys(curves["label"]))
    problems = set(curves["problem"])
    covered = curves.groupby("label")["problem"].agg(set)
    full = [label for label in labels if covered[label] == problems]
    return full, [label for label in labels if label not in full]


def rank_rows(curves, labels: list[str]) -> dict[str, list[str]]:
    """Per label of ``labels``: its median regret at each fraction and its average rank
    (over problems / over complete (problem, seed) blocks), as table cells."""
    curves = curves[curves["label"].isin(labels)]
    by_problem, by_block = (stats.rank_curves(curves, by=by) for by in ("problem", "seed"))
    rows = {}
    for label in labels:
        mine = curves[curves["label"] == label]
        medians = [float(np.median(mine.loc[mine["frac"] == f, "value"])) for f in FRACTIONS]
        ranks = [[_rank(r, label, f) for r in (by_problem, by_block)] for f in FRACTIONS]
        rows[label] = [f"{m:.3g}" for m in medians] + [f"{a:.2f} / {b:.2f}" for a, b in ranks]
    return rows


def _rank(ranks, label: str, fraction: float) -> float:
    cell = ranks.loc[(ranks["label"] == label) & (ranks["frac"] == fraction), "rank"]
    return float(cell.iloc[0]) if len(cell) else float("nan")


def seeds_per_label(curves) -> dict[str, str]:
    """Per label, the seeds it ran on, e.g. ``"0-4"`` or ``"0, 1"``."""
    seeds = curves.groupby("label")["seed"].agg(lambda s: sorted({int(v) for v in s}))
    return {label: (f"{s[0]}-{s[-1]}" if s == list(range(s[0], s[-1] + 1)) and len(s) > 2 else ", ".join(map(str, s)))
            for label, s in seeds.items()}


def header(columns: list[str]) -> str:
    return "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)


SECONDS_COLUMN = "strategy s per trial"
REGRET_COLUMNS = [f"median norm. regret at {f:.0%}" for f in FRACTIONS] + [f"rank at {f:.0%} (problems / blocks)" for f in FRACTIONS]


def friedman_line(curves, labels: list[str]) -> str:
    """Friedman's test over the complete (problem, seed) blocks of ``labels`` at 100 %."""
    final = curves[(curves["frac"] == 1.0) & curves["label"].isin(labels)].rename(columns={"value": "final"})
    blocks = stats.score_matrix(final, blocks="problem-seed").reindex(columns=labels).dropna()
    if len(labels) < 3 or len(blocks) < 2:
        return "(too few strategies or blocks for the Friedman test)"
    fr = stats.friedman(blocks)
    return (f"At 100 %: Friedman chi2 = {fr.chi2:.2f}, p = {fr.p_value:.3g} (Iman-Davenport p = {fr.iman_davenport_p:.3g}) over "
            f"{fr.n_blocks} (problem, seed) blocks; Nemenyi CD (alpha 0.05) = {stats.nemenyi_cd(len(labels), len(blocks)):.2f}")


def report(results: Path) -> str:
    """The two tables of the module docstring, as Markdown."""
    trials = load(results)
    curves, seconds = regret_curves(trials), seconds_per_trial(trials)
    full, partial = split_by_coverage(curves)
    seeds = seeds_per_label(curves)
    problems = list(dict.fromkeys(curves["problem"]))
    simple = sorted(set(curves.loc[curves["metric"] == "norm_simple_regret", "problem"]))
    out = [f"{len(full) + len(partial)} strategies, {len(problems)} problems ({results})\n"]
    if simple:
        out.append(f"Regret of the recommendation, normalised; on {', '.join(simple)}, where no recommendation was evaluated, "
                   "of the best value observed at the target (simple regret).\n")
    out += [f"Strategies that ran on all {len(problems)} problems ({', '.join(problems)}):\n",
            header(["strategy", "seeds"] + REGRET_COLUMNS + [SECONDS_COLUMN])]
    out += [f"| {label} | {seeds[label]} | " + " | ".join(cells) + f" | {seconds[label]:.3g} |" for label, cells in rank_rows(curves, full).items()]
    out.append("\n" + friedman_line(curves, full))
    if partial:
        out += ["\nStrategies that ran on some problems only, each ranked among the strategies above plus "
                f"itself on its own problems (of {len(full) + 1}):\n", header(["strategy", "seeds", "problems"] + REGRET_COLUMNS + [SECONDS_COLUMN])]
        for label in partial:
            mine = sorted(set(curves.loc[curves["label"] == label, "problem"]), key=problems.index)
            cells = rank_rows(curves[curves["problem"].isin(mine)], full + [label])[label]
            out.append(f"| {label} | {seeds[label]} | {', '.join(mine)} | " + " | ".join(cells) + f" | {seconds[label]:.3g} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="the study's output directory (results/mf_vs_bandits)")
    print(report(parser.parse_args(argv).results))


if __name__ == "__main__":
    main()

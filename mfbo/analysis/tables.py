"""The results table of a study, in Markdown and LaTeX: :func:`results_table`.

One row per problem, one column per strategy label; each cell the median ``[q25, q75]`` (or the
mean ``± s.e.``) over seeds of a per-run value, e.g. the final inference regret
(:func:`mfbo.analysis.metrics.final_values`). In each row the best cell (the lowest median or
mean; every one of them if tied) is in **bold**, and a dagger (†) marks the strategies that are
significantly worse than the best by a one-sided Wilcoxon rank-sum test, Holm-corrected over the
row's ``k - 1`` comparisons (:func:`mfbo.analysis.stats.compare_to_best`); when the numbers of
seeds make every such test unable to reach ``alpha`` (``(k - 1) / C(n_a + n_b, n_a) > alpha``),
the caption says so. A last row gives each
label's average rank over the problems (ranked on the cell's median or mean; lowest in bold).

Numbers have ``digits`` significant digits (a cell of one seed shows the value alone); ``+inf`` (nothing found: no recommendation, or a
target never reached) is written ``inf`` (``$\\infty$`` in LaTeX), a missing cell ``–``. A cell
whose centre is infinite reads ``inf_text (k/n)`` (``"not reached (0/5)"`` in the cost-to-target
table): ``k`` of its ``n`` runs have a finite value; a cell with some infinite values adds
``(k/n)`` too. An infinite centre is never bold: a row where no cell is finite has no best and
does not enter the average ranks.
Problems whose regret had to be normalised (no exact optimum) carry "(norm.)".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .stats import compare_to_best, rank_lower_better, summarise
from .style import order_labels

__all__ = ["ResultsTable", "results_table"]

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _LATEX_SPECIAL[m.group()], str(text))


def _number(x: float, digits: int, latex: bool) -> str:
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return ("$\\infty$" if latex else "inf") if x > 0 else ("$-\\infty$" if latex else "-inf")
    text = f"{x:.{digits}g}"
    if latex and "e" in text:
        mantissa, exponent = text.split("e")
        return f"${mantissa}\\times 10^{{{int(exponent)}}}$"
    return text


@dataclass
class ResultsTable:
    """A formatted results table; :meth:`to_markdown` and :meth:`to_latex` render it.

    ``cells[problem][label]`` holds the summary dict (:func:`mfbo.analysis.stats.summarise`),
    ``best``/``worse`` the bold and dagger sets of ``(problem, label)`` pairs, ``ranks`` each
    label's average rank.
    """

    problems: list[str]
    labels: list[str]
    cells: dict[str, dict[str, dict[str, float]]]
    best: set[tuple[str, str]]
    worse: set[tuple[str, str]]
    ranks: dict[str, float]
    stat: str
    quantity: str
    alpha: float
    digits: int = 3
    normalised: set[str] = field(default_factory=set)
    attainable: bool = True
    inf_text: str = "inf"

    def _cell(self, problem: str, label: str, latex: bool) -> str:
        s = self.cells.get(problem, {}).get(label)
        if s is None or s["n"] == 0:
            return "–"
        reached = f" ({s.get('n_finite', s['n'])}/{s['n']})" if s.get("n_finite", s["n"]) < s["n"] else ""
        if math.isinf(s[self.stat]) and s[self.stat] > 0:
            return f"{self.inf_text}{reached}"
        if self.stat == "median":
            text = _number(s["median"], self.digits, latex)
            if s["n"] > 1:
                text += f" [{_number(s['q25'], self.digits, latex)}, {_number(s['q75'], self.digits, latex)}]"
        else:
            text = _number(s["mean"], self.digits, latex)
            if s["n"] > 1:
                text += (" $\\pm$ " if latex else " ± ") + _number(s["se"], 2, latex)
        if (problem, label) in self.best:
            text = f"\\textbf{{\\boldmath {text}}}" if latex else f"**{text}**"
        if (problem, label) in self.worse:
            text += "$^\\dagger$" if latex else " †"
        return text + reached

    def _problem(self, problem: str, latex: bool) -> str:
        name = latex_escape(problem) if latex else problem.replace("|", "\\|")
        return name + (" (norm.)" if problem in self.normalised else "")

    def _rank_cells(self, latex: bool) -> list[str]:
        if not self.ranks:
            return ["–"] * len(self.labels)
        lowest = min(self.ranks.values())
        out = []
        for label in self.labels:
            r = self.ranks.get(label, math.nan)
            text = "–" if math.isnan(r) else f"{r:.2f}"
            if r == lowest:
                text = f"\\textbf{{{text}}}" if latex else f"**{text}**"
            out.append(text)
        return out

    def caption(self) -> str:
        """One sentence that says what the cells are (plain text; Markdown and LaTeX add marks)."""
        ns = sorted({s["n"] for row in self.cells.values() for s in row.values() if s["n"]})
        n = "n/a" if not ns else (f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}")
        centre = "Median [IQR]" if self.stat == "median" else "Mean ± standard error"
        text = (f"{centre} over seeds (n = {n} per cell) of the {self.quantity}. Bold: best per problem; "
                f"†: significantly worse than the best (one-sided Wilcoxon rank-sum test, Holm-corrected over the "
                f"other strategies of the problem, alpha = {self.alpha:g}). Last row: average rank over problems.")
        if not self.attainable:
            text += (" With these numbers of seeds no comparison can be significant: the smallest attainable "
                     "Holm-adjusted p-value exceeds alpha.")
        if self.normalised:
            text += " (norm.): normalised regret (the problem has no exact optimum)."
        if any(s.get("n_finite", s["n"]) < s["n"] for row in self.cells.values() for s in row.values()):
            text += f" (k/n): k of the cell's n runs have a finite value ({self.inf_text}: the centre is infinite)."
        return text

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table followed by its caption."""
        header = "| problem | " + " | ".join(label.replace("|", "\\|") for label in self.labels) + " |"
        lines = [header, "|---|" + "---:|" * len(self.labels)]
        for problem in self.problems:
            lines.append(f"| {self._problem(problem, False)} | " + " | ".join(self._cell(problem, lab, False) for lab in self.labels) + " |")
        lines.append("| *average rank* | " + " | ".join(self._rank_cells(False)) + " |")
        return "\n".join(lines) + "\n\n" + self.caption() + "\n"

    def to_latex(self, label: str = "tab:results") -> str:
        """A ``table*`` with a ``booktabs`` tabular scaled to the text width (needs the
        ``booktabs`` and ``graphicx`` packages)."""
        caption = latex_escape(self.caption()).replace("±", "$\\pm$").replace("†", "$^\\dagger$")
        lines = [
            "% generated by mfbo.analysis.tables; needs \\usepackage{booktabs} and \\usepackage{graphicx}",
            "\\begin{table*}[t]",
            "\\centering",
            f"\\caption{{{caption}}}",
            f"\\label{{{label}}}",
            "\\resizebox{\\textwidth}{!}{%",
            "\\begin{tabular}{l" + "r" * len(self.labels) + "}",
            "\\toprule",
            "problem & " + " & ".join(latex_escape(lab) for lab in self.labels) + " \\\\",
            "\\midrule",
        ]
        for problem in self.problems:
            lines.append(f"{self._problem(problem, True)} & " + " & ".join(self._cell(problem, lab, True) for lab in self.labels) + " \\\\")
        lines += ["\\midrule", "average rank & " + " & ".join(self._rank_cells(True)) + " \\\\",
                  "\\bottomrule", "\\end{tabular}}", "\\end{table*}"]
        return "\n".join(lines) + "\n"


def results_table(values, *, value: str = "final", stat: str = "median", alpha: float = 0.05,
                  quantity: str = "final inference regret", digits: int = 3, inf_text: str = "inf") -> ResultsTable:
    """Build the results table from per-run values.

    Args:
        values: a frame with ``problem, label`` and the ``value`` column, one row per run (e.g.
            :func:`mfbo.analysis.metrics.final_values`); an optional ``metric`` column whose name
            starts with ``norm_`` marks a problem as normalised.
        value: the column to tabulate (lower is better).
        stat: ``"median"`` (cells median [IQR]) or ``"mean"`` (cells mean ± s.e.).
        alpha: the level of the dagger marks.
        quantity: what the values are, for the caption.
        digits: significant digits of the centre.
        inf_text: what a cell with an infinite centre says (e.g. ``"not reached"``).
    """
    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean', got {stat!r}")
    if value not in values.columns:
        raise ValueError(f"results_table: no column {value!r}; columns are {list(values.columns)}")
    labels = order_labels(values["label"])
    problems = list(dict.fromkeys(values["problem"]))
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    best: set[tuple[str, str]] = set()
    worse: set[tuple[str, str]] = set()
    rank_rows = []
    normalised = set()
    attainable = False
    for problem in problems:
        sub = values[values["problem"] == problem]
        if "metric" in sub and str(sub["metric"].iloc[0]).startswith("norm_"):
            normalised.add(problem)
        samples = {lab: sub.loc[sub["label"] == lab, value].to_numpy(dtype=float) for lab in labels if (sub["label"] == lab).any()}
        cells[problem] = {lab: {**summarise(v), "n_finite": int(np.isfinite(v).sum())} for lab, v in samples.items()}
        if not any(cell["n"] for cell in cells[problem].values()):
            continue  # nothing defined on this problem (no optimum, nothing observed): a row of dashes
        comparison = compare_to_best(samples, alpha=alpha, stat=stat)
        centre = dict(zip(comparison["label"], comparison["center"]))
        best_value = min(c for c in centre.values() if not math.isnan(c))
        best |= {(problem, lab) for lab, c in centre.items() if c == best_value and math.isfinite(c)}
        worse |= {(problem, lab) for lab, w in zip(comparison["label"], comparison["worse"]) if w}
        if len(samples) == len(labels) and math.isfinite(best_value):  # a row of all-inf centres ranks nobody
            rank_rows.append(rank_lower_better([centre[lab] for lab in labels]))
        best_label = comparison.loc[comparison["best"], "label"].iloc[0]
        n_best = int(np.sum(~np.isnan(samples[best_label])))
        for lab, v in samples.items():
            n_other = int(np.sum(~np.isnan(v)))
            if lab != best_label and n_best and n_other:
                # the smallest one-sided rank-sum p-value, times Holm's largest factor
                attainable = attainable or (len(samples) - 1) / math.comb(n_best + n_other, n_best) <= alpha
    ranks = dict(zip(labels, np.mean(rank_rows, axis=0))) if rank_rows else {}
    return ResultsTable(problems=problems, labels=labels, cells=cells, best=best, worse=worse, ranks=ranks,
                        stat=stat, quantity=quantity, alpha=alpha, digits=digits, normalised=normalised,
                        attainable=attainable, inf_text=inf_text)

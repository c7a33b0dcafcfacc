"""Results tables in Markdown and LaTeX: centre and spread, bold best, dagger marks, ranks."""

import pandas as pd
import pytest

from mfbo.analysis import results_table
from mfbo.analysis.tables import latex_escape


def frame(cells):
    """{problem: {label: [values over seeds]}} -> a per-run frame with a ``final`` column."""
    return pd.DataFrame([{"problem": p, "label": lab, "seed": i, "final": v}
                         for p, row in cells.items() for lab, values in row.items() for i, v in enumerate(values)])


FIVE_SEEDS = {
    "p1": {"good_one": [0.1, 0.2, 0.3, 0.4, 0.5], "bad": [1.0, 2.0, 3.0, 4.0, 5.0], "close": [0.15, 0.25, 0.35, 0.45, 0.55]},
    "p2": {"good_one": [3.0, 3.0, 3.0, 3.0, 3.0], "bad": [1.0, 1.0, 1.0, 1.0, 1.0], "close": [2.0, 2.0, 2.0, 2.0, 2.0]},
}


def test_markdown_bold_best_and_daggers():
    table = results_table(frame(FIVE_SEEDS))
    md = table.to_markdown()
    lines = md.splitlines()
    assert lines[0] == "| problem | bad | close | good_one |"
    assert "| p1 | 3 [2, 4] † | 0.35 [0.25, 0.45] | **0.3 [0.2, 0.4]** |" in lines
    assert "| p2 | **1 [1, 1]** | 2 [2, 2] † | 3 [3, 3] † |" in lines
    # average ranks: bad (3 + 1) / 2, close (2 + 2) / 2, good_one (1 + 3) / 2: all tied, all bold
    assert "| *average rank* | **2.00** | **2.00** | **2.00** |" in lines
    assert "Median [IQR] over seeds (n = 5 per cell)" in md and "no comparison can be significant" not in md


def test_latex_bold_daggers_and_escaping():
    cells = {"yahpo_lcbench/3945": {"mf_kg": [0.1, 0.2, 0.3, 0.4, 0.5], "random": [1.0, 2.0, 3.0, 4.0, 5.0]}}
    tex = results_table(frame(cells), stat="mean").to_latex(label="tab:x")
    assert "\\begin{tabular}{lrr}" in tex and "\\label{tab:x}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert "problem & random & mf\\_kg \\\\" in tex
    row = next(line for line in tex.splitlines() if line.startswith("yahpo\\_lcbench/3945"))
    assert "\\textbf{\\boldmath 0.3 $\\pm$ 0.071}" in row and "3 $\\pm$ 0.71$^\\dagger$" in row
    assert latex_escape("a_b & 50% #1 {x} ~ ^") == "a\\_b \\& 50\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{}"


def test_latex_dagger_and_small_numbers():
    cells = {"p": {"a": [1e-6, 2e-6, 3e-6, 4e-6, 5e-6], "b": [1.0, 2.0, 3.0, 4.0, 5.0]}}
    tex = results_table(frame(cells)).to_latex()
    row = next(line for line in tex.splitlines() if line.startswith("p &"))
    assert "\\textbf{\\boldmath $3\\times 10^{-6}$ [$2\\times 10^{-6}$, $4\\times 10^{-6}$]}" in row
    assert row.rstrip(" \\").endswith("3 [2, 4]$^\\dagger$")


def test_few_seeds_say_that_no_mark_is_possible_and_single_seed_cells():
    md = results_table(frame({"p": {"a": [0.1, 0.2], "b": [5.0, 6.0]}})).to_markdown()
    assert "†" not in md.split("\n\n")[0]
    assert "no comparison can be significant" in md
    one = results_table(frame({"p": {"a": [0.1], "b": [float("inf")]}})).to_markdown()
    assert "| p | **0.1** | inf (0/1) |" in one  # no finite value among its 1 run


def test_normalised_problems_are_marked_and_bad_arguments_named():
    values = frame({"p": {"a": [0.1, 0.2], "b": [0.3, 0.4]}})
    values["metric"] = "norm_regret"
    assert "| p (norm.) |" in results_table(values).to_markdown()
    with pytest.raises(ValueError, match="stat must be"):
        results_table(values, stat="mode")
    with pytest.raises(ValueError, match="no column 'auc'"):
        results_table(values, value="auc")

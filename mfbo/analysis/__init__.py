"""Analysis of study results: tidy run data, metrics, statistics, figures and tables.

Needs the ``analysis`` extra (pandas): ``pip install 'mfbo[analysis]'``. ``import mfbo`` does
not import this package.

- :mod:`~mfbo.analysis.load`: :func:`load_study`, one row per trial with run-level columns
  (strategy label, optimum, normalised fidelity, budget axis).
- :mod:`~mfbo.analysis.metrics`: inference / simple / normalised regret, step interpolation on
  a common budget grid, cost to reach a target, log-regret AUC, fidelity allocation, overhead.
- :mod:`~mfbo.analysis.stats`: mean ± s.e. and median with IQR over seeds, ranks, the Friedman
  test, the Nemenyi critical difference and Wilcoxon-Holm post-hoc tests.
- :mod:`~mfbo.analysis.style`, :mod:`~mfbo.analysis.plots`, :mod:`~mfbo.analysis.tables`: the
  paper style, the figures, the Markdown/LaTeX results table.
- :mod:`~mfbo.analysis.report`: :func:`write_report`, everything ``mfbo plot`` writes.
"""

from .load import load_study
from .metrics import (
    METRICS,
    cost_to_target,
    fidelity_allocation,
    final_values,
    log_auc,
    metric_curves,
    overhead_by_observations,
    run_summaries,
    step_values,
)
from .report import write_report
from .stats import (
    compare_to_best,
    friedman,
    holm,
    nemenyi_cd,
    pairwise_wilcoxon_holm,
    rank_curves,
    score_matrix,
    summarise,
    summarise_curves,
)
from .tables import results_table

__all__ = [
    "load_study", "METRICS", "step_values", "metric_curves", "cost_to_target", "log_auc", "run_summaries",
    "final_values", "fidelity_allocation", "overhead_by_observations", "summarise", "summarise_curves",
    "rank_curves", "score_matrix", "friedman", "nemenyi_cd", "holm", "pairwise_wilcoxon_holm", "compare_to_best",
    "results_table", "write_report",
]

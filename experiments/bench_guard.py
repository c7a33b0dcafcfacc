"""What a bias guard costs and what it saves (issue #17, part 2).

Each strategy runs with and without a guard (:mod:`mfbo.strategies.guard`) on
:data:`PROBLEMS`: ``mfhartmann6-terrible`` (cheap fidelities that invert the target) and two
LCBench tasks (YAHPO surrogates), seeds ``0..--seeds - 1``, one worker, the budget of
``bench_real.py`` (``--budget-evals`` times the mean target cost, default 10). The pairs
(:data:`PAIRS`):

- ``hyperband`` against ``hyperband:guard=change``: a guard trial whenever the recommendation
  (the best configuration at the highest fidelity reached) changes;
- ``mf-ucb:recommendation=posterior`` (BOCA recommending the posterior-mean optimum at the
  target, which may be a configuration never run there) against the same with ``guard=5``: the
  recommendation checked at the target every 5 trials.

The ``mf-ucb`` pair was run again after ``mf-ucb``'s defaults changed (bracket design where runs
continue, ``init_fraction=0.2``, cost cooling); the rows of the earlier defaults stay in the
store under labels that state the options they ran with
(``mf-ucb:design=ladder,init_fraction=0.1,cost_cooling=false,...`` on LCBench,
``mf-ucb:init_fraction=0.1,cost_cooling=false,...`` on ``mfhartmann6-terrible``). The LCBench
pair was run once more when the cost model ``auto`` began to price continuations with the
fidelity trend; the rows before that are labelled ``mf-ucb:cost_model=learned,...``.

Guards use the default cap ``max_share = 0.25`` of the budget. Per run the store keeps the final
inference regret, the guard's trials and their share of the cost spent, the mean absolute
error of what the strategy expected at the target against the guard's observation, and the
regret of the wrapped strategy's own recommendation at the end (``unguarded_regret_100``: the
rule logged as ``"unguarded"``; it still saw the guard's data). The table gives, per problem and
pair, the median final regret without and with the guard, the worst seed of each, and the guard's
cost.

Storage as ``bench_real.py`` (runs and row summary reused): logs under ``--out`` (default
``results/bench_guard``, git-ignored), one row per finished run in ``--store`` (default
``experiments/results/bench_guard.csv``), stored runs skipped.

    nice -n 10 python experiments/bench_guard.py --workers 1 --seeds 5
    python experiments/bench_guard.py --table-only
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import bench_real
import numpy as np
from _bench import add_store_arguments, read_store

import mfbo

PROBLEMS = ("mfhartmann6-terrible", "lcbench/126025", "lcbench/3945")
#: (without guard, with guard)
PAIRS = (
    ("hyperband", "hyperband:guard=change"),
    ("mf-ucb:recommendation=posterior", "mf-ucb:recommendation=posterior,guard=5"),
)
STORE = Path(__file__).parent / "results" / "bench_guard.csv"
COLUMNS = (*bench_real.STORE_COLUMNS, "n_guard", "guard_share", "guard_abs_error", "unguarded_regret_100")


def summarize(path: Path, seconds: float, commit: str, budget_evals: float, label: str) -> dict[str, Any]:
    """bench_real's row of the run, and the guard's columns (module docstring)."""
    row = bench_real.summarize(path, seconds, commit, budget_evals, label=label)
    trials = mfbo.runlog.read_run(path).trials
    guards = [t for t in trials if t.get("guard")]
    spent = trials[-1]["cum_cost"] if trials else 0.0
    errors = [abs(t["guard"]["error"]) for t in guards if t["guard"].get("error") is not None]
    unguarded = (trials[-1].get("other_recommendations") or {}).get("unguarded", {}) if trials else {}
    row.update({
        "n_guard": len(guards),
        "guard_share": round(sum(t["cost"] for t in guards) / spent, 4) if spent else 0.0,
        "guard_abs_error": round(float(np.mean(errors)), 6) if errors else "",
        "unguarded_regret_100": "" if unguarded.get("regret") is None else unguarded["regret"],
    })
    return row


def _floats(rows: list[dict], column: str) -> list[float]:
    return [float(r[column]) if r[column] not in ("", None) else math.nan for r in rows]


def table(rows: list[dict], problems: list[str], seeds: range) -> str:
    """The Markdown table of the module docstring (medians over the stored seeds)."""
    head = ("| problem | strategy | seeds | regret without | regret with | worst seed without | worst seed with "
            "| guard trials | guard cost share | mean abs. error |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for problem in problems:
        for without, with_guard in PAIRS:
            runs = {label: [r for r in rows if r["problem"] == problem and r["strategy"] == label and int(r["seed"]) in seeds]
                    for label in (without, with_guard)}
            if not all(runs.values()):
                continue
            a, b = (_floats(runs[label], "regret_100") for label in (without, with_guard))
            worst = [max(zip(x, runs[label]), key=lambda p: p[0]) for x, label in ((a, without), (b, with_guard))]
            g = runs[with_guard]
            lines.append(
                f"| {problem} | {without} | {len(a)}/{len(b)} | {np.median(a):.4g} | {np.median(b):.4g} "
                f"| {worst[0][0]:.4g} (seed {worst[0][1]['seed']}) | {worst[1][0]:.4g} (seed {worst[1][1]['seed']}) "
                f"| {np.median(_floats(g, 'n_guard')):.3g} | {np.median(_floats(g, 'guard_share')):.1%} "
                f"| {np.nanmean(_floats(g, 'guard_abs_error')):.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--strategies", nargs="+", default=[label for pair in PAIRS for label in pair])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget-evals", type=float, default=10, help="budget in mean target-fidelity costs")
    add_store_arguments(parser, STORE, "results/bench_guard")
    args = parser.parse_args(argv)
    seeds = range(args.seeds)
    if not args.table_only:
        jobs = bench_real.jobs_to_do(args, args.strategies, seeds)
        print(f"{len(jobs)} runs to do", flush=True)
        bench_real.run_jobs(args, jobs, summarize_run=summarize, columns=COLUMNS, code_paths=(":/mfbo",))
    print(table(read_store(args.store), args.problems, seeds))


if __name__ == "__main__":
    main()

"""FABOLAS against GP-EI at full data on ``digits-svm`` (issue #15): the cost to reach a
validation error, and the error against cost.

Setting: ``digits-svm`` with ``cost="model"`` (the deterministic cost model ``c0 + c1 n + c2 n²``
seconds for ``n`` training examples, so runs are reproducible and the budget is checked in
advance), registered here as ``digits-svm-model``. Budget: ``--budget-evals`` (default 6) times
the full-data cost (bench_real's rule, :func:`bench_real.mean_full_cost`). ``fabolas`` runs at its
defaults (subsets ``1/64 .. 1``), ``gp-ei`` at ``s = 1`` only; ``--seeds`` (default 5) seeds each.

The problem has no known optimum, so the run logs carry no regret. Each run's recommendation
after every trial (FABOLAS: the projected incumbent; GP-EI: the argmin of its posterior mean) is
evaluated afterwards at full data (the SVM is deterministic; these evaluations are not charged)
and the row stores:

- ``error_25/50/100``: the validation error of the recommendation at 25 / 50 / 100 % of the
  budget (the last trial record within it; ``nan`` if none);
- ``cost_to_<e>``: the cumulative cost at which the recommendation's validation error first
  reaches ``<= e`` for each ``e`` of :data:`THRESHOLDS` (``inf`` if it never does);
- ``regret_*`` in the table: ``error - best``, ``best`` the lowest full-data validation error
  seen in the stored runs of that budget (evaluated, or recommended at 25/50/100 %).

Machinery: bench_real's ``jobs_to_do``, ``one_run`` and ``run_jobs`` (one CSV row per finished
run in ``--store``, default ``experiments/results/bench_fabolas.csv``; logs under ``--out``,
default ``results/bench_fabolas``; stored runs skipped; ``--rerun``, ``--table-only``).

    nice -n 10 python experiments/bench_fabolas.py --workers 2        # 5 seeds x 2 strategies
    python experiments/bench_fabolas.py --table-only
    python experiments/bench_fabolas.py --incumbents     # where the FABOLAS runs' recommendations come from
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import bench_real
import numpy as np
from _bench import add_store_arguments, budget_shares, read_store

import mfbo
from mfbo.problems.training import DigitsSVM

PROBLEM = "digits-svm-model"
STRATEGIES = ("fabolas", "gp-ei")
THRESHOLDS = (0.05, 0.03, 0.02)
FRACTIONS = (0.25, 0.5, 1.0)
STORE = Path(__file__).parent / "results" / "bench_fabolas.csv"
COLUMNS = ("problem", "strategy", "seed", "budget_evals", "budget", "error_25", "error_50", "error_100",
           *(f"cost_to_{e:g}" for e in THRESHOLDS), "best_evaluated_error", "n_trials", "share_target",
           "overhead", "recommend_seconds", "seconds", "options", "commit")
CODE_PATHS = (":/mfbo", ":/experiments/bench_fabolas.py")

if PROBLEM not in mfbo.problems.names():  # also in the worker processes, which import this module
    mfbo.problems.register(PROBLEM, lambda: DigitsSVM(cost="model"))

_ERRORS: dict[str, float] = {}


def run(job: tuple) -> tuple:
    """bench_real's ``one_run``, from this module so that the worker processes register
    :data:`PROBLEM` when they import it."""
    return bench_real.one_run(job)


def full_data_error(problem: DigitsSVM, config: dict) -> float:
    """Validation error of ``config`` trained on all the data (cached by configuration)."""
    key = json.dumps(config, sort_keys=True)
    if key not in _ERRORS:
        _ERRORS[key] = float(problem.evaluate(config, 1.0).value)
    return _ERRORS[key]


def summarize(path: Path, seconds: float, commit: str, budget_evals: float, label: str | None = None) -> dict:
    """One store row: the full-data error of the recommendation along the run (module docstring)."""
    run = mfbo.runlog.read_run(path)
    spec, trials = run.header["spec"], run.trials
    problem = mfbo.problems.get(PROBLEM)
    budget = spec["budget"]
    errors = [math.nan if t.get("recommendation") is None else full_data_error(problem, t["recommendation"]) for t in trials]
    spent = np.array([t["cum_cost"] for t in trials])
    at = [errors[i] if (i := int(np.searchsorted(spent, f * budget * (1 + 1e-9), side="right")) - 1) >= 0 else math.nan for f in FRACTIONS]
    reach = {f"cost_to_{e:g}": next((float(c) for c, err in zip(spent, errors) if err <= e), math.inf) for e in THRESHOLDS}
    full = [t["value"] for t in trials if t["status"] == "ok" and t["fidelity"] == 1.0]
    paid = [t for t in trials if t.get("cost") is not None]
    return {
        "problem": PROBLEM, "strategy": label or spec["strategy"], "seed": spec["seed"], "budget_evals": budget_evals, "budget": budget,
        "error_25": at[0], "error_50": at[1], "error_100": at[2], **reach, "best_evaluated_error": min(full) if full else math.inf,
        "n_trials": len(trials), "share_target": budget_shares(problem.fidelity, [t["fidelity"] for t in paid], [t["cost"] for t in paid])[0] if paid else 0.0,
        "overhead": round(sum(t.get("overhead") or 0.0 for t in trials), 3), "recommend_seconds": round(sum(t.get("recommend_time") or 0.0 for t in trials), 3),
        "seconds": "" if math.isnan(seconds) else round(seconds, 1), "options": json.dumps(spec["options"], sort_keys=True), "commit": commit,
    }


def table(rows: list[dict], budget_evals: float) -> None:
    rows = [r for r in rows if abs(float(r["budget_evals"]) - budget_evals) < 1e-6]
    if not rows:
        print("no stored runs")
        return
    num = lambda r, k: float(r[k])
    best = np.nanmin([num(r, k) for r in rows for k in ("best_evaluated_error", "error_25", "error_50", "error_100")])
    print(f"\n{len(rows)} runs on {PROBLEM}, budget {budget_evals:g} x full-data cost ({float(rows[0]['budget']):.4g} model-seconds); "
          f"best full-data validation error seen: {best:.4f}\n")
    head = ["strategy", "seeds", *(f"error @ {f:.0%}" for f in FRACTIONS), *(f"regret @ {f:.0%}" for f in FRACTIONS),
            *(f"cost to <= {e:g} (reached)" for e in THRESHOLDS), "trials", "s per trial"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for strategy in sorted({r["strategy"] for r in rows}):
        mine = [r for r in rows if r["strategy"] == strategy]
        med = lambda k, mine=mine: float(np.median([num(r, k) for r in mine]))
        cells = [strategy, str(len(mine)), *(f"{med(f'error_{int(f * 100)}'):.4f}" for f in FRACTIONS),
                 *(f"{med(f'error_{int(f * 100)}') - best:.4f}" for f in FRACTIONS),
                 *(f"{med(f'cost_to_{e:g}'):.4g} ({sum(math.isfinite(num(r, f'cost_to_{e:g}')) for r in mine)}/{len(mine)})" for e in THRESHOLDS),
                 f"{med('n_trials'):.0f}", f"{np.sum([num(r, 'overhead') + num(r, 'recommend_seconds') for r in mine]) / np.sum([num(r, 'n_trials') for r in mine]):.2f}"]
        print("| " + " | ".join(cells) + " |")
    print("\nmedians over seeds; cost in model-seconds; 'reached': seeds whose recommendation got there within the budget")


def incumbent_trace(path: Path, every: int = 5) -> list[str]:
    """Lines that show where a run's recommendations come from: the largest subset it evaluated
    and, every ``every`` trials, the recommendation's full-data error with the (subset, error)
    observations the run had of that configuration (``--incumbents``)."""
    run = mfbo.runlog.read_run(path)
    problem = mfbo.problems.get(PROBLEM)
    seen: dict[str, list[tuple[float, float]]] = {}
    lines = [f"{path.name}: largest subset evaluated {max(t['fidelity'] for t in run.trials):.3g}"]
    for i, t in enumerate(run.trials):
        seen.setdefault(json.dumps(t["config"], sort_keys=True), []).append((round(t["fidelity"], 3), round(t["value"], 4)))
        if t.get("recommendation") is not None and (i % every == 0 or i == len(run.trials) - 1):
            key = json.dumps(t["recommendation"], sort_keys=True)
            lines.append(f"  trial {t['id']:3d}: full-data error {full_data_error(problem, t['recommendation']):.4f}, seen as {seen.get(key)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget-evals", type=float, default=6.0, help="budget in full-data costs")
    parser.add_argument("--incumbents", action="store_true", help="only trace the stored FABOLAS runs' recommendations")
    add_store_arguments(parser, STORE, "results/bench_fabolas")
    args = parser.parse_args(argv)
    args.problems = [PROBLEM]
    if args.incumbents:
        for path in sorted(Path(args.out).glob(f"{PROBLEM}__fabolas__seed*.jsonl")):
            print("\n".join(incumbent_trace(path)))
        return
    if not args.table_only:
        jobs = bench_real.jobs_to_do(args, args.strategies, range(args.seeds))
        print(f"{len(jobs)} runs to do", flush=True)
        bench_real.run_jobs(args, jobs, run=run, summarize_run=summarize, columns=COLUMNS, code_paths=CODE_PATHS)
    table(read_store(args.store), args.budget_evals)


if __name__ == "__main__":
    main()

"""BOIL against ``gp-ei`` in regret against cost (issue #15, "BOIL beats gp-ei in regret against
cost on digits-mlp-table and two LCBench tasks").

Each (problem, seed) is one :func:`mfbo.minimize` run with one worker and bench_real's budget
rule (``--budget-evals`` (20) times the mean full-fidelity cost, ``bench_real.mean_full_cost``);
the inference regret (target value of the recommendation minus the optimum) is read at 25, 50
and 100 % of the budget (``bench_real.regret_at_fractions``). BOIL runs at its defaults.
``gp-ei``'s rows are bench_real's stored ones (``experiments/results/bench_real.csv``, same
budget rule and seeds), not rerun; ``--strategies gp-ei`` reruns it here instead.

Storage as ``bench_real.py`` (its jobs, run loop and row summary are reused): logs under
``--out`` (default ``results/bench_boil``, git-ignored), one row per finished run in ``--store``
(default ``experiments/results/bench_boil.csv``, committed), stored runs skipped, ``--table-only``
re-tabulates.

    nice -n 10 python experiments/bench_boil.py --workers 1
    python experiments/bench_boil.py --table-only
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import bench_real
import numpy as np
from _bench import add_store_arguments, drop_logs, drop_strategies, read_store

import mfbo

PROBLEMS = ("digits-mlp-table", "lcbench/3945", "lcbench/7593")
STORE = Path(__file__).parent / "results" / "bench_boil.csv"
FRACTIONS = bench_real.FRACTIONS


def rows_of(args: argparse.Namespace) -> list[dict]:
    """BOIL's rows (this store) and gp-ei's (this store if rerun here, else bench_real's)."""
    rows = [r for r in read_store(args.store) if float(r["budget_evals"]) == args.budget_evals]
    if not any(r["strategy"] == "gp-ei" for r in rows):
        rows += [r for r in read_store(bench_real.STORE) if r["strategy"] == "gp-ei" and float(r["budget_evals"]) == args.budget_evals]
    return rows


def table(rows: list[dict], problems: list[str], seeds: range) -> None:
    """Median regret (and the number of seeds where BOIL's regret is lower, ties counted half) at
    each budget share."""
    print("| problem | budget | gp-ei median regret | boil median regret | boil better on | seeds |")
    print("|---|---|---|---|---|---|")
    for problem in problems:
        for fraction in FRACTIONS:
            column = bench_real.regret_column(fraction)
            by = {s: {int(r["seed"]): float(r[column]) for r in rows if r["problem"] == problem and r["strategy"] == s and int(r["seed"]) in seeds}
                  for s in ("gp-ei", "boil")}
            common = sorted(set(by["gp-ei"]) & set(by["boil"]))
            if not common:
                continue
            ours, theirs = [by["boil"][s] for s in common], [by["gp-ei"][s] for s in common]
            wins = sum(1.0 if a < b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs))
            print(f"| {problem} | {bench_real.percent(fraction)} | {np.median(theirs):.4g} | {np.median(ours):.4g} | "
                  f"{wins:g} / {len(common)} | {', '.join(map(str, common))} |")


def unfinished(out: Path, stored: list[dict]) -> None:
    """Runs whose logs in ``out`` are not in the store (unfinished, or stopped): the budget share
    spent so far and the regret at the shares it reached (never at a share it did not reach)."""
    done = {(r["problem"], r["strategy"], int(r["seed"])) for r in stored}
    lines = []
    for path in sorted(out.glob("*.jsonl")):
        run = mfbo.runlog.read_run(path)
        spec, trials = run.header["spec"], run.trials
        if (spec["problem"], spec["strategy"], spec["seed"]) in done or not trials:
            continue
        spent = trials[-1]["cum_cost"] / spec["budget"]
        regrets = bench_real.regret_at_fractions(trials, spec["budget"])
        cells = [f"{r:.4g}" if spent >= f - 1e-9 else "not reached" for f, r in zip(FRACTIONS, regrets)]
        lines.append(f"| {spec['problem']} | {spec['strategy']} | {spec['seed']} | {spent:.0%} | {len(trials)} | " + " | ".join(cells) + " |")
    if lines:
        print("\nUnfinished runs (logs not in the store): regret at the budget shares reached\n")
        print("| problem | strategy | seed | spent | trials | " + " | ".join(bench_real.percent(f) for f in FRACTIONS) + " |")
        print("|---|---|---|---|---|" + "---|" * len(FRACTIONS))
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--strategies", nargs="+", default=["boil"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--budget-evals", type=float, default=20, help="budget in mean full-fidelity costs")
    add_store_arguments(parser, STORE, "results/bench_boil")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.seed_offset < 0 or args.workers < 1 or not args.budget_evals > 0:
        raise SystemExit("--seeds and --workers must be >= 1, --seed-offset >= 0 and --budget-evals > 0")
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    if args.rerun:
        rows, logs = drop_strategies(args.store, args.rerun, bench_real.STORE_COLUMNS), drop_logs(Path(args.out), args.rerun)
        print(f"dropped {rows} stored rows and {logs} run logs of {', '.join(args.rerun)}")
    if not args.table_only:
        jobs = bench_real.jobs_to_do(args, args.strategies, seeds)
        print(f"{len(jobs)} runs to do ({len(read_store(args.store))} rows in {args.store})", flush=True)
        bench_real.run_jobs(args, jobs)
    rows = rows_of(args)
    print(f"\nInference regret at 25 / 50 / 100 % of a budget of {args.budget_evals:g} mean full-fidelity costs\n")
    table(rows, args.problems, seeds)
    unfinished(Path(args.out), read_store(args.store))
    boil = [r for r in rows if r["strategy"] == "boil"]
    if boil:
        per_trial = [float(r["overhead"]) / max(int(r["n_trials"]), 1) for r in boil]
        print(f"\nboil: median {np.median([int(r['n_trials']) for r in boil]):g} trials per run, "
              f"overhead {np.median(per_trial):.2f} s per trial (median over runs), max {max(per_trial):.2f}"
              f"{'' if all(math.isfinite(float(r['regret_100'])) for r in boil) else '; some runs without a recommendation'}")


if __name__ == "__main__":
    main()

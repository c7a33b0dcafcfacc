"""Final inference regret of strategies over seeds on the synthetic suite.

Every (problem, strategy, seed) run is exactly ``mfbo run --problem P --strategy S --budget B
--seed k``, with the budget given as a number of target-fidelity evaluations (``B = evals *
cost(target)``) so that problems with different cost scales compare. The trial logs go under
``--out`` and the tables are computed from them with :func:`mfbo.load_runs`, so a finished
benchmark can be re-tabulated with ``--table-only``.

Printed: the median final inference regret (exact target regret of the recommendation) with its
IQR per problem and strategy, the number of problems on which the best multi-fidelity strategy
beats ``gp-ei``, and the share of the budget each strategy spent at the target fidelity (the
evidence that cost-aware acquisitions stop trusting bad fidelities).

    python experiments/bench_quality.py                                   # the issue #3 benchmark
    python experiments/bench_quality.py --problems hartmann6 --strategies random gp-ei   # issue #2
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

import mfbo
from mfbo.cli import run_file_name

#: One problem per family of the synthetic suite.
FAMILIES = ("forrester", "currin", "park", "borehole", "hartmann6", "augmented-hartmann", "quadratic-ladder", "mfhartmann6-terrible")
STRATEGIES = ("random", "gp-ei", "mf-kg", "mf-mes", "mf-gibbon", "mf-ei", "mf-ucb")


def one_run(job: tuple[str, str, int, float, str, int]) -> tuple[str, str, int, float]:
    problem_name, strategy, seed, evals, out, threads = job
    torch.set_num_threads(threads)
    path = Path(out) / run_file_name(problem_name, strategy, seed)
    if path.exists() and mfbo.runlog.read_run(path).complete:
        return problem_name, strategy, seed, 0.0  # already done: resume for free
    problem = mfbo.problems.get(problem_name)
    budget = evals * problem.cost(None, None)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mfbo.minimize(problem, strategy, budget, seed=seed, log_path=path)
    return problem_name, strategy, seed, time.perf_counter() - start


def table(out: str, problems: list[str], strategies: list[str]) -> None:
    df = mfbo.load_runs(out)
    df = df[df["problem"].isin(problems) & df["strategy"].isin(strategies)]
    partial = df.loc[~df["complete"].astype(bool), "run"].nunique()
    if partial:
        print(f"({partial} unfinished runs left out)")
    df = df[df["complete"].astype(bool)]
    last = df.sort_values("id").groupby(["problem", "strategy", "seed"]).tail(1)
    print("\n### Median final inference regret [IQR] over seeds\n")
    print("| problem | " + " | ".join(strategies) + " |")
    print("|---|" + "---|" * len(strategies))
    wins, mf = 0, [s for s in strategies if s.startswith("mf-")]
    for problem in problems:
        cells, medians = [], {}
        for strategy in strategies:
            regrets = last[(last["problem"] == problem) & (last["strategy"] == strategy)]["regret"].to_numpy(dtype=float)
            if len(regrets) == 0:
                cells.append("-")
                continue
            q1, med, q3 = np.percentile(regrets, [25, 50, 75])
            medians[strategy] = med
            cells.append(f"{med:.3g} [{q1:.2g}, {q3:.2g}] (n={len(regrets)})")
        best = min(medians, key=medians.get) if medians else None
        cells = [f"**{c}**" if s == best else c for s, c in zip(strategies, cells)]
        print(f"| {problem} | " + " | ".join(cells) + " |")
        if "gp-ei" in medians and any(s in medians for s in mf):
            wins += min(medians[s] for s in mf if s in medians) < medians["gp-ei"]
    if "gp-ei" in strategies and mf:
        print(f"\nbest multi-fidelity strategy beats gp-ei on {wins} of {len(problems)} problems")

    # Where the budget went: at the target, near it (normalised s >= 0.75) and at the cheap half
    # (s < 0.5). On a continuous fidelity "at the target" undercounts: s = 0.99 is the target in
    # all but name, so the cheap-half share is the evidence that a strategy stops trusting a
    # misleading fidelity.
    print("\n### Share of the budget by normalised fidelity s, median over seeds: at s = 1 / s >= 0.75 / s < 0.5\n")
    print("| problem | " + " | ".join(strategies) + " |")
    print("|---|" + "---|" * len(strategies))
    for problem in problems:
        fidelity = mfbo.problems.get(problem).fidelity
        cells = []
        for strategy in strategies:
            runs = df[(df["problem"] == problem) & (df["strategy"] == strategy)]
            shares = []
            for _, g in runs.groupby("seed"):
                s = np.array([fidelity.normalize(f) for f in g["fidelity"]], dtype=float)
                cost = g["cost"].to_numpy(dtype=float)
                shares.append([cost[s >= 1 - 1e-9].sum() / cost.sum(), cost[s >= 0.75].sum() / cost.sum(), cost[s < 0.5].sum() / cost.sum()])
            cells.append(" / ".join(f"{v:.0%}" for v in np.median(shares, axis=0)) if shares else "-")
        print(f"| {problem} | " + " | ".join(cells) + " |")

    print("\n### Mean strategy overhead per trial (s, ask + tell)\n")
    overhead = df.groupby("strategy")["overhead"].mean()
    print(" | ".join(f"{s}: {overhead.get(s, float('nan')):.2f}" for s in strategies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(FAMILIES))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evals", type=float, default=30, help="budget in target-fidelity evaluations")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker process")
    parser.add_argument("--out", default="results/bench_quality")
    parser.add_argument("--table-only", action="store_true", help="only tabulate the logs already in --out")
    args = parser.parse_args()
    if not args.table_only:
        # seed-major order, so that an interrupted benchmark has every cell at the first seeds
        jobs = [(p, s, seed, args.evals, args.out, args.threads) for seed in range(args.seeds) for p in args.problems for s in args.strategies]
        start = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for problem, strategy, seed, seconds in pool.map(one_run, jobs):
                print(f"done {problem} {strategy} seed {seed} in {seconds:.0f} s", flush=True)
        print(f"\n{len(jobs)} runs in {time.perf_counter() - start:.0f} s with {args.workers} workers")
    table(args.out, args.problems, args.strategies)


if __name__ == "__main__":
    main()

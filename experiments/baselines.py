"""Final regret of strategies over seeds on one problem: the check of issue #2.

Runs exactly what ``mfbo run --problem P --strategy S --budget B --seed k`` runs, for every
strategy and seed, writes the trial logs under ``--out``, and prints the median final
inference regret (the exact target-fidelity regret of the recommendation) with its IQR, plus
the mean strategy overhead per trial.

    python experiments/baselines.py --problem hartmann6 --budget 30 --seeds 5 --strategies random gp-ei
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import mfbo
from mfbo.cli import run_file_name


def one_run(args: tuple[str, str, float, int, str]) -> tuple[str, int, float, float, float]:
    problem, strategy, budget, seed, out = args
    start = time.perf_counter()
    result = mfbo.minimize(problem, strategy, budget, seed=seed, log_path=Path(out) / run_file_name(problem, strategy, seed))
    overhead = float(np.mean([t.overhead for t in result.trials]))
    return strategy, seed, result.regret, overhead, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", default="hartmann6")
    parser.add_argument("--budget", type=float, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=["random", "gp-ei"])
    parser.add_argument("--workers", type=int, default=2, help="parallel processes (one run each)")
    parser.add_argument("--out", default="results/baselines")
    args = parser.parse_args()

    jobs = [(args.problem, s, args.budget, seed, args.out) for s in args.strategies for seed in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(one_run, jobs))

    print(f"problem {args.problem}, budget {args.budget:g}, seeds 0..{args.seeds - 1}\n")
    print("| strategy | median regret | IQR | per-seed regret | overhead s/trial | wall s/run |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for strategy in args.strategies:
        mine = [r for r in rows if r[0] == strategy]
        regrets = np.array([r[2] for r in mine])
        q1, med, q3 = np.percentile(regrets, [25, 50, 75])
        medians[strategy] = med
        per_seed = ", ".join(f"{v:.3g}" for v in regrets)
        print(f"| {strategy} | {med:.4g} | [{q1:.3g}, {q3:.3g}] | {per_seed} | {np.mean([r[3] for r in mine]):.3g} | {np.mean([r[4] for r in mine]):.1f} |")
    if "random" in medians:
        print()
        for strategy, med in medians.items():
            if strategy != "random":
                print(f"{strategy}: median regret {med:.4g} vs random {medians['random']:.4g} (ratio {med / medians['random']:.3f})")


if __name__ == "__main__":
    main()

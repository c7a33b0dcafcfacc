"""Learning-curve extrapolation (issue #16): how well the curve ensemble predicts LCBench final
accuracies, how long a prediction takes, and the regret of ``lc-extrapolation``.

a. **Prediction** (``--part predict``): on each of :data:`TASKS`, :data:`N_CONFIGS` configurations
   drawn with ``numpy.random.default_rng(0)`` are evaluated at the target (52 epochs); the ensemble
   (:mod:`mfbo.models.learning_curves`, with the MCMC settings ``lc-extrapolation`` ships:
   :data:`SHIPPED`) is fitted to the accuracy ``1 - value`` of the first 25 % of the epochs (13)
   and predicts the final accuracy (the posterior mean of ``f_comb(52)``). One row per
   configuration in ``experiments/results/bench_lc_extrapolation.csv``: the true and predicted
   final accuracy, the absolute error, whether the central 90 % posterior interval of
   ``f_comb(52)`` covers the truth, the seconds of the prediction (least-squares fits + MCMC,
   ``time.process_time``, CPU seconds of this process) and, for reference, the error of the naive
   prediction "the last observed accuracy". The table reports the median absolute error per task.
b. **Regret** (``--part regret``): ``lc-extrapolation`` against ``random`` and ``hyperband`` on
   :data:`REGRET_TASKS`, seeds ``0..--seeds-1``, one :func:`mfbo.minimize` per run with
   ``bench_real``'s budget rule (``--budget-evals`` (20) times the mean full-fidelity cost), its
   jobs, run loop and row summary (``bench_real.jobs_to_do`` / ``run_jobs`` / ``one_run`` /
   ``summarize``); rows in ``experiments/results/bench_lc_extrapolation_regret.csv``.

Both parts skip what is already stored. Run from the repository root::

    nice -n 10 python experiments/bench_lc_extrapolation.py --part predict
    nice -n 10 python experiments/bench_lc_extrapolation.py --part regret --seeds 5 --workers 2
    python experiments/bench_lc_extrapolation.py --table-only
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import bench_real
import numpy as np
from _bench import add_store_arguments, append_row, read_store

import mfbo
from mfbo.models.learning_curves import MCMCSettings, fit_ensemble

TASKS = ("lcbench/3945", "lcbench/7593", "lcbench/126025")
REGRET_TASKS = ("lcbench/3945", "lcbench/7593")
REGRET_STRATEGIES = ("lc-extrapolation", "random", "hyperband")
N_CONFIGS = 12
FRACTION = 0.25
#: The MCMC settings lc-extrapolation ships (its option defaults).
SHIPPED = MCMCSettings(n_walkers=100, n_steps=500, burn_in=250, thin=10)
RESULTS = Path(__file__).parent / "results"
PREDICT_STORE = RESULTS / "bench_lc_extrapolation.csv"
REGRET_STORE = RESULTS / "bench_lc_extrapolation_regret.csv"
PREDICT_COLUMNS = ("problem", "config", "observed_epochs", "true_final", "predicted_final", "abs_error", "covered_90",
                   "last_observed_error", "n_families", "seconds", "n_steps", "burn_in", "n_walkers")


def predict_rows(task: str, done: set[tuple[str, int]]) -> None:
    """Fit and store the rows of ``task`` not yet in the store (module docstring, part a)."""
    problem = mfbo.problems.get(task)
    configs = problem.space.sample(np.random.default_rng(0), N_CONFIGS)
    target = problem.target_fidelity
    observed = math.ceil(FRACTION * target)
    for i, config in enumerate(configs):
        if (task, i) in done:
            continue
        curve = 1.0 - np.asarray(problem.evaluate(config, target).curve, dtype=float)  # accuracy
        start = time.process_time()
        ensemble = fit_ensemble(curve[:observed], target, np.random.default_rng(i), SHIPPED)
        seconds = time.process_time() - start
        truth = float(curve[-1])
        if ensemble is None:
            predicted, covered, n_families = math.nan, False, 0
        else:
            means = ensemble.final_means()[0]
            predicted = float(np.mean(means))
            low, high = np.percentile(means, [5, 95])
            covered, n_families = bool(low <= truth <= high), len(ensemble.families)
        append_row(PREDICT_STORE, {
            "problem": task, "config": i, "observed_epochs": observed, "true_final": truth, "predicted_final": predicted,
            "abs_error": abs(predicted - truth), "covered_90": covered, "last_observed_error": abs(curve[observed - 1] - truth),
            "n_families": n_families, "seconds": round(seconds, 2), "n_steps": SHIPPED.n_steps, "burn_in": SHIPPED.burn_in,
            "n_walkers": SHIPPED.n_walkers,
        }, PREDICT_COLUMNS)
        print(f"{task} config {i}: true {truth:.4f} predicted {predicted:.4f} ({seconds:.1f} s)", flush=True)


def predict_table() -> str:
    rows = read_store(PREDICT_STORE)
    lines = [f"### Predicted final accuracy from the first {FRACTION:.0%} of the epochs (MCMC {SHIPPED})\n",
             "| task | configs | median abs. error | median error of 'last observed' | 90 % interval covers | median s / prediction |",
             "|---|---|---|---|---|---|"]
    for task in sorted({r["problem"] for r in rows}):
        sel = [r for r in rows if r["problem"] == task]
        err = np.median([float(r["abs_error"]) for r in sel])
        naive = np.median([float(r["last_observed_error"]) for r in sel])
        cover = np.mean([r["covered_90"] == "True" for r in sel])
        sec = np.median([float(r["seconds"]) for r in sel])
        lines.append(f"| {task} | {len(sel)} | {err:.4f} | {naive:.4f} | {cover:.0%} | {sec:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("predict", "regret", "both"), default="both")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget-evals", type=float, default=20)
    add_store_arguments(parser, REGRET_STORE, "results/bench_lc_extrapolation")
    args = parser.parse_args(argv)
    args.problems = list(REGRET_TASKS)
    if not args.table_only and args.part in ("predict", "both"):
        done = {(r["problem"], int(r["config"])) for r in read_store(PREDICT_STORE)}
        for task in TASKS:
            predict_rows(task, done)
    if not args.table_only and args.part in ("regret", "both"):
        jobs = bench_real.jobs_to_do(args, list(REGRET_STRATEGIES), range(args.seeds))
        print(f"{len(jobs)} runs to do", flush=True)
        bench_real.run_jobs(args, jobs)
    print(predict_table())
    bench_real.table(read_store(args.store), args.problems, list(REGRET_STRATEGIES), range(args.seeds), args.budget_evals)


if __name__ == "__main__":
    main()

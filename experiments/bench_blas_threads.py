"""What holding BLAS to one thread around L-BFGS-B saves (:mod:`mfbo.lbfgsb`).

Runs the same strategy on the same problem, seed and budget twice in this process: once with
SciPy's L-BFGS-B free to use the OpenBLAS thread pool (the reference: ``mfbo.lbfgsb``'s limit
replaced by a no-op) and once as shipped, and prints both wall times, their ratio and whether
the two trial logs agree (config, fidelity and value of every trial). ``--busy N`` starts ``N``
processes that keep a core busy with numpy work meanwhile, as a second benchmark worker or a
training job next to the optimiser would; the slowdown the limit removes appears when the
cores are contended (scipy/scipy#22438).

    python experiments/bench_blas_threads.py                                   # mf-ucb, rbv2_xgboost/16
    python experiments/bench_blas_threads.py --busy 1 --fraction 0.3
    python experiments/bench_blas_threads.py --problem lcbench/3945 --strategy mf-ucb --busy 1
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import time
import warnings
from pathlib import Path
from unittest import mock

import bench_real
import numpy as np
import torch

import mfbo
import mfbo.lbfgsb


def _spin(stop: multiprocessing.Event) -> None:
    """Keep one core busy with small numpy products until ``stop`` is set."""
    a = np.random.default_rng(0).standard_normal((200, 200))
    while not stop.is_set():
        a = np.tanh(a @ a.T / 200)


def _run(problem_name: str, strategy: str, seed: int, budget: float, path: Path) -> tuple[float, list]:
    """Seconds of one run and its trials as ``(config, fidelity, value)``."""
    problem = mfbo.problems.get(problem_name)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mfbo.minimize(problem, bench_real.make_strategy(strategy, problem, seed), budget, log_path=path)
    return time.perf_counter() - start, [(t.config, t.fidelity, t.value) for t in result.trials]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", default="rbv2_xgboost/16")
    parser.add_argument("--strategy", default="mf-ucb")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.3, help="share of bench_real's budget (20 mean target costs) to run")
    parser.add_argument("--busy", type=int, default=0, help="processes keeping a core busy meanwhile")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (bench_real's default is 1)")
    parser.add_argument("--out", type=Path, default=Path("results/bench_blas_threads"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    mean, _ = bench_real.mean_full_cost(mfbo.problems.get(args.problem))
    budget = args.fraction * 20 * mean
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        with mock.patch.object(mfbo.lbfgsb, "threadpool_limits", lambda **_: contextlib.nullcontext()):
            free, free_trials = _run(args.problem, args.strategy, args.seed, budget, args.out / "blas_pool.jsonl")
        limited, limited_trials = _run(args.problem, args.strategy, args.seed, budget, args.out / "blas_one_thread.jsonl")
    finally:
        stop.set()
        for p in spinners:
            p.join()
    print(f"{args.strategy} on {args.problem}, seed {args.seed}, budget {budget:.6g} ({args.fraction:g} of bench_real's), "
          f"{args.busy} busy process(es), {len(limited_trials)} trials")
    print("| L-BFGS-B BLAS threads | seconds |")
    print("|---|---:|")
    print(f"| OpenBLAS pool (SciPy's default) | {free:.1f} |")
    print(f"| one (mfbo.lbfgsb) | {limited:.1f} |")
    print(f"ratio pool / one: {free / limited:.2f}; identical trial logs: {free_trials == limited_trials}")


if __name__ == "__main__":
    main()

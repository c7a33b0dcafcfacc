"""How well does the multi-fidelity GP rank configurations at the target, from which data?

A diagnostic for issue #12 (no optimiser runs): on an LCBench task, ``--configs`` configurations
(a seeded random sample) are trained to the target once each, so every one has its whole
learning curve. Data sets are then cut from those curves, a GP is fitted to each, and its
posterior mean at the target is compared with the exact target values of ``--test`` held-out
random configurations:

- ``target-only``: ``gp-ei``'s model (BoTorch ``SingleTaskGP``, Matérn-5/2 ARD) on ``k`` target
  values;
- the multi-fidelity GP (:func:`mfbo.models.build_mf_gp`, each kernel of ``--kernels``) on the same
  ``k`` target values plus

  - ``own curves``: the same ``k`` configurations' values at the rungs 1, 3, 9, 27;
  - ``others @ 1``: every other configuration at epoch 1;
  - ``others @ 9, 27``: every other configuration at epochs 9 and 27;
  - ``own curves + others @ 1, 3, 9, 27``: all of the above rungs.

Scores: Spearman's rho between the posterior mean and the true target values of the held-out
configurations, and the top-5 regret (the best true value among the five configurations the
model ranks first, minus the best of the held-out set). Each (task, repetition) is one block; the
table gives the mean and median over blocks.

    python experiments/bench_model_quality.py --tasks 3945 7593 126025 146212 168330 189862 --reps 2
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms import Standardize
from scipy.stats import spearmanr

import mfbo
from mfbo.models import build_mf_gp, fit_model

RUNGS = (1, 3, 9, 27)
TARGET = 52


def data_sets(k: int, n: int) -> dict[str, list[tuple[int, int]]]:
    """``label -> [(configuration index, epoch)]`` with the first ``k`` of ``n`` configurations at the target."""
    target = [(i, TARGET) for i in range(k)]
    own = [(i, e) for i in range(k) for e in RUNGS]
    return {
        "own curves": target + own,
        "others @ 1": target + [(i, 1) for i in range(k, n)],
        "others @ 9, 27": target + [(i, e) for i in range(k, n) for e in (9, 27)],
        "own curves + others @ 1, 3, 9, 27": target + own + [(i, e) for i in range(k, n) for e in RUNGS],
    }


def scores(mean: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(Spearman rho, top-5 regret)`` of a posterior mean of ``-value`` against true values."""
    rho = float(spearmanr(mean, -truth).correlation)
    return rho, float(truth[np.argsort(-mean)[:5]].min() - truth.min())


def one_block(task: str, rep: int, n: int, n_test: int, ks: list[int], kernels: list[str]) -> list[tuple]:
    problem = mfbo.problems.get(f"lcbench/{task}")
    space, fidelity = problem.space, problem.fidelity
    configs = space.sample(np.random.default_rng(rep), n)
    curves = [np.asarray(problem.evaluate(c, TARGET).curve_list()) for c in configs]
    test = space.sample(np.random.default_rng(1000 + rep), n_test)
    truth = np.array([problem.target_value(c) for c in test])
    X_test = torch.tensor(np.array([space.encode(c) for c in test]))

    def fitted_mean(model, X: torch.Tensor) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_model(model, seed=rep)
        with torch.no_grad():
            return model.posterior(X).mean.reshape(-1).numpy()

    rows = []
    for k in ks:
        X = torch.tensor(np.array([space.encode(configs[i]) for i in range(k)]))
        Y = -torch.tensor([[curves[i][-1]] for i in range(k)])
        rows.append((k, "target-only", "-", *scores(fitted_mean(SingleTaskGP(X, Y, outcome_transform=Standardize(m=1)), X_test), truth)))
        X_target = torch.cat([X_test, torch.ones(n_test, 1, dtype=X_test.dtype)], -1)
        for kernel in kernels:
            for label, points in data_sets(k, n).items():
                X = torch.tensor(np.array([np.append(space.encode(configs[i]), fidelity.normalize(e)) for i, e in points]))
                Y = -torch.tensor([[curves[i][e - 1]] for i, e in points])
                rows.append((k, label, kernel, *scores(fitted_mean(build_mf_gp(X, Y, kernel=kernel), X_target), truth)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["3945", "7593", "126025", "146212", "168330", "189862"])
    parser.add_argument("--reps", type=int, default=2, help="repetitions (seeds of the configuration sample) per task")
    parser.add_argument("--configs", type=int, default=40)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16], help="configurations evaluated at the target")
    parser.add_argument("--kernels", nargs="+", default=["autoregressive", "exp-decay", "product"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[tuple, list[tuple[float, float]]] = {}
    for task in args.tasks:
        for rep in range(args.reps):
            for k, label, kernel, rho, top5 in one_block(task, rep, args.configs, args.test, args.k, args.kernels):
                results.setdefault((k, kernel, label), []).append((rho, top5))
            print(f"done lcbench/{task} repetition {rep}", flush=True)
    print("\n| k at target | kernel | data | blocks | Spearman rho, mean | median | top-5 regret, mean |")
    print("|---|---|---|---|---|---|---|")
    for (k, kernel, label), values in sorted(results.items()):
        a = np.array(values)
        print(f"| {k} | {kernel} | {label} | {len(a)} | {a[:, 0].mean():.2f} | {np.median(a[:, 0]):.2f} | {a[:, 1].mean():.4f} |")


if __name__ == "__main__":
    main()

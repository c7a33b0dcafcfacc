"""Kometo against MFPDOO told the true, and wrong, smoothness and bias (issue #16).

Kometo's claim (Fiegel, Gabillon & Valko 2026) is that it matches a multi-fidelity tree search
that knows the smoothness ``(nu, rho)`` and the bias function ``zeta`` without being told them.
Methods (labels of the CSV):

- ``kometo``: told nothing;
- ``mf-pdoo:true``: MFPDOO with ``(nu_max, rho_max) = (nu*, rho*)`` of the problem (estimated as
  below) and the problem's ``zeta`` (``bias="problem"``, :meth:`mfbo.problems.Problem.bias_bound`);
- ``mf-pdoo:default``: the authors' experimental ``(nu, rho) = (2, 0.95)``, with the true ``zeta``;
- ``mf-pdoo:wrong-low``: ``nu*/10``, ``rho*^3`` and ``zeta = C (1 - s)`` with ``C = zeta(lowest)/10``
  (over-confident: too smooth, too little bias);
- ``mf-pdoo:wrong-high``: ``10 nu*``, ``rho*^(1/3)`` and ``C = 10 zeta(lowest)`` (over-cautious).

``(nu*, rho*)``: on the binary partition the methods use (longest-side splits, first axis on ties),
``delta_h = max f(x) - f(x*)`` over the depth-``h`` cell that contains ``x*`` (2000 uniform points
of the cell plus its corners, ``h = 0..6d``); for each ``rho`` of ``0.30, 0.31, ..., 0.99``,
``nu(rho) = max_h delta_h / rho^h`` is the smallest ``nu`` with ``delta_h <= nu rho^h`` at every
measured depth, and ``rho*`` minimises the envelope ``nu(rho) rho^(3d)`` at depth ``3d`` (cells of
side 1/8; our choice: the curves have a plateau, then decay, so no single pair is tight
everywhere). Printed with the table.

Budget: 50 target evaluations' worth (``50 lambda(target)``); seeds orient the partition (the
strategies' tie-breaks) and, on ``mfhartmann3-*``, draw the problem's noise (``seed=`` of the
problem). Reported: the inference regret (target value of the recommendation minus the optimum)
at 50 % and 100 % of the budget, and the simple regret (best target observation) at 100 %. One CSV
row per finished run, appended as it finishes (a stop loses nothing; stored runs are skipped).

    nice -n 10 python experiments/bench_tree.py                 # 7 problems x 5 methods x 10 seeds
    nice -n 10 python experiments/bench_tree.py --table-only

``--workers W --stop cost|wall_clock`` runs the same jobs on ``W`` simulated asynchronous workers
(store them apart with ``--store``); the regret "at x % of the budget" is then read at the
simulated clock ``x % B`` under ``wall_clock`` (where the total cost may reach ``W B``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _bench import append_row, git_commit, read_store

import mfbo
from mfbo.loop import STOP_RULES
from mfbo.space import Int
from mfbo.strategies.tree import Partition

PROBLEMS = ["mfhartmann3-good", "mfhartmann3-moderate", "mfhartmann3-bad", "mfhartmann3-terrible", "currin", "park", "quadratic-ladder"]
METHODS = ["kometo", "mf-pdoo:true", "mf-pdoo:default", "mf-pdoo:wrong-low", "mf-pdoo:wrong-high"]
COLUMNS = ["problem", "method", "seed", "budget", "options", "regret_50", "regret_100", "simple_regret_100",
           "total_cost", "n_trials", "n_target", "seconds", "commit"]
STORE = Path(__file__).parent / "results" / "bench_tree.csv"
BUDGET_EVALS = 50


def get_problem(name: str, seed: int) -> mfbo.Problem:
    return mfbo.problems.get(name, seed=seed) if name.startswith("mfhartmann") else mfbo.problems.get(name)


def to_natural(problem: mfbo.Problem, U: np.ndarray) -> np.ndarray:
    """Unit-cube points ``(n, d)`` to natural units (``Int``: the bin's integer), vectorised."""
    cols = []
    for j, name in enumerate(problem.space):
        hp = problem.space[name]
        if isinstance(hp, Int):
            cols.append(np.clip(np.floor(hp.low + U[:, j] * (hp.high - hp.low + 1)), hp.low, hp.high))
        else:
            cols.append(hp.low + U[:, j] * (hp.high - hp.low))
    return np.column_stack(cols)


def smoothness(problem: mfbo.Problem) -> tuple[float, float]:
    """``(nu*, rho*)`` of the module docstring."""
    part, rng = Partition(problem.space.dim, 2), np.random.default_rng(0)
    u_star = problem.space.encode(problem.optimizer)
    cell, deltas = part.root, []
    d = problem.space.dim
    corners = ((np.arange(2**d)[:, None] >> np.arange(d)[None, :]) & 1).astype(float)
    for _ in range(6 * d + 1):
        U = np.vstack([rng.random((2000, d)), corners]) * (cell.high - cell.low) + cell.low
        gap = problem.values(to_natural(problem, U), noise=False) - problem.optimum
        deltas.append(max(float(gap.max()), 1e-12))
        cell = next(c for c in part.children(cell) if c.contains(u_star))
    h, depth = np.arange(len(deltas)), 3 * d
    grid = np.arange(0.30, 0.995, 0.01)
    nus = np.array([np.max(np.array(deltas) / r**h) for r in grid])
    k = int(np.argmin(nus * grid**depth))
    return float(nus[k]), float(grid[k])


def options_for(method: str, problem: mfbo.Problem) -> dict:
    if method == "kometo":
        return {}
    nu, rho = smoothness(problem)
    zeta_low = problem.bias_bound(problem.fidelity.grid()[0] if problem.fidelity.is_discrete else problem.fidelity.low)
    variant = method.split(":")[1]
    return {
        "true": {"nu": nu, "rho": rho, "bias": "problem"},
        "default": {"nu": 2.0, "rho": 0.95, "bias": "problem"},
        "wrong-low": {"nu": nu / 10, "rho": rho**3, "bias": zeta_low / 10},
        "wrong-high": {"nu": nu * 10, "rho": rho ** (1 / 3), "bias": zeta_low * 10},
    }[variant]


def regret_at(result: mfbo.Result, spend: float, clock: bool = False) -> float:
    """The inference regret of the last record with ``cum_cost <= spend`` (with ``clock``: that
    ends by the simulated time ``spend``) (``inf``: none)."""
    done = [t for t in result.trials if (t.end if clock else t.cum_cost) <= spend + 1e-9]
    return math.inf if not done or done[-1].regret is None else float(done[-1].regret)


def one_run(problem_name: str, method: str, seed: int, workers: int = 1, stop: str = "cost") -> dict:
    problem = get_problem(problem_name, seed)
    budget = BUDGET_EVALS * problem.cost(None, problem.fidelity.target)
    options = options_for(method, problem)
    start = time.perf_counter()
    strategy = mfbo.strategies.make(method.split(":")[0], problem, seed=seed, **options)
    result = mfbo.minimize(problem, strategy, budget=budget, workers=workers, stop=stop)
    clock = stop == "wall_clock"
    target = [t for t in result.trials if t.fidelity == problem.fidelity.target and t.status == "ok"]
    simple = min((t.value for t in target), default=math.inf) - problem.optimum
    return {
        "problem": problem_name, "method": method, "seed": seed, "budget": budget,
        "options": ";".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()),
        "regret_50": regret_at(result, budget / 2, clock), "regret_100": regret_at(result, budget, clock),
        "simple_regret_100": simple, "total_cost": result.total_cost, "n_trials": len(result.trials),
        "n_target": len(target), "seconds": round(time.perf_counter() - start, 3), "commit": git_commit(),
    }


def table(rows: list[dict]) -> str:
    """Markdown: median [IQR] over seeds of each regret column, problems x methods."""
    out = []
    for column, title in (("regret_50", "inference regret at 50 % of the budget"),
                          ("regret_100", "inference regret at 100 % of the budget"),
                          ("simple_regret_100", "simple regret (best target observation) at 100 %")):
        out += [f"\n### Median [IQR] {title} ({BUDGET_EVALS} target evaluations' worth)\n",
                "| problem | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
        for problem in PROBLEMS:
            cells = []
            for method in METHODS:
                vals = np.array([float(r[column]) for r in rows if r["problem"] == problem and r["method"] == method])
                if len(vals) == 0:
                    cells.append("-")
                    continue
                q1, med, q3 = np.percentile(vals, [25, 50, 75])
                cells.append(f"{med:.3g} [{q1:.3g}, {q3:.3g}] (n={len(vals)})")
            out.append(f"| {problem} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", nargs="+", default=PROBLEMS)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--store", type=Path, default=STORE)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--stop", choices=STOP_RULES, default="cost")
    args = parser.parse_args()
    if not args.table_only:
        stored = {(r["problem"], r["method"], int(r["seed"])) for r in read_store(args.store)}
        for problem in args.problems:
            for method in args.methods:
                for seed in range(args.seeds):
                    if (problem, method, seed) not in stored:
                        append_row(args.store, one_run(problem, method, seed, args.workers, args.stop), COLUMNS)
    print("(nu*, rho*) estimated per problem:")
    for problem in args.problems:
        nu, rho = smoothness(get_problem(problem, 0))
        print(f"- {problem}: nu* = {nu:.4g}, rho* = {rho:.4g}")
    print(table(read_store(args.store)))


if __name__ == "__main__":
    main()

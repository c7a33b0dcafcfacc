"""mfbo's bandit strategies side by side with their reference implementations (issue #14,
"Checked against the reference code").

Each of mfbo's ``sh``, ``hyperband``, ``asha``, ``bohb`` and ``dehb`` is paired with a published
package run as an mfbo strategy (``experiments/bandit_references.py``, whose docstring says how
each package is driven and charged): :data:`PAIRS`. Three checks:

a. **Evaluations per fidelity over one full Hyperband cycle** (``eta = 3, R = 81, r = 1``) on a
   synthetic problem with the integer fidelity ``1..81`` (:func:`count_problem`): each strategy is
   asked and told sequentially (one worker) until the cycle ends, i.e. just before the first new
   configuration at ``r = 1`` that follows an evaluation above ``r = 1`` (the next cycle's first
   bracket; for successive halving, one bracket) (:func:`cycle_counts`). Ours must equal its
   reference's exactly; both are also compared with Li et al. (2018)'s Table 1
   (:data:`PAPER_CYCLE`). ASHA has no cycle: its counts over the first :data:`ASHA_EVALUATIONS`
   evaluations are shown for information (ours is the promotion variant, the references the
   stopping variant: they are not expected to be equal).
b. **Final regret over seeds** on :data:`PROBLEMS`, each run one :func:`mfbo.minimize` call with
   one worker and bench_real's budget rule (``--budget-evals`` (20) times the mean full-fidelity
   cost, ``bench_real.mean_full_cost``): the median and IQR of the inference regret at 100 % of
   the budget of ours and of the reference, and the two-sided Mann-Whitney U test
   (``scipy.stats.mannwhitneyu``) of ours against the reference; the bar is that it does not reject
   at 0.05. Ours runs with its defaults (Li et al.'s bracket sizes) and, for BOHB and DEHB, also as
   the variants of :data:`VARIANTS`, which take the reference package's bracket sizes (like for
   like). ``random`` runs beside them as the floor.
c. **Overhead per suggested configuration**: the strategy's ask + tell seconds summed over a run
   (the trial log's ``overhead``), divided by the run's number of trials (every trial is one
   suggestion: a new configuration or a promotion), ours / the reference's, over all runs of b.

Storage as ``bench_real.py`` (whose row summary this reuses): logs under ``--out`` (default
``results/bench_reference``, git-ignored), one row per finished run in ``--store`` (default
``experiments/results/bench_reference.csv``, committed), stored runs skipped, ``--rerun NAME`` drops
a strategy's rows and logs, ``--table-only`` re-tabulates. Worker processes start with
``PYTHONHASHSEED=0`` (SMAC's choices follow string hashing, see ``reference_methods``).

Run it from the repository root (``--out`` is relative to the working directory):

    python experiments/bench_reference.py --workers 1                  # everything available
    python experiments/bench_reference.py --strategies hyperband hyperband-smac --workers 1
    python experiments/bench_reference.py --table-only                  # counts + stored tables
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import bandit_references as br
import bench_real
import numpy as np
from _bench import add_store_arguments, drop_logs, drop_strategies, read_store
from scipy.stats import mannwhitneyu

import mfbo
from mfbo.analysis import stats
from mfbo.problems.base import Problem
from mfbo.space import Fidelity, Float, Space
from mfbo.strategies import Strategy

PROBLEMS = ("lcbench/167168", "digits-mlp-table", "mfhartmann6-good")
#: mfbo's strategy -> its reference implementation (bandit_references).
PAIRS = {"sh": "sh-smac", "hyperband": "hyperband-smac", "asha": "asha-synetune", "bohb": "bohb-hpbandster", "dehb": "dehb-ref"}
#: Further strategies shown in the cycle counts (cheap), not run for regret by default: other
#: references, and variants of ours with a reference's bracket sizes.
EXTRA_COUNTS = {"hyperband": ("hyperband-hpbandster",), "asha": ("asha-optuna",), "bohb": ("bohb:bracket_sizes=hpbandster",),
                "dehb": ("dehb:bracket_sizes=dehb",)}
#: Variants of ours with the reference's bracket sizes, run beside the defaults for a like-for-like regret.
VARIANTS = ("bohb:bracket_sizes=hpbandster", "dehb:bracket_sizes=dehb")
STRATEGIES = ("random", *PAIRS, *VARIANTS, *PAIRS.values())
#: Evaluations per resource over one cycle of Hyperband, eta = 3, R = 81, r = 1: Li et al. (2018),
#: Table 1 (brackets of 81, 34, 15, 8 and 5 configurations), summed over its five brackets.
PAPER_CYCLE = {1: 81, 3: 61, 9: 35, 27: 19, 81: 10}
#: Successive halving's one bracket from n = 81 at r = 1 (Jamieson & Talwalkar 2016).
PAPER_SH_BRACKET = {1: 81, 3: 27, 9: 9, 27: 3, 81: 1}
#: The same cycle with hpbandster's and dehb's bracket sizes ``floor((s_max + 1) / (s + 1)) eta^s``
#: (81, 27, 9, 6, 5 configurations): not the paper's.
HPBANDSTER_CYCLE = {1: 81, 3: 54, 9: 27, 27: 15, 81: 10}
#: ASHA has no cycle: counts over this many evaluations (the size of the paper's Hyperband cycle).
ASHA_EVALUATIONS = sum(PAPER_CYCLE.values())
#: Safety cap on the asks of one cycle.
MAX_ASKS = 5000

STORE = Path(__file__).parent / "results" / "bench_reference.csv"
STORE_COLUMNS = (*bench_real.STORE_COLUMNS, "n_configs")
CODE_PATHS = (":/mfbo", ":/experiments/reference_methods.py", ":/experiments/bandit_references.py")


# Strategies -----------------------------------------------------------------------------------------
def make_strategy(label: str, problem: Problem, seed: int) -> Strategy:
    """The reference of that name, or mfbo's strategy by name or variant label
    ``name:option=value,...`` (``bench_real.parse_label``)."""
    if label in br.BANDIT_REFERENCES:
        return br.make(label, problem, seed=seed)
    name, options = bench_real.parse_label(label)
    return mfbo.strategies.make(name, problem, seed=seed, **options)


def unavailable(label: str) -> str | None:
    """Why ``label`` cannot run here (not in mfbo's registry yet, or its package is missing)."""
    if label in br.BANDIT_REFERENCES:
        return br.unavailable(label)
    if bench_real.parse_label(label)[0] not in mfbo.strategies.names():
        return f"{label}: skipped, not in mfbo's strategy registry (yet)"
    return None


def ours_of(label: str) -> str | None:
    """The mfbo strategy that ``label`` is, is a variant of, or is the reference of."""
    name = bench_real.parse_label(label)[0]
    if name in PAIRS:
        return name
    return next((o for o, r in PAIRS.items() if label == r or label in EXTRA_COUNTS.get(o, ())), None)


# a. Evaluations per fidelity over one cycle ------------------------------------------------------------
def count_problem(r_max: int = 81) -> Problem:
    """A cheap deterministic problem with the integer fidelity ``1..r_max`` (cost ``epochs /
    r_max``): ``sum_j (x_j - 0.3)^2 + 1 / epochs``, distinct values so no ties decide anything."""
    space = Space(x1=Float(0.0, 1.0), x2=Float(0.0, 1.0))

    def fn(config: dict[str, Any], epochs: int) -> float:
        return (config["x1"] - 0.3) ** 2 + (config["x2"] - 0.3) ** 2 + 1.0 / epochs

    return Problem.from_function(fn, space, Fidelity("epochs", 1, r_max, integer=True), cost=lambda epochs: epochs / r_max,
                                 name=f"count-1-{r_max}")


def cycle_counts(strategy: Strategy, problem: Problem, max_evaluations: int | None = None) -> dict[int, int]:
    """Evaluations per fidelity value over one cycle (module docstring, a), asked and told one at
    a time; with ``max_evaluations``, over that many evaluations instead (ASHA)."""
    low, counts, above_low = problem.fidelity.low, Counter(), False
    for _ in range(MAX_ASKS if max_evaluations is None else max_evaluations):
        trial = strategy.ask()
        if max_evaluations is None and trial.continues is None and trial.fidelity == low and above_low:
            break
        above_low = above_low or trial.fidelity > low
        counts[trial.fidelity] += 1
        strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
    else:
        if max_evaluations is None:
            raise RuntimeError(f"cycle_counts: {strategy.name}: no cycle ended within {MAX_ASKS} evaluations")
    return dict(sorted(counts.items()))


def counts_table(names: list[str]) -> list[dict[str, Any]]:
    """One row per strategy: its counts, and whether they equal its reference's and the paper's."""
    problem = count_problem()
    counts: dict[str, dict[int, int]] = {}
    for name in names:
        if unavailable(name):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            limit = ASHA_EVALUATIONS if name == "asha" or name.startswith("asha-") else None
            counts[name] = cycle_counts(make_strategy(name, problem, seed=0), problem, limit)
    rows = []
    for name, mine in counts.items():
        ours = ours_of(name)
        paper = None if ours == "asha" else PAPER_SH_BRACKET if ours == "sh" else PAPER_CYCLE
        reference = PAIRS.get(bench_real.parse_label(name)[0])
        rows.append({
            "strategy": name, "counts": mine, "total": sum(mine.values()),
            "equals_reference": None if reference not in counts or ours == "asha" else mine == counts[reference],
            "equals_paper": None if paper is None else mine == paper,
        })
    return rows


def print_counts(rows: list[dict[str, Any]]) -> None:
    levels = sorted({level for row in rows for level in row["counts"]} | set(PAPER_CYCLE))
    print("| strategy | " + " | ".join(f"r = {level}" for level in levels) + " | total | = its reference | = the paper |")
    print("|---|" + "---|" * (len(levels) + 3))
    flag = {None: "-", True: "yes", False: "**no**"}
    for label, counts in (("paper: Hyperband (Li et al. 2018, Table 1)", PAPER_CYCLE), ("paper: SH from n = 81", PAPER_SH_BRACKET),
                          ("hpbandster's / dehb's bracket sizes", HPBANDSTER_CYCLE)):
        print(f"| {label} | " + " | ".join(str(counts.get(level, 0)) for level in levels) + f" | {sum(counts.values())} | - | - |")
    for row in rows:
        print(f"| {row['strategy']} | " + " | ".join(str(row["counts"].get(level, 0)) for level in levels)
              + f" | {row['total']} | {flag[row['equals_reference']]} | {flag[row['equals_paper']]} |")


# b. Runs -----------------------------------------------------------------------------------------------------
def one_run(job: tuple[str, str, int, float, str, int]) -> tuple[str, str, int, float, Path]:
    """One (problem, strategy, seed) run: ``bench_real.one_run`` with this script's strategies,
    its log reused when it is complete (wall time ``nan``)."""
    return bench_real.one_run(job, make=make_strategy)


def summarize(path: Path, seconds: float, commit: str, budget_evals: float, label: str) -> dict[str, Any]:
    """bench_real's row of a finished run, plus the number of new configurations it tried."""
    row = bench_real.summarize(path, seconds, commit, budget_evals, label=label)
    row["n_configs"] = sum(t.get("continues") is None for t in mfbo.runlog.read_run(path).trials)
    return row


def run_jobs(args: argparse.Namespace, jobs: list[tuple]) -> None:
    """The jobs (``bench_real.jobs_to_do``) on ``--workers`` fresh processes, a row of
    :func:`summarize` stored as each finishes (``bench_real.run_jobs``)."""
    bench_real.run_jobs(args, jobs, run=one_run, summarize_run=summarize, columns=STORE_COLUMNS, code_paths=CODE_PATHS)


# b, c. Tables ---------------------------------------------------------------------------------------------
def median_iqr(values: list[float]) -> str:
    if not values:
        return "-"
    q1, q2, q3 = (stats.quantile(values, q) for q in (0.25, 0.5, 0.75))
    return f"{q2:.3g} [{q1:.3g}, {q3:.3g}]"


def mann_whitney(ours: list[float], reference: list[float]) -> float | None:
    """Two-sided Mann-Whitney U p-value, ``None`` without values on both sides."""
    if not ours or not reference:
        return None
    if len(set(ours) | set(reference)) == 1:
        return 1.0  # all equal: nothing to reject
    return float(mannwhitneyu(ours, reference, alternative="two-sided").pvalue)


def compared(rows: list[dict]) -> list[tuple[str, str]]:
    """(ours, reference) for each of ours (or a variant of ours) in ``rows``, in :data:`PAIRS` order."""
    labels = list(dict.fromkeys(r["strategy"] for r in rows))
    return [(label, PAIRS[o]) for o in PAIRS for label in labels if label not in br.BANDIT_REFERENCES and ours_of(label) == o]


def regret_rows(rows: list[dict], problems: list[str], column: str = "regret_100") -> list[dict[str, Any]]:
    """Per (problem, pair): both samples' median [IQR], random's, the test, and the run counts."""
    def values(problem: str, name: str) -> list[float]:
        return [float(r[column]) for r in rows if r["problem"] == problem and r["strategy"] == name]

    out = []
    for problem in problems:
        for ours, reference in compared(rows):
            mine, theirs = values(problem, ours), values(problem, reference)
            if not mine and not theirs:
                continue
            p = mann_whitney(mine, theirs)
            out.append({"problem": problem, "ours": ours, "reference": reference, "ours_regret": median_iqr(mine),
                        "reference_regret": median_iqr(theirs), "random": median_iqr(values(problem, "random")),
                        "p": p, "n": (len(mine), len(theirs)), "passes": None if p is None else p >= 0.05})
    return out


def print_regret(table: list[dict[str, Any]]) -> None:
    print("| problem | ours | median [IQR] | reference | median [IQR] | random | Mann-Whitney p | runs | not rejected at 0.05 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        p = "-" if r["p"] is None else f"{r['p']:.3g}"
        verdict = {None: "-", True: "yes", False: "**no**"}[r["passes"]]
        print(f"| {r['problem']} | {r['ours']} | {r['ours_regret']} | {r['reference']} | {r['reference_regret']} | {r['random']} | "
              f"{p} | {r['n'][0]} / {r['n'][1]} | {verdict} |")


def overhead_per_suggestion(rows: list[dict], name: str) -> float:
    """Total ask + tell seconds over total trials of ``name``'s runs (``nan`` without runs)."""
    mine = [r for r in rows if r["strategy"] == name]
    trials = sum(int(r["n_trials"]) for r in mine)
    return sum(float(r["overhead"]) for r in mine) / trials if trials else math.nan


def print_overhead(rows: list[dict]) -> None:
    print("| ours | ms per suggestion | reference | ms per suggestion | ours / reference | trials per run, ours / reference |")
    print("|---|---|---|---|---|---|")
    for ours, reference in compared(rows):
        a, b = overhead_per_suggestion(rows, ours), overhead_per_suggestion(rows, reference)
        trials = [np.median([int(r["n_trials"]) for r in rows if r["strategy"] == n] or [math.nan]) for n in (ours, reference)]
        ratio = a / b if b > 0 else math.nan
        print(f"| {ours} | {a * 1e3:.3g} | {reference} | {b * 1e3:.3g} | {ratio:.3g} | {trials[0]:.0f} / {trials[1]:.0f} |")


def tables(args: argparse.Namespace, seeds: range) -> None:
    rows = [r for r in read_store(args.store) if r["problem"] in args.problems and int(r["seed"]) in seeds
            and abs(float(r["budget_evals"]) - args.budget_evals) < 1e-6]
    print(f"\n{len(rows)} stored runs at {args.budget_evals:g} x the mean full-fidelity cost, seeds {seeds.start}..{seeds.stop - 1}; "
          f"code versions: {', '.join(sorted({r['commit'] for r in rows})) or '-'}")
    print("\n### b. Final inference regret (100 % of the budget), ours against the reference\n")
    print_regret(regret_rows(rows, args.problems))
    print("\n### c. Overhead (ask + tell) per suggested configuration\n")
    print_overhead(rows)


# Command line ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--budget-evals", type=float, default=20, help="budget in mean full-fidelity costs")
    parser.add_argument("--no-counts", action="store_true", help="skip check a (the cycle counts)")
    add_store_arguments(parser, STORE, "results/bench_reference")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.seed_offset < 0 or args.workers < 1 or not args.budget_evals > 0:
        raise SystemExit("--seeds and --workers must be >= 1, --seed-offset >= 0 and --budget-evals > 0")
    known = set(mfbo.strategies.names()) | set(br.BANDIT_REFERENCES) | set(PAIRS)
    if unknown := [s for s in args.strategies if bench_real.parse_label(s)[0] not in known]:
        raise SystemExit(f"--strategies: unknown {unknown}; known: {', '.join(sorted(known))}")
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    if args.rerun:
        rows, logs = drop_strategies(args.store, args.rerun, STORE_COLUMNS), drop_logs(Path(args.out), args.rerun)
        print(f"dropped {rows} stored rows and {logs} run logs of {', '.join(args.rerun)}")
    if not args.no_counts:
        names = [n for o in PAIRS for n in (o, PAIRS[o], *EXTRA_COUNTS.get(o, ()))]
        print("\n### a. Evaluations per fidelity over one Hyperband cycle (eta = 3, R = 81, r = 1), one worker\n")
        print_counts(counts_table(names))
    if not args.table_only:
        reasons = {name: unavailable(name) for name in args.strategies}
        print("".join(f"{reason}\n" for reason in reasons.values() if reason), end="")
        names = [name for name, reason in reasons.items() if not reason]
        jobs = bench_real.jobs_to_do(args, names, seeds)
        print(f"{len(jobs)} runs to do ({len(read_store(args.store))} rows in {args.store})", flush=True)
        run_jobs(args, jobs)
    tables(args, seeds)


if __name__ == "__main__":
    main()

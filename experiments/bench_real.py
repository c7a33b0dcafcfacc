"""Regret of mfbo's strategies and of reference multi-fidelity optimisers on real HPO benchmarks
(issue #12, "The benchmark that decides it").

Every (problem, strategy, seed) run is one :func:`mfbo.minimize` call on the problem object of
``mfbo.problems.get(name)``; the reference methods (``dehb-ref``, ``smac-mf``, ``optuna-tpe-hb``) run
from their own packages as strategy objects of ``experiments/reference_methods.py`` (its
docstring says how each is charged, for resumption too), so every method is charged exactly what
the problem reports under the same budget rule and logged the same way. A reference method whose
package does not import is skipped with a one-line message (install: ``pip install -e
'.[reference]'``).

- **Problems** (the development set of issue #12; tune defaults only on these): six LCBench tasks,
  two rbv2_xgboost tasks and ``digits-mlp-table`` (:data:`PROBLEMS`; ``--problems development``).
  ``--problems held-out`` is the report set no tuning touched (:data:`HELD_OUT`): the first six
  LCBench tasks and the first two rbv2_xgboost tasks, in YAHPO's task order, that no script or
  test of the repository uses (so not 167168, 189873, 189906 or rbv2_xgboost/40499 either).
- **Budget**: ``--budget-evals`` (default 20) times the mean full-fidelity cost, estimated as the
  mean of ``problem.cost(config, target)`` over the fixed sample
  ``problem.space.sample(numpy.random.default_rng(0), 256)`` (:func:`mean_full_cost`). A problem
  whose cost is not known in advance gets the mean measured cost of target evaluations of the
  first :data:`MEASURED_SAMPLE` configurations of that sample instead, and the script says so.
  A run also ends after :data:`MAX_TRIALS` trials (``mfbo.minimize(max_trials=...)``), whichever
  comes first: YAHPO's runtime surrogate prices some rbv2_xgboost/40923 configurations at
  0.12 s at every fidelity (a target evaluation costs 1228 s on average), and ``mf-ucb``, its
  regret 0 reached at 15 % of the budget (seed 101), spent the last 2 % of it on such
  evaluations at 2 s of ask + tell each (1,330 trials, 50 min, and about 4,500 to go). No
  stored run before the cap had more than 841 trials (nor any of ``bench_reference.py``,
  ``bench_guard.py``, ``bench_fabolas.py`` or ``bench_boil.py``, which run through
  :func:`one_run`: at most 483), so the cap changed none.
- **Seeds**: ``--seeds N`` seeds from ``--seed-offset`` (default 0). Hygiene (issue #12): tune on
  the development seeds 0..4; report with ``--seed-offset 100``, seeds that no tuning saw.
- **Regret at 25 / 50 / 100 % of the budget**: the inference regret (exact target value of the
  recommendation minus the reference value; YAHPO's reference is a random-search best, so regret
  can be negative) of the last trial record whose ``cum_cost <= fraction * budget``, ``+inf``
  when there is none or it has no recommendation (:func:`regret_at_fractions`, with
  :func:`mfbo.analysis.metrics.step_values`). Also stored: the simple regret at 100 % (best value
  observed at the target minus the reference), the share of the spent cost at the target
  fidelity, the strategy's ask + tell seconds summed over the run, the recommend seconds, the
  wall time.
- **Ranks**: per budget fraction, the average rank of each strategy that has a run in every
  (problem, seed) block (the others are named with their run counts), over those blocks and over
  problems scored by their median over seeds; Friedman's test and Nemenyi's critical difference
  (:mod:`mfbo.analysis.stats`) on the blocks. Then **each** ``mf-*`` strategy ranked with the
  opponents alone (``gp-ei``, DEHB, SMAC, Optuna), on the blocks where all of them have a run,
  so a strategy with few runs is ranked on its own blocks without shrinking the main table; and
  the issue's verdict line: among the ``mf-*`` strategies with a run in every block, the best
  (lowest rank at 100 %, then at 50 %) and whether it ranks better than each opponent at both
  100 % and 50 %.

**Variants** for tuning defaults on the development set: a strategy given as
``name:option=value,...`` (``--strategies mf-ucb:init_fraction=0.2``, :func:`parse_label`) runs
with those options and is stored and tabulated under that label, ranked with the opponents like
every ``mf-*`` strategy but never eligible for the verdict, which is about default options.

Storage as in ``bench_quality.py``: the logs go under ``--out`` (default ``results/bench_real``,
git-ignored), each finished run is one row of ``--store`` (default
``experiments/results/bench_real.csv``, committed) with the code version it ran under, runs in
the store are skipped, ``--rerun NAME`` drops a strategy's rows and logs, ``--table-only`` re-tabulates.

    python experiments/bench_real.py                                          # the full benchmark
    python experiments/bench_real.py --strategies random gp-ei dehb-ref smac-mf optuna-tpe-hb --workers 1
    python experiments/bench_real.py --seeds 5 --seed-offset 100 --table-only  # the report seeds
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import reference_methods
import torch
from _bench import add_store_arguments, append_row, budget_shares, drop_logs, drop_strategies, git_commit, parse_label, read_store

import mfbo
from mfbo.analysis import stats
from mfbo.analysis.metrics import step_values
from mfbo.cli import run_file_name
from mfbo.problems.base import Problem

#: The development set of issue #12.
PROBLEMS = (
    "lcbench/3945", "lcbench/7593", "lcbench/126025", "lcbench/146212", "lcbench/168330", "lcbench/189862",
    "rbv2_xgboost/16", "rbv2_xgboost/1497", "digits-mlp-table",
)
#: The report problems no tuning touched (module docstring); chosen by rule, not by result.
HELD_OUT = (
    "lcbench/34539", "lcbench/126026", "lcbench/126029", "lcbench/167104", "lcbench/167149", "lcbench/167152",
    "rbv2_xgboost/40923", "rbv2_xgboost/41143",
)
#: Names ``--problems`` accepts for the two sets.
PROBLEM_SETS = {"development": PROBLEMS, "held-out": HELD_OUT}
MF_STRATEGIES = ("mf-kg", "mf-mes", "mf-gibbon", "mf-ei", "mf-ucb")
#: The methods the best ``mf-*`` strategy must beat (issue #12's goal).
OPPONENTS = ("gp-ei", "dehb-ref", "smac-mf", "optuna-tpe-hb")
STRATEGIES = ("random", "gp-ei", *MF_STRATEGIES, "dehb-ref", "smac-mf", "optuna-tpe-hb")
FRACTIONS = (0.25, 0.5, 1.0)
#: The most trials of a run (module docstring, Budget).
MAX_TRIALS = 1000
#: The configurations whose mean target cost sets the budget (see the module docstring).
COST_SAMPLE, COST_SEED = 256, 0
#: Target evaluations measured when a problem does not know its cost in advance.
MEASURED_SAMPLE = 16

STORE = Path(__file__).parent / "results" / "bench_real.csv"
STORE_COLUMNS = (
    "problem", "strategy", "seed", "budget_evals", "budget", "regret_25", "regret_50", "regret_100", "simple_regret_100",
    "n_trials", "share_target", "overhead", "recommend_seconds", "seconds", "options", "commit",
)
#: The code a stored row depends on besides the package (its version goes into ``commit``).
CODE_PATHS = (":/mfbo", ":/experiments/reference_methods.py")
#: The environment of the worker processes (started fresh, "spawn"): SMAC's choices follow
#: Python's string hashing (reference_methods' docstring), so a fixed hash seed makes every run
#: reproducible in any process.
WORKER_ENV = {"PYTHONHASHSEED": "0"}


# Budget ------------------------------------------------------------------------------------------
def mean_full_cost(problem: Problem) -> tuple[float, str]:
    """The mean target-fidelity cost over the fixed configuration sample, and how it was had."""
    configs = problem.space.sample(np.random.default_rng(COST_SEED), COST_SAMPLE)
    costs = [problem.cost(config, problem.target_fidelity) for config in configs]
    if all(c is not None for c in costs):
        return float(np.mean(costs)), f"mean cost model over {COST_SAMPLE} random configurations"
    measured = [problem.evaluate(config).cost for config in configs[:MEASURED_SAMPLE]]
    return float(np.mean(measured)), f"no cost model: mean measured cost of {MEASURED_SAMPLE} target evaluations"


# One run -----------------------------------------------------------------------------------------
def make_strategy(label: str, problem: Problem, seed: int) -> mfbo.strategies.Strategy:
    """An mfbo strategy by registry name or variant label (:func:`parse_label`), or a reference
    method of ``reference_methods``."""
    name, options = parse_label(label)
    if name in reference_methods.REFERENCE_STRATEGIES:
        return reference_methods.make(name, problem, seed=seed)
    return mfbo.strategies.make(name, problem, seed=seed, **options)


def finished_log(path: Path, budget: float) -> bool:
    """Whether ``path`` is a complete run log of the same budget (it is then reused)."""
    if not path.exists():
        return False
    run = mfbo.runlog.read_run(path)
    return run.complete and math.isclose(run.header["spec"]["budget"], budget, rel_tol=1e-9)


def one_run(job: tuple[str, str, int, float, str, int], make: Callable[[str, Problem, int], mfbo.strategies.Strategy] = make_strategy) -> tuple[str, str, int, float, Path]:
    """Run one (problem, strategy, seed) with a budget, the strategy built by ``make``; a
    finished log is reused, not rerun (its wall time is then unknown: ``nan``)."""
    problem_name, strategy, seed, budget, out, threads = job
    torch.set_num_threads(threads)
    path = Path(out) / run_file_name(problem_name, strategy, seed)
    if finished_log(path, budget):
        return problem_name, strategy, seed, math.nan, path
    problem = mfbo.problems.get(problem_name)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mfbo.minimize(problem, make(strategy, problem, seed), budget, log_path=path, max_trials=MAX_TRIALS)
    return problem_name, strategy, seed, time.perf_counter() - start, path


# Summaries -----------------------------------------------------------------------------------------
def regret_at_fractions(trials: list[dict], budget: float, fractions=FRACTIONS) -> list[float]:
    """The regret of the last record with ``cum_cost <= fraction * budget`` for each fraction
    (``+inf`` when there is no such record or it has no regret). ``fraction * budget`` gets the
    run loop's round-off tolerance of ``1e-9`` of the budget."""
    spent = [t["cum_cost"] / budget for t in trials]
    regrets = [math.inf if t.get("regret") is None else t["regret"] for t in trials]
    return [float(r) for r in step_values(spent, regrets, np.asarray(fractions, dtype=float) + 1e-9)]


def summarize(path: Path, seconds: float, commit: str, budget_evals: float, label: str | None = None) -> dict:
    """One store row from a finished run log, under ``label`` (default: the logged strategy)."""
    run = mfbo.runlog.read_run(path)
    spec, trials = run.header["spec"], run.trials
    regrets = regret_at_fractions(trials, spec["budget"])
    optimum, best = run.header["problem"].get("optimum"), trials[-1].get("best_value") if trials else None
    paid = [t for t in trials if t.get("cost") is not None]
    fidelity = mfbo.problems.get(spec["problem"]).fidelity
    share_target = budget_shares(fidelity, [t["fidelity"] for t in paid], [t["cost"] for t in paid])[0] if paid else 0.0
    return {
        "problem": spec["problem"], "strategy": label or spec["strategy"], "seed": spec["seed"], "budget_evals": budget_evals,
        "budget": spec["budget"], "regret_25": regrets[0], "regret_50": regrets[1], "regret_100": regrets[2],
        "simple_regret_100": math.inf if best is None or optimum is None else best - optimum,
        "n_trials": len(trials), "share_target": share_target,
        "overhead": round(sum(t.get("overhead") or 0.0 for t in trials), 3),
        "recommend_seconds": round(sum(t.get("recommend_time") or 0.0 for t in trials), 3),
        "seconds": "" if math.isnan(seconds) else round(seconds, 1),
        "options": json.dumps(spec["options"], sort_keys=True), "commit": commit,
    }


def stored_key(row: dict) -> tuple[str, str, int, float]:
    return row["problem"], row["strategy"], int(row["seed"]), round(float(row["budget_evals"]), 6)


# Tables ----------------------------------------------------------------------------------------------
def regret_column(fraction: float) -> str:
    return f"regret_{round(fraction * 100)}"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"


def finals_frame(rows: list[dict], column: str) -> pd.DataFrame:
    """``problem, label, seed, final`` of one stored column (the input of ``stats.score_matrix``)."""
    return pd.DataFrame({
        "problem": [r["problem"] for r in rows], "label": [r["strategy"] for r in rows],
        "seed": [int(r["seed"]) for r in rows], "final": [float(r[column]) for r in rows],
    })


def print_median_table(rows: list[dict], problems: list[str], strategies: list[str], column: str, seeds: int) -> None:
    """Median [IQR] over seeds per problem and strategy; the best median in bold."""
    print("| problem | " + " | ".join(strategies) + " |")
    print("|---|" + "---|" * len(strategies))
    for problem in problems:
        cells, medians = [], {}
        for strategy in strategies:
            values = [float(r[column]) for r in rows if r["problem"] == problem and r["strategy"] == strategy]
            if not values:
                cells.append("-")
                continue
            q1, medians[strategy], q3 = (stats.quantile(values, q) for q in (0.25, 0.5, 0.75))
            cells.append(f"{medians[strategy]:.3g} [{q1:.2g}, {q3:.2g}]" + ("" if len(values) == seeds else f" (n={len(values)})"))
        best = min(medians, key=medians.get) if medians else None
        print(f"| {problem} | " + " | ".join(f"**{c}**" if s == best else c for s, c in zip(strategies, cells)) + " |")


def rank_summary(rows: list[dict], strategies: list[str], column: str) -> dict:
    """Average ranks over (problem, seed) blocks and over problem medians, with the Friedman test
    and the Nemenyi critical difference on the (problem, seed) blocks (``None`` when undefined)."""
    finals = finals_frame([r for r in rows if r["strategy"] in strategies], column)
    blocks = stats.score_matrix(finals, blocks="problem-seed").reindex(columns=strategies)
    blocks = blocks[~blocks.isna().any(axis=1)]
    medians = stats.score_matrix(finals, blocks="problem").reindex(columns=strategies)
    medians = medians[~medians.isna().any(axis=1)]
    k, n = len(strategies), len(blocks)
    return {
        "ranks": stats.average_ranks(blocks) if n else None, "n_blocks": n,
        "median_ranks": stats.average_ranks(medians) if len(medians) else None, "n_problems": len(medians),
        "friedman": stats.friedman(blocks) if k >= 3 and n >= 2 else None,
        "cd": stats.nemenyi_cd(k, n) if k >= 2 and n >= 1 else None,
    }


def print_ranks(summaries: dict[float, dict], strategies: list[str], incomplete: dict[str, int], expected: int) -> None:
    full = summaries[1.0]
    print(f"Over {full['n_blocks']} (problem, seed) blocks with a run of every strategy; "
          f"'problems' ranks the medians over seeds of {full['n_problems']} problems.\n")
    print("| strategy | " + " | ".join(f"rank at {percent(f)}" for f in FRACTIONS) + " | rank at 100 %, problems |")
    print("|---|" + "---|" * (len(FRACTIONS) + 1))
    for strategy in strategies:
        cells = [f"{s['ranks'][strategy]:.2f}" if s["ranks"] is not None else "-" for s in summaries.values()]
        cells.append(f"{full['median_ranks'][strategy]:.2f}" if full["median_ranks"] is not None else "-")
        print(f"| {strategy} | " + " | ".join(cells) + " |")
    if incomplete:
        print("\nNot in this table, runs missing: " + ", ".join(f"{s} ({n} of {expected})" for s, n in incomplete.items()))
    print()
    for fraction, s in summaries.items():
        if s["friedman"] is None:
            print(f"- at {percent(fraction)}: too few strategies or blocks for the Friedman test")
            continue
        fr = s["friedman"]
        print(f"- at {percent(fraction)}: Friedman chi2 = {fr.chi2:.2f}, p = {fr.p_value:.3g} (Iman-Davenport p = {fr.iman_davenport_p:.3g}); "
              f"Nemenyi CD (alpha 0.05) = {s['cd']:.2f} for {fr.n_labels} strategies over {fr.n_blocks} blocks")


def head_to_head(rows: list[dict], strategies: list[str]) -> dict[str, dict[float, dict]]:
    """For each ``mf-*`` strategy of ``strategies``: :func:`rank_summary` of it and the opponents
    present, on the blocks where all of them have a run (so a strategy with few runs is still
    ranked, on its own blocks, and does not shrink anyone else's table)."""
    opponents = [s for s in OPPONENTS if s in strategies]
    return {
        mf: {f: rank_summary(rows, [mf, *opponents], regret_column(f)) for f in FRACTIONS}
        for mf in strategies if parse_label(mf)[0] in MF_STRATEGIES
    }


def print_head_to_head(duels: dict[str, dict[float, dict]]) -> None:
    print("| strategy | blocks | " + " | ".join(f"rank at {percent(f)}" for f in FRACTIONS)
          + " | best opponent at 50 % | best opponent at 100 % |")
    print("|---|---|" + "---|" * (len(FRACTIONS) + 2))
    for mf, summaries in duels.items():
        if summaries[1.0]["ranks"] is None:
            print(f"| {mf} | 0 |" + " - |" * (len(FRACTIONS) + 2))
            continue
        cells = [f"{summaries[f]['ranks'][mf]:.2f}" for f in FRACTIONS]
        for f in (0.5, 1.0):
            others = summaries[f]["ranks"].drop(mf)
            cells.append(f"{others.idxmin()} {others.min():.2f}" if len(others) else "-")
        print(f"| {mf} | {summaries[1.0]['n_blocks']} | " + " | ".join(cells) + " |")


def verdict(duels: dict[str, dict[float, dict]], complete: list[str]) -> str | None:
    """Issue #12's goal: does the best ``mf-*`` strategy rank better than every opponent present
    at 100 % and at 50 % of the budget? Ranked among itself and the opponents (:func:`head_to_head`);
    only strategies with default options and a run in every block (``complete``) qualify."""
    if not duels:
        return None
    eligible = [s for s in duels if s in MF_STRATEGIES and s in complete and duels[s][1.0]["ranks"] is not None]
    if not eligible:
        return f"best mf-* strategy: none has a run in every block ({', '.join(duels)}): no verdict"
    best = min(eligible, key=lambda s: (duels[s][1.0]["ranks"][s], duels[s][0.5]["ranks"][s]))
    at_full, at_half = duels[best][1.0]["ranks"], duels[best][0.5]["ranks"]
    opponents = [s for s in at_full.index if s != best]
    beaten = {s: at_full[best] < at_full[s] and at_half[best] < at_half[s] for s in opponents}
    each = ", ".join(f"{s}: {'yes' if won else 'no'}" for s, won in beaten.items())
    overall = "yes" if beaten and all(beaten.values()) else "no"
    return (f"best mf-* strategy: {best}, ranked with the opponents over {duels[best][1.0]['n_blocks']} blocks: "
            f"rank at 100 %: {at_full[best]:.2f}, at 50 %: {at_half[best]:.2f}, "
            f"beats {'/'.join(opponents) or '(no opponent run)'}: {overall} ({each})")


def print_costs(rows: list[dict], strategies: list[str]) -> None:
    print("| strategy | share of the budget at the target | ask + tell s per run | recommend s per run | wall s per run | trials per run |")
    print("|---|---|---|---|---|---|")
    for strategy in strategies:
        mine = [r for r in rows if r["strategy"] == strategy]
        if not mine:
            continue
        median = lambda key: np.median([float(r[key]) for r in mine if r[key] not in ("", None)] or [math.nan])  # noqa: E731
        print(f"| {strategy} | {median('share_target'):.0%} | {median('overhead'):.1f} | {median('recommend_seconds'):.1f} | "
              f"{median('seconds'):.1f} | {median('n_trials'):.0f} |")


def recommendation_rules(rows: list[dict]) -> str:
    """``"mf-kg: auto 30, evaluated 15; ..."``: the ``recommendation`` options of the strategies
    whose stored runs ran under more than one (``gp-ei`` had none before it had rules); the rule
    changes what a row's regret scores, not the search (``mfbo.strategies.mf_gp``, step 5).
    Empty when no strategy's runs differ."""
    rules: dict[str, Counter] = {}
    for r in rows:
        rule = json.loads(r.get("options") or "{}").get("recommendation", "(not an option)")
        rules.setdefault(r["strategy"], Counter())[rule] += 1
    return "; ".join(f"{s}: " + ", ".join(f"{rule} {n}" for rule, n in sorted(c.items())) for s, c in sorted(rules.items()) if len(c) > 1)


def table(rows: list[dict], problems: list[str], strategies: list[str], seeds: range, budget_evals: float) -> None:
    rows = [r for r in rows if r["problem"] in problems and r["strategy"] in strategies and int(r["seed"]) in seeds
            and abs(float(r["budget_evals"]) - budget_evals) < 1e-6]
    present = [s for s in strategies if any(r["strategy"] == s for r in rows)]
    expected = len(problems) * len(strategies) * len(seeds)
    print(f"\n{len(rows)} stored runs at {budget_evals:g} x the mean full-fidelity cost, seeds {seeds.start}..{seeds.stop - 1}"
          + (f" ({expected - len(rows)} of {expected} missing)" if len(rows) < expected else ""))
    print(f"code versions of the stored runs: {', '.join(sorted({r['commit'] for r in rows})) or '-'}")
    mixed = recommendation_rules(rows)
    if mixed:
        print(f"recommendation rules of the stored runs (a strategy's runs under different rules): {mixed}")
    if not rows:
        return
    for fraction in reversed(FRACTIONS):
        print(f"\n### Median inference regret [IQR] over seeds at {percent(fraction)} of the budget\n")
        print_median_table(rows, problems, present, regret_column(fraction), len(seeds))
    print("\n### Median simple regret (best observed at the target) at 100 % of the budget\n")
    print_median_table(rows, problems, present, "simple_regret_100", len(seeds))
    blocks = len(problems) * len(seeds)
    runs = {s: sum(r["strategy"] == s for r in rows) for s in present}
    complete = [s for s in present if runs[s] == blocks]
    ranked = complete if len(complete) >= 2 else present
    print("\n### Average rank (1 = best) of the inference regret\n")
    summaries = {f: rank_summary(rows, ranked, regret_column(f)) for f in FRACTIONS}
    print_ranks(summaries, ranked, {s: runs[s] for s in present if s not in ranked}, blocks)
    duels = head_to_head(rows, present)
    if duels:
        print("\n### Each mf-* strategy ranked with the opponents, on the blocks where all of them have a run\n")
        print_head_to_head(duels)
        print(f"\n{verdict(duels, complete)}")
    print("\n### Budget at the target fidelity and time, medians over runs\n")
    print_costs(rows, present)


# Command line -----------------------------------------------------------------------------------------
def runnable(strategies: list[str]) -> list[str]:
    """The strategies that can run here; a reference method whose package does not import is
    dropped with a one-line message."""
    kept = []
    for name in strategies:
        reason = reference_methods.unavailable(name) if name in reference_methods.REFERENCE_STRATEGIES else None
        if reason:
            print(reason)
        else:
            kept.append(name)
    return kept


def resolve_names(problems: list[str], strategies: list[str]) -> list[str]:
    """The problems with groups expanded (``yahpo-so:lcbench``, say); an unknown problem or
    strategy ends the script with the known ones."""
    known = set(mfbo.strategies.names()) | set(reference_methods.REFERENCE_STRATEGIES)
    unknown = [s for s in strategies if parse_label(s)[0] not in known]
    if unknown:
        raise SystemExit(f"--strategies: unknown {unknown}; known: {', '.join(sorted(known))}")
    with_options = [s for s in strategies if parse_label(s)[0] in reference_methods.REFERENCE_STRATEGIES and parse_label(s)[1]]
    if with_options:
        raise SystemExit(f"--strategies: {with_options}: the reference methods take no options here")
    problems = [name for p in problems for name in PROBLEM_SETS.get(p, (p,))]
    try:
        return mfbo.problems.expand(problems)
    except ValueError as err:
        raise SystemExit(f"--problems: {err}") from None


def jobs_to_do(args: argparse.Namespace, strategies: list[str], seeds: range) -> list[tuple]:
    """The runs not in the store, seed-major (an interrupted benchmark has every cell at the first
    seeds), each with its problem's budget."""
    done = {stored_key(r) for r in read_store(args.store)}
    budgets = {}
    for problem in args.problems:
        if any((problem, s, seed, round(args.budget_evals, 6)) not in done for s in strategies for seed in seeds):
            mean, how = mean_full_cost(mfbo.problems.get(problem))
            budgets[problem] = args.budget_evals * mean
            print(f"{problem}: budget {budgets[problem]:.6g} = {args.budget_evals:g} x {mean:.6g} ({how})", flush=True)
    return [(p, s, seed, budgets[p], args.out, args.threads) for seed in seeds for p in args.problems for s in strategies
            if (p, s, seed, round(args.budget_evals, 6)) not in done]


@contextmanager
def worker_environment() -> Iterator[None]:
    """:data:`WORKER_ENV` in ``os.environ`` while worker processes start, restored after."""
    saved = {key: os.environ.get(key) for key in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_jobs(
    args: argparse.Namespace, jobs: list[tuple], *, run: Callable[[tuple], tuple] = one_run,
    summarize_run: Callable[..., dict] = summarize, columns: Sequence[str] = STORE_COLUMNS, code_paths: Sequence[str] = CODE_PATHS,
) -> None:
    """Run the jobs with ``run`` (a module-level function: it goes to ``--workers`` fresh
    processes), storing the row ``summarize_run`` makes of each run as it finishes; another
    benchmark passes its own (``bench_reference.py``)."""
    commit, start = git_commit(code_paths), time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with worker_environment(), ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        for future in as_completed(futures):
            problem, strategy, seed, seconds, path = future.result()
            append_row(args.store, summarize_run(path, seconds, commit, args.budget_evals, label=strategy), columns)
            took = "from its finished log" if math.isnan(seconds) else f"in {seconds:.0f} s"
            print(f"done {problem} {strategy} seed {seed} {took}", flush=True)
    print(f"\n{len(jobs)} runs in {time.perf_counter() - start:.0f} s with {args.workers} workers")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), help="problems, groups (mfbo list problems), or the sets 'development' / 'held-out'")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--seed-offset", type=int, default=0, help="first seed (report seeds: 100)")
    parser.add_argument("--budget-evals", type=float, default=20, help="budget in mean full-fidelity costs")
    add_store_arguments(parser, STORE, "results/bench_real")
    args = parser.parse_args(argv)
    for flag, value, allowed in (("--seeds", args.seeds, 1), ("--seed-offset", args.seed_offset, 0),
                                 ("--workers", args.workers, 1), ("--threads", args.threads, 1)):
        if value < allowed:
            raise SystemExit(f"{flag} must be an integer >= {allowed}, got {value}")
    if not args.budget_evals > 0:
        raise SystemExit(f"--budget-evals must be > 0, got {args.budget_evals}")
    args.problems = resolve_names(args.problems, args.strategies)
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    if args.rerun:
        rows, logs = drop_strategies(args.store, args.rerun, STORE_COLUMNS), drop_logs(Path(args.out), args.rerun)
        print(f"dropped {rows} stored rows and {logs} run logs of {', '.join(args.rerun)}")
    if not args.table_only:
        jobs = jobs_to_do(args, runnable(args.strategies), seeds)
        print(f"{len(jobs)} runs to do ({len(read_store(args.store))} rows in {args.store})", flush=True)
        run_jobs(args, jobs)
    table(read_store(args.store), args.problems, args.strategies, seeds, args.budget_evals)  # stored rows of any strategy


if __name__ == "__main__":
    main()

"""The ``mfbo`` command line.

::

    mfbo list [problems|strategies]
    mfbo run --problem NAME --strategy NAME --budget B [--seed S] [--out DIR] [--option key=value ...]
             [--guard-every K] [--guard-on-change] [--guard-max-share S]   (see mfbo.strategies.guard)
    mfbo show RUN.jsonl
    mfbo study run FILE.toml [--workers N | --scheduler ADDRESS]   (see mfbo.study.commands)
    mfbo study status FILE.toml
    mfbo calibrate PROBLEM --configs N [--levels F ...] [--seed S] [--out DIR] [--top Q ...]
    mfbo record PROBLEM --configs N --out TABLE.npz [--fidelities F ...] [--seed S] [--problem-option key=value ...]
    mfbo plot STUDY_DIR [--out FIGDIR] [--stat median|mean] [--alpha A] [--target R]   (see mfbo.analysis.report)
    mfbo dashboard RESULTS_DIR|RUN.jsonl|ARCHIVE.tar.xz [--port P] [--refresh S]   (see mfbo.dashboard)

User mistakes (an unknown name, a bad option, a negative budget, a missing file, an output
folder that cannot be written) end with one ``mfbo: error: ...`` line on stderr and exit status
2, never a traceback. Commands that write check their output folder before any work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import problems, strategies
from .loop import ProblemError, StrategyError, minimize
from .runlog import read_run
from .signature import wrap_options
from .strategies.guard import guard_summary

EXIT_USAGE = 2


class CLIError(Exception):
    """A user mistake, reported as one line."""


def parse_options(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["n_init=5", "kernel=matern"]`` -> ``{"n_init": 5, "kernel": "matern"}`` (values parsed as JSON when they can be)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"{flag} expects key=value, got {pair!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def writable_dir(path: str | Path, flag: str) -> Path:
    """``path`` as a directory this process can write to (created if missing), checked before any
    work is done; otherwise a :class:`CLIError` naming ``flag`` and the reason."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise CLIError(f"cannot write to {flag} {path}: {err.strerror or err}") from None
    return path


def _fmt(value: Any, spec: str = ".6g") -> str:
    return "-" if value is None else format(value, spec) if isinstance(value, (int, float)) else str(value)


def cmd_list(args: argparse.Namespace) -> int:
    indent = "  " if args.what is None else ""
    if args.what in (None, "problems"):
        if args.what is None:
            print("problems:")
        for name in problems.names():
            print(f"{indent}{name}")
        for family, members in problems.families().items():
            more = ", ..." if len(members) > 4 else ""
            print(f"{indent}{family}/<instance>  ({len(members)} instances: {', '.join(members[:4])}{more})")
        for group in problems.groups():
            print(f"{indent}{group}  (group of {len(problems.expand(group))} problems, for studies)")
    if args.what in (None, "strategies"):
        if args.what is None:
            print("strategies:")
        for name in strategies.names():
            print(f"{indent}{name}{_summary(name)}")
            options = strategies._lookup(name).option_signature().values()
            if options:
                print("\n".join(wrap_options(options, indent=indent + "    ")))
    return 0


def _summary(strategy: str) -> str:
    """``"  - <first line of the strategy's docstring>"`` without reST markup, or nothing."""
    doc = (strategies._lookup(strategy).__doc__ or "").strip().splitlines()
    line = re.sub(r":\w+:`~?([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], doc[0] if doc else "")
    line = line.replace("``", "").replace(" (module docstring)", "").rstrip(".")
    room = 100 - 6 - len(strategy)  # the listing stays within 100 columns
    line = line if len(line) <= room else line[: room - 3].rstrip(" ,;:") + "..."
    return f"  - {line}" if line else ""


def safe_name(text: str) -> str:
    """``text`` for a file name: every run of characters other than letters, digits, ``_``,
    ``.`` and ``-`` becomes one ``_`` (so ``rs/a`` and ``rs_a`` give the same name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def run_file_name(problem: str, strategy: str, seed: int) -> str:
    return f"{safe_name(problem)}__{safe_name(strategy)}__seed{seed}.jsonl"


def cmd_run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)  # an application entry point may set it; the library never does
    options = parse_options(args.option, "--option")
    problem_options = parse_options(args.problem_option, "--problem-option")
    problem = problems.get(args.problem, **problem_options)
    guard = guard_option(args)
    if guard is not None:
        options["guard"] = guard
    strategy = strategies.make(args.strategy, problem, seed=args.seed, **options)
    label = args.strategy + ("+guard" if "guard" in options else "")  # a guarded run does not overwrite an unguarded one
    path = writable_dir(args.out, "--out") / run_file_name(args.problem, label, args.seed)
    result = minimize(
        problem, strategy, args.budget, log_path=path, progress=not args.quiet,
        max_trials=args.max_trials, log_header={"label": label} if label != args.strategy else None,
    )
    n_failed = sum(t.status == "failed" for t in result.trials)
    print(f"{len(result.trials)} trials ({n_failed} failed), cost {result.total_cost:.4g} of {args.budget:g}; stopped: {result.stop_reason}")
    print(f"recommendation: {json.dumps(result.recommendation)}")
    print(f"target value {_fmt(result.recommendation_value)}   regret {_fmt(result.regret)}   best observed {_fmt(result.best_value)}")
    print(f"log: {path}")
    return 0


def guard_option(args: argparse.Namespace) -> dict[str, Any] | None:
    """The bias guard of ``mfbo run``'s ``--guard-*`` flags (``None`` without them)."""
    if args.guard_every is None and not args.guard_on_change:
        if args.guard_max_share is not None:
            raise CLIError("--guard-max-share needs --guard-every K and/or --guard-on-change")
        return None
    guard = {"every": args.guard_every, "on_change": args.guard_on_change}
    if args.guard_max_share is not None:
        guard["max_share"] = args.guard_max_share
    try:
        strategies.GuardOptions.parse(guard)
    except ValueError as err:
        raise CLIError(f"--guard-*: {err}") from None
    return guard


def cmd_show(args: argparse.Namespace) -> int:
    path = Path(args.run)
    if not path.is_file():
        raise CLIError(f"no such run file: {path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = read_run(path)
    spec = run.header.get("spec", {})
    versions = run.header.get("versions", {})
    print(f"run       {path}")
    print(f"problem   {spec.get('problem')}  {json.dumps(spec.get('problem_options') or {})}")
    print(f"strategy  {spec.get('strategy')}  {json.dumps(spec.get('options') or {})}")
    print(f"seed      {spec.get('seed')}    budget {spec.get('budget')}")
    print("versions  " + "  ".join(f"{k} {v}" for k, v in versions.items()))
    state = "complete" if run.complete else "INCOMPLETE (no footer: the run was interrupted or is still running)"
    print(f"status    {state}" + ("; last line truncated" if run.truncated else ""))
    for w in caught:
        print(f"warning   {w.message}")
    trials = run.trials
    failed = [t for t in trials if t.get("status") == "failed"]
    cost = trials[-1]["cum_cost"] if trials else 0.0
    print(f"trials    {len(trials)} ({len(failed)} failed), cost {cost:.4g}")
    for line in budget_by_fidelity(trials, (run.header.get("problem") or {}).get("fidelity") or {}):
        print(line)
    if trials:
        last = trials[-1]
        print(f"recommendation {json.dumps(last.get('recommendation'))}")
        print(f"target value {_fmt(last.get('rec_value'))}   regret {_fmt(last.get('regret'))}   best observed {_fmt(last.get('best_value'))}")
        overhead = sum(t.get("overhead") or 0.0 for t in trials) / len(trials)
        print(f"overhead  {overhead:.3g} s per trial (ask + tell)")
    for line in guard_summary(trials, cost):
        print(line)
    for t in failed[:5]:
        print(f"failed    trial {t['id']}: {t.get('error')}")
    if run.footer:
        print(f"stopped   {run.footer.get('stop_reason')}")
    return 0


#: More distinct fidelity values than this are grouped into ranges by ``mfbo show``.
MAX_FIDELITY_ROWS = 6


def budget_by_fidelity(trials: list[dict[str, Any]], fidelity: dict[str, Any]) -> list[str]:
    """Where the budget went: one line per fidelity (per range of fidelities, with more than
    :data:`MAX_FIDELITY_ROWS` values: four equal ranges below the target), with its trials and
    share of the cost; nothing for a problem without a fidelity."""
    values = [t.get("fidelity") for t in trials]
    if not trials or all(v is None for v in values):
        return []
    target = fidelity.get("target")
    numeric = all(isinstance(v, (int, float)) for v in values)
    if numeric and len(set(values)) > MAX_FIDELITY_ROWS:
        below = [v for v in values if v != target] or [target]
        low, high = min(below), max(below)
        edges = [low + (high - low) * k / 4 for k in range(5)]

        def key(v: float) -> tuple[float, float]:
            return (v, v) if v == target else next((edges[k], edges[k + 1]) for k in range(4) if v <= edges[k + 1] or k == 3)
    else:
        def key(v: Any) -> Any:
            return v
    groups: dict[Any, list[float]] = defaultdict(lambda: [0, 0.0])
    for t in trials:
        groups[key(t.get("fidelity"))][0] += 1
        groups[key(t.get("fidelity"))][1] += t.get("cost") or 0.0
    total = sum(c for _, c in groups.values()) or 1e-300
    name = fidelity.get("name", "fidelity")
    lines = [f"budget by fidelity ({name}; target {_fmt(target, '.4g')}):"]
    for group, (n, c) in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0])):
        text = (f"{_fmt(group[0], '.3g')}-{_fmt(group[1], '.3g')}" if isinstance(group, tuple) and group[0] != group[1]
                else _fmt(group[0] if isinstance(group, tuple) else group, ".4g"))
        text += " (target)" if group == target or group == (target, target) else ""
        lines.append(f"  {text:<20} {n:>4} trials  {c / total:>4.0%} of cost")
    return lines


def configuration_progress(command: str, quiet: bool) -> Callable[[int, int], None]:
    """A ``callback(done, total)`` that prints every tenth of the configurations on stderr."""

    def report(done: int, total: int) -> None:
        if not quiet and (done == total or done % max(total // 10, 1) == 0):
            print(f"{command}: {done}/{total} configurations", file=sys.stderr)

    return report


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import calibrate

    writable_dir(args.out, "--out")
    report_progress = configuration_progress("calibrate", args.quiet)
    report = calibrate(
        args.problem, args.configs, args.levels, seed=args.seed, top_fractions=args.top,
        problem_options=parse_options(args.problem_option, "--problem-option"), callback=report_progress,
    )
    base = Path(args.out) / report.file_stem()
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path = base.with_name(base.name + ".json")
    json_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    pdf, png = report.plot(base)
    print(report.to_markdown())
    print(f"\njson: {json_path}\nfigure: {pdf}, {png}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from .problems.tabular import TabularProblem, record_table

    report_progress = configuration_progress("record", args.quiet)

    writable_dir(Path(args.out).parent, "the folder of --out")
    path = record_table(
        args.problem, args.out, args.configs, args.fidelities, seed=args.seed,
        problem_options=parse_options(args.problem_option, "--problem-option"), progress=report_progress,
    )
    table = TabularProblem(path)
    failed = len({i for i, _, _ in table.meta["failures"]})
    print(f"recorded {table.n_configs} configurations x {len(table.grid)} fidelities of {args.problem} ({failed} failed); "
          f"best target value {_fmt(table.optimum)}; {path.stat().st_size / 1e6:.3g} MB")
    print(f"table: {path}  (replay: --problem table --problem-option path={path})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    study = Path(args.study_dir)
    if not study.exists():
        raise CLIError(f"no such study directory: {study}")
    from .analysis import write_report

    out = writable_dir(args.out if args.out is not None else study / "figures", "--out" if args.out is not None else "the figures folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = write_report(study, out, metric=args.metric, stat=args.stat, alpha=args.alpha, blocks=args.blocks,
                               target=args.target, complete_only=not args.include_incomplete)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print(f"mfbo plot: {w.message}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .dashboard import serve

    try:
        serve(args.source, port=args.port, refresh=args.refresh, notes=lambda line: print(f"mfbo dashboard: {line}", file=sys.stderr))
    except KeyboardInterrupt:
        print("mfbo dashboard: stopped", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mfbo", description="Multi-fidelity Bayesian optimisation with Gaussian processes.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered problems or strategies")
    p.add_argument("what", nargs="?", choices=["problems", "strategies"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one optimisation and write its trial log")
    p.add_argument("--problem", required=True, help="a registered problem (see `mfbo list problems`)")
    p.add_argument("--strategy", required=True, help="a registered strategy (see `mfbo list strategies`)")
    p.add_argument("--budget", required=True, type=float, help="total cost, in the problem's cost units")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs", help="directory for the trial log (default: runs)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a strategy option (repeatable)")
    p.add_argument("--problem-option", action="append", metavar="KEY=VALUE", help="a problem option (repeatable)")
    p.add_argument("--max-trials", type=int, default=None)
    p.add_argument("--guard-every", type=int, default=None, metavar="K",
                   help="bias guard: evaluate the recommendation at the target fidelity every K trials")
    p.add_argument("--guard-on-change", action="store_true", help="bias guard: ... whenever the recommendation changes")
    p.add_argument("--guard-max-share", type=float, default=None, metavar="S",
                   help="bias guard: guard trials cost at most this share of the budget (default 0.25)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for this process (1 is often fastest for small GPs on few cores)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("show", help="summarise a run log")
    p.add_argument("run", help="a run file (.jsonl)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("calibrate", help="measure each fidelity's cost, bias and rank agreement with the target")
    p.add_argument("problem", help="a registered problem with a fidelity (see `mfbo list problems`)")
    p.add_argument("--configs", required=True, type=int, metavar="N", help="number of sampled configurations (>= 10 for the top 10%%)")
    p.add_argument("--levels", nargs="+", type=float, metavar="F",
                   help="fidelity values in natural units (the target is always added; default: a geometric ladder)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configuration sample")
    p.add_argument("--out", default="results/calibration", help="directory for the JSON file and the figure (default: results/calibration)")
    p.add_argument("--top", nargs="+", type=float, default=[0.10, 0.25], metavar="Q",
                   help="top-k fractions of the decision precision (default: 0.10 0.25)")
    p.add_argument("--problem-option", action="append", metavar="KEY=VALUE", help="a problem option (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("record", help="evaluate sampled configurations on a fidelity grid and store them as a replayable table (.npz)")
    p.add_argument("problem", help="a registered problem with a fidelity (see `mfbo list problems`)")
    p.add_argument("--configs", required=True, type=int, metavar="N", help="number of sampled configurations")
    p.add_argument("--fidelities", nargs="+", type=float, metavar="F",
                   help="the fidelity grid in natural units, including the target (default: every level of a discrete fidelity)")
    p.add_argument("--out", required=True, help="the table file (.npz)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configuration sample")
    p.add_argument("--problem-option", action="append", metavar="KEY=VALUE", help="a problem option (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("plot", help="figures (PDF + PNG) and results tables (Markdown, LaTeX) of a study's run logs")
    p.add_argument("study_dir", help="the study's results directory (run logs, searched recursively)")
    p.add_argument("--out", default=None, help="output directory (default: STUDY_DIR/figures)")
    p.add_argument("--metric", choices=["regret", "norm_regret"], default="regret",
                   help="regret of the tables, ranks and CD diagram (default: inference regret; normalised where no exact optimum)")
    p.add_argument("--stat", choices=["median", "mean"], default="median", help="median with IQR, or mean with standard error")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the post-hoc tests (default 0.05)")
    p.add_argument("--blocks", choices=["problem", "problem-seed"], default="problem", help="blocks of the Friedman test")
    p.add_argument("--target", type=float, default=None, metavar="R", help="also tabulate the budget fraction to reach regret R")
    p.add_argument("--include-incomplete", action="store_true", help="keep unfinished runs (no footer)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("dashboard", help="a live web page of a study's runs on 127.0.0.1 (needs mfbo[dashboard])")
    p.add_argument("source", help="a study's results directory, one run log (.jsonl) or a stored archive (.tar.xz)")
    p.add_argument("--port", type=int, default=5006, help="port on 127.0.0.1 (default 5006)")
    p.add_argument("--refresh", type=float, default=2.0, metavar="S", help="seconds between reads of the logs (default 2)")
    p.set_defaults(func=cmd_dashboard)

    from .study.commands import add_study_commands  # mfbo study run|status

    add_study_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ValueError, FileNotFoundError, ImportError) as err:  # ImportError: a missing extra, named with its pip command
        print(f"mfbo: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except StrategyError as err:
        print(f"mfbo: error: {err} (the log keeps the trials completed before it)", file=sys.stderr)
        return 1
    except ProblemError as err:
        print(f"mfbo: error: {err} (the run stopped; its log is complete up to here)", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `mfbo list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        return 0
    except OSError as err:  # a full disk, a folder that became read-only: no traceback
        print(f"mfbo: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mfbo: interrupted (the log keeps every completed trial)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

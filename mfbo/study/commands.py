"""The ``mfbo study`` subcommands (registered by :mod:`mfbo.cli`)::

    mfbo study run FILE [--workers N | --scheduler ADDRESS] [--threads T] [--out DIR] [--quiet]
    mfbo study status FILE [--out DIR]

``run`` executes every run that is not complete (see :mod:`mfbo.study.execute`) and exits 0
when all succeeded, 1 when some failed (their logs stay and the next ``run`` resumes them), and
2 for a mistake in the file or a directory holding results of another spec, and 130 after Ctrl-C
(one is enough: the workers stop, every unfinished run is left resumable). Runs that another
live process holds (``mfbo study run`` started twice, or on several machines sharing the output
directory) are left to it and listed, without failing. A study whose
strategies or problems are not available here (``if_unavailable = "skip"``) is skipped with a
note naming what is missing, and exits 0. ``status`` lists the done, failed (stopped by a
problem error, which it shows), partial and missing runs, and which process is running a run
now (its lock).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from .config import Study, load_study
from .execute import run_study, unavailable_note
from .lock import describe_owner, lock_owner, lock_path, owner_alive
from .resume import study_states

__all__ = ["add_study_commands"]


def _load(args: argparse.Namespace) -> Study:
    study = load_study(args.file)
    return study.with_output(args.out) if args.out else study


def _describe(study: Study) -> str:
    n_problems, n_strategies, n_seeds = len(study.problems), len(study.strategies), len(study.seeds)
    budget = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in study.budget_spec.items())
    return (f"study {study.name!r} ({study.source}): {len(study.runs)} runs = {n_problems} problems x {n_strategies} "
            f"strategies x {n_seeds} seeds; budget {budget}; {study.workers} worker(s) per run, stop on {study.stop}; "
            f"output {study.output}")


def cmd_study_run(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    study = _load(args)
    if not study.available:
        print(unavailable_note(study))
        return 0
    print(_describe(study), flush=True)
    from ..cli import writable_dir  # imported late: the CLI imports this module

    writable_dir(study.output, "the output directory")
    try:
        report = run_study(study, workers=args.workers, scheduler=args.scheduler, threads=args.threads, progress=not args.quiet)
    except ImportError as err:  # dask missing: one line with the extra to install
        raise ValueError(str(err)) from None
    except KeyboardInterrupt:
        print(f"mfbo: interrupted: the unfinished runs are stopped and resumable; `mfbo study run {args.file}` continues them",
              file=sys.stderr)
        return 130
    if not report.outcomes:
        print(f"nothing to run: all {report.already_done} runs are complete in {study.output}")
        return 0
    counts = Counter(o.status for o in report.outcomes)
    resumed = [o for o in report.outcomes if o.replayed]
    print(f"{len(report.outcomes)} runs in {report.seconds:.1f} s: {counts['done']} done, {counts['failed']} failed"
          + (f", {counts['skipped']} found complete" if counts["skipped"] else "")
          + (f", {counts['held']} held by other processes" if counts["held"] else "")
          + (f"; {report.already_done} were complete before" if report.already_done else "")
          + (f"; {len(resumed)} resumed ({sum(o.replayed for o in resumed)} evaluations from their caches)" if resumed else ""))
    if report.caches_removed:
        print(f"removed {report.caches_removed} evaluation cache(s) left next to complete runs")
    for outcome in report.outcomes:
        for warning in outcome.warnings:
            print(f"warning   {outcome.title}: {warning}")
        for note in outcome.notes:
            print(f"note      {outcome.title}: {note}")
    for outcome in report.held:
        print(f"running   {outcome.title}: {outcome.error}; another process is running it")
    if report.held:
        print("(runs held by another process are theirs to finish: `mfbo study status` shows them; if that process is "
              "gone on another machine, delete the .lock file named by `mfbo study status`)")
    for outcome in report.failed:
        print(f"FAILED    {outcome.title}: {outcome.error}")
    if report.failed:
        print("(the logs of failed runs are kept; `mfbo study run` again resumes them)")
        return 1
    return 0


def cmd_study_status(args: argparse.Namespace) -> int:
    study = _load(args)
    if not study.available:
        print(unavailable_note(study))
        return 0
    print(_describe(study))
    states = study_states(study)
    width = max(len(s.run.file_name) for s in states)
    print(f"{'run':<{width}}  {'state':<8}  {'trials':>6}  {'cached':>6}")
    for s in states:
        owner = lock_owner(lock_path(s.path))
        running = owner is not None and owner_alive(owner) and s.state != "done"
        state = "CONFLICT" if s.conflict else "running" if running else s.state
        cached = str(s.n_cached) if s.n_cached else "-"
        trials = str(s.n_trials) if s.path.exists() else "-"
        why = s.conflict or (f"{describe_owner(owner)}; lock {lock_path(s.path).name}" if running else "") or s.error or ""
        print(f"{s.run.file_name:<{width}}  {state:<8}  {trials:>6}  {cached:>6}" + (f"  {why}" if why else ""))
    counts = Counter(s.state for s in states if not s.conflict)
    conflicts = sum(bool(s.conflict) for s in states)
    print(f"{len(states)} runs: {counts['done']} done, {counts['partial']} partial, {counts['missing']} missing"
          + (f", {counts['failed']} failed (fix the problem; `mfbo study run` resumes them)" if counts["failed"] else "")
          + (f", {conflicts} in conflict with this spec (`mfbo study run` refuses them)" if conflicts else ""))
    return 0


def add_study_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``mfbo study run|status`` to the top-level subparsers."""
    study = sub.add_parser("study", help="run a study (problems x strategies x seeds) from a TOML file, or show its status")
    commands = study.add_subparsers(dest="study_command", required=True)

    p = commands.add_parser("run", help="run every run of a study that is not complete (resumes interrupted ones)")
    p.add_argument("file", type=Path, help="the study file (.toml), e.g. experiments/smoke.toml")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, help="local processes running runs in parallel (default 1: in this process)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://127.0.0.1:8786 (pip install 'mfbo[dask]')")
    p.add_argument("--threads", type=int, default=None, help="torch threads inside each run (1 is often fastest for small GPs)")
    p.add_argument("--out", default=None, help="output directory (default: the file's `output`)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study_run)

    p = commands.add_parser("status", help="list the done, failed, partial and missing runs of a study")
    p.add_argument("file", type=Path, help="the study file (.toml)")
    p.add_argument("--out", default=None, help="output directory (default: the file's `output`)")
    p.set_defaults(func=cmd_study_status)

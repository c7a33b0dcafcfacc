"""What the benchmark scripts share: strategy variant labels, the CSV store of finished runs, the
code version a run ran under, and the share of the budget spent at each fidelity.

Each benchmark (``bench_quality.py``, ``bench_real.py``) stores one CSV row per finished run, so
that a benchmark of hours can be completed over several sittings: rows are appended as runs
finish, stored runs are skipped, and ``--rerun NAME`` drops one strategy's rows after a change to
it (:func:`drop_strategies`) and its logs (:func:`drop_logs`).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfbo.cli import run_file_name
from mfbo.space import Fidelity

__all__ = ["parse_label", "read_store", "append_row", "drop_strategies", "drop_logs", "git_commit", "budget_shares", "add_store_arguments"]


def add_store_arguments(parser: argparse.ArgumentParser, store: Path, out: str) -> None:
    """The options every stored benchmark takes: ``--workers``, ``--threads``, ``--out``,
    ``--store`` (default ``store``), ``--rerun`` and ``--table-only``."""
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker process")
    parser.add_argument("--out", default=out, help="directory of the run logs")
    parser.add_argument("--store", type=Path, default=store, help="CSV of finished runs (default: the committed one)")
    parser.add_argument("--rerun", nargs="+", default=[], metavar="STRATEGY",
                        help="drop these strategies' stored rows and run them again (after a change to them)")
    parser.add_argument("--table-only", action="store_true", help="only tabulate the stored runs")


def parse_label(label: str) -> tuple[str, dict[str, Any]]:
    """``(name, options)`` of a strategy label: a registry name, or a variant
    ``name:option=value,option=value`` (values read as JSON, else as strings), e.g.
    ``mf-ucb:init_fraction=0.2``. A variant is stored and tabulated under its label, so defaults
    are tuned on the development set side by side with the default runs.

    >>> parse_label("mf-kg:fidelity_levels=all,init_fraction=0.2")
    ('mf-kg', {'fidelity_levels': 'all', 'init_fraction': 0.2})
    """
    name, _, spec = label.partition(":")
    options = {}
    for item in filter(None, spec.split(",")):
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--strategies: {label!r}: options must read name:option=value,option=value, got {item!r}")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return name, options


def read_store(store: Path) -> list[dict]:
    """The stored rows (as strings), ``[]`` if there is no store yet."""
    if not store.exists():
        return []
    with store.open(newline="") as f:
        return list(csv.DictReader(f))


def append_row(store: Path, row: dict, columns: Sequence[str]) -> None:
    """Append one row (writing the header first if the store is new)."""
    store.parent.mkdir(parents=True, exist_ok=True)
    new = not store.exists()
    with store.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        if new:
            writer.writeheader()
        writer.writerow(row)


def drop_strategies(store: Path, strategies: Iterable[str], columns: Sequence[str]) -> int:
    """Remove every row of ``strategies`` from the store; returns how many were dropped."""
    rows = read_store(store)
    drop = set(strategies)
    kept = [r for r in rows if r["strategy"] not in drop]
    store.unlink(missing_ok=True)
    for row in kept:
        append_row(store, row, columns)
    return len(rows) - len(kept)


def drop_logs(out: Path, strategies: Iterable[str]) -> int:
    """Delete the run logs of ``strategies`` under ``out`` (named by ``mfbo.cli.run_file_name``),
    so that a rerun after a change to a strategy runs it again instead of reusing its old log;
    returns how many were deleted."""
    markers = [run_file_name("", name, 0).removesuffix("0.jsonl") for name in strategies]  # "__<strategy>__seed"
    paths = [path for path in Path(out).glob("*.jsonl") if any(marker in path.name for marker in markers)]
    for path in paths:
        path.unlink()
    return len(paths)


def git_commit(paths: Sequence[str] = (":/mfbo",)) -> str:
    """``git rev-parse --short HEAD``, with ``+dirty`` if files under ``paths`` (git pathspecs;
    default: the package) have uncommitted changes or are not committed yet; ``unknown`` outside
    a checkout."""
    here = Path(__file__).parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal", "--", *paths], capture_output=True, text=True, cwd=here)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def budget_shares(fidelity: Fidelity, fidelities, costs) -> tuple[float, float, float]:
    """Shares of the spent cost at the target (``s = 1``), near it (``s >= 0.75``) and in the
    cheap half (``s < 0.5``) of the normalised fidelity. On a continuous fidelity "at the target"
    undercounts (``s = 0.99`` is the target in all but name), so the cheap-half share is the
    evidence that a strategy stops trusting a misleading fidelity. A continuation's cost is its
    increment, at the fidelity it reached."""
    s = np.array([fidelity.normalize(f) for f in fidelities], dtype=float)
    cost = np.asarray(costs, dtype=float)
    total = cost.sum()
    return cost[s >= 1 - 1e-9].sum() / total, cost[s >= 0.75].sum() / total, cost[s < 0.5].sum() / total

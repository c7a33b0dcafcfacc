"""The trial log: one JSON Lines file per run, and :func:`load_runs` to read many of them.

Layout of a run file (one JSON object per line)::

    {"type": "header", "format": 1, "spec": {...}, "problem": {...}, "versions": {...}, "started": ...}
    {"type": "trial", "id": 0, "config": {...}, "fidelity": ..., "value": ..., ...}
    ...
    {"type": "footer", "n_trials": ..., "total_cost": ..., "stop_reason": ..., "finished": ...}

The writer appends and flushes after every record, so a crash loses at most the record being
written. The footer is written only when the run completes: a file without one is an
unfinished run. A truncated *last* line (a crash mid-write) is skipped with a warning and
reported in ``DataFrame.attrs["truncated"]``; a malformed line anywhere else is corruption and
raises ``ValueError`` with the file and line number. Non-finite floats are stored as ``null``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RunLogWriter", "RunFile", "read_run", "load_runs", "to_jsonable"]

FORMAT_VERSION = 1


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, tuples and non-finite floats to plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "item"):  # torch scalar tensors
        return to_jsonable(obj.item())
    return str(obj)


class RunLogWriter:
    """Append-only writer of one run file. Every record is flushed and fsync'ed when written."""

    def __init__(self, path: str | os.PathLike, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")
        self._write({"type": "header", "format": FORMAT_VERSION, **header})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(to_jsonable(record), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def trial(self, record: dict[str, Any]) -> None:
        self._write({"type": "trial", **record})

    def footer(self, record: dict[str, Any]) -> None:
        self._write({"type": "footer", **record})

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> RunLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RunFile:
    """The parsed content of one run file."""

    path: Path
    header: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    truncated: bool = False

    @property
    def complete(self) -> bool:
        return self.footer is not None


def read_run(path: str | os.PathLike) -> RunFile:
    """Parse one run file; see the module docstring for how damage is treated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not an mfbo run log (not UTF-8 text: byte {err.start} is {err.object[err.start:err.start + 1]!r})") from None
    lines = text.split("\n")
    ends_cleanly = text.endswith("\n")
    if ends_cleanly:
        lines = lines[:-1]
    records: list[dict[str, Any]] = []
    truncated = False
    for lineno, line in enumerate(lines, start=1):
        is_last = lineno == len(lines)
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "type" not in record:
                raise ValueError("not a record")
        except ValueError:
            if is_last:
                truncated = True
                warnings.warn(f"{path}: the last line ({lineno}) is truncated and was skipped (the run was interrupted mid-write)", RuntimeWarning, stacklevel=3)
                break
            raise ValueError(f"{path}:{lineno}: corrupt record in the middle of a run log: {line[:80]!r}") from None
        if is_last and not ends_cleanly:  # valid JSON but unterminated: the write was cut short
            truncated = True
            warnings.warn(f"{path}: the last line ({lineno}) has no line end and was skipped (the run was interrupted mid-write)", RuntimeWarning, stacklevel=3)
            break
        records.append(record)
    if not records or records[0].get("type") != "header":
        raise ValueError(f"{path}: not an mfbo run log (the first line is not a header record)")
    run = RunFile(path=path, header=records[0], truncated=truncated)
    for record in records[1:]:
        kind = record.get("type")
        if kind == "trial":
            run.trials.append(record)
        elif kind == "footer":
            run.footer = record
        else:
            raise ValueError(f"{path}: unknown record type {kind!r}")
    return run


def _run_files(path_or_dir: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(path_or_dir, (str, os.PathLike)):
        p = Path(path_or_dir)
        if p.is_dir():
            return sorted(p.rglob("*.jsonl"))
        if p.is_file():
            return [p]
        raise FileNotFoundError(f"load_runs: no such file or directory: {p}")
    return [Path(p) for p in path_or_dir]


def spec_columns(header: dict[str, Any]) -> dict[str, Any]:
    """The run-level columns that every trial row of a run carries."""
    spec = header.get("spec", {})
    return {
        "problem": spec.get("problem"),
        "strategy": spec.get("strategy"),
        "seed": spec.get("seed"),
        "budget": spec.get("budget"),
        "options": json.dumps(spec.get("options", {}), sort_keys=True),
    }


def trial_rows(header: dict[str, Any], trials: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten trial records into tidy rows: ``config.<name>`` columns plus the run spec."""
    run_cols = spec_columns(header)
    rows = []
    for record in trials:
        row = dict(run_cols)
        for key, value in record.items():
            if key == "type":
                continue
            if key == "config":
                row.update({f"config.{k}": v for k, v in value.items()})
            elif key in ("recommendation", "curve", "info"):
                row[key] = value if key != "recommendation" else json.dumps(value, sort_keys=True)
            else:
                row[key] = value
        rows.append(row)
    return rows


def require_pandas(what: str):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs pandas: pip install 'mfbo[analysis]'") from None
    return pd


def load_runs(path_or_dir: str | os.PathLike | Iterable[str | os.PathLike]):
    """Load run logs into one tidy ``pandas.DataFrame``, one row per trial.

    Args:
        path_or_dir: a run file, a directory (searched recursively for ``*.jsonl``), or a list of files.

    Returns:
        A DataFrame with the run spec columns (``run``, ``problem``, ``strategy``, ``seed``,
        ``budget``, ``options``, ``complete``), the trial fields, and one ``config.<name>`` column
        per hyperparameter. ``df.attrs["truncated"]`` lists the files whose last line was damaged.
    """
    pd = require_pandas("load_runs")
    rows: list[dict[str, Any]] = []
    truncated: list[str] = []
    for path in _run_files(path_or_dir):
        run = read_run(path)
        if run.truncated:
            truncated.append(str(path))
        for row in trial_rows(run.header, run.trials):
            row["run"] = path.stem
            row["complete"] = run.complete
            rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        first = ["run", "problem", "strategy", "seed", "budget", "options", "complete", "id"]
        df = df[first + [c for c in df.columns if c not in first]]
    df.attrs["truncated"] = truncated
    return df

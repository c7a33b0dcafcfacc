"""What the dashboard shows, computed with :mod:`mfbo.analysis` from logs read as they grow.

:class:`LiveStudy` holds one :class:`~mfbo.dashboard.source.LogTail` per run log of a
:class:`~mfbo.dashboard.source.Source`. :meth:`LiveStudy.refresh` reads what the logs appended
(new logs are picked up) and bumps the version of every problem one of whose runs changed. The
tables below are cached per problem and version, so a refresh recomputes only the problems whose
logs grew, and within a problem only the grown runs' own rows are rebuilt (the per-problem
columns, regrets and clock fractions, are then recomputed from them). A table that took ``d``
seconds to compute is kept for ``4 d`` even if its logs grew meanwhile, so a large study being
written does not keep the server busy.

- :meth:`LiveStudy.frame`: the problem's tidy frame, exactly :func:`mfbo.analysis.load_study`'s
  rows of that problem (:func:`mfbo.analysis.load.frame_runs`, incomplete runs included), on the
  budget axis or on the simulated wall clock (``axis="wall_clock"``).
- :meth:`LiveStudy.regret_summary`: median and IQR over seeds of a regret per strategy label on
  101 budget fractions, as ``mfbo plot`` draws them (:func:`~mfbo.analysis.metrics.metric_curves`
  then :func:`~mfbo.analysis.stats.summarise_curves`; a problem without an exact optimum uses the
  normalised regret). **One difference, for runs still running**: ``mfbo plot`` holds a run's
  last value to the end of the budget; here a run without a footer counts only up to the budget
  fraction it has spent (later grid points are NaN, left out of the median), so a live curve
  does not claim the future.
- :meth:`LiveStudy.allocation`: :func:`~mfbo.analysis.metrics.fidelity_allocation`.
- :func:`trajectory`: one run's trials as points ``(cum_cost, fidelity)`` and each continuation
  as a segment from the trial it continued; :func:`learning_curves`: the curve of every
  configuration at the last rung it reached, with that rung's normalised fidelity ``s``.
- :func:`calibration_tables`: the ``mfbo calibrate`` JSON files under the source
  (:func:`mfbo.analysis.report.find_calibration_files`, read by
  :func:`mfbo.analysis.plots.calibration_series`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.load import frame_runs
from ..analysis.metrics import (
    METRICS,
    budget_grid,
    fidelity_allocation,
    metric_curves,
    resolve_metric,
)
from ..analysis.plots import calibration_series
from ..analysis.report import find_calibration_files
from ..analysis.stats import summarise_curves
from ..space import Fidelity
from .source import LogTail, Source

__all__ = ["LiveStudy", "calibration_tables", "learning_curves", "run_rows", "trajectory"]


class LiveStudy:
    """The run logs of a source, read as they grow (see the module docstring)."""

    def __init__(self, source: Source, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.tails: dict[Path, LogTail] = {}
        self.version = 0
        self._problem_version: dict[str, int] = {}
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._run_frames: dict[Any, Any] = {}  # each run's own rows (frame_runs's cache)
        self._clock = clock
        self.refresh()

    def refresh(self) -> bool:
        """Read what the logs appended and pick up new logs; ``True`` if anything changed."""
        changed: set[str] = set()
        for path in self.source.files():
            tail = self.tails.setdefault(path, LogTail(path))
            before = tail.problem_name()
            if tail.read() or tail.reset:
                changed.update(name for name in (before, tail.problem_name()) if name is not None)
        if changed:
            self.version += 1
            for name in changed:
                self._problem_version[name] = self._problem_version.get(name, 0) + 1
        return bool(changed)

    def runs(self) -> list[LogTail]:
        """The logs with a header, in (problem, label, seed, path) order."""
        good = [t for t in self.tails.values() if t.header is not None and t.problem_name() is not None]
        return sorted(good, key=lambda t: (*map(str, t.key()), str(t.path)))

    def problems(self) -> list[str]:
        return list(dict.fromkeys(t.key()[0] for t in self.runs()))

    def problem_version(self, problem: str) -> int:
        return self._problem_version.get(problem, 0)

    def notes(self) -> list[str]:
        """What the reader skipped or could not show: damaged lines, files that are not run logs,
        unterminated last lines of finished sources, two logs of one (problem, label, seed)."""
        notes: list[str] = []
        owners: dict[tuple[Any, ...], Path] = {}
        for tail in self.tails.values():
            if tail.not_a_log:
                notes.append(tail.not_a_log)
            notes += tail.problems
            if tail.pending_bytes and not self.source.live:
                notes.append(f"{tail.path}: the last line has no line end (the run was interrupted mid-write); skipped")
        for tail in self.runs():
            key = tail.key()
            if key in owners:
                notes.append(f"two run logs for problem {key[0]!r}, label {key[1]!r}, seed {key[2]!r}: {owners[key]} and {tail.path} "
                             "(mfbo plot refuses this study; give the runs distinct strategy labels)")
            owners.setdefault(key, tail.path)
        return notes

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per problem version. A value that took ``d`` seconds is kept for
        ``4 d`` even if the problem's logs grew meanwhile, so a large study that is being
        written does not keep the server computing (it stays at most that far behind)."""
        version = self.problem_version(key[0])
        entry = self._cache.get(key)
        if entry is None or (entry[0] != version and self._clock() - entry[2] >= 4 * entry[3]):
            self._compute(key, version, compute)
        value = self._cache[key][1]
        if isinstance(value, ValueError):
            raise value
        return value

    def _compute(self, key: tuple[Any, ...], version: int, compute: Callable[[], Any]) -> None:
        start = self._clock()
        try:
            value = compute()
        except ValueError as err:  # e.g. no simulated times for the wall-clock axis: kept, raised again
            value = err
        self._cache[key] = (version, value, self._clock(), self._clock() - start)

    def frame(self, problem: str, axis: str = "budget"):
        """The problem's frame (see the module docstring), or ``None`` while it has no trials;
        ``ValueError`` for ``axis="wall_clock"`` on logs without simulated times."""
        def compute():
            runs = [(t.path, t.run_file()) for t in self.runs() if t.key()[0] == problem and t.trials]
            return frame_runs(runs, self.source.root, axis=axis, cache=self._run_frames) if runs else None

        return self._cached((problem, "frame", axis), compute)

    def regret_summary(self, problem: str, metric: str = "regret", axis: str = "budget"):
        """``(summary frame, column used)``: median/IQR per ``label, frac``; ``(None, None)``
        without trials. See the module docstring for the runs still running."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")

        def compute():
            df = self.frame(problem, axis)
            if df is None:
                return None, None
            curves = metric_curves(df, metric, budget_grid())
            progress = df.groupby("run")["budget_frac"].max()
            running = df.loc[~df["complete"].astype(bool), "run"].unique()
            beyond = curves["run"].isin(running) & (curves["frac"] > curves["run"].map(progress))
            curves.loc[beyond, "value"] = np.nan
            return summarise_curves(curves), resolve_metric(df, metric)[0]

        return self._cached((problem, "regret", metric, axis), compute)

    def allocation(self, problem: str):
        """:func:`~mfbo.analysis.metrics.fidelity_allocation` of the problem (``None`` without trials)."""
        return self._cached((problem, "allocation"), lambda: None if self.frame(problem) is None else fidelity_allocation(self.frame(problem)))

    def calibrations(self) -> list[tuple[Path, dict[str, Any] | str]]:
        """``(file, table)`` of each calibration JSON under the source (``table`` as
        :func:`calibration_tables`), or ``(file, reason)`` if it cannot be read."""
        files = find_calibration_files(self.source.root)
        stamp = tuple((p, p.stat().st_mtime_ns) for p in files if p.exists())
        return self._cached(("", "calibration", stamp), lambda: calibration_tables(self.source.root))


def _fidelity_axis(header: dict[str, Any]) -> Fidelity | None:
    spec = (header.get("problem") or {}).get("fidelity")
    if not spec:
        return None
    return Fidelity(**{k: spec[k] for k in ("name", "low", "high", "target", "integer", "levels", "log") if k in spec})


def _config_text(config: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (config or {}).items())


def trajectory(tail: LogTail, start: int = 0) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Points and continuation segments of trials ``start, start + 1, ...`` of one run.

    Points: ``cost`` (the cumulative cost when the trial was logged), ``fidelity`` (the target
    for trials without one), ``value``, ``id``, ``status`` and ``config`` (text). Segments join
    the trial a continuation continued (``x0, y0``) to the continuation (``x1, y1``).
    """
    header = tail.header or {}
    axis = _fidelity_axis(header)
    where: dict[Any, tuple[float, float]] = {}
    points: dict[str, list[Any]] = {k: [] for k in ("cost", "fidelity", "value", "id", "status", "config")}
    segments: dict[str, list[Any]] = {k: [] for k in ("x0", "y0", "x1", "y1")}
    for i, t in enumerate(tail.trials):
        fid = t.get("fidelity")
        y = float(axis.target if fid is None and axis is not None else (fid if fid is not None else 1.0))
        x = float(t.get("cum_cost") or 0.0)
        where[t.get("id")] = (x, y)
        if i < start:
            continue
        value = t.get("value")
        for key, v in (("cost", x), ("fidelity", y), ("value", math.nan if value is None else float(value)),
                       ("id", t.get("id")), ("status", t.get("status") or "ok"), ("config", _config_text(t.get("config")))):
            points[key].append(v)
        parent = where.get(t.get("continues")) if t.get("continues") is not None else None
        if parent is not None:
            for key, v in zip(("x0", "y0", "x1", "y1"), (*parent, x, y)):
                segments[key].append(v)
    return points, segments


def learning_curves(tail: LogTail) -> dict[str, list[Any]]:
    """The learning curve of every configuration of a run at the last rung it reached.

    A trial that a later trial continued is not a last rung. Returns columns ``xs`` (steps
    ``1..n``), ``ys`` (the curve), ``fidelity`` (where it stopped), ``s`` (that fidelity
    normalised, 1 = target) and ``id``; trials without a logged curve are left out.
    """
    axis = _fidelity_axis(tail.header or {})
    continued = {t.get("continues") for t in tail.trials if t.get("continues") is not None}
    out: dict[str, list[Any]] = {k: [] for k in ("xs", "ys", "fidelity", "s", "id")}
    for t in tail.trials:
        curve = t.get("curve")
        if t.get("id") in continued or not curve:
            continue
        fid = t.get("fidelity")
        s = 1.0 if axis is None or fid is None else float(axis.normalize(float(fid)))
        out["xs"].append(list(range(1, len(curve) + 1)))
        out["ys"].append([math.nan if v is None else float(v) for v in curve])
        out["fidelity"].append(fid)
        out["s"].append(min(max(s, 0.0), 1.0))
        out["id"].append(t.get("id"))
    return out


def calibration_tables(root: Path) -> list[tuple[Path, dict[str, Any] | str]]:
    """Each calibration file under ``root``: ``(path, {"title", "cost_fraction", series...})``
    from :func:`mfbo.analysis.plots.calibration_series`, or ``(path, why it was skipped)``."""
    out: list[tuple[Path, dict[str, Any] | str]] = []
    for path in find_calibration_files(root):
        try:
            title, x, series = calibration_series(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, AttributeError, TypeError) as err:
            out.append((path, f"{path}: not a calibration file ({err}); skipped"))
            continue
        table = {"title": title or path.stem, "cost_fraction": [float(v) for v in x]}
        table.update({name.replace("$\\rho$", "rho"): [float(v) for v in values] for name, values in series.items()})
        out.append((path, table))
    return out


def run_rows(study: LiveStudy) -> dict[str, list[Any]]:
    """The runs table: one row per run log with a header (see :meth:`LiveStudy.runs`); ``spent``
    is on the run's budget axis: the cost, or the simulated clock for a wall-clock budget."""
    cols: dict[str, list[Any]] = {k: [] for k in ("run", "problem", "label", "seed", "trials", "spent", "budget", "status", "regret")}
    root = study.source.root
    for tail in study.runs():
        problem, label, seed = tail.key()
        spec = (tail.header or {}).get("spec", {})
        last = tail.trials[-1] if tail.trials else {}
        name = tail.path.relative_to(root).with_suffix("").as_posix() if root.is_dir() else tail.path.stem
        status = f"stopped: {tail.footer.get('stop_reason')}" if tail.footer else ("running" if study.source.live else "incomplete")
        regret = last.get("regret")
        on_clock = ((tail.header or {}).get("execution") or {}).get("stop") == "wall_clock"  # budget in simulated time
        spent = max((t.get("end") or 0.0 for t in tail.trials), default=0.0) if on_clock else last.get("cum_cost")
        for key, v in (("run", name), ("problem", problem), ("label", label), ("seed", seed), ("trials", len(tail.trials)),
                       ("spent", float(spent or 0.0)), ("budget", spec.get("budget")), ("status", status),
                       ("regret", math.nan if regret is None else float(regret))):
            cols[key].append(v)
    return cols

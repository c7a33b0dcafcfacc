"""Load a study's run logs into one tidy DataFrame: :func:`load_study`.

A study directory holds one JSON Lines run log per (problem, strategy label, seed) anywhere below
it (:mod:`mfbo.runlog`). :func:`load_study` reads every ``*.jsonl`` file with
:func:`mfbo.runlog.read_run` (so damaged files are treated exactly as by
:func:`mfbo.load_runs`), flattens the trials with :func:`mfbo.runlog.trial_rows`, and adds the
run-level and derived columns that the analysis needs.

Columns added to :func:`~mfbo.load_runs`'s
-------------------------------------------
- ``run``: the log's path relative to the study directory, without ``.jsonl`` (unique).
- ``problem``: the problem's label in the study (the header's ``study.problem_label``, written
  by :mod:`mfbo.study`: one problem may appear twice with different options), else its name
  followed by its options when the run had any (``mfhartmann6-bad[noise=0.1]``), so that two
  variants of one problem are two problems.
- ``label``: the strategy label (a study may run one strategy under several labels with
  different options): ``spec["label"]``, else the header's ``study.label`` (written by
  :mod:`mfbo.study`), else a top-level header ``label``, else the strategy's name.
- ``n_obs``: the record's position in its log (0, 1, ...): the number of observations the
  strategy held before this step.
- ``fidelity_s``: the normalised fidelity ``s`` (:meth:`mfbo.space.Fidelity.normalize`; 1 at
  the target; 1 for problems without a fidelity).
- ``fidelity_spec``: the header's fidelity description as JSON (``"null"`` without one).
- ``optimum`` and ``optimum_exact``: the header's ``problem.optimum`` and whether it is a true
  optimum. It is taken as exact unless the header's ``problem.optimum_kind`` says otherwise
  (the YAHPO problems write ``"reference: best of N random configurations ..."``: a reference
  value, which a strategy can beat).
- ``spent`` and ``budget_frac``: the budget axis. ``spent`` is ``cum_cost``, or the simulated
  clock ``end`` for asynchronous runs whose header says ``execution.stop = "wall_clock"`` (their
  budget is simulated wall-clock time). ``budget_frac = min(spent / budget, 1)`` with the run's
  own budget (the last logged ``spent`` if the spec has none): a last trial that overshoots the
  budget (costs measured after the fact) is counted at the budget.
  With ``axis="wall_clock"`` every run is put on its simulated clock instead: ``spent`` is the
  trial's simulated ``end`` and the budget of a cost-stopped run is the **latest end time among
  the problem's runs** (all strategies of a problem then share one time axis, and a strategy
  whose workers idle less finishes earlier, left of 1); a wall-clock-stopped run keeps its own
  budget, which is a time. ``workers`` (the run's asynchronous workers) is a column too.
- ``simple_regret``, ``norm_regret``, ``norm_simple_regret``, ``ref_low``, ``ref_high``: see
  :func:`mfbo.analysis.metrics.add_regret_columns`. ``regret`` (inference regret, as logged)
  becomes ``+inf`` where the problem has an optimum but the strategy had no recommendation yet.

Asynchronous runs' extra per-trial fields (``worker``, ``start``, ``end``) come through as
columns. Incomplete runs (no footer) are left out by default, with a warning naming how many,
and listed in ``df.attrs["incomplete"]``; ``df.attrs["truncated"]`` lists the logs whose last
line was damaged.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..runlog import RunFile, read_run, require_pandas, trial_rows
from ..space import Fidelity

__all__ = ["AXES", "load_study", "frame_runs", "problem_key", "strategy_label", "optimum_is_exact"]


def problem_key(header: dict[str, Any]) -> str:
    """The header's ``study.problem_label`` if present, else the problem's name with its options
    appended when it has any (``name[k=v, ...]``)."""
    study = header.get("study") or {}
    if study.get("problem_label"):
        return str(study["problem_label"])
    spec = header.get("spec", {})
    name = str(spec.get("problem"))
    options = spec.get("problem_options") or {}
    if not options:
        return name
    return name + "[" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(options.items())) + "]"


def strategy_label(header: dict[str, Any]) -> str:
    """``spec["label"]``, else ``study.label``, else a top-level ``label``, else the strategy's name."""
    spec = header.get("spec", {})
    label = spec.get("label") or (header.get("study") or {}).get("label") or header.get("label") or spec.get("strategy")
    if not label:
        raise ValueError("run log header has neither spec.label nor spec.strategy")
    return str(label)


def optimum_is_exact(problem: dict[str, Any]) -> bool:
    """True if the header's ``problem.optimum`` is known and is a true optimum (see the module
    docstring: any ``optimum_kind`` not starting with ``"exact"`` marks a reference value)."""
    if problem.get("optimum") is None:
        return False
    kind = problem.get("optimum_kind")
    return kind is None or str(kind).lower().startswith("exact")


def _normalised_fidelity(fidelity: dict[str, Any] | None, values: list[Any]) -> np.ndarray:
    if fidelity is None:
        return np.ones(len(values))
    axis = Fidelity(**{k: fidelity[k] for k in ("name", "low", "high", "target", "integer", "levels", "log") if k in fidelity})
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            out[i] = 1.0  # a trial without a fidelity on a multi-fidelity problem runs at the target
        else:
            out[i] = axis.normalize(float(v))
    return out


AXES = ("budget", "wall_clock")


def _run_frame(pd, path: Path, root: Path, axis: str = "budget", run: RunFile | None = None):
    run = read_run(path) if run is None else run
    header = run.header
    spec = header.get("spec", {})
    problem = header.get("problem", {}) or {}
    rows = trial_rows(header, run.trials)
    frame = pd.DataFrame(rows)
    name = path.relative_to(root).with_suffix("").as_posix() if root.is_dir() else path.stem
    n = len(frame)
    execution = header.get("execution") or {}
    wall_clock = execution.get("stop") == "wall_clock"
    on_clock = wall_clock or axis == "wall_clock"
    if n:
        if on_clock and "end" not in frame.columns:
            why = "execution.stop is 'wall_clock'" if wall_clock else "axis='wall_clock' was asked for"
            raise ValueError(f"{path}: {why} but the trials have no simulated 'end' time")
        spent = frame["end" if on_clock else "cum_cost"].to_numpy(dtype=float)
    else:
        spent = np.zeros(0)
    budget = spec.get("budget")
    if on_clock and not wall_clock:
        budget = np.nan  # the problem's latest end time, set by load_study once every run is read
    else:
        budget = float(budget) if budget is not None else (float(spent[-1]) if n else np.nan)
    fidelity = problem.get("fidelity")
    run_columns = {
        "run": name,
        "problem": problem_key(header),
        "label": strategy_label(header),
        "complete": run.complete,
        "budget": budget,
        "optimum": problem.get("optimum"),
        "optimum_exact": optimum_is_exact(problem),
        "fidelity_spec": json.dumps(fidelity, sort_keys=True),
        "budget_axis": "end" if on_clock else "cum_cost",
        "workers": int(execution.get("workers", 1) or 1),
    }
    for key, value in run_columns.items():
        frame[key] = [value] * n
    if n:
        frame["n_obs"] = np.arange(n)
        frame["fidelity_s"] = _normalised_fidelity(fidelity, frame["fidelity"].tolist() if "fidelity" in frame else [None] * n)
        frame["spent"] = spent
        if not np.isnan(budget):
            frame["budget_frac"] = np.minimum(spent / budget, 1.0) if budget > 0 else np.ones(n)
    return frame, run


def _clock_fractions(df):
    """``budget`` and ``budget_frac`` of the runs put on the clock by ``axis="wall_clock"``
    (those with a missing budget): the latest simulated end among their problem's runs."""
    pending = df["budget"].isna()
    if pending.any():
        horizon = df.groupby("problem")["spent"].transform("max")
        df.loc[pending, "budget"] = horizon[pending]
        budget = df.loc[pending, "budget"].to_numpy(dtype=float)
        spent = df.loc[pending, "spent"].to_numpy(dtype=float)
        df.loc[pending, "budget_frac"] = np.where(budget > 0, np.minimum(spent / np.where(budget > 0, budget, 1.0), 1.0), 1.0)
    return df


def _assemble(pd, frames):
    """One frame of the run frames of :func:`_run_frame`: sorted, clock fractions and regrets added."""
    from .metrics import add_regret_columns

    df = pd.concat(frames, ignore_index=True, sort=False)
    df = _clock_fractions(df.sort_values(["problem", "label", "seed", "run", "n_obs"], kind="stable").reset_index(drop=True))
    df = add_regret_columns(df)
    first = ["run", "problem", "label", "strategy", "seed", "budget", "complete", "n_obs", "id"]
    return df[first + [c for c in df.columns if c not in first]]


def frame_runs(runs: list[tuple[Path, RunFile]], root: str | os.PathLike, *, axis: str = "budget",
               cache: dict[Any, Any] | None = None):
    """The frame :func:`load_study` makes of runs already read, complete or not: ``(path,
    RunFile)`` pairs with paths under the directory ``root`` (or ``root`` itself, one log).

    For readers that parse logs themselves, such as the live dashboard (:mod:`mfbo.dashboard`),
    which reads only what was appended. Every derived column is per problem, so the frame of one
    problem's runs equals that problem's rows of the whole study's frame. ``cache``, a dict the
    caller keeps between calls, keeps each run's own rows: they are rebuilt only when a
    different ``RunFile`` object is given for that path (only the per-problem columns are
    recomputed for the others). Runs without trials are left out; ``ValueError`` if none has
    any, or for a bad ``axis``.
    """
    pd = require_pandas("frame_runs")
    if axis not in AXES:
        raise ValueError(f"frame_runs: axis must be one of {', '.join(map(repr, AXES))}, got {axis!r}")
    cache = {} if cache is None else cache
    frames = []
    for path, run in runs:
        kept = cache.get((path, axis))
        if kept is None or kept[0] is not run:
            kept = cache[(path, axis)] = (run, _run_frame(pd, Path(path), Path(root), axis, run)[0])
        if len(kept[1]):
            frames.append(kept[1])
    if not frames:
        raise ValueError(f"frame_runs: no trials in the {len(runs)} run(s) given")
    return _assemble(pd, frames)


def load_study(path: str | os.PathLike, *, complete_only: bool = True, axis: str = "budget"):
    """Load every run log under ``path`` into one tidy ``pandas.DataFrame`` (one row per trial).

    Args:
        path: a study directory (searched recursively for ``*.jsonl``) or one run log.
        complete_only: leave out runs without a footer (interrupted or still running), with a
            ``RuntimeWarning`` that says how many; ``False`` keeps them.
        axis: ``"budget"`` (each run's own budget axis: cost, or the simulated clock for
            wall-clock-stopped runs) or ``"wall_clock"`` (every run on its simulated clock, see
            the module docstring; needs the trials' ``end`` times).

    Returns:
        The DataFrame described in the module docstring, rows in (problem, label, seed, log)
        order. ``attrs["incomplete"]`` and ``attrs["truncated"]`` list the affected runs.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no run logs under ``path``, no trials in any of them, or two logs for the same
            (problem, label, seed) (give the runs distinct labels).
    """
    pd = require_pandas("load_study")
    if axis not in AXES:
        raise ValueError(f"load_study: axis must be one of {', '.join(map(repr, AXES))}, got {axis!r}")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"load_study: no such study directory or run log: {root}")
    files = sorted(root.rglob("*.jsonl")) if root.is_dir() else [root]
    if not files:
        raise ValueError(f"load_study: no run logs (*.jsonl) under {root}")
    frames, incomplete, truncated, owners = [], [], [], {}
    for file in files:
        frame, run = _run_frame(pd, file, root, axis)
        if run.truncated:
            truncated.append(str(file))
        header = run.header
        key = (problem_key(header), strategy_label(header), header.get("spec", {}).get("seed"))
        if key in owners:
            raise ValueError(
                f"load_study: two run logs for problem {key[0]!r}, label {key[1]!r}, seed {key[2]!r}: "
                f"{owners[key]} and {file}; give the runs distinct strategy labels (spec.label)"
            )
        owners[key] = file
        if not run.complete:
            incomplete.append(str(file))
            if complete_only:
                continue
        if len(frame):
            frames.append(frame)
    if incomplete and complete_only:
        warnings.warn(f"load_study: left out {len(incomplete)} incomplete run(s) under {root} (no footer); "
                      "pass complete_only=False to keep them", RuntimeWarning, stacklevel=2)
    if not frames:
        raise ValueError(f"load_study: no {'complete ' if complete_only else ''}runs with trials under {root} "
                         f"({len(files)} log(s), {len(incomplete)} incomplete)")
    df = _assemble(pd, frames)
    df.attrs["incomplete"] = incomplete
    df.attrs["truncated"] = truncated
    return df

"""Resuming a study: the state of each run, the spec-hash check, and the evaluation cache.

Each run writes ``<output>/<problem>__<label>__seed<k>.jsonl`` (:attr:`RunSpec.file_name`), and
its header carries a ``study`` block with the run spec (:meth:`RunSpec.hashed`) and its hash.
Re-running a study then

- **skips** a run whose log is complete (has a footer);
- **restarts** a run whose log is unfinished (or missing while its cache exists): the strategy
  is replayed from the start with the same seed, so it asks the same trials, and every trial
  found in the run's **evaluation cache** gets the cached observation instead of a new
  evaluation (:func:`mfbo.minimize`, "Replaying a run"). The rewritten log equals the log of an
  uninterrupted run except for the timing fields (``eval_time`` is cached too, ``overhead`` and
  ``recommend_time`` are measured again) and the header's ``started`` / footer's ``wall_time``,
  ``finished``;
- **refuses** (:class:`SpecMismatchError`) to touch a directory where a run's existing log or
  cache was produced under a different spec: it names the run, the old and new hashes and the
  fields that changed.

The evaluation cache
--------------------
``<output>/<run stem>.evals.ndjson`` (not ``.jsonl``, so :func:`mfbo.load_runs` never mistakes
it for a run log): a header line ``{"type": "evaluation-cache", "spec_hash": ...}``, then one
line per finished evaluation, appended, flushed and fsync'ed before the strategy is told::

    {"id": 7, "config": {...}, "fidelity": 3.0, "continues": null, "eval_time": 0.01,
     "observation": {"value": 0.42, "cost": 0.3, "curve": [...], "info": {...}, "error": null}}

With asynchronous workers it also holds the evaluations that were still running (in simulated
time) when the process died, which the log does not have yet. A cut-off last line is dropped
when the cache is reopened. Non-finite numbers are stored as ``null`` and read back as ``nan``
(the value of a failed trial, points of a diverged curve; inside ``info`` they stay ``None``).
The cache of a run is deleted once its log is complete: the log then holds everything.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runlog import read_run, to_jsonable
from ..trial import Observation, Trial
from .config import RunSpec, Study

__all__ = [
    "EvaluationCache", "RunState", "SpecMismatchError", "run_state", "study_states", "check_specs",
    "cache_path", "CACHE_SUFFIX",
]

CACHE_SUFFIX = ".evals.ndjson"
CACHE_FORMAT = 1


class SpecMismatchError(ValueError):
    """Results in the output directory were produced under a different run spec."""


def cache_path(log_path: str | Path) -> Path:
    """The evaluation cache next to a run log."""
    log_path = Path(log_path)
    return log_path.with_name(log_path.stem + CACHE_SUFFIX)


def _json_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(to_jsonable(value)))


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def read_cache(path: str | Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]], int]:
    """Parse a cache file without changing it: ``(header, entries by trial id, bytes of valid
    content)``. A cut-off last line is ignored; a malformed line elsewhere raises ``ValueError``."""
    path = Path(path)
    data = path.read_bytes()
    valid = data.rfind(b"\n") + 1  # only complete lines count
    lines = data[:valid].decode("utf-8").splitlines()
    if not lines:
        return {}, {}, 0
    try:
        header = json.loads(lines[0])
    except ValueError:
        raise ValueError(f"{path}: corrupt evaluation cache header: {lines[0][:80]!r}") from None
    if header.get("type") != "evaluation-cache":
        raise ValueError(f"{path}: not an mfbo evaluation cache (the first line is not its header)")
    entries: dict[int, dict[str, Any]] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
            entries[int(entry["id"])] = entry
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{lineno}: corrupt evaluation cache record: {line[:80]!r}; delete the file to recompute the run") from None
    return header, entries, valid


class EvaluationCache:
    """The file-backed evaluation cache of one run (module docstring); implements
    :class:`mfbo.loop.EvaluationCache`.

    Args:
        path: the cache file (created if missing, appended to otherwise).
        spec_hash: the run's spec hash; an existing file with another one raises
            :class:`SpecMismatchError`.
    """

    def __init__(self, path: str | Path, spec_hash: str) -> None:
        self.path = Path(path)
        self.spec_hash = spec_hash
        self._entries: dict[int, dict[str, Any]] = {}
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            header, self._entries, valid = read_cache(self.path)
            if not header:  # killed while writing the header: start the file again
                os.truncate(self.path, 0)
                new = True
            elif header.get("spec_hash") != spec_hash:
                raise SpecMismatchError(f"{self.path}: evaluation cache of spec {header.get('spec_hash')!r}, but this run's spec hash is {spec_hash!r}")
            if valid < self.path.stat().st_size:  # drop a line cut off by a crash before appending
                os.truncate(self.path, valid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        if new:
            self._write({"type": "evaluation-cache", "format": CACHE_FORMAT, "spec_hash": spec_hash})

    def __len__(self) -> int:
        return len(self._entries)

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(to_jsonable(record), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def lookup(self, trial: Trial) -> tuple[Observation, float] | None:
        entry = self._entries.get(trial.id)
        if entry is None:
            return None
        asked = {"config": _json_round_trip(trial.config), "fidelity": _json_round_trip(trial.fidelity), "continues": trial.continues}
        cached = {k: entry.get(k) for k in asked}
        if asked != cached:
            diff = ", ".join(f"{k} {cached[k]!r} (cached) != {asked[k]!r} (asked)" for k in asked if asked[k] != cached[k])
            raise ValueError(
                f"{self.path}: the replayed run asked a different trial {trial.id} than the cached one ({diff}); "
                "the strategy is not deterministic under this seed. Delete the cache and the run log to recompute the run."
            )
        o = entry["observation"]
        curve = None if o.get("curve") is None else [_nan_if_none(v) for v in o["curve"]]
        observation = Observation(value=_nan_if_none(o.get("value")), cost=float(o["cost"]), curve=curve, info=dict(o.get("info") or {}), error=o.get("error"))
        return observation, float(entry.get("eval_time") or 0.0)

    def store(self, trial: Trial, observation: Observation, eval_time: float) -> None:
        entry = {
            "id": trial.id, "config": trial.config, "fidelity": trial.fidelity, "continues": trial.continues,
            "eval_time": eval_time,
            "observation": {
                "value": observation.value, "cost": observation.cost, "curve": observation.curve_list(),
                "info": observation.info, "error": observation.error,
            },
        }
        self._write(entry)
        self._entries[trial.id] = _json_round_trip(entry)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> EvaluationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RunState:
    """Where one run of a study stands.

    ``state``: ``"done"`` (complete log), ``"partial"`` (an unfinished log, or only a cache) or
    ``"missing"`` (nothing yet). ``conflict`` says why the files cannot be used, if they cannot.
    """

    run: RunSpec
    path: Path
    state: str
    n_trials: int = 0  # trial records in the log
    n_cached: int = 0  # evaluations in the cache
    conflict: str | None = None


def _changed_fields(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "the file records no run spec"
    new = _json_round_trip(new)
    changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(changed) if changed else "no field differs (the hash function changed?)"


def run_state(run: RunSpec, output: str | Path) -> RunState:
    """Inspect (never change) the files of ``run`` under ``output``."""
    path = Path(output) / run.file_name
    state = RunState(run=run, path=path, state="missing")
    cache = cache_path(path)
    if cache.exists():
        try:
            header, entries, _ = read_cache(cache)
        except ValueError as err:
            state.conflict = str(err)
            return state
        state.n_cached = len(entries)
        state.state = "partial"
        if header and header.get("spec_hash") != run.spec_hash:
            state.conflict = f"{cache.name}: evaluation cache of spec hash {header.get('spec_hash')} != {run.spec_hash} (this study)"
    if path.exists():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a cut-off last line: the run was interrupted
                log = read_run(path)
        except ValueError as err:
            state.conflict = f"{path.name}: damaged run log ({err})"
            return state
        study = log.header.get("study") or {}
        old_hash = study.get("spec_hash")
        if old_hash != run.spec_hash:
            why = "was not written by a study run" if not study else f"spec hash {old_hash} (in the file) != {run.spec_hash} (this study); changed: {_changed_fields(study.get('run_spec'), run.hashed())}"
            state.conflict = f"{path.name}: {why}"
        state.n_trials = len(log.trials)
        state.state = "done" if log.complete else "partial"
    return state


def study_states(study: Study) -> list[RunState]:
    """The state of every run of ``study``, in run order."""
    return [run_state(run, study.output) for run in study.runs]


def check_specs(study: Study, states: list[RunState] | None = None) -> list[RunState]:
    """The run states, after checking that no existing file belongs to another spec.

    Raises:
        SpecMismatchError: naming each conflicting run, its old and new spec hash and what changed.
    """
    states = study_states(study) if states is None else states
    conflicts = [s for s in states if s.conflict]
    if conflicts:
        lines = "\n".join(f"  - {s.run.title}: {s.conflict}" for s in conflicts)
        raise SpecMismatchError(
            f"refusing to mix results of a different spec into {study.output} ({len(conflicts)} run{'s' * (len(conflicts) != 1)}):\n{lines}\n"
            "Use another output directory (output = ... or --out), or delete these files to recompute them."
        )
    return states

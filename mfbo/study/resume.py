"""Resuming a study: the state of each run, the spec-hash check, and the evaluation cache.

Each run writes ``<output>/<problem>__<label>__seed<k>.jsonl`` (:attr:`RunSpec.file_name`), and
its header carries a ``study`` block with the run spec (:meth:`RunSpec.hashed`) and its hash.
Re-running a study then

- **skips** a run whose log is complete (has a footer);
- **resumes** a run that **failed** on a problem error (its footer says ``stop_reason =
  "problem error"``: a ``cost=`` or ``target_value`` callable raised, see :mod:`mfbo.loop`) as
  it resumes an unfinished one, below, once the problem is fixed: its log holds every evaluation
  it paid for, and so does its cache, which is kept;
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
The cache of a run is deleted once its log is complete: the log then holds everything. When a
resumed run's log holds evaluations its cache lacks (the cache was deleted), they are copied
into the cache first (:meth:`EvaluationCache.add_logged`), so the replay never pays for them again.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..loop import PROBLEM_ERROR
from ..runlog import read_run, to_jsonable
from ..trial import Observation, Trial
from .config import RunSpec, Study

__all__ = [
    "EvaluationCache", "RunState", "SpecMismatchError", "DamagedRunError", "run_state", "study_states", "check_specs",
    "remove_leftover_caches", "cache_path", "logged_trials", "CACHE_SUFFIX", "UNUSED_SUFFIX",
]

CACHE_SUFFIX = ".evals.ndjson"
UNUSED_SUFFIX = ".unused-evals.ndjson"
CACHE_FORMAT = 1


class SpecMismatchError(ValueError):
    """Results in the output directory were produced under a different run spec."""


class DamagedRunError(ValueError):
    """A run log or evaluation cache in the output directory is damaged (same spec)."""


def cache_path(log_path: str | Path) -> Path:
    """The evaluation cache next to a run log."""
    log_path = Path(log_path)
    return log_path.with_name(log_path.stem + CACHE_SUFFIX)


def _json_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(to_jsonable(value)))


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def read_cache(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Parse a cache file without changing it: ``(header, entries in file order, bytes of valid
    content)``. A cut-off last line is ignored; a malformed line elsewhere raises ``ValueError``."""
    path = Path(path)
    data = path.read_bytes()
    valid = data.rfind(b"\n") + 1  # only complete lines count
    try:
        lines = data[:valid].decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not an mfbo evaluation cache (not UTF-8 text)") from None
    if not lines:
        return {}, {}, 0
    try:
        header = json.loads(lines[0])
    except ValueError:
        raise ValueError(f"{path}: corrupt evaluation cache header: {lines[0][:80]!r}") from None
    if header.get("type") != "evaluation-cache":
        raise ValueError(f"{path}: not an mfbo evaluation cache (the first line is not its header)")
    entries: list[dict[str, Any]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
            int(entry["id"])
            entries.append(entry)
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{lineno}: corrupt evaluation cache record: {line[:80]!r}; delete the file to recompute the run") from None
    return header, entries, valid


def _key(config: Any, fidelity: Any, resume_from: Any) -> str:
    """What makes two evaluations the same: configuration, fidelity and the fidelity it resumed
    from (JSON, so that cached and asked values compare alike)."""
    return json.dumps(_json_round_trip([config, fidelity, resume_from]), sort_keys=True)


class EvaluationCache:
    """The file-backed evaluation cache of one run (module docstring); implements
    :class:`mfbo.loop.EvaluationCache`.

    A replayed ask gets the cached evaluation of the same trial id when its configuration,
    fidelity and resume point match; otherwise (the replay diverged: another torch thread count,
    another machine's round-off) any cached evaluation of the same configuration, fidelity and
    resume point not used yet. Each cached evaluation is used at most once, so a repeated ask
    of a noisy objective is evaluated again. :attr:`diverged` describes the first mismatch;
    :meth:`unused` lists what the replay did not ask for.

    Args:
        path: the cache file (created if missing, appended to otherwise).
        spec_hash: the run's spec hash; an existing file with another one raises
            :class:`SpecMismatchError`.
        threads: torch's thread count, recorded in the header of a new file.
    """

    def __init__(self, path: str | Path, spec_hash: str, threads: int | None = None) -> None:
        self.path = Path(path)
        self.spec_hash = spec_hash
        self.diverged: str | None = None
        entries: list[dict[str, Any]] = []
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            header, entries, valid = read_cache(self.path)
            if not header:  # killed while writing the header: start the file again
                os.truncate(self.path, 0)
                new = True
            elif header.get("spec_hash") != spec_hash:
                raise SpecMismatchError(f"{self.path}: evaluation cache of spec {header.get('spec_hash')!r}, but this run's spec hash is {spec_hash!r}")
            if valid < self.path.stat().st_size:  # drop a line cut off by a crash before appending
                os.truncate(self.path, valid)
        self._entries = entries
        self._by_id = {int(e["id"]): i for i, e in enumerate(entries)}  # an id repeated by a diverged replay: the latest
        self._used: set[int] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        if new:
            self._write({"type": "evaluation-cache", "format": CACHE_FORMAT, "spec_hash": spec_hash, "threads": threads})

    def __len__(self) -> int:
        return len(self._entries)

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(to_jsonable(record), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def _resume_point(self, entry: dict[str, Any]) -> Any:
        """The fidelity a cached continuation resumed from (older caches: its parent's)."""
        if "resume_from" in entry or entry.get("continues") is None:
            return entry.get("resume_from")
        parent = self._by_id.get(int(entry["continues"]))
        return None if parent is None else self._entries[parent].get("fidelity")

    def _find(self, trial: Trial, resume_from: Any) -> int | None:
        """The index of the cached evaluation to reuse for ``trial`` (class docstring)."""
        key = _key(trial.config, trial.fidelity, resume_from)
        same_id = self._by_id.get(trial.id)
        if same_id is not None and same_id not in self._used:
            entry = self._entries[same_id]
            if _key(entry.get("config"), entry.get("fidelity"), self._resume_point(entry)) == key:
                return same_id
            if self.diverged is None:
                self.diverged = (f"trial {trial.id}: the replay asked {trial.config} at fidelity {trial.fidelity!r}, the interrupted "
                                 f"run had {entry.get('config')} at {entry.get('fidelity')!r}")
        for i, entry in enumerate(self._entries):
            if i not in self._used and _key(entry.get("config"), entry.get("fidelity"), self._resume_point(entry)) == key:
                return i
        return None

    def lookup(self, trial: Trial, resume_from: Any = None) -> tuple[Observation, float] | None:
        i = self._find(trial, resume_from)
        if i is None:
            return None
        self._used.add(i)
        entry = self._entries[i]
        o = entry["observation"]
        curve = None if o.get("curve") is None else [_nan_if_none(v) for v in o["curve"]]
        observation = Observation(value=_nan_if_none(o.get("value")), cost=float(o["cost"]), curve=curve, info=dict(o.get("info") or {}), error=o.get("error"))
        return observation, float(entry.get("eval_time") or 0.0)

    def store(self, trial: Trial, observation: Observation, eval_time: float, resume_from: Any = None) -> None:
        entry = {
            "id": trial.id, "config": trial.config, "fidelity": trial.fidelity, "continues": trial.continues,
            "resume_from": resume_from, "eval_time": eval_time,
            "observation": {
                "value": observation.value, "cost": observation.cost, "curve": observation.curve_list(),
                "info": observation.info, "error": observation.error,
            },
        }
        self._write(entry)
        self._used.add(len(self._entries))
        self._entries.append(_json_round_trip(entry))

    def add_logged(self, trials: list[dict[str, Any]]) -> int:
        """Add the evaluations of a run log's trial records that the cache lacks, not yet used,
        so a replay takes them instead of paying again. Each cached evaluation of the same
        configuration and fidelity accounts for one record, whatever its id (a diverged replay
        may have renumbered them). Returns how many were added."""
        have = Counter(_logged_key(e) for e in self._entries)
        added = []
        for trial in trials:
            key = _logged_key(trial)
            if have[key]:
                have[key] -= 1
            else:
                added.append(_cache_entry(trial))
        for entry in added:
            self._write(entry)
            self._by_id[int(entry["id"])] = len(self._entries)
            self._entries.append(_json_round_trip(entry))
        return len(added)

    def unused(self) -> list[dict[str, Any]]:
        """Cached evaluations that the replay has not asked for (so far)."""
        return [e for i, e in enumerate(self._entries) if i not in self._used]

    def finish(self) -> str | None:
        """Called once the run's log is complete: delete the cache, whose evaluations the log now
        holds, or, when the replay left some unused (it diverged), keep the file as
        ``<run stem>.unused-evals.ndjson`` and say so: paid evaluations are never deleted."""
        self.close()
        unused = self.unused()
        if not unused:
            self.path.unlink(missing_ok=True)
            return None
        kept = self.path.with_name(self.path.name.replace(CACHE_SUFFIX, UNUSED_SUFFIX))
        new = not kept.exists()
        with open(kept, "a", encoding="utf-8") as f:  # a second diverged replay adds to the first's
            header = {"type": "evaluation-cache", "format": CACHE_FORMAT, "spec_hash": self.spec_hash, "unused": True}
            f.writelines(json.dumps(e, allow_nan=False) + "\n" for e in ([header] if new else []) + unused)
            f.flush()
            os.fsync(f.fileno())
        self.path.unlink()
        cost = sum(float(e["observation"]["cost"]) for e in unused)
        return (f"the replay diverged from the interrupted run ({self.diverged or 'asked other trials'}); {len(unused)} cached "
                f"evaluation(s) of total cost {cost:.4g} were not asked for again and are kept in {kept.name}")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> EvaluationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _logged_key(record: dict[str, Any]) -> str:
    """The configuration and fidelity of a cache entry or a log's trial record, comparable."""
    return json.dumps(_json_round_trip([record.get("config"), record.get("fidelity")]), sort_keys=True)


def _cache_entry(trial: dict[str, Any]) -> dict[str, Any]:
    """The cache entry of a log's trial record (its resume point is its parent's fidelity)."""
    observation = {"value": trial.get("value"), "cost": trial["cost"], "curve": trial.get("curve"),
                   "info": trial.get("info") or {}, "error": trial.get("error")}
    return {"id": trial["id"], "config": trial.get("config"), "fidelity": trial.get("fidelity"),
            "continues": trial.get("continues"), "eval_time": trial.get("eval_time"), "observation": observation}


def logged_trials(path: str | Path) -> list[dict[str, Any]]:
    """The trial records of a run log (a cut-off last line is dropped silently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_run(path).trials


@dataclass
class RunState:
    """Where one run of a study stands.

    ``state``: ``"done"`` (complete log), ``"failed"`` (stopped by a problem error, which
    ``error`` gives; resumed like a partial run), ``"partial"`` (an unfinished log, or only a
    cache) or ``"missing"`` (nothing yet). ``conflict`` says why the files cannot be used, if they
    cannot: ``damaged`` tells a damaged file from one of another spec. ``threads`` is the torch
    thread count the run started with (from its cache, else its log; a resume uses it again).
    """

    run: RunSpec
    path: Path
    state: str
    n_trials: int = 0  # trial records in the log
    n_cached: int = 0  # evaluations in the cache
    conflict: str | None = None
    damaged: bool = False
    threads: int | None = None
    error: str | None = None  # why a failed run stopped


def _changed_fields(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "the file records no run spec"
    new = _json_round_trip(new)
    changed = [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(changed) if changed else "no field differs (the hash function changed?)"


_HEADER_START = b'{"type": "header"'


def _header_never_written(path: Path) -> bool:
    """A log killed (or out of disk) before its header line was complete: empty, or the start of
    a header with no line end. Such a run has no trials: it is restarted, its cache kept."""
    data = path.read_bytes()
    return b"\n" not in data and _HEADER_START.startswith(data[: len(_HEADER_START)])


def _inspect_cache(state: RunState, cache: Path) -> None:
    try:
        header, entries, _ = read_cache(cache)
    except ValueError as err:
        state.conflict, state.damaged = f"damaged evaluation cache: {err}. Move or delete {cache.name}; the run then restarts and pays for its evaluations again", True
        return
    state.n_cached, state.state, state.threads = len(entries), "partial", header.get("threads")
    if header and header.get("spec_hash") != state.run.spec_hash:
        state.conflict = f"{cache.name}: evaluation cache of spec hash {header.get('spec_hash')} != {state.run.spec_hash} (this study)"


def _inspect_log(state: RunState) -> None:
    path, run = state.path, state.run
    if _header_never_written(path):
        state.state = "partial"
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut-off last line: the run was interrupted
            log = read_run(path)
    except ValueError as err:
        keep = (f"the run then restarts and reuses the {state.n_cached} evaluations of its cache {cache_path(path).name}" if state.n_cached
                else "the run then restarts from the beginning")
        state.conflict, state.damaged = f"damaged run log, not a change of spec ({err}). Move or delete {path.name}; {keep}", True
        return
    study = log.header.get("study") or {}
    old_hash = study.get("spec_hash")
    if old_hash != run.spec_hash:
        why = "was not written by a study run" if not study else f"spec hash {old_hash} (in the file) != {run.spec_hash} (this study); changed: {_changed_fields(study.get('run_spec'), run.hashed())}"
        state.conflict = f"{path.name}: {why}"
    state.n_trials = len(log.trials)
    state.state = "done" if log.complete else "partial"
    if log.complete and log.footer.get("stop_reason") == PROBLEM_ERROR:
        state.state, state.error = "failed", log.footer.get("error") or PROBLEM_ERROR
    if state.threads is None:
        state.threads = (log.header.get("environment") or {}).get("torch_threads")


def run_state(run: RunSpec, output: str | Path) -> RunState:
    """Inspect (never change) the files of ``run`` under ``output``."""
    path = Path(output) / run.file_name
    state = RunState(run=run, path=path, state="missing")
    if cache_path(path).exists():
        _inspect_cache(state, cache_path(path))
    if path.exists() and not state.damaged:
        _inspect_log(state)
    return state


def study_states(study: Study) -> list[RunState]:
    """The state of every run of ``study``, in run order."""
    return [run_state(run, study.output) for run in study.runs]


def check_specs(study: Study, states: list[RunState] | None = None) -> list[RunState]:
    """The run states, after checking that every existing file can be resumed.

    Raises:
        SpecMismatchError: naming each run whose files belong to another spec, its old and new
            spec hash and what changed (and the damaged files, if there are some too).
        DamagedRunError: naming each damaged file, what is wrong and what to do.
    """
    states = study_states(study) if states is None else states
    mismatched = [s for s in states if s.conflict and not s.damaged]
    damaged = [s for s in states if s.damaged]
    parts = []
    if mismatched:
        lines = "\n".join(f"  - {s.run.title}: {s.conflict}" for s in mismatched)
        parts.append(f"refusing to mix results of a different spec into {study.output} ({len(mismatched)} run{'s' * (len(mismatched) != 1)}):\n{lines}\n"
                     "Use another output directory (output = ... or --out), or delete these files to recompute them.")
    if damaged:
        lines = "\n".join(f"  - {s.run.title}: {s.conflict}" for s in damaged)
        parts.append(f"cannot resume {len(damaged)} run{'s' * (len(damaged) != 1)} in {study.output}: a file is damaged (the spec is the same):\n{lines}")
    if parts:
        raise (SpecMismatchError if mismatched else DamagedRunError)("\n".join(parts))
    return states


def remove_leftover_caches(states: list[RunState]) -> int:
    """Delete the caches of complete runs (a kill between the footer and the deletion leaves one;
    the log holds all it had). Returns how many were removed."""
    removed = 0
    for s in states:
        if s.state == "done" and not s.conflict and cache_path(s.path).exists():
            cache_path(s.path).unlink(missing_ok=True)
            removed += 1
    return removed

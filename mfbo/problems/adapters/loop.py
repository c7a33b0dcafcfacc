"""A resumable epoch-fidelity problem from the user's own training loop: :class:`LoopProblem`.

The user writes their training the way they already do, cut into three functions::

    init(config) -> state                       # build the model, the optimiser, load the data
    step(state, epoch) -> (state, value)        # train epoch ``epoch`` (1, 2, ...) and score it
    step(state, epoch) -> (state, value, info)  # ... with extra metrics for the log (a dict)

and optionally ``save(state, path)`` / ``load(path) -> state`` to keep checkpoints on disk. The
problem's fidelity is the number of epochs ``e in [min_epochs, max_epochs]`` (the target is
``max_epochs``), and ``evaluate(config, e)`` returns the ``value`` of epoch ``e`` (minimised, or
negated under ``direction="maximize"``) with the learning curve ``value_1 .. value_e`` as the
observation's ``curve``.

Resuming
--------
The problem is :attr:`~mfbo.problems.Problem.resumable`: after each evaluation the state of the
configuration is kept in an in-memory LRU cache of ``cache_size`` configurations and, when
``save``/``load`` are given, written to ``checkpoint_dir`` (``save(state, path)`` writes the
user's state; the adapter writes a small JSON file beside it with the epoch, the curve and the
per-epoch times), so that it survives eviction and restarts. An evaluation at ``e2`` epochs that
continues from ``e1`` (a :class:`~mfbo.trial.Trial` with ``continues``)

- continues the kept state when it is at ``e1 <= epoch <= e2`` (memory first, then disk);
- reads epoch ``e2`` from the kept curve when the kept state already went past ``e2``;
- otherwise (the checkpoint is missing: evicted, the file deleted, ``load`` raised, or it is
  older than ``e1``) trains from the kept state, or from scratch when there is none, and says so
  in the observation's ``info["note"]``.

Cost
----
The charge of an evaluation is the cost of the epochs ``(e1, e2]`` (``e1 = 0`` for a new
evaluation) **plus every epoch at or below** ``e1`` **that had to be run again** because its
checkpoint was missing: a lost checkpoint is paid for in full, as it is in real time.

- ``cost="time"`` (default): each epoch costs its **measured** seconds (``clock()`` around the
  ``step`` call; ``init`` is counted in epoch 1, ``load`` and ``save`` are not counted).
  :meth:`cost` is then unknown in advance (``None``) and logs differ between runs by these
  times. ``clock`` (default :func:`time.perf_counter`) can be replaced, e.g. by a fake clock in
  tests.
- ``cost="epochs"``: each epoch costs 1, so ``cost(config, e) = e`` is known in advance (and
  :meth:`LoopProblem.increment_cost` of a continuation counts the epochs a missing checkpoint
  makes it run again), the loop never exceeds the budget, and the same seed gives the same trial
  log (when the user's training is itself deterministic), for reproducible tests and studies.

Failures
--------
A ``step`` that raises, or returns a value that is not a finite number, makes the evaluation a
failed observation (the run goes on): ``error`` names the epoch and the cause, ``curve`` holds
the epochs completed before it, and the cost is that of the epochs run, the failing one
included. The state is dropped (a failing step may have left it half-updated); a checkpoint on
disk from an earlier evaluation stays valid. A ``save`` that raises does not fail the evaluation
(it succeeded); the note says the checkpoint was not written.

``close(state)``, optional, is called whenever the adapter drops a state (eviction, failure, the
target epoch reached, :meth:`LoopProblem.close`), to release what it holds (GPU memory, a
worker thread: :mod:`.optuna_style` uses it).

A problem evaluates one request at a time (as :func:`mfbo.minimize` does, its simulated workers
included); it is not meant to be called from several threads at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...files import replace_atomically
from ...space import Fidelity, Space
from ...trial import Observation
from ..base import Problem

__all__ = ["COST_MODES", "DIRECTIONS", "LoopProblem", "StepFailure"]

#: What an epoch costs: its measured seconds, or 1.
COST_MODES = ("time", "epochs")
#: Whether the user's value is minimised as is or negated.
DIRECTIONS = ("minimize", "maximize")
_SIDECAR_FORMAT = 1


def check_range(owner: str, high: tuple[str, Any], low: tuple[str, Any], cache_size: tuple[str, Any]) -> None:
    """Raise the ``ValueError`` naming the argument for a bad fidelity range or cache size: the
    ``(name, value)`` pairs ``high >= 2``, ``1 <= low < high`` and ``cache_size >= 0``."""
    for (what, value), least in ((high, 2), (low, 1), (cache_size, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{owner}: {what} must be an integer >= {least}, got {value!r}")
    if low[1] >= high[1]:
        raise ValueError(f"{owner}: {low[0]} must be < {high[0]} ({high[1]}), got {low[1]!r}")


class StepFailure(Exception):
    """Raised by ``step`` to fail the epoch with exactly this message (other exceptions are
    reported as ``"step raised <type>: <message>"``)."""


@dataclass
class _Run:
    """One configuration's training: the user's ``state`` after epoch ``len(values)`` (``None``
    once dropped), and per epoch ``k`` (index ``k - 1``) its value, cost and extra info."""

    state: Any
    values: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return len(self.values)


def _callable(owner: str, what: str, fn: Any, optional: bool = False) -> None:
    if fn is None and optional or callable(fn):
        return
    raise ValueError(f"{owner}: {what} must be a callable{' or None' if optional else ''}, got {type(fn).__name__}")


def _jsonable(info: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``info`` that JSON can write (the log's ``info`` must be JSON)."""
    out = {}
    for key, value in info.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value
    return out


class LoopProblem(Problem):
    """An epoch-fidelity, resumable :class:`~mfbo.problems.Problem` from ``init``/``step``
    (module docstring).

    Args:
        init: ``init(config) -> state``.
        step: ``step(state, epoch) -> (state, value)`` or ``(state, value, info)``.
        space: the search space of ``config``.
        max_epochs: the target fidelity (>= 2).
        min_epochs: the lowest fidelity a strategy may ask for (default 1).
        save, load: ``save(state, path)``, ``load(path) -> state``; both or neither, with
            ``checkpoint_dir``.
        checkpoint_dir: where checkpoints go (one ``<hash>.ckpt`` per configuration, written by
            ``save``, and its ``<hash>.json``).
        close: ``close(state)``, called when a state is dropped.
        cost: ``"time"`` (measured seconds, default) or ``"epochs"`` (1 per epoch).
        direction: ``"minimize"`` (default) or ``"maximize"`` (values are negated).
        cache_size: configurations whose state is kept in memory (LRU; 0: none).
        clock: the clock of ``cost="time"``, in seconds (default :func:`time.perf_counter`).
        name: the problem's name (default ``init``'s module and name).
        fidelity_name: the name of the fidelity axis (default ``"epochs"``).
        optimum: the target-fidelity minimum, if known (for exact regret).

    Attributes:
        stats: counters ``epochs_trained`` (every ``step`` call), ``from_checkpoint`` and
            ``from_scratch`` (evaluations that did / did not find a kept state) and
            ``missing_checkpoints`` (continuations that had to run epochs again).
    """

    resumable = True
    _unit = "epoch"  # how messages name a fidelity step, and who ran it
    _runner = "step"

    def __init__(
        self,
        init: Callable[[dict[str, Any]], Any],
        step: Callable[[Any, int], tuple],
        space: Space,
        max_epochs: int,
        *,
        min_epochs: int = 1,
        save: Callable[[Any, str], None] | None = None,
        load: Callable[[str], Any] | None = None,
        checkpoint_dir: str | Path | None = None,
        close: Callable[[Any], None] | None = None,
        cost: str = "time",
        direction: str = "minimize",
        cache_size: int = 32,
        clock: Callable[[], float] = time.perf_counter,
        name: str | None = None,
        fidelity_name: str = "epochs",
        optimum: float | None = None,
    ) -> None:
        name = name or f"{getattr(init, '__module__', '?')}.{getattr(init, '__qualname__', 'init')}"
        owner = f"problem {name!r}"
        for what, fn, optional in (("init", init, False), ("step", step, False), ("save", save, True),
                                   ("load", load, True), ("close", close, True), ("clock", clock, False)):
            _callable(owner, what, fn, optional)
        if (save is None) != (load is None) or (save is not None) != (checkpoint_dir is not None):
            raise ValueError(f"{owner}: save, load and checkpoint_dir go together (checkpoints on disk) or are all None (in memory only); got save={save!r}, load={load!r}, checkpoint_dir={checkpoint_dir!r}")
        check_range(owner, ("max_epochs", max_epochs), ("min_epochs", min_epochs), ("cache_size", cache_size))
        if cost not in COST_MODES:
            raise ValueError(f"{owner}: cost must be one of {list(COST_MODES)}, got {cost!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"{owner}: direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        super().__init__(name, space, Fidelity(fidelity_name, min_epochs, max_epochs, integer=True), optimum)
        self._init, self._step, self._save, self._load, self._close = init, step, save, load, close
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.cost_mode, self.direction, self.cache_size, self.clock = cost, direction, cache_size, clock
        self._cache: OrderedDict[str, _Run] = OrderedDict()
        self.stats = {"epochs_trained": 0, "from_checkpoint": 0, "from_scratch": 0, "missing_checkpoints": 0}

    @property
    def max_epochs(self) -> int:
        return int(self.fidelity.high)

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float | None:
        """``e`` epochs cost ``e`` under ``cost="epochs"``; unknown (``None``) under measured time."""
        return float(self.validate_fidelity(fidelity)) if self.cost_mode == "epochs" else None

    def increment_cost(self, config: Mapping[str, Any], fidelity: Any, resume_from: Any = None) -> float | None:
        """What continuing ``config`` from ``resume_from`` to ``fidelity`` will be charged under
        ``cost="epochs"``: ``fidelity - min(resume_from, kept)`` with ``kept`` the epoch of the
        state kept in memory or on disk (0 if none), since a missing checkpoint is paid in full;
        so the loop's budget check stays exact (unless ``load`` then fails)."""
        full = self.cost(config, fidelity)
        if full is None or resume_from is None:
            return full
        start = int(self.fidelity.validate(resume_from))
        return max(full - min(start, self._kept_epoch(self._key(self.space.validate(config)))), 0.0)

    @staticmethod
    def _key(config: Mapping[str, Any]) -> str:
        return json.dumps(dict(config), sort_keys=True, default=str)

    def _kept_epoch(self, key: str) -> int:
        """The epoch of the state kept for configuration ``key`` (memory, else disk), or 0."""
        if key in self._cache:
            return self._cache[key].epoch
        if self.checkpoint_dir is not None:
            path, meta = self._paths(key)
            if path.exists() and meta.is_file():
                try:
                    return len(json.loads(meta.read_text())["values"])
                except (ValueError, KeyError, OSError):
                    return 0
        return 0

    # Evaluating ---------------------------------------------------------------------------------
    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        return self._observe(config, int(fidelity), 0)

    def _resume(self, config: dict[str, Any], fidelity: float, resume_from: float) -> Observation:
        return self._observe(config, int(fidelity), int(resume_from))

    def _observe(self, config: dict[str, Any], stop: int, start: int) -> Observation:
        """The observation at epoch ``stop`` of a request that continues from epoch ``start``
        (0: a new evaluation); charged as the module docstring says."""
        key = self._key(config)
        run, found = self._fetch(key)
        begin, notes = run.epoch, []  # epochs (begin, stop] are run now, if any
        if start > begin:  # the checkpoint the continuation needs is gone
            self.stats["missing_checkpoints"] += 1
            notes.append(f"no checkpoint at {self._unit} {start} ({found}): {self._unit}s {begin + 1}..{stop} were run, "
                         f"those up to {start} again, and all of them are charged")
        self.stats["from_checkpoint" if found in ("memory", "disk") else "from_scratch"] += 1
        error = self._train(run, config, stop)
        reached = stop if error is None else run.epoch + 1  # the last epoch charged (a failed one included)
        # the epochs asked for, (start, reached], and those at or below start run again, (begin, start]
        charged = sum(run.costs[start:reached]) + sum(run.costs[begin:min(start, reached)])
        info = {f"{self._unit}s_run": max(reached - begin, 0), "checkpoint": found}
        if error is not None:
            self._drop(run)
            return Observation(value=math.nan, cost=charged, curve=list(run.values), error=error, info=self._noted(info, notes))
        notes.extend(self._keep(key, run, trained=reached > begin))
        info = {**run.infos[stop - 1], **info}
        return Observation(value=run.values[stop - 1], cost=charged, curve=run.values[:stop], info=self._noted(info, notes))

    @staticmethod
    def _noted(info: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        return {**info, "note": "; ".join(notes)} if notes else info

    def _train(self, run: _Run, config: dict[str, Any], stop: int) -> str | None:
        """Run ``step`` until ``run`` reaches epoch ``stop``; the error text of a failed epoch
        (whose cost is then appended to ``run.costs`` without a value), else ``None``."""
        while run.epoch < stop:
            epoch = run.epoch + 1
            started, where = self.clock(), "init" if self._runner == "step" else self._runner
            try:
                if run.state is None:  # a new run: init is counted in epoch 1
                    run.state = self._init(dict(config))
                where = self._runner
                out = self._step(run.state, epoch)
            except Exception as err:
                out = err
            run.costs.append(1.0 if self.cost_mode == "epochs" else float(self.clock() - started))
            self.stats["epochs_trained"] += 1
            if isinstance(out, StepFailure):
                return f"{self._unit} {epoch}: {out}"
            if isinstance(out, Exception):
                return f"{self._unit} {epoch}: {where} raised {type(out).__name__}: {out}"
            try:
                run.state, value, info = self._unpack(out)
            except ValueError as err:
                return f"{self._unit} {epoch}: {err}"
            if not math.isfinite(value):
                return f"{self._unit} {epoch}: {self._runner} returned a non-finite value ({value})"
            run.values.append(value if self.direction == "minimize" else -value)
            run.infos.append(info)
        return None

    def _unpack(self, out: Any) -> tuple[Any, float, dict[str, Any]]:
        """``(state, value, info)`` from what ``step`` returned; raises ``ValueError`` saying
        what was expected."""
        if not isinstance(out, tuple) or len(out) not in (2, 3) or len(out) == 3 and not isinstance(out[2], Mapping):
            raise ValueError(f"step must return (state, value) or (state, value, info_dict), got {type(out).__name__}: {out!r:.80}")
        value = out[1]
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise ValueError(f"step must return a number as its value, got {type(value).__name__}: {value!r:.80}")
        return out[0], float(value), _jsonable(out[2]) if len(out) == 3 else {}

    # Keeping states -------------------------------------------------------------------------------
    def _fetch(self, key: str) -> tuple[_Run, str]:
        """The kept run of configuration ``key`` (memory, then disk) or a new one, and where it
        came from: ``"memory"``, ``"disk"`` or why there was none."""
        run = self._cache.pop(key, None)
        if run is not None:
            return run, "memory"
        if self.checkpoint_dir is None:
            return _Run(None), "none kept"
        return self._load_checkpoint(key)

    def _keep(self, key: str, run: _Run, trained: bool) -> list[str]:
        """Save ``run`` to disk if it trained, close its state at the target epoch, and put it in
        the memory cache (evicting the least recently used). Returns notes."""
        notes = []
        if trained and self.checkpoint_dir is not None:
            notes = self._save_checkpoint(key, run)
        if run.epoch >= self.max_epochs:  # nothing can continue it: free the state, keep the curve
            self._drop(run)
        if self.cache_size > 0:
            self._cache[key] = run
            while len(self._cache) > self.cache_size:
                self._drop(self._cache.popitem(last=False)[1])
        else:
            self._drop(run)
        return notes

    def _drop(self, run: _Run) -> None:
        state, run.state = run.state, None
        if state is not None and self._close is not None:
            self._close(state)

    def close(self) -> None:
        """Drop every kept state (calling ``close`` on each); the problem stays usable, and
        continues from the disk checkpoints if there are any."""
        while self._cache:
            self._drop(self._cache.popitem()[1])

    def __enter__(self) -> LoopProblem:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Checkpoints on disk -----------------------------------------------------------------------
    def _paths(self, key: str) -> tuple[Path, Path]:
        digest = hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
        return self.checkpoint_dir / f"{digest}.ckpt", self.checkpoint_dir / f"{digest}.json"

    def _save_checkpoint(self, key: str, run: _Run) -> list[str]:
        path, meta = self._paths(key)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._save(run.state, str(path))
        except Exception as err:
            return [f"checkpoint not saved: save raised {type(err).__name__}: {err}"]
        record = {"format": _SIDECAR_FORMAT, "config": key, "values": run.values, "costs": run.costs, "infos": run.infos}
        replace_atomically(meta, lambda f: f.write(json.dumps(record).encode()))  # never a half-written record
        return []

    def _load_checkpoint(self, key: str) -> tuple[_Run, str]:
        path, meta = self._paths(key)
        if not meta.is_file() or not path.exists():
            return _Run(None), "no checkpoint file"
        try:
            record = json.loads(meta.read_text())
            if record.get("format") != _SIDECAR_FORMAT or record.get("config") != key:
                return _Run(None), "checkpoint of another format or configuration"
            state = self._load(str(path))
        except Exception as err:
            return _Run(None), f"load failed: {type(err).__name__}: {err}"
        run = _Run(state, list(record["values"]), list(record["costs"]), [dict(i) for i in record["infos"]])
        return run, "disk"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(adapter="loop", cost=self.cost_mode, direction=self.direction,
                   step=f"{getattr(self._step, '__module__', '?')}.{getattr(self._step, '__qualname__', '?')}")
        return out

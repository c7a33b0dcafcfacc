"""Executing a study: each run in one worker, serially, in local processes, or on Dask.

:func:`run_study` plans first (:func:`mfbo.study.resume.check_specs`: complete runs are skipped,
a directory holding another spec's results is refused), then hands each remaining run to
:func:`execute_run`, which is the whole job of one worker: build the problem, open the run's
evaluation cache, :func:`mfbo.minimize` with the run spec, delete the cache once the log is
complete. Runs are independent, so the executor only changes where they run, never what they
write:

- ``workers = 1`` (default): one after the other, in this process;
- ``workers = N > 1``: a :class:`concurrent.futures.ProcessPoolExecutor` of ``N`` processes
  (start method ``spawn``: each process imports mfbo afresh, which is safe with torch's thread
  pools where ``fork`` is not);
- ``scheduler = "tcp://host:8786"`` (or ``client=``, a ``dask.distributed.Client``): one Dask
  task per run (extra ``pip install 'mfbo[dask]'``). The workers must have mfbo installed and
  see the output directory at the same path (a shared file system); it is passed as an
  absolute path.

``threads``, when given, is torch's thread count inside each run (set around the run and
restored afterwards). Warnings raised inside a run are collected into its :class:`RunOutcome`
rather than printed, so they do not break the progress display; ``mfbo study run`` lists them
at the end. (Collecting warnings is not thread-safe: give a threaded Dask worker one thread.)

A run that fails (its strategy raised, say) is reported and the others go on; its unfinished log
and cache stay, so running the study again resumes it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..loop import minimize
from ..progress import ProgressBar
from .config import RunSpec, Study
from .resume import EvaluationCache, cache_path, check_specs, run_state

__all__ = ["RunOutcome", "StudyReport", "execute_run", "run_study", "connect_dask"]

#: Distinct warning texts kept per run.
MAX_WARNINGS = 5
POLL_SECONDS = 0.25


@dataclass
class RunOutcome:
    """What happened to one run: ``status`` is ``"done"``, ``"failed"`` or ``"skipped"`` (found
    complete when its worker got to it)."""

    file_name: str
    title: str
    status: str
    seconds: float = 0.0
    n_trials: int = 0
    replayed: int = 0  # evaluations taken from the cache of an interrupted attempt
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class StudyReport:
    """What :func:`run_study` did. ``note`` is set (and nothing ran) when the study was skipped."""

    study: Study
    outcomes: list[RunOutcome] = field(default_factory=list)
    already_done: int = 0  # runs found complete before starting
    seconds: float = 0.0
    note: str | None = None

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed


def _study_header(run: RunSpec, study_name: str) -> dict[str, Any]:
    return {
        "name": study_name, "label": run.label, "problem_label": run.problem_label,
        "run_spec": run.hashed(), "spec_hash": run.spec_hash,
    }


def execute_run(run: RunSpec, output: str | Path, study_name: str = "", threads: int | None = None) -> RunOutcome:
    """Run (or resume) one run of a study and write its log under ``output``; never raises for
    a failure of the run itself, which is reported in the outcome."""
    start = time.perf_counter()
    outcome = RunOutcome(file_name=run.file_name, title=run.title, status="failed")
    previous_threads = None
    try:
        state = run_state(run, output)
        if state.conflict:
            raise ValueError(state.conflict)
        if state.state == "done":
            outcome.status, outcome.n_trials = "skipped", state.n_trials
            return outcome
        if threads is not None:
            import torch

            previous_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            with EvaluationCache(cache_path(state.path), run.spec_hash) as cache:
                result = minimize(
                    run.problem, run.strategy, run.budget, seed=run.seed, problem_options=run.problem_options,
                    strategy_options=run.options, log_path=state.path, workers=run.workers, stop=run.stop, evaluation_cache=cache,
                    log_header={"study": _study_header(run, study_name)},
                )
            cache.path.unlink()  # the complete log holds everything the cache had
        outcome.status, outcome.n_trials, outcome.replayed = "done", len(result.trials), result.replayed
        outcome.warnings = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))[:MAX_WARNINGS]
    except Exception as err:  # one failed run must not stop the study
        outcome.error = f"{type(err).__name__}: {err}"
    finally:
        if previous_threads is not None:
            import torch

            torch.set_num_threads(previous_threads)
        outcome.seconds = time.perf_counter() - start
    return outcome


class _Tracker:
    """Counts of the study's runs and the live line that shows them."""

    def __init__(self, total: int, already_done: int, progress: bool, stream: TextIO | None) -> None:
        self.total = total
        self.already_done = already_done
        self.outcomes: list[RunOutcome] = []
        self.running = 0
        self.bar = ProgressBar(max(total, 1), stream=stream, unit="runs") if progress else None

    def status(self) -> str:
        done = sum(o.status in ("done", "skipped") for o in self.outcomes)
        failed = sum(o.status == "failed" for o in self.outcomes)
        skipped = f"  ({self.already_done} complete before)" if self.already_done else ""
        return f"done {done}  running {self.running}  failed {failed}  waiting {self.total - len(self.outcomes) - self.running}{skipped}"

    def show(self, force: bool = False) -> None:
        if self.bar is not None:
            self.bar.update(len(self.outcomes), self.status(), force=force)

    def finished(self, outcome: RunOutcome) -> None:
        self.outcomes.append(outcome)
        if self.bar is not None:
            self.bar.update(len(self.outcomes), f"{self.status()}  last: {outcome.title} {outcome.status} ({outcome.seconds:.1f} s)", force=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_serial(runs: list[RunSpec], output: Path, study_name: str, threads: int | None, tracker: _Tracker) -> None:
    for run in runs:
        tracker.running = 1
        tracker.show()
        outcome = execute_run(run, output, study_name, threads)
        tracker.running = 0
        tracker.finished(outcome)


def _drain(futures: dict[Any, RunSpec], tracker: _Tracker, count_running: Callable[[Iterable[Any]], int]) -> None:
    """Collect futures (concurrent or Dask) as they finish, updating the live line meanwhile."""
    order = {f: i for i, f in enumerate(futures)}
    pending = set(futures)
    while pending:
        done = sorted((f for f in pending if f.done()), key=order.__getitem__)
        pending.difference_update(done)
        tracker.running = count_running(pending)
        for future in done:
            run = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # the worker itself died (a killed process, a lost Dask worker)
                outcome = RunOutcome(file_name=run.file_name, title=run.title, status="failed", error=f"worker lost: {type(err).__name__}: {err}")
            tracker.finished(outcome)
        if not done:
            tracker.show()
            time.sleep(POLL_SECONDS)


def _run_processes(runs: list[RunSpec], output: Path, study_name: str, threads: int | None, workers: int, tracker: _Tracker) -> None:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            futures = {pool.submit(execute_run, run, output, study_name, threads): run for run in runs}
            _drain(futures, tracker, lambda pending: sum(f.running() for f in pending))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def connect_dask(address: str):
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError("running a study on a Dask cluster needs dask.distributed: pip install 'mfbo[dask]'") from None
    return Client(address)


def _run_dask(runs: list[RunSpec], output: Path, study_name: str, threads: int | None, client: Any, tracker: _Tracker) -> None:
    futures = {client.submit(execute_run, run, str(output), study_name, threads, pure=False): run for run in runs}

    def count_running(pending: Iterable[Any]) -> int:
        keys = {f.key for f in pending}
        try:
            return sum(k in keys for tasks in client.processing().values() for k in tasks)
        except Exception:  # the scheduler did not answer this time: show nothing rather than fail
            return 0

    try:
        _drain(futures, tracker, count_running)
    except BaseException:
        client.cancel(list(futures))
        raise


def unavailable_note(study: Study) -> str:
    """Why a study with missing pieces is skipped (one line per piece)."""
    lines = "\n".join(f"  - {piece}" for piece in study.unavailable)
    return f"skipped study {study.name!r} ({study.source}): it needs what this installation does not have:\n{lines}"


def run_study(
    study: Study,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    threads: int | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> StudyReport:
    """Run every run of ``study`` that is not complete yet (module docstring).

    Args:
        study: from :func:`mfbo.study.load_study`.
        workers: local processes (1: serially in this process). Not the per-run simulated
            workers, which the study file sets.
        scheduler: address of a Dask scheduler; ``client``: a Dask client (either one, not both,
            and not with ``workers > 1``).
        threads: torch threads inside each run (``None``: leave torch's setting alone).
        progress: draw a progress bar with the live study state on ``stream`` (stderr).

    Returns:
        A :class:`StudyReport`; with missing pieces (``if_unavailable = "skip"``) nothing runs
        and ``report.note`` says what is missing.

    Raises:
        ValueError: for bad arguments; :class:`~mfbo.study.resume.SpecMismatchError` when the
            output directory holds results of another spec.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"run_study: workers must be an integer >= 1 (local processes), got {workers!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"run_study: threads must be an integer >= 1 or None, got {threads!r}")
    if scheduler is not None and client is not None:
        raise ValueError("run_study: give scheduler (an address) or client, not both")
    if (scheduler is not None or client is not None) and workers > 1:
        raise ValueError("run_study: workers > 1 (local processes) and a Dask scheduler exclude each other")
    started = time.perf_counter()
    if not study.available:
        return StudyReport(study=study, note=unavailable_note(study))
    states = check_specs(study)
    todo = [s.run for s in states if s.state != "done"]
    tracker = _Tracker(len(todo), len(states) - len(todo), progress, stream if stream is not None else sys.stderr)
    output = study.output.resolve()
    own_client = None
    try:
        if not todo:
            pass
        elif scheduler is not None or client is not None:
            if client is None:
                client = own_client = connect_dask(scheduler)
            _run_dask(todo, output, study.name, threads, client, tracker)
        elif workers > 1:
            _run_processes(todo, output, study.name, threads, workers, tracker)
        else:
            _run_serial(todo, output, study.name, threads, tracker)
    finally:
        tracker.close()
        if own_client is not None:
            own_client.close()
    return StudyReport(study=study, outcomes=tracker.outcomes, already_done=tracker.already_done, seconds=time.perf_counter() - started)

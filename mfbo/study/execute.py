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

Each run is executed under its lock (:mod:`mfbo.study.lock`): several ``mfbo study run``
processes on one study, on one machine or on several sharing the output directory, split the
runs between them; a run another live process holds is reported ``"held"``, not run twice. A
complete run's leftover evaluation cache (a kill between the footer and its deletion) is deleted.
The local pool is handed at most ``N`` runs at a time, and a pool process that dies is replaced
by a fresh pool that resumes the runs it had.

Interrupts (Ctrl-C). Pool processes ignore SIGINT, so one Ctrl-C reaches the main process only
(a terminal sends it to the whole process group). The main process then cancels the runs not
started, sends each pool process SIGTERM, which raises :class:`KeyboardInterrupt` inside its run
(the log is closed without a footer, the evaluation cache and the lock are released: the run is
resumable, as after ``kill -9``), waits up to :data:`STOP_GRACE_SECONDS` and kills whatever is
left, so no pool process outlives the study. On Dask, Ctrl-C cancels the tasks not started and
creates a stop file (``<output>/.interrupt-<token>``) that each running task checks after every
trial: it stops there, resumable, at its next trial boundary (a Dask worker thread cannot be
interrupted mid-evaluation); the next ``run_study`` on that output removes the stop files.

``threads``, when given, is torch's thread count inside each run (set around the run and
restored afterwards). A resumed run uses the thread count it started with instead (recorded
in its cache), since the count can change a GP's last digits and so the replayed trials. Warnings raised inside a run are collected into its :class:`RunOutcome`
rather than printed, so they do not break the progress display; ``mfbo study run`` lists them
at the end. (Collecting warnings is not thread-safe: give a threaded Dask worker one thread.)

A run that fails (its strategy raised, say) is reported and the others go on; its unfinished log
and cache stay, so running the study again resumes it. A run stopped by a problem error (a
``cost=`` or ``target_value`` callable that raised: :class:`mfbo.loop.ProblemError`) has a footer
but is failed too: its cache is kept, and the next ``study run`` resumes it, replaying every
evaluation it paid for (from its cache, and from its log for any the cache lacks).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..loop import minimize
from ..progress import ProgressBar
from ..rng import torch_threads
from .config import RunSpec, Study
from .lock import RunLock, describe_owner
from .resume import EvaluationCache, RunState, cache_path, check_specs, logged_trials, remove_leftover_caches, run_state

__all__ = ["RunOutcome", "StudyReport", "execute_run", "run_study", "connect_dask"]

#: Distinct warning texts kept per run.
MAX_WARNINGS = 5
POLL_SECONDS = 0.25
#: How often a run may be in a pool whose process died before it is reported failed.
MAX_POOL_DEATHS = 2
#: Seconds an interrupted pool process has to close its run before it is killed.
STOP_GRACE_SECONDS = 10.0
#: Prefix of the stop files of interrupted Dask studies (module docstring).
STOP_FILE_PREFIX = ".interrupt-"


class RunInterrupted(Exception):
    """A run stopped at a trial boundary because its study was interrupted (Dask stop file)."""


@dataclass
class RunOutcome:
    """What happened to one run: ``status`` is ``"done"``, ``"failed"``, ``"skipped"`` (found
    complete when its worker got to it) or ``"held"`` (another live process holds its lock and is
    running it: ``error`` names that process) or ``"interrupted"`` (stopped by a Dask stop file,
resumable). ``notes`` say how a resume went (the thread
    count it used, evaluations kept after a diverged replay)."""

    file_name: str
    title: str
    status: str
    seconds: float = 0.0
    n_trials: int = 0
    replayed: int = 0  # evaluations taken from the cache of an interrupted attempt
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class StudyReport:
    """What :func:`run_study` did. ``note`` is set (and nothing ran) when the study was skipped."""

    study: Study
    outcomes: list[RunOutcome] = field(default_factory=list)
    already_done: int = 0  # runs found complete before starting
    seconds: float = 0.0
    note: str | None = None
    caches_removed: int = 0  # leftover caches of complete runs, deleted

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def held(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "held"]

    @property
    def ok(self) -> bool:
        return not self.failed


def _study_header(run: RunSpec, study_name: str) -> dict[str, Any]:
    return {
        "name": study_name, "label": run.label, "problem_label": run.problem_label,
        "run_spec": run.hashed(), "spec_hash": run.spec_hash,
    }




def _resume_threads(state: RunState, threads: int | None, outcome: RunOutcome) -> int | None:
    """The torch thread count to run with: the one a resumed run started with (recorded in its
    cache or log), so the replay asks the same trials; a note says so when it overrides ``threads``."""
    if state.threads is None or not (state.n_cached or state.n_trials):
        return threads
    import torch

    wanted = torch.get_num_threads() if threads is None else threads
    if wanted != state.threads:
        outcome.notes.append(f"resumed with {state.threads} torch thread(s), as the run started (not {wanted}), so the replay asks the same trials")
    return state.threads


def execute_run(run: RunSpec, output: str | Path, study_name: str = "", threads: int | None = None,
                stop_file: str | None = None) -> RunOutcome:
    """Run (or resume) one run of a study and write its log under ``output``, holding the run's
    lock (:mod:`mfbo.study.lock`) throughout; never raises for a failure of the run itself,
    which is reported in the outcome. A run whose lock a live process holds is not touched.
    When the file ``stop_file`` exists after a trial, the run stops there, resumable, with
    status ``"interrupted"``."""
    start = time.perf_counter()
    outcome = RunOutcome(file_name=run.file_name, title=run.title, status="failed")
    lock = RunLock(Path(output) / run.file_name)
    try:
        if not lock.acquire():
            outcome.status, outcome.error = "held", f"held by {describe_owner(lock.owner or {})}"
            return outcome
        state = run_state(run, output)
        if state.conflict:
            raise ValueError(state.conflict)
        if state.state == "done":
            cache_path(state.path).unlink(missing_ok=True)  # a leftover of a kill after the footer
            outcome.status, outcome.n_trials = "skipped", state.n_trials
            return outcome
        _run_logged(run, state, study_name, _resume_threads(state, threads, outcome), outcome, stop_file)
    except RunInterrupted as err:
        outcome.status, outcome.error = "interrupted", str(err)
    except Exception as err:  # one failed run must not stop the study
        outcome.error = f"{type(err).__name__}: {err}"
    finally:
        lock.release()
        outcome.seconds = time.perf_counter() - start
    return outcome


def _stop_check(stop_file: str | None) -> Any:
    """A :func:`mfbo.minimize` callback raising :class:`RunInterrupted` once ``stop_file`` exists."""
    if stop_file is None:
        return None

    def check(record: Any) -> None:
        if os.path.exists(stop_file):
            raise RunInterrupted(f"study interrupted after trial {record.id} ({stop_file})")

    return check


def _run_logged(run: RunSpec, state: RunState, study_name: str, threads: int | None, outcome: RunOutcome,
                stop_file: str | None = None) -> None:
    """:func:`mfbo.minimize` of ``run`` with its evaluation cache; fills ``outcome``."""
    with torch_threads(threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        import torch

        with EvaluationCache(cache_path(state.path), run.spec_hash, threads=torch.get_num_threads()) as cache:
            _recover_logged(cache, state, outcome)
            result = minimize(
                run.problem, run.strategy, run.budget, seed=run.seed, problem_options=run.problem_options,
                strategy_options=run.options, log_path=state.path, workers=run.workers, stop=run.stop, evaluation_cache=cache,
                log_header={"study": _study_header(run, study_name)}, callback=_stop_check(stop_file),
            )
        kept = cache.finish()  # the complete log holds everything the cache had
    outcome.notes += [kept] if kept else []
    outcome.status, outcome.n_trials, outcome.replayed = "done", len(result.trials), result.replayed
    outcome.warnings = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))[:MAX_WARNINGS]


def _recover_logged(cache: EvaluationCache, state: RunState, outcome: RunOutcome) -> None:
    """Copy into ``cache`` the evaluations that the run's log holds and the cache lacks (a cache
    deleted by hand, or by an older mfbo after a problem error), so the replay pays for none."""
    if not state.n_trials:
        return
    added = cache.add_logged(logged_trials(state.path))
    if added:
        outcome.notes.append(f"{added} evaluation(s) missing from the cache were taken from the run log")


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
        held = sum(o.status == "held" for o in self.outcomes)
        skipped = f"  ({self.already_done} complete before)" if self.already_done else ""
        elsewhere = f"  held elsewhere {held}" if held else ""
        return f"done {done}  running {self.running}  failed {failed}{elsewhere}  waiting {self.total - len(self.outcomes) - self.running}{skipped}"

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
            except Exception as err:  # the worker itself died (a lost Dask worker)
                outcome = _lost(run, err)
            tracker.finished(outcome)
        if not done:
            tracker.show()
            time.sleep(POLL_SECONDS)


def _run_processes(runs: list[RunSpec], output: Path, study_name: str, threads: int | None, workers: int, tracker: _Tracker) -> None:
    """Run ``runs`` in a pool of ``workers`` processes. A pool process that dies (killed, out of
    memory) breaks the pool: a fresh pool takes the runs that were in it, which resume from their
    caches, up to :data:`MAX_POOL_DEATHS` times per run before the run is reported failed."""
    deaths: dict[str, int] = {}
    context = multiprocessing.get_context("spawn")
    while runs:
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pool_initializer)
        try:
            runs = _feed_pool(pool, runs, (output, study_name, threads), workers, tracker, deaths)
        except BaseException:  # Ctrl-C: stop every pool process, each run left resumable
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)


_IN_RUN = False  # in a pool process: whether a run is executing (SIGTERM interrupts it)


def _pool_initializer() -> None:
    """Pool processes leave SIGINT to the main process and turn its SIGTERM into an interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    if _IN_RUN:  # unwind the run: its log, cache and lock are closed by their finally blocks
        raise KeyboardInterrupt
    os._exit(128 + signum)


def _pool_execute_run(*args: Any) -> RunOutcome:
    """:func:`execute_run` in a pool process, interruptible by SIGTERM."""
    global _IN_RUN
    _IN_RUN = True
    try:
        return execute_run(*args)
    except KeyboardInterrupt:  # the run has closed its log, cache and lock: nothing is left to do
        os._exit(130)
    finally:
        _IN_RUN = False


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor, grace: float = STOP_GRACE_SECONDS) -> None:
    """Cancel the runs not started, SIGTERM every pool process, and kill those still alive after
    ``grace`` seconds (or at a second Ctrl-C), so none outlives the study."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    try:
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(deadline - time.monotonic(), 0.0))
    except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
        pass
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(1.0)


def _feed_pool(pool: Any, runs: list[RunSpec], args: tuple, workers: int, tracker: _Tracker, deaths: dict[str, int]) -> list[RunSpec]:
    """Hand ``runs`` to ``pool``, never more at once than it has processes, so that nothing
    waits in its queue to start after an interrupt; returns the runs to give a fresh pool when a
    pool process died, else ``[]``."""
    waiting, running, retry = list(runs), {}, []
    while waiting or running:
        while waiting and len(running) < workers and not retry:
            run = waiting.pop(0)
            running[pool.submit(_pool_execute_run, run, *args)] = run
        done, _ = concurrent.futures.wait(running, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            run = running.pop(future)
            try:
                tracker.finished(future.result())
            except concurrent.futures.process.BrokenProcessPool as err:
                deaths[run.file_name] = deaths.get(run.file_name, 0) + 1
                if deaths[run.file_name] <= MAX_POOL_DEATHS:
                    retry.append(run)
                else:
                    tracker.finished(_lost(run, err))
            except Exception as err:
                tracker.finished(_lost(run, err))
        tracker.running = len(running)
        tracker.show()
        if retry and not running:
            return retry + waiting
    return []


def _lost(run: RunSpec, err: BaseException) -> RunOutcome:
    """The outcome of a run whose worker died (a killed process, a lost Dask worker)."""
    return RunOutcome(file_name=run.file_name, title=run.title, status="failed", error=f"worker lost: {type(err).__name__}: {err}")


#: Seconds to wait for a Dask scheduler to answer.
CONNECT_TIMEOUT_SECONDS = 10.0


def connect_dask(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS):
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``; a scheduler that
    cannot be reached is one :class:`ValueError` naming the address and how to start one (a TCP
    address nobody listens on fails at once, not after Dask's 30 s timeout)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError("running a study on a Dask cluster needs dask.distributed: pip install 'mfbo[dask]'") from None
    unreachable = (f"cannot reach a Dask scheduler at {address!r}: start one with `dask scheduler` (it prints its "
                   f"address) and workers with `dask worker ADDRESS` where mfbo is installed, or use --workers N for local processes")
    _probe_tcp(address, timeout, unreachable)
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ValueError(f"{unreachable} ({type(err).__name__}: {err})") from None


def _probe_tcp(address: str, timeout: float, message: str) -> None:
    """Raise ``ValueError(message)`` when ``tcp://host:port`` refuses a connection (other schemes pass)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
    except OSError as err:
        raise ValueError(f"{message} ({err.strerror or err})") from None


def _run_dask(runs: list[RunSpec], output: Path, study_name: str, threads: int | None, client: Any, tracker: _Tracker) -> None:
    stop_file = output / f"{STOP_FILE_PREFIX}{uuid.uuid4().hex}"
    futures = {client.submit(execute_run, run, str(output), study_name, threads, str(stop_file), pure=False): run for run in runs}

    def count_running(pending: Iterable[Any]) -> int:
        keys = {f.key for f in pending}
        try:
            return sum(k in keys for tasks in client.processing().values() for k in tasks)
        except Exception:  # the scheduler did not answer this time: show nothing rather than fail
            return 0

    try:
        _drain(futures, tracker, count_running)
    except BaseException:  # Ctrl-C: running tasks stop at their next trial (module docstring)
        client.cancel(list(futures))
        try:
            stop_file.parent.mkdir(parents=True, exist_ok=True)
            stop_file.touch()
        except OSError:  # an output folder gone or read-only: the running tasks finish their runs
            pass
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
    removed = remove_leftover_caches(states)
    todo = [s.run for s in states if s.state != "done"]
    tracker = _Tracker(len(todo), len(states) - len(todo), progress, stream if stream is not None else sys.stderr)
    output = study.output.resolve()
    for old in output.glob(f"{STOP_FILE_PREFIX}*"):  # of an earlier interrupted Dask study
        old.unlink(missing_ok=True)
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
    return StudyReport(study=study, outcomes=tracker.outcomes, already_done=tracker.already_done,
                       seconds=time.perf_counter() - started, caches_removed=removed)

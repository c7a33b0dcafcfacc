"""The dashboard's run logs: where they come from, and reading them as they grow.

A source is one of

- a **study directory**: every ``*.jsonl`` below it is a run log (as for
  :func:`mfbo.analysis.load_study`); logs that appear later are picked up;
- a **single run log** (``RUN.jsonl``);
- a **stored archive** (``*.tar.xz``, ``*.tar.gz``, ``*.tgz``, ``*.tar``, as
  ``paper_figs/make_figures.py`` stores ``paper_figs/results/NAME.tar.xz``): its regular files
  with relative paths are extracted into a temporary directory, removed when the dashboard stops.

Reading a log as it grows (:class:`LogTail`)
--------------------------------------------
The run loop appends one JSON record per line and flushes it (:mod:`mfbo.runlog`). A tail keeps
the byte offset of the first line it has not consumed and, when the file has grown, reads only
the new bytes. A line without its line end yet (a write in progress) is left for the next read.
Unlike :func:`mfbo.runlog.read_run`, which refuses a log with a damaged line in its middle, the
dashboard **skips a damaged line and reports it** (``path:line: ...``), so one bad byte does not
hide a whole run while it is being watched. A file whose first line is not a header is not a run
log: it is reported and ignored. A file that shrank or was replaced (a study restarting an
interrupted run rewrites its log) is read again from its start.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.load import problem_key, strategy_label
from ..runlog import RunFile

__all__ = ["ARCHIVE_SUFFIXES", "LogTail", "Source", "open_source"]

ARCHIVE_SUFFIXES = (".tar.xz", ".tar.gz", ".tgz", ".tar")


@dataclass
class Source:
    """Where the logs are: ``root`` (a directory, or one log), whether it can still grow
    (``live``), what to show as its name (``label``) and the temporary directory to remove."""

    root: Path
    label: str
    live: bool = True
    tmpdir: Path | None = None

    def files(self) -> list[Path]:
        """The run logs now present (sorted)."""
        if self.root.is_dir():
            return sorted(self.root.rglob("*.jsonl"))
        return [self.root] if self.root.is_file() else []

    def close(self) -> None:
        """Remove the extracted archive, if any."""
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def _extract(archive: Path) -> Path:
    """Extract the regular files of ``archive`` (relative paths only) into a new temporary
    directory; ``ValueError`` naming the archive and the member it refuses."""
    tmp = Path(tempfile.mkdtemp(prefix="mfbo-dashboard-"))
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if not m.isdir()]
            for member in members:
                if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise ValueError(f"{archive}: refusing the archive member {member.name!r} (only run logs with relative paths)")
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python without extraction filters (< 3.11.4); the members were checked above
                tar.extractall(tmp, members=members)
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{archive}: not a readable archive ({err})") from None
    except ValueError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def open_source(path: str | os.PathLike) -> Source:
    """The :class:`Source` of ``path``; ``FileNotFoundError`` if it does not exist, ``ValueError``
    if it holds no run log (``*.jsonl``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such study directory, run log or archive: {path}")
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        tmp = _extract(path)
        source = Source(tmp, label=f"{path} (stored archive)", live=False, tmpdir=tmp)
    elif path.is_file() and path.suffix != ".jsonl":
        raise ValueError(f"{path}: expected a study directory, a run log (.jsonl) or an archive "
                         f"({', '.join(ARCHIVE_SUFFIXES)})")
    else:
        source = Source(path, label=str(path))
    if not source.files():
        source.close()
        raise ValueError(f"no run logs (*.jsonl) under {path}; point the dashboard at a study's results "
                         "directory (the study's `output`), one run log, or a stored archive")
    return source


@dataclass
class LogTail:
    """One run log read incrementally (see the module docstring).

    ``header``, ``trials`` and ``footer`` are what was read so far; ``problems`` the damaged
    lines skipped (``"path:line: ..."``); ``version`` grows by one whenever records arrive, and
    ``reset`` says whether the last :meth:`read` started the file over.
    """

    path: Path
    header: dict[str, Any] | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    not_a_log: str | None = None
    version: int = 0
    reset: bool = False
    _offset: int = 0
    _lineno: int = 0
    _inode: int | None = None
    _run: tuple[int, RunFile] | None = None

    def read(self) -> int:
        """Read what was appended since the last call; returns the number of new records."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return 0
        self.reset = False
        if stat.st_size < self._offset or (self._inode is not None and stat.st_ino != self._inode):
            self._start_over()
        self._inode = stat.st_ino
        if stat.st_size == self._offset or self.not_a_log:
            return 0
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(stat.st_size - self._offset)
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        new = 0
        for raw in complete.splitlines():
            self._lineno += 1
            new += self._take(raw)
        if new:
            self.version += 1
        return new

    def _start_over(self) -> None:
        self.header, self.trials, self.footer, self.problems, self.not_a_log = None, [], None, [], None
        self._offset = self._lineno = 0
        self.version += 1
        self.reset = True

    def _take(self, raw: bytes) -> int:
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict) or record.get("type") not in ("header", "trial", "footer"):
                raise ValueError("not a header, trial or footer record")
        except (ValueError, UnicodeDecodeError):
            if self.header is None and self._lineno == 1:
                self.not_a_log = f"{self.path}: not an mfbo run log (the first line is not a header record); ignored"
            else:
                self.problems.append(f"{self.path}:{self._lineno}: damaged record skipped: {raw[:60]!r}")
            return 0
        kind = record["type"]
        if (kind == "header") != (self.header is None):
            if self.header is None:
                self.not_a_log = f"{self.path}: not an mfbo run log (the first line is not a header record); ignored"
            else:
                self.problems.append(f"{self.path}:{self._lineno}: a second header record skipped")
            return 0
        if kind == "header":
            self.header = record
        elif kind == "trial":
            self.trials.append(record)
        else:
            self.footer = record
        return 1

    @property
    def pending_bytes(self) -> bool:
        """Whether the file ends in a line without its line end (a write in progress, or a log
        cut short)."""
        try:
            return self.path.stat().st_size > self._offset
        except FileNotFoundError:
            return False

    def run_file(self) -> RunFile:
        """What was read so far as a :class:`mfbo.runlog.RunFile` (``header`` must be set); the
        same object until more is read (:func:`mfbo.analysis.load.frame_runs` keeps its rows)."""
        if self._run is None or self._run[0] != self.version:
            self._run = (self.version, RunFile(path=self.path, header=self.header or {}, trials=list(self.trials), footer=self.footer))
        return self._run[1]

    def problem_name(self) -> str | None:
        """The run's problem (as :meth:`key`), ``None`` without a usable header."""
        if self.header is None:
            return None
        try:
            return self.key()[0]
        except ValueError:  # a header that names no strategy
            return None

    def key(self) -> tuple[str, str, Any]:
        """``(problem, strategy label, seed)`` as :func:`mfbo.analysis.load_study` names runs."""
        header = self.header or {}
        return problem_key(header), strategy_label(header), header.get("spec", {}).get("seed")

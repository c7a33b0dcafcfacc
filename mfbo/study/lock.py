"""Run locks: one process at a time works on a run of a study.

Before a worker touches a run's log or evaluation cache it takes the run's lock,
``<output>/<run stem>.lock``, created atomically (``O_CREAT | O_EXCL``, which shared file systems
such as NFS v3+ honour) and holding ``{"host": ..., "pid": ..., "started": ...}`` of its owner. It
is removed when the run ends, however it ends (a finished run, a failure, Ctrl-C). So two
``mfbo study run`` processes on the same study, on one machine or on several machines that share
the output directory, **share the work**: each takes the runs nobody holds and skips the others.

A lock whose owner is on this host and no longer alive (the process was killed with ``kill -9``,
or the machine's pool process died) is **stale** and is taken over. A lock held by a process on
another host cannot be checked from here; it is treated as held, and the message names the host
and pid so that a user who knows that process is gone can delete the file.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["RunLock", "LOCK_SUFFIX", "lock_path", "lock_owner", "owner_alive", "describe_owner"]

LOCK_SUFFIX = ".lock"
#: A lock file still without its owner after this many seconds was left by a process killed
#: while creating it: stale.
UNWRITTEN_SECONDS = 30.0


def lock_path(log_path: str | Path) -> Path:
    """The lock file next to a run log."""
    log_path = Path(log_path)
    return log_path.with_name(log_path.stem + LOCK_SUFFIX)


def lock_owner(path: str | Path) -> dict[str, Any] | None:
    """The owner recorded in a lock file; ``None`` when there is no lock. A lock being written
    right now (empty or cut off) reads as ``{}``: held, by an owner not known yet."""
    try:
        owner = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    try:  # a killed child that its parent has not reaped yet is a zombie: dead
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the owner of a lock may still be running: false only for a process of this host
    that is gone. An owner on another host, or not known yet, counts as alive."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return True
    return _pid_alive(owner["pid"])


def describe_owner(owner: dict[str, Any]) -> str:
    """``"pid 123 on host-a (since 2026-...)"`` for messages."""
    if not owner:
        return "a process that is taking it right now"
    return f"pid {owner.get('pid')} on {owner.get('host')} (since {owner.get('started')})"


class RunLock:
    """The lock of one run (module docstring). ``acquire()`` returns ``True`` when this process
    now holds it; otherwise :attr:`owner` is the live owner that does. ``release()`` removes the
    file if this process still holds it."""

    def __init__(self, log_path: str | Path) -> None:
        self.path = lock_path(log_path)
        self.owner: dict[str, Any] | None = None
        self.held = False

    def _me(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        self.held = True  # before writing: an interrupt while writing still releases it
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(self._me()))
            f.flush()
            os.fsync(f.fileno())
        return True

    def _remove_stale(self, stale: dict[str, Any]) -> None:
        """Take a stale lock away, unless another process has replaced it in the meantime: move
        it aside atomically, and put it back if what was moved is not the stale owner's."""
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another process took it away first
        if lock_owner(aside) != stale:  # a live lock, just created by someone else: give it back
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a few rounds in case several processes take over one stale lock
            if self._create():
                self.owner = None
                return True
            owner = lock_owner(self.path)
            if owner is None:
                continue  # released meanwhile: try again
            if owner_alive(owner) and not (not owner and _age(self.path) > UNWRITTEN_SECONDS):
                self.owner = owner
                return False
            self._remove_stale(owner)
        self.owner = lock_owner(self.path) or {}
        return False

    def release(self) -> None:
        owner = lock_owner(self.path) or {}
        mine = not owner or (owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname())
        if self.held and mine:  # (empty: interrupted while writing it)
            self.path.unlink(missing_ok=True)
        self.held = False

"""Writing a file so that readers see the old content or the new, never a mixture.

:func:`replace_atomically` writes to a temporary file beside the destination, flushes and
fsyncs it, then renames it over the destination (``os.replace``, atomic on POSIX and Windows
within one file system). A crash, a kill or a full disk during the write leaves the previous
file, if any, untouched, and the temporary file is removed when the write raises. The tables,
checkpoints and sidecar records of :mod:`mfbo.problems` hold paid evaluations, so each is
written this way. (Run logs are append-only instead: :mod:`mfbo.runlog`.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def replace_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Create or replace ``path`` with what ``write(file)`` writes to a binary file object.

    The temporary file is ``.<name>.partial`` in the destination's directory (created if
    missing). Returns ``path`` as a :class:`~pathlib.Path`; re-raises whatever ``write`` or the
    file system raised, after removing the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

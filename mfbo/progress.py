"""A one-line progress bar for terminals (stderr), redrawn in place.

Small on purpose: mfbo's core dependencies stay torch, gpytorch, botorch, numpy, scipy and
matplotlib. When the stream is not a terminal (CI logs, pipes), it prints a plain line at most
every ``min_interval`` seconds instead of carriage-return redraws.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``[#####-----]  12.0/30.0 cost  regret 1.2e-02  trial 14``"""

    def __init__(self, total: float, stream: TextIO | None = None, width: int = 30, min_interval: float = 2.0, unit: str = "cost") -> None:
        self.total = float(total)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = -float("inf")

    def update(self, done: float, status: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not (self._tty or force) and now - self._last < self.min_interval:
            return
        self._last = now
        frac = 0.0 if self.total <= 0 else min(max(done / self.total, 0.0), 1.0)
        filled = int(round(frac * self.width))
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {done:8.3g}/{self.total:.3g} {self.unit}  {status}"
        if self._tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

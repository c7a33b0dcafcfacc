"""A one-line progress bar for terminals (stderr), redrawn in place.

Small on purpose: mfbo's core dependencies stay torch, gpytorch, botorch, numpy, scipy and
matplotlib. When the stream is not a terminal (CI logs, pipes), it prints a plain line at most
every ``min_interval`` seconds instead of carriage-return redraws.

Time left is a linear extrapolation: ``elapsed * (total - done) / done``, shown once something is
done and :data:`MIN_ELAPSED_FOR_ESTIMATE` seconds have passed. Model-based strategies slow down
as their GP grows, so for them it is rather a lower bound.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds before the bar shows an estimate of the time left (earlier ones are noise).
MIN_ELAPSED_FOR_ESTIMATE = 2.0


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class ProgressBar:
    """``[#####-----]  12.0/30.0 cost  ~1 min 05 s left  regret 1.2e-02  trial 14``"""

    def __init__(self, total: float, stream: TextIO | None = None, width: int = 30, min_interval: float = 2.0, unit: str = "cost",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = float(total)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = -float("inf")
        self._clock = clock
        self._start = clock()

    def update(self, done: float, status: str = "", force: bool = False) -> None:
        now = self._clock()
        if not (self._tty or force) and now - self._last < self.min_interval:
            return
        self._last = now
        frac = 0.0 if self.total <= 0 else min(max(done / self.total, 0.0), 1.0)
        filled = int(round(frac * self.width))
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {done:8.3g}/{self.total:.3g} {self.unit}  {self.time_left(frac, now)}{status}"
        if self._tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def time_left(self, frac: float, now: float) -> str:
        """``"~1 min 05 s left  "`` by linear extrapolation (module docstring), or ``""`` too early."""
        elapsed = now - self._start
        if frac <= 0 or elapsed < MIN_ELAPSED_FOR_ESTIMATE:
            return ""
        if frac >= 1:
            return f"took {format_duration(elapsed)}  "
        return f"~{format_duration(elapsed * (1 - frac) / frac)} left  "

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

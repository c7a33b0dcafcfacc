"""Randomness plumbing: every random draw in mfbo comes from the run's seed.

mfbo never seeds a global generator for good. Some BoTorch/GPyTorch routines draw from torch's
global RNG with no way to pass a generator (the Boltzmann choice of restarts in
``optimize_acqf``, the random re-initialisation of a failed GP fit). :func:`torch_seed_scope`
runs such code with the global torch RNG forked, seeded from the caller's numpy generator, and
restored afterwards, so results depend on the run seed alone and the caller's global state is
untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["draw_seed", "torch_seed_scope", "torch_threads"]


def draw_seed(rng: np.random.Generator) -> int:
    """A fresh 31-bit seed from ``rng`` (valid for torch, numpy and SciPy alike)."""
    return int(rng.integers(2**31 - 1))


@contextmanager
def torch_seed_scope(rng: np.random.Generator) -> Iterator[int]:
    """Fork torch's global RNG, seed it from ``rng``, and yield the seed used.

    >>> with torch_seed_scope(np.random.default_rng(0)) as seed:
    ...     x = torch.rand(2)        # reproducible, global state restored on exit
    """
    seed = draw_seed(rng)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield seed


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block under ``torch.set_num_threads(n)`` and restore the previous count (``None``:
    leave it alone)."""
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

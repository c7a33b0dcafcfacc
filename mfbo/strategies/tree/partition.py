"""The hierarchical partition of the unit cube shared by the tree-search strategies.

Tree search (DOO, POO, SequOOL, and their multi-fidelity forms MFDOO/MFPDOO and Kometo) works on a
fixed hierarchical partition of the search domain: the root cell is the whole unit cube
``[0, 1]^d`` of :meth:`mfbo.space.Space.encode`, and a cell ``P_{h,i}`` at depth ``h`` is split
into ``K`` children of depth ``h + 1``. Each cell is represented by its centre
``x_{h,i}``, the point a method evaluates (Munos 2011; Sen et al. 2018).

Split rule (Sen, Kandasamy & Shakkottai's code, ``MFTREE_DET``): a cell is cut into ``K`` equal
slabs along its longest side, so the cells of depth ``h`` have sides ``K^{-floor(h/d)}`` or
``K^{-ceil(h/d)}`` and diameters shrink as ``rho = K^{-1/d}`` per level. Our choice: ties between
longest sides (every cell of a cube-shaped level) are broken by a generator draw, made once per cell
and remembered, so every search on one :class:`Partition` sees the same tree, and different seeds
see differently oriented trees (the authors' code takes the first longest side).

A cell is named by its ``path``: the child indices from the root, so ``len(path)`` is its depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Cell", "Partition"]


@dataclass(frozen=True)
class Cell:
    """One cell of the partition: the box ``[low, high]`` (``(d,)`` arrays) and its path."""

    path: tuple[int, ...]
    low: np.ndarray
    high: np.ndarray

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def center(self) -> np.ndarray:
        """The cell's representative point ``x_{h,i}`` (``(d,)``, in the unit cube)."""
        return (self.low + self.high) / 2.0

    def contains(self, u: np.ndarray) -> bool:
        """Whether point ``u`` (``(d,)``) lies in the closed box."""
        return bool(np.all(u >= self.low) and np.all(u <= self.high))


class Partition:
    """The ``K``-ary partition of ``[0, 1]^dim`` by longest-side splits (module docstring).

    Args:
        dim: the dimension ``d`` of the cube (the width of the space's encoding).
        k: the arity ``K >= 2`` of every split.
        rng: breaks ties between longest sides; ``None`` takes the lowest index (deterministic).
    """

    def __init__(self, dim: int, k: int = 2, rng: np.random.Generator | None = None) -> None:
        if dim < 1:
            raise ValueError(f"Partition: dim must be >= 1, got {dim!r}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ValueError(f"Partition: k must be an integer >= 2, got {k!r}")
        self.dim, self.k, self.rng = int(dim), int(k), rng
        self._axis: dict[tuple[int, ...], int] = {}  # path -> the axis its cell is split along
        #: cells this deep have no children: sides of about 2^-30 (our cap; decoded integer and
        #: categorical parameters stop changing long before, so deeper cells would repeat configurations)
        self.max_depth = math.ceil(30 * self.dim / math.log2(self.k))
        self.root = Cell((), np.zeros(self.dim), np.ones(self.dim))

    def axis(self, cell: Cell) -> int:
        """The side along which ``cell`` is split: its longest (ties as the module says)."""
        if cell.path not in self._axis:
            sides = cell.high - cell.low
            longest = np.flatnonzero(np.isclose(sides, sides.max(), rtol=1e-9, atol=0.0))
            pick = 0 if self.rng is None or len(longest) == 1 else int(self.rng.integers(len(longest)))
            self._axis[cell.path] = int(longest[pick])
        return self._axis[cell.path]

    def children(self, cell: Cell) -> list[Cell]:
        """The ``K`` children of ``cell``, in order along the split axis (none at ``max_depth``)."""
        if cell.depth >= self.max_depth:
            return []
        j = self.axis(cell)
        edges = np.linspace(cell.low[j], cell.high[j], self.k + 1)
        out = []
        for i in range(self.k):
            low, high = cell.low.copy(), cell.high.copy()
            low[j], high[j] = edges[i], edges[i + 1]
            out.append(Cell(cell.path + (i,), low, high))
        return out

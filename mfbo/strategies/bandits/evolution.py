"""Differential evolution in the unit hypercube: the DE/rand/1/bin operators of DEHB.

Storn & Price, "Differential Evolution - A Simple and Efficient Heuristic for Global
Optimization over Continuous Spaces", J. Global Optimization 11, 1997, as used by DEHB (Awad,
Mallik & Hutter, IJCAI 2021) and its package ``dehb`` (0.1.1, ``dehb/optimizers/de.py``). All
randomness comes from the ``numpy.random.Generator`` passed in (the strategy's ``rng``).

The DE encoding (:func:`de_space`)
----------------------------------
DE works on vectors ``x in [0, 1]^d`` with **one column per hyperparameter**, which is
:meth:`mfbo.space.Space.encode` with every unordered ``Categorical`` made ``ordered``:

- ``Float``: ``u = (v - low) / (high - low)``, on ``log v`` for a log scale (as ``dehb``);
- ``Int``: each integer owns a bin of equal width, ``u`` at its centre (``dehb`` scales linearly
  from ``low`` to ``high`` and rounds, which gives the two end integers half a bin);
- ``Categorical``: choice ``i`` of ``k`` owns the bin ``[i/k, (i+1)/k)`` and is encoded at its
  centre; decoding takes the bin ``floor(u k)``, exactly ``dehb``'s decoding (``dehb`` encodes
  at the bin's lower edge ``i/k``, which decodes the same). One-hot columns, mfbo's default for
  GP models, would give ``k`` DE dimensions per categorical; the paper and package use one.
- an inactive conditional parameter's column is 0 (``Space.encode``) and is ignored by decoding
  (``dehb`` imputes the default value instead); it still takes part in mutation and crossover.

A DE vector is decoded to a configuration only to evaluate it; the population keeps the vector,
so a configuration carried to a higher budget is the same vector and the same configuration.

The operators, for a target ``x`` and a parent pool ``P``
---------------------------------------------------------
- **Parents** (:func:`draw_parents`): the first row of ``P`` equal to ``x`` is left out; if fewer
  than ``k`` rows remain, random individuals (``space.sample``, encoded) fill the pool up to
  ``k``; then ``k`` distinct rows are drawn uniformly (``dehb``'s ``AsyncDE._sample_population``).
- **Mutation** rand/1 (:func:`rand1`): ``v = r1 + F (r2 - r3)``, ``F`` the mutation factor.
- **Crossover** bin (:func:`binomial_crossover`): ``u_j = v_j`` where ``rand_j < CR``, else
  ``x_j``; if no dimension was taken from ``v``, one dimension ``j* ~ U{0..d-1}`` is forced to
  ``v_{j*}`` (``dehb``'s rule: the forced dimension is drawn only when needed; Storn & Price
  always force a ``j_rand``, which changes the draws but hardly the distribution).
- **Boundary fix** (:func:`fix_boundary`): every component outside ``[0, 1]`` is redrawn
  uniformly in ``[0, 1]`` (``"random"``, ``dehb``'s default ``boundary_fix_type``) or clipped
  (``"clip"``).
- **Selection** (DEHB's strategy): the trial ``u`` replaces its target when
  ``f(u) <= f(x)`` (ties go to the trial, as in ``dehb``, for exploration of plateaus).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...space import Categorical, Space

__all__ = ["de_space", "rand1", "binomial_crossover", "fix_boundary", "draw_parents", "BOUNDARY_FIXES", "check_de_options"]

#: The boundary fixes of :func:`fix_boundary` (``dehb``'s ``boundary_fix_type``).
BOUNDARY_FIXES = ("random", "clip")


def de_space(space: Space) -> Space:
    """The DE encoding of ``space``: the same parameters and conditions, with every unordered
    categorical ordered, so :meth:`Space.encode` gives one column per parameter."""
    params = {
        name: Categorical(param.choices, ordered=True) if isinstance(param, Categorical) else param
        for name, param in space.items()
    }
    return Space(params, conditions=space.conditions)


def rand1(r1: np.ndarray, r2: np.ndarray, r3: np.ndarray, mutation_factor: float) -> np.ndarray:
    """DE/rand/1 mutation: ``r1 + F (r2 - r3)``."""
    return r1 + mutation_factor * (r2 - r3)


def binomial_crossover(target: np.ndarray, mutant: np.ndarray, crossover_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Binomial crossover: each dimension from ``mutant`` with probability ``CR``, at least one
    (drawn only when none was taken, as ``dehb``), the others from ``target``."""
    take = rng.random(target.shape[0]) < crossover_prob
    if not take.any():
        take[rng.integers(0, target.shape[0])] = True
    return np.where(take, mutant, target)


def fix_boundary(vector: np.ndarray, rng: np.random.Generator, how: str = "random") -> np.ndarray:
    """A copy of ``vector`` with the components outside ``[0, 1]`` redrawn uniformly
    (``"random"``) or clipped (``"clip"``)."""
    out = np.array(vector, dtype=float)
    outside = np.flatnonzero((out < 0.0) | (out > 1.0))
    if outside.size:
        out[outside] = rng.uniform(0.0, 1.0, size=outside.size) if how == "random" else np.clip(out[outside], 0.0, 1.0)
    return out


def draw_parents(
    pool: np.ndarray,
    rng: np.random.Generator,
    random_rows: Callable[[int], np.ndarray],
    size: int = 3,
    target: np.ndarray | None = None,
) -> np.ndarray:
    """``size`` distinct rows of ``pool`` (shape ``(n, d)``) drawn uniformly, after leaving out
    the first row equal to ``target`` and filling a pool smaller than ``size`` with
    ``random_rows(k)`` (shape ``(k, d)``). Returns shape ``(size, d)``."""
    pool = np.asarray(pool, dtype=float)
    if target is not None and len(pool) > 1:
        same = np.flatnonzero(np.all(pool == target, axis=1))
        if same.size:
            pool = np.delete(pool, same[0], axis=0)
    if len(pool) < size:
        filler = random_rows(size - len(pool))
        pool = np.concatenate([pool, filler]) if len(pool) else filler
    return pool[rng.choice(len(pool), size, replace=False)]


def _fraction(value: Any, name: str, strategy: str, low_open: bool, high: float, allowed: str) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or not (value > 0 if low_open else value >= 0) or value > high:
        raise ValueError(f"strategy {strategy!r}: option {name} must be a number in {allowed}, got {value!r}")
    return float(value)


def check_de_options(mutation_factor: Any, crossover_prob: Any, boundary_fix: Any, strategy: str) -> tuple[float, float, str]:
    """Validate DE's options, one ``ValueError`` naming the first bad one: ``F in (0, 2]``
    (Storn & Price's range), ``CR in [0, 1]``, ``boundary_fix`` one of :data:`BOUNDARY_FIXES`."""
    f = _fraction(mutation_factor, "mutation_factor", strategy, True, 2.0, "(0, 2]")
    cr = _fraction(crossover_prob, "crossover_prob", strategy, False, 1.0, "[0, 1]")
    if boundary_fix not in BOUNDARY_FIXES:
        raise ValueError(f"strategy {strategy!r}: option boundary_fix must be one of {list(BOUNDARY_FIXES)}, got {boundary_fix!r}")
    return f, cr, str(boundary_fix)

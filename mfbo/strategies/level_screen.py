"""Which fidelity levels still rank configurations as the target does: a screen by the rank
correlation the run has observed (the ``level_screen`` option of :mod:`mfbo.strategies.mf_gp`).

A multi-fidelity GP with an autoregressive kernel links level ``s`` to the target through a
scale ``a(s)`` that is linear (or monotone) in ``s``; it cannot say "epoch 1 ranks configurations
backwards, epoch 3 already ranks them well", which is what LCBench's surrogates say (``mfbo
calibrate``: Spearman's rho between epoch 1 and epoch 52 of -0.27 to 0.36 on three development
tasks, 0.64 to 0.86 at epoch 3). A cost-aware acquisition then finds the cheapest level
attractive and spends runs there (:mod:`mfbo.acquisition.mes`, "Known behaviour"). The screen
looks at the data instead of the model, as the bandit methods' rung statistics do: Hyper-Tune
(Li et al., VLDB 2022) picks Hyperband brackets by how well each rung's ranking agrees with the
highest rung's, and MFES-HB (Li et al., AAAI 2021) weights each fidelity's surrogate by its
ranking agreement with the target.

Rule. ``values[c][s]`` is configuration ``c``'s observed value at level ``s`` (its evaluations,
and the points of its learning curve at the levels). For each level ``s`` below the target, the
*reference* is the highest level ``h > s`` at which at least ``min_pairs`` configurations were
also observed at ``s``, and ``rho(s)`` is Spearman's rank correlation of the two levels over
those configurations. A level with no reference yet is untested and kept. The screen keeps the
levels from the **lowest level at and above which every tested level has** ``rho >= threshold``
up to the target: a learned minimum fidelity, so an uninformative epoch 1 below an informative
epoch 3 goes, and a level is never kept below one that failed. A level whose values are all
equal ranks nothing and fails. The screen is recomputed from all data at every proposal, so a
level comes back when more pairs raise its correlation.

Caveat, stated where the option is documented: the configurations that reach high levels were
chosen (by the design's promotions and by the acquisition), so the sample is range-restricted
and its correlation tends to be lower than over random configurations; the screen errs towards
dropping levels, that is towards single-fidelity BO at the levels that remain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

__all__ = ["LevelScreen", "screen_levels", "MIN_PAIRS"]

#: The fewest configurations observed at both a level and its reference before the level is
#: judged; Spearman's rho from 10 pairs has a standard error of about 0.33 near rho = 0.5.
MIN_PAIRS = 10


@dataclass(frozen=True)
class LevelScreen:
    """The screen's verdict: the levels kept (increasing, the target last), and per tested level
    ``s`` the pair ``(rho, reference level)`` it was judged by."""

    kept: tuple[float, ...]
    correlations: dict[float, tuple[float, float]]

    def describe(self, name: Callable[[float], object] = lambda s: f"{s:.3f}") -> str:
        """One line for the trial log, each level written as ``name(s)``: for epochs, e.g.
        ``kept 3, 9, 27, 52; rho 1 vs 52: -0.21, 3 vs 52: +0.55``."""
        tested = ", ".join(f"{name(s)} vs {name(ref)}: {rho:+.2f}" for s, (rho, ref) in sorted(self.correlations.items()))
        return f"kept {', '.join(str(name(s)) for s in self.kept)}; rho {tested or 'untested'}"


def screen_levels(
    values: Mapping[object, Mapping[float, float]], levels: Sequence[float], threshold: float, min_pairs: int = MIN_PAIRS,
) -> LevelScreen:
    """The levels of ``levels`` (the target last) that the rule of the module docstring keeps,
    given ``values[config][level] = observed value``, keyed by the very floats of ``levels``
    (lower or higher better alike: only ranks matter)."""
    levels = sorted(levels)
    observed = {s: {c for c, by_level in values.items() if s in by_level} for s in levels}
    correlations: dict[float, tuple[float, float]] = {}
    lowest_kept = len(levels) - 1
    for i in range(len(levels) - 2, -1, -1):
        s = levels[i]
        reference = next((h for h in reversed(levels[i + 1:]) if len(observed[s] & observed[h]) >= min_pairs), None)
        if reference is not None:
            common = sorted(observed[s] & observed[reference], key=repr)
            rho = _spearman([values[c][s] for c in common], [values[c][reference] for c in common])
            correlations[s] = (rho, reference)
            if not rho >= threshold:  # NaN (a constant level) fails too
                break
        lowest_kept = i
    return LevelScreen(tuple(levels[lowest_kept:]), correlations)


def _spearman(a: list[float], b: list[float]) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)

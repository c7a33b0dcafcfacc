"""Initial designs of the multi-fidelity GP strategies (:mod:`mfbo.strategies.mf_gp`, step 1).

A design says which configurations run at which fidelity before the acquisition takes over.
Each rule returns counts per fidelity level (levels in increasing order); the strategy draws the
configurations from one scrambled Sobol sequence, so the designs are *nested*: every
configuration run at a higher level also ran at the lowest level it appears in, which is what
lets the GP learn the correlation between fidelities (Kennedy & O'Hagan 2000).

- :func:`initial_design` ("budget-share"): the budget split equally between the levels, the
  cheap levels dominating.
- :func:`ladder_design` ("ladder"): a few configurations climb every rung of
  :func:`geometric_ladder`.
- :func:`bracket_design` ("bracket"): one successive-halving bracket over the ladder's rungs
  (Jamieson & Talwalkar 2016; Hyperband's bracket shape, Li et al. 2018): many configurations at
  a low rung, the best ``1/eta`` of each rung promoted to the next, one reaching the target.
  The promotions depend on the results, so the strategy runs the bracket rung by rung
  (:meth:`~mfbo.strategies.mf_gp.MultiFidelityGPStrategy._promote`); this module only sizes it.
"""

from __future__ import annotations

import math

import numpy as np

from ..space import Fidelity

__all__ = ["initial_design", "ladder_design", "bracket_design", "geometric_ladder", "DESIGN_LEVELS_CONTINUOUS", "LADDER_RATIO"]

#: Normalised fidelities at which the initial design samples a continuous fidelity.
DESIGN_LEVELS_CONTINUOUS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Ratio between successive rungs of :func:`geometric_ladder` (Hyperband's default ``eta``).
LADDER_RATIO = 3.0


def initial_design(level_costs: list[float], design_budget: float | None, min_points: int, min_target: int = 1) -> list[int]:
    """How many design points each fidelity level gets (levels in increasing order).

    The design budget is split equally between the levels, so a level gets
    ``n_l = floor(share / cost_l)`` points and the cheap levels dominate (a level too expensive
    for its share gets none). The target gets at least ``min_target`` points as far as the
    whole design budget pays for them, and always one; if the design has fewer than ``min_points`` points the cheapest level is topped up; on tiny budgets this can
    exceed the design budget (the loop charges every point all the same). Configurations come
    from one Sobol sequence, level ``l`` taking its first ``n_l`` points, and no level gets more
    points than the cheapest: the design is *nested* (every configuration run at a higher level
    also ran at the cheapest one), which is what lets the GP learn the correlation between
    fidelities (Kennedy & O'Hagan 2000).

    Without a budget (``design_budget=None``, e.g. a bare ask/tell loop) the counts are
    proportional to ``1 / cost`` with ``min_points`` points in all.

    >>> initial_design([0.1, 0.325, 1.0], design_budget=3.0, min_points=4)
    [10, 3, 1]
    """
    costs = np.asarray(level_costs, dtype=float)
    if design_budget is None:
        weights = (1 / costs) / np.sum(1 / costs)
        counts = np.floor(weights * min_points).astype(int)
    else:
        counts = np.floor(design_budget / len(costs) / costs + 1e-9).astype(int)
    affordable = len(costs) if design_budget is None else int(np.floor(design_budget / costs[-1] + 1e-9))
    counts[-1] = max(counts[-1], min(min_target, affordable), 1)
    counts[0] = max(counts[0], counts[-1])  # the target's configurations also run at the cheapest level
    if counts.sum() < min_points:
        counts[0] += min_points - counts.sum()
    counts = np.minimum(counts, counts[0])  # nested in the cheapest level's configurations
    return counts.tolist()


def ladder_design(level_costs: list[float], design_budget: float | None, min_points: int) -> list[int]:
    """How many design points each rung of a ladder gets: ``k`` configurations climb every rung.

    ``level_costs[l]`` is what rung ``l`` adds to a configuration's cost (the increment over
    rung ``l - 1`` on a resumable problem, the full cost otherwise), so one climb costs
    ``sum(level_costs)`` and ``k = floor(design_budget / sum(level_costs))``, at least 1. If the
    ``k L`` points fall short of ``min_points``, further configurations run at the cheapest rung
    only. Without a budget, ``k = ceil(min_points / L)``, at least 2. Configurations are nested
    as in :func:`initial_design`.

    >>> ladder_design([1.0, 2.0, 6.0, 18.0, 25.0], design_budget=104.0, min_points=9)
    [2, 2, 2, 2, 2]
    >>> ladder_design([1.0, 2.0, 6.0], design_budget=10.0, min_points=6)
    [4, 1, 1]
    """
    costs = np.asarray(level_costs, dtype=float)
    if design_budget is None:
        climbs = max(2, -(-min_points // len(costs)))
    else:
        climbs = max(1, int(np.floor(design_budget / costs.sum() + 1e-9)))
    counts = [climbs] * len(costs)
    counts[0] += max(0, min_points - climbs * len(costs))
    return counts


def geometric_ladder(fidelity: Fidelity, ratio: float = LADDER_RATIO) -> list[float]:
    """Normalised rungs ``low, low r, low r^2, ..., target`` of a fidelity (``r = ratio``).

    A rung within a factor ``sqrt(r)`` of the target is dropped (it would nearly repeat it);
    integer fidelities round each rung and drop repeats. A fidelity whose range starts at 0
    or below, a log-scaled one (already geometric in ``s``) and one with at most 8 explicit
    levels keep the evenly spaced design levels (:data:`DESIGN_LEVELS_CONTINUOUS`, or every
    level).

    >>> geometric_ladder(Fidelity("epoch", 1, 52, integer=True))  # epochs 1, 3, 9, 27, 52
    [0.0, 0.0392..., 0.1568..., 0.5098..., 1.0]
    """
    if fidelity.is_discrete and len(fidelity.grid()) <= 8:
        return [float(fidelity.normalize(v)) for v in fidelity.grid()]
    if fidelity.low <= 0 or fidelity.log:
        return sorted({float(fidelity.normalize(fidelity.denormalize(s))) for s in DESIGN_LEVELS_CONTINUOUS})
    values, v = [], float(fidelity.low)
    while v * np.sqrt(ratio) < fidelity.target:
        values.append(v)
        v *= ratio
    values.append(fidelity.target)
    rungs = {float(fidelity.normalize(fidelity.denormalize(fidelity.normalize(x)))) for x in values}
    return sorted(rungs)


def _bracket_counts(levels: int, start: int, scale: float, eta: float, min_top: int = 1) -> list[int]:
    """``n_i = max(min_top, floor(scale * eta^(L-1-i)))`` for rungs ``i >= start``, 0 below."""
    return [0] * start + [max(min_top, math.floor(scale * eta ** (levels - 1 - i) + 1e-9)) for i in range(start, levels)]


def _bracket_cost(counts: list[int], costs: list[float], resumable: bool) -> float:
    """What a bracket costs: a configuration entering at rung ``j`` pays ``c_j``; one promoted to
    rung ``i`` pays ``c_i - c_{i-1}`` when its run is continued, ``c_i`` when it restarts."""
    total, previous = 0.0, 0
    for i, (n, c) in enumerate(zip(counts, costs)):
        promoted = min(n, previous) if resumable else 0
        total += (n - promoted) * c + promoted * (c - costs[i - 1] if i else c)
        previous = n
    return total


def bracket_design(
    level_costs: list[float], design_budget: float | None, min_points: int, *, resumable: bool,
    min_top: int = 1, eta: float = LADDER_RATIO, min_scale: float = 0.5,
) -> list[int]:
    """How many configurations each rung of one successive-halving bracket gets.

    ``level_costs[i]`` is the cost ``c_i`` of one evaluation from scratch at rung ``i`` of ``L``.
    The standard bracket that starts at rung ``j`` has ``eta^(L-1-i)`` configurations at rung
    ``i >= j``, one at the target; scaled by ``m`` and with at least ``min_top`` at every rung
    it has ``n_i = max(min_top, floor(m eta^(L-1-i)))`` (``min_top`` target evaluations let the
    GP see whether the rungs below agree with the target; the strategy passes its
    ``min_target_init``)
    and costs ``sum_i n_i c_i``, or, when runs are continued, ``n_j c_j + sum_{i>j} n_i (c_i -
    c_{i-1})`` (:func:`_bracket_cost`). The design starts at the **lowest rung whose bracket the
    budget pays for at a scale** ``m >= min_scale`` and takes the largest ``m`` that fits: with
    a generous budget it starts at the cheapest rung with many configurations (Hyperband's most
    exploratory bracket), with a small one at a higher rung with fewer. When not even one target
    evaluation fits with ``min_scale``, the bracket is ``min_points`` configurations at the
    cheapest rung and the best of them at the target. The start rung gets at least
    ``min_points`` configurations. Both may exceed the budget, as :func:`initial_design` may.
    Without a budget the bracket starts at the cheapest rung with ``m = 1``. Rungs with a zero
    count after the start are skipped by the promotions.

    >>> bracket_design([1, 3, 9, 27, 52], design_budget=208, min_points=9, resumable=True)  # LCBench, 4 x 52 epochs
    [63, 21, 7, 2, 1]
    >>> bracket_design([1, 3, 9, 27, 52], design_budget=208, min_points=9, resumable=True, min_top=3)
    [0, 16, 5, 3, 3]
    >>> bracket_design([1, 3, 9, 27, 52], design_budget=104, min_points=9, resumable=True)  # start topped up
    [0, 0, 9, 1, 1]
    >>> bracket_design([0.1, 0.3, 1.0], design_budget=2.0, min_points=4, resumable=False)
    [5, 1, 1]
    """
    L = len(level_costs)
    if design_budget is None:
        counts = _bracket_counts(L, 0, 1.0, eta, min_top)
    else:
        counts = _fitting_bracket(level_costs, design_budget, resumable, eta, min_scale, min_top)
    start = next(i for i, n in enumerate(counts) if n)
    counts[start] = max(counts[start], min_points)
    return counts


def _fitting_bracket(costs: list[float], budget: float, resumable: bool, eta: float, min_scale: float, min_top: int) -> list[int]:
    """The counts of :func:`bracket_design` for a budget: lowest start, then the largest scale."""
    L = len(costs)
    for start in range(L):
        if _bracket_cost(_bracket_counts(L, start, min_scale, eta, min_top), costs, resumable) > budget * (1 + 1e-9):
            continue
        low, high = min_scale, max(min_scale, budget / min(costs[start:]))  # cost(m) is non-decreasing in m
        for _ in range(60):
            middle = (low + high) / 2
            if _bracket_cost(_bracket_counts(L, start, middle, eta, min_top), costs, resumable) <= budget * (1 + 1e-9):
                low = middle
            else:
                high = middle
        return _bracket_counts(L, start, low, eta, min_top)
    return [1] + [0] * (L - 2) + [1]

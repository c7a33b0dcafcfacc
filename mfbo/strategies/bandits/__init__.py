"""Bandit-based multi-fidelity strategies (issue #14): successive halving, Hyperband, ASHA,
BOHB and DEHB, sharing one resource schedule (:mod:`.schedule`).

:data:`BANDIT_STRATEGIES` lists every class; :mod:`mfbo.strategies` registers them all.
"""

from __future__ import annotations

from .schedule import Bracket, Resources, Rung, hyperband_brackets, successive_halving_rungs

BANDIT_STRATEGIES: tuple[type, ...] = (
)

__all__ = ["BANDIT_STRATEGIES", "Bracket", "Resources", "Rung", "hyperband_brackets", "successive_halving_rungs"]

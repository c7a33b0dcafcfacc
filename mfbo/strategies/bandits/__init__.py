"""Bandit-based multi-fidelity strategies (issue #14): successive halving, Hyperband, ASHA,
BOHB and DEHB, sharing one resource schedule (:mod:`.schedule`).

:data:`BANDIT_STRATEGIES` lists every class; :mod:`mfbo.strategies` registers them all.
"""

from __future__ import annotations

from .asha import ASHA
from .bohb import BOHB
from .dehb import DEHB
from .hyperband import Hyperband
from .schedule import Bracket, Resources, Rung, hyperband_brackets, successive_halving_rungs
from .sh import SuccessiveHalving

BANDIT_STRATEGIES: tuple[type, ...] = (
    SuccessiveHalving,
    Hyperband,
    ASHA,
    BOHB,
    DEHB,
)

__all__ = ["BANDIT_STRATEGIES", "ASHA", "BOHB", "DEHB", "Hyperband", "SuccessiveHalving", "Bracket", "Resources", "Rung", "hyperband_brackets", "successive_halving_rungs"]

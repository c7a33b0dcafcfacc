"""Validation of the acquisitions' options, shared by every module of :mod:`mfbo.acquisition`.

Each check returns the value (normalised: ``int``, ``float``) or raises a ``ValueError`` that names
the acquisition, the option, what is allowed and the value given, in one pattern::

    acquisition 'mf-kg': option num_restarts must be an integer >= 1, got 0

``bool`` is never taken for a number (``True`` is not an integer ``>= 1`` here), and numpy
integers and floats count as integers and numbers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = ["check_int", "check_float", "check_bool", "check_choice", "check_q"]


def _is_int_at_least(value: Any, minimum: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def check_int(acq: str, option: str, value: Any, minimum: int) -> int:
    """``int(value)`` if it is an integer ``>= minimum``."""
    if not _is_int_at_least(value, minimum):
        raise ValueError(f"acquisition {acq!r}: option {option} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(acq: str, option: str, value: Any, *, minimum: float, strict: bool = False) -> float:
    """``float(value)`` if it is a finite number ``>= minimum`` (``> minimum`` when ``strict``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"acquisition {acq!r}: option {option} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_bool(acq: str, option: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not ``1``, not ``"yes"``)."""
    if not isinstance(value, bool):
        raise ValueError(f"acquisition {acq!r}: option {option} must be True or False, got {value!r}")
    return value


def check_choice(acq: str, option: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices`` (listed in the message)."""
    if value not in choices:
        allowed = ", ".join(map(repr, choices))
        raise ValueError(f"acquisition {acq!r}: option {option} must be one of {allowed}, got {value!r}")
    return value


def check_q(acq: str, q: Any) -> int:
    """The batch size ``q`` of ``propose``: ``int(q)`` if it is an integer ``>= 1``."""
    if not _is_int_at_least(q, 1):
        raise ValueError(f"acquisition {acq!r}: q must be an integer >= 1, got {q!r}")
    return int(q)

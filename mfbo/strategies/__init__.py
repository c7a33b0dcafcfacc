"""Strategies: the ask/tell interface and a registry of methods.

>>> import mfbo
>>> from mfbo import strategies
>>> s = strategies.make("gp-ei", mfbo.problems.get("hartmann6"), seed=0, n_init=8)

Every method is a :class:`Strategy` subclass registered under its name. :func:`make` checks the
options against the method's constructor, so a typo names the option and the allowed ones.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..problems.base import Problem
from ..space import Space
from .bandits import BANDIT_STRATEGIES
from .base import Continuation, Strategy
from .boil import BOIL
from .fabolas import Fabolas
from .gp_ei import GPEI
from .guard import GuardedStrategy, GuardOptions, guarded
from .lc_extrapolation import LCExtrapolation
from .mf_gp import MULTI_FIDELITY_STRATEGIES
from .random_search import RandomSearch
from .tree import TREE_STRATEGIES

__all__ = ["Strategy", "Continuation", "register", "names", "make", "option_names", "GuardOptions", "GuardedStrategy", "guarded"]

_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Register a :class:`Strategy` subclass under ``cls.name`` (usable as a decorator)."""
    if cls.name in _REGISTRY:
        raise ValueError(f"strategy {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """The registered strategy names, sorted."""
    return sorted(_REGISTRY)


def _lookup(name: str) -> type[Strategy]:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"unknown strategy {name!r}{hint}; known strategies: {', '.join(names())}")
    return _REGISTRY[name]


def option_names(name: str) -> list[str]:
    """The options that strategy ``name`` accepts (see :meth:`Strategy.option_signature`)."""
    return list(_lookup(name).option_signature())


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


def _coerce(strategy: str, key: str, value: Any, annotation: Any) -> Any:
    """Check an option against its annotation (``int``, ``float | None``, ...), converting
    exact numeric values (``5.0`` -> ``5``, ``3`` -> ``3.0``); other annotations pass through."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [part.strip() for part in text.split("|")]
    optional = "None" in parts
    kinds = [_SCALARS[p] for p in parts if p in _SCALARS]
    if len(kinds) != len(parts) - optional or not kinds:
        return value  # a richer annotation: the strategy validates it
    if value is None and optional:
        return None
    for kind in kinds:
        if kind is bool:
            if isinstance(value, bool):
                return value
        elif kind is int:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
                return int(value)
        elif kind is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif isinstance(value, str):
            return value
    expected = " or ".join(parts)
    raise ValueError(f"strategy {strategy!r}: option {key} must be {expected}, got {value!r}")


def make(name: str, problem_or_space: Problem | Space, seed: int = 0, **options: Any) -> Strategy:
    """Build strategy ``name`` for a problem (or a bare space, with no fidelity).

    ``guard`` is an option of every strategy: a bias guard (:mod:`mfbo.strategies.guard`) in any
    form :meth:`GuardOptions.parse` takes (``guard=10``, ``guard="change"``,
    ``guard={"every": 10, "on_change": True}``) wraps the strategy in a :class:`GuardedStrategy`.

    Raises:
        ValueError: for an unknown name or option; the message lists the known ones.
    """
    guard = options.pop("guard", None)
    if guard is not None:
        return guarded(make(name, problem_or_space, seed, **options), guard)
    cls = _lookup(name)
    signature = cls.option_signature()
    allowed = list(signature)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"strategy {name!r}: unknown option(s) {unknown}; allowed options: {', '.join(allowed) or '(none)'}"
        )
    options = {key: _coerce(name, key, value, signature[key].annotation) for key, value in options.items()}
    if isinstance(problem_or_space, Problem):
        problem = problem_or_space
        return cls(problem.space, problem.fidelity, seed=seed, problem=problem, **options)
    if isinstance(problem_or_space, Space):
        return cls(problem_or_space, None, seed=seed, **options)
    raise ValueError(f"make: expected a Problem or a Space, got {type(problem_or_space).__name__}")


register(RandomSearch)
register(GPEI)
register(BOIL)
register(Fabolas)
register(LCExtrapolation)
for _cls in MULTI_FIDELITY_STRATEGIES + BANDIT_STRATEGIES + TREE_STRATEGIES:
    register(_cls)
del _cls

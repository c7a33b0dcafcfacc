"""Problems: the :class:`Problem` interface, :meth:`Problem.from_function` and a name registry.

>>> from mfbo import problems
>>> problems.names()[:3]
['augmented-branin', 'augmented-hartmann', 'borehole']
>>> p = problems.get("forrester")
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from .base import FunctionProblem, Problem

__all__ = ["Problem", "FunctionProblem", "register", "names", "get"]

_REGISTRY: dict[str, Callable[..., Problem]] = {}


def register(name: str, factory: Callable[..., Problem]) -> None:
    """Register ``factory(**kwargs) -> Problem`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"problem {name!r} is already registered")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """The registered problem names, sorted."""
    return sorted(_REGISTRY)


def get(name: str, **kwargs: Any) -> Problem:
    """Build the registered problem ``name``; ``kwargs`` go to its constructor."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"unknown problem {name!r}{hint}; known problems: {', '.join(names())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as err:  # unexpected keyword arguments: say which problem and what it takes
        raise ValueError(f"problem {name!r}: bad arguments {sorted(kwargs)!r}: {err}") from None


from . import synthetic  # noqa: E402,F401  (registers the synthetic suite)
from . import training  # noqa: E402,F401  (registers digits-mlp, digits-cnn, diabetes-mlp, digits-svm; scikit-learn is imported on use)
from . import tabular  # noqa: E402,F401  (registers table and the shipped digits-mlp-table)

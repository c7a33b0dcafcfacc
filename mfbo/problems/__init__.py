"""Problems: the :class:`Problem` interface, :meth:`Problem.from_function` and a name registry.

>>> from mfbo import problems
>>> problems.names()[:3]
['augmented-branin', 'augmented-hartmann', 'borehole']
>>> p = problems.get("forrester")

**Families.** A benchmark with many instances registers them as one family
(:func:`register_family`): ``get("lcbench/167168")`` builds instance ``167168`` of family
``lcbench``. Family members are listed by :func:`families`, not by :func:`names`.

**Groups.** A named list of problems (:func:`register_group`), e.g. a benchmark suite;
:func:`expand` replaces group names by their members, so a study can name ``"yahpo-so"``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from .base import FunctionProblem, Problem

__all__ = [
    "Problem", "FunctionProblem", "register", "names", "get",
    "register_family", "families", "register_group", "groups", "expand",
]

_REGISTRY: dict[str, Callable[..., Problem]] = {}
_FAMILIES: dict[str, tuple[Callable[..., Problem], tuple[str, ...]]] = {}  # family -> (factory, instances)
_GROUPS: dict[str, tuple[str, ...]] = {}


def register(name: str, factory: Callable[..., Problem]) -> None:
    """Register ``factory(**kwargs) -> Problem`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"problem {name!r} is already registered")
    _REGISTRY[name] = factory


def names() -> list[str]:
    """The registered problem names, sorted."""
    return sorted(_REGISTRY)


def register_family(family: str, factory: Callable[..., Problem], instances: Iterable[str]) -> None:
    """Register the problems ``f"{family}/{instance}"``: ``get("family/x", **kwargs)`` calls
    ``factory("x", **kwargs)``. ``instances`` are the valid instance names (strings)."""
    members = tuple(str(i) for i in instances)
    if not family or "/" in family:
        raise ValueError(f"register_family: family must be a non-empty name without '/', got {family!r}")
    if family in _FAMILIES:
        raise ValueError(f"problem family {family!r} is already registered")
    if not members or len(set(members)) != len(members):
        raise ValueError(f"register_family: family {family!r} needs distinct instance names, got {list(members)!r}")
    _FAMILIES[family] = (factory, members)


def families() -> dict[str, list[str]]:
    """The registered families, sorted, each with its instances (in registration order)."""
    return {family: list(_FAMILIES[family][1]) for family in sorted(_FAMILIES)}


def _is_problem(name: str) -> bool:
    family, sep, instance = name.partition("/")
    return name in _REGISTRY or bool(sep) and family in _FAMILIES and instance in _FAMILIES[family][1]


def _unknown_problem(name: str) -> ValueError:
    family, sep, instance = name.partition("/")
    if sep and family in _FAMILIES:
        return ValueError(f"unknown {family} instance {instance!r} in problem {name!r}; valid instances: {', '.join(_FAMILIES[family][1])}")
    close = difflib.get_close_matches(name, list(_REGISTRY) + list(_GROUPS), n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    listed = ", ".join(names() + [f"{f}/<instance>" for f in sorted(_FAMILIES)])
    return ValueError(f"unknown problem {name!r}{hint}; known problems: {listed}")


def get(name: str, **kwargs: Any) -> Problem:
    """Build the registered problem ``name`` (or family member ``family/instance``); ``kwargs``
    go to its constructor."""
    if not _is_problem(name):
        raise _unknown_problem(name)
    if name in _REGISTRY:
        factory, args = _REGISTRY[name], ()
    else:
        family, _, instance = name.partition("/")
        factory, args = _FAMILIES[family][0], (instance,)
    try:
        return factory(*args, **kwargs)
    except TypeError as err:  # unexpected keyword arguments: say which problem and what it takes
        raise ValueError(f"problem {name!r}: bad arguments {sorted(kwargs)!r}: {err}") from None


def register_group(name: str, members: Iterable[str]) -> None:
    """Register a named group of problems (registered names, family members or other groups)."""
    members = tuple(members)
    if name in _GROUPS or _is_problem(name):
        raise ValueError(f"register_group: {name!r} is already a registered group or problem")
    if not members:
        raise ValueError(f"register_group: group {name!r} needs at least one member")
    unknown = [m for m in members if not (_is_problem(m) or m in _GROUPS)]
    if unknown:
        raise ValueError(f"register_group: group {name!r} has unknown member(s) {unknown!r}")
    _GROUPS[name] = members


def groups() -> dict[str, list[str]]:
    """The registered groups, sorted, each with its members as registered (see :func:`expand`)."""
    return {name: list(_GROUPS[name]) for name in sorted(_GROUPS)}


def expand(problem_names: str | Iterable[str]) -> list[str]:
    """Replace every group name by its members (recursively), keeping order and dropping repeats.

    Raises:
        ValueError: for a name that is neither a group nor a problem.
    """
    out: list[str] = []
    for name in [problem_names] if isinstance(problem_names, str) else problem_names:
        if name in _GROUPS:
            members = expand(_GROUPS[name])
        elif _is_problem(name):
            members = [name]
        else:
            raise _unknown_problem(name)
        out.extend(m for m in members if m not in out)
    return out


from . import synthetic  # noqa: E402,F401  (registers the synthetic suite)
from . import training  # noqa: E402,F401  (registers digits-mlp, digits-cnn, diabetes-mlp, digits-svm; scikit-learn is imported on use)
from . import tabular  # noqa: E402,F401  (registers table and the shipped digits-mlp-table)
from . import yahpo  # noqa: E402,F401  (registers the YAHPO Gym families and suite groups; no data needed)
from .adapters import LoopProblem, OptunaStyleProblem  # noqa: E402,F401  (users' own training code as problems)

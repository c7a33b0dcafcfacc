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
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from ..signature import describe_options
from .base import FunctionProblem, Problem

__all__ = [
    "Problem", "FunctionProblem", "register", "names", "get",
    "register_family", "families", "register_group", "groups", "expand", "option_signature",
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
    options, open_ended = _options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown and not open_ended:
        raise ValueError(f"problem {name!r}: unknown option(s) {', '.join(unknown)}; its options: {describe_options(options.values())}")
    try:
        return factory(*args, **kwargs)
    except TypeError as err:  # a bad value the signature could not catch: say which problem and what it takes
        raise ValueError(f"problem {name!r}: bad options {sorted(kwargs)!r} ({err}); its options: {describe_options(options.values())}") from None


def option_signature(name: str) -> dict[str, inspect.Parameter]:
    """The options (keyword arguments) that problem ``name`` accepts, from its factory's signature."""
    if not _is_problem(name):
        raise _unknown_problem(name)
    return _options(name)[0]


def _options(name: str) -> tuple[dict[str, inspect.Parameter], bool]:
    """``(options, open_ended)``: the factory's keyword parameters, and whether it takes more
    than it shows (``**kwargs`` that could not be followed, or no signature)."""
    factory, n_args = (_REGISTRY[name], 0) if name in _REGISTRY else (_FAMILIES[name.partition("/")[0]][0], 1)
    params = _parameters(factory)
    if params is None:
        return {}, True
    params = params[n_args:]
    if isinstance(factory, type) and _takes_kwargs(params):  # a subclass passing **kwargs up: its base's keywords
        base = next((b for b in factory.__mro__[1:] if "__init__" in vars(b) and not _takes_kwargs(_parameters(b) or [])), None)
        params += [p for p in _parameters(base) or [] if p.kind == inspect.Parameter.KEYWORD_ONLY] if base else []
        params = [p for p in params if p.kind != inspect.Parameter.VAR_KEYWORD] if base else params
    hidden = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)
    return {p.name: p for p in params if p.kind not in hidden}, _takes_kwargs(params)


def _parameters(factory: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The factory's parameters (a class: its ``__init__``'s, without ``self``); None if unknown."""
    try:
        return list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature
        return None


def _takes_kwargs(params: list[inspect.Parameter]) -> bool:
    return any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)


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

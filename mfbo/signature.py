"""How options are shown to users: ``name: type = default``, from a constructor's signature.

Used by ``mfbo list strategies`` (each strategy's options) and by the error for an unknown
``--problem-option`` (the options the problem accepts), so both read the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

__all__ = ["describe_option", "describe_options", "wrap_options"]


def describe_option(parameter: inspect.Parameter) -> str:
    """``"n_init: int = 5"``; the type from the annotation (a string under postponed
    annotations), the default as its ``repr``; either is left out when there is none."""
    text = parameter.name
    annotation = parameter.annotation
    if annotation is not inspect.Parameter.empty:
        text += f": {annotation if isinstance(annotation, str) else getattr(annotation, '__name__', annotation)}"
    default = parameter.default
    if default is not inspect.Parameter.empty:
        text += f" = {format(default, '.4g') if isinstance(default, float) and len(repr(default)) > 8 else repr(default)}"
    return text


def describe_options(parameters: Iterable[inspect.Parameter]) -> str:
    """Every option, comma-separated (``"none"`` when there are none)."""
    return ", ".join(describe_option(p) for p in parameters) or "none"


def wrap_options(parameters: Iterable[inspect.Parameter], width: int = 100, indent: str = "    ") -> list[str]:
    """The options as lines of at most ``width`` characters (an option longer than that gets a
    line of its own), never breaking inside one: ``options: a: int = 1, b: ...``."""
    lines, line = [], f"{indent}options: "
    for i, text in enumerate(describe_option(p) for p in parameters):
        text += ","
        if i and len(line) + len(text) > width:
            lines.append(line.rstrip())
            line = indent + " " * len("options: ")
        line += text + " "
    return [*lines, line.rstrip().rstrip(",")]

"""Search spaces and fidelities, and their one encoding to the unit cube.

Every model in mfbo sees configurations through :meth:`Space.encode`, so this module is the
single place where log scales, integer rounding and categorical encodings are decided.

Encoding (``d = Space.dim`` columns, each in ``[0, 1]``)
---------------------------------------------------------
``Float(low, high)``
    ``u = (v - low) / (high - low)``; with ``log=True`` the same on ``log v``.
``Int(low, high)``
    Each integer owns a bin of equal width: ``u = (v - low + 1/2) / (high - low + 1)`` (on
    ``log`` of the bin edges ``low - 1/2 ... high + 1/2`` when ``log=True``). Decoding maps a
    point of the bin back to its integer, so a uniform ``u`` samples the integers uniformly (or
    log-uniformly) and no integer is under-represented at the ends of the range.
``Categorical(choices)``
    One-hot by default: ``k`` columns, decoded by ``argmax``. ``ordered=True`` uses one ordinal
    column instead, with choice ``i`` at the centre of bin ``i`` (as ``Int``).

Conditional parameters
----------------------
``Space(params, conditions={"eta": InCondition("booster", ["gbtree", "dart"])})`` makes ``eta``
active only when ``booster`` is active and takes one of the listed values (the ``IN``/``EQ``
conditions of ConfigSpace; chains are allowed, cycles are not). As in ConfigSpace, **an
inactive parameter is absent from a configuration dict**: :meth:`Space.validate` drops inactive
entries (and fills in nothing), :meth:`Space.sample` and :meth:`Space.decode` return only the
active parameters. :meth:`Space.encode` keeps its fixed width ``dim``: the columns of an
inactive parameter are all ``INACTIVE_VALUE`` (0), so GP models see one vector layout for every
configuration, and configurations that differ only in inactive parameters encode identically.

A :class:`Fidelity` is not part of the :class:`Space`: it is a separate named axis that
normalises to ``s in [0, 1]`` with ``s = 1`` at the target fidelity (the "real" objective) and
``s = 0`` at the cheapest fidelity. Problems hold one fidelity today; the encoding is written
per axis so that a tuple of fidelities can be added without changing the space.

Every validation error is a :class:`ValueError` that names the parameter, the offending value
and what is allowed. Numbers are numbers: a numeric string (``"0.5"``) or a boolean is refused
as a bound, a level or a value of a ``Float``, ``Int`` or fidelity, and a choice of a
``Categorical`` must be a str, int, float or bool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Hyperparameter", "Float", "Int", "Categorical", "InCondition", "Space", "Fidelity", "INACTIVE_VALUE"]

#: The value of every encoding column of an inactive conditional parameter.
INACTIVE_VALUE = 0.0


def _not_a_number(value: Any) -> bool:
    """Text and booleans are not numbers here, though ``float()`` accepts ``"3"`` and ``True``."""
    return isinstance(value, (str, bytes, bool, np.bool_))


def _number(owner: str, what: str, value: Any) -> float:
    """``float(value)`` for a real number; anything else raises ``ValueError`` naming ``what``."""
    if _not_a_number(value):
        raise ValueError(f"{owner}: {what} must be a number, got {value!r} ({type(value).__name__})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {what} must be a number, got {value!r} ({type(value).__name__})") from None


def _check_bounds(owner: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{owner}: bounds must be finite, got low={low!r}, high={high!r}")
    if low >= high:
        raise ValueError(f"{owner}: low must be < high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise ValueError(f"{owner}: a log scale needs low > 0, got low={low!r}")


class Hyperparameter:
    """One dimension of a search space. Subclasses encode into ``dim`` unit-cube columns."""

    dim: int = 1

    def validate(self, name: str, value: Any) -> Any:
        """Return ``value`` in canonical Python type, or raise ``ValueError`` naming ``name``."""
        raise NotImplementedError  # abstract

    def encode(self, value: Any) -> np.ndarray:
        """Encode one valid value to ``dim`` numbers in ``[0, 1]``."""
        raise NotImplementedError  # abstract

    def decode(self, u: np.ndarray) -> Any:
        """Decode ``dim`` numbers (clipped to ``[0, 1]``) to the nearest valid value."""
        raise NotImplementedError  # abstract

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError  # abstract


@dataclass(frozen=True)
class Float(Hyperparameter):
    """A real-valued hyperparameter on ``[low, high]``, optionally on a log scale."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _number("Float", "low", self.low))
        object.__setattr__(self, "high", _number("Float", "high", self.high))
        _check_bounds(repr(self), self.low, self.high, self.log)

    def _warp(self, v: float) -> float:
        return math.log(v) if self.log else v

    def validate(self, name: str, value: Any) -> float:
        try:
            v = _number(f"parameter {name!r}", "the value", value)
        except ValueError:
            raise ValueError(f"parameter {name!r}: expected a number in [{self.low}, {self.high}], got {value!r}") from None
        if not (self.low <= v <= self.high):
            raise ValueError(f"parameter {name!r}: value {value!r} is outside the allowed range [{self.low}, {self.high}]")
        return v

    def encode(self, value: float) -> np.ndarray:
        lo, hi = self._warp(self.low), self._warp(self.high)
        return np.array([(self._warp(value) - lo) / (hi - lo)])

    def decode(self, u: np.ndarray) -> float:
        lo, hi = self._warp(self.low), self._warp(self.high)
        w = lo + float(np.clip(u[0], 0.0, 1.0)) * (hi - lo)
        v = math.exp(w) if self.log else w
        return min(max(v, self.low), self.high)  # guard exp/log round-off at the ends

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int(Hyperparameter):
    """An integer hyperparameter on ``{low, ..., high}``, optionally on a log scale."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"Int: {bound} must be an integer, got {value!r}")
            object.__setattr__(self, bound, int(value))
        _check_bounds(repr(self), self.low, self.high, self.log)

    def _edges(self) -> tuple[float, float]:
        lo, hi = self.low - 0.5, self.high + 0.5
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def validate(self, name: str, value: Any) -> int:
        allowed = f"an integer in [{self.low}, {self.high}]"
        if _not_a_number(value):
            raise ValueError(f"parameter {name!r}: expected {allowed}, got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name!r}: expected {allowed}, got {value!r}") from None
        if v != round(v) or not (self.low <= v <= self.high):
            raise ValueError(f"parameter {name!r}: value {value!r} is not {allowed}")
        return int(round(v))

    def encode(self, value: int) -> np.ndarray:
        lo, hi = self._edges()
        w = math.log(value) if self.log else float(value)
        return np.array([(w - lo) / (hi - lo)])

    def decode(self, u: np.ndarray) -> int:
        lo, hi = self._edges()
        w = lo + float(np.clip(u[0], 0.0, 1.0)) * (hi - lo)
        v = math.exp(w) if self.log else w
        return int(min(max(round(v), self.low), self.high))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Categorical(Hyperparameter):
    """A choice among ``choices`` (str, int, float or bool). One-hot unless ``ordered``."""

    choices: tuple
    ordered: bool = False

    def __post_init__(self) -> None:
        choices = tuple(self.choices) if not isinstance(self.choices, str) else (self.choices,)
        if len(choices) < 1:
            raise ValueError("Categorical: choices must not be empty")
        for choice in choices:
            if not isinstance(choice, (str, int, float, bool, np.str_, np.integer, np.floating, np.bool_)):
                raise ValueError(f"Categorical: each choice must be a str, int, float or bool, got {choice!r} ({type(choice).__name__})")
        if len(set(choices)) != len(choices):
            raise ValueError(f"Categorical: choices must be distinct, got {list(choices)!r}")
        object.__setattr__(self, "choices", choices)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 1 if self.ordered else len(self.choices)

    def validate(self, name: str, value: Any) -> Any:
        for choice in self.choices:
            # ``True == 1`` in Python: demand the same type family as well as equality.
            if value == choice and isinstance(value, bool) == isinstance(choice, bool):
                return choice
        raise ValueError(f"parameter {name!r}: {value!r} is not one of the allowed choices {list(self.choices)!r}")

    def encode(self, value: Any) -> np.ndarray:
        i = self.choices.index(value)
        if self.ordered:
            return np.array([(i + 0.5) / len(self.choices)])
        out = np.zeros(len(self.choices))
        out[i] = 1.0
        return out

    def decode(self, u: np.ndarray) -> Any:
        if self.ordered:
            i = int(np.clip(np.floor(float(u[0]) * len(self.choices)), 0, len(self.choices) - 1))
        else:
            i = int(np.argmax(u))
        return self.choices[i]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices), "ordered": self.ordered}


def _same_value(a: Any, b: Any) -> bool:
    """Equality that keeps ``True`` and ``1`` apart (as :meth:`Categorical.validate` does)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


@dataclass(frozen=True)
class InCondition:
    """A condition on a child parameter: active iff ``parent`` is active and its value is one of
    ``values`` (ConfigSpace's ``InCondition``; an ``EqualsCondition`` is the one-value case).

    ``Space(params, conditions={"eta": InCondition("booster", ["gbtree", "dart"])})``. The
    values are checked against the parent parameter when the :class:`Space` is built.
    """

    parent: str
    values: tuple

    def __post_init__(self) -> None:
        if not isinstance(self.parent, str) or not self.parent:
            raise ValueError(f"InCondition: parent must be a parameter name, got {self.parent!r}")
        values = (self.values,) if isinstance(self.values, str) or not isinstance(self.values, Iterable) else tuple(self.values)
        if not values:
            raise ValueError(f"InCondition on {self.parent!r}: values must not be empty")
        object.__setattr__(self, "values", values)

    def holds(self, parent_value: Any) -> bool:
        """Whether the condition holds for this (canonical) value of the parent."""
        return any(_same_value(parent_value, v) for v in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "values": list(self.values)}


class Space(Mapping[str, Hyperparameter]):
    """An ordered set of named hyperparameters with one unit-cube encoding.

    ``Space({"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4)})`` or
    ``Space(lr=Float(1e-4, 1e-1, log=True), layers=Int(1, 4))``. Iteration order is insertion
    order, and fixes the column order of :meth:`encode`.

    ``conditions`` maps a child parameter to its :class:`InCondition` (see the module docstring);
    a hyperparameter named ``conditions`` must therefore be given in the mapping, not as a keyword.

    A configuration is a plain ``dict`` mapping every *active* name to a value (every name, when
    the space has no conditions).
    """

    def __init__(
        self,
        params: Mapping[str, Hyperparameter] | None = None,
        /,
        *,
        conditions: Mapping[str, InCondition] | None = None,
        **kwargs: Hyperparameter,
    ) -> None:
        merged: dict[str, Hyperparameter] = dict(params or {})
        for name in kwargs:
            if name in merged:
                raise ValueError(f"Space: parameter {name!r} is given twice")
        merged.update(kwargs)
        if not merged:
            raise ValueError("Space: needs at least one hyperparameter")
        for name, param in merged.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"Space: parameter names must be non-empty strings, got {name!r}")
            if not isinstance(param, Hyperparameter):
                raise ValueError(
                    f"Space: parameter {name!r} must be a Float, Int or Categorical, got {type(param).__name__}"
                )
        self._params = merged
        self._conditions = self._check_conditions(conditions or {})
        self._order = self._parents_first()
        self._slices: dict[str, slice] = {}
        start = 0
        for name, param in merged.items():
            self._slices[name] = slice(start, start + param.dim)
            start += param.dim
        self.dim = start
        """Number of unit-cube columns of the encoding."""

    def _check_conditions(self, conditions: Mapping[str, InCondition]) -> dict[str, InCondition]:
        if not isinstance(conditions, Mapping):
            raise ValueError(f"Space: conditions must map a child parameter to an InCondition, got {type(conditions).__name__}")
        checked: dict[str, InCondition] = {}
        for child, cond in conditions.items():
            if child not in self._params:
                raise ValueError(f"Space: condition on unknown parameter {child!r}; the space has {list(self._params)!r}")
            if not isinstance(cond, InCondition):
                raise ValueError(f"Space: the condition on {child!r} must be an InCondition, got {type(cond).__name__}")
            if cond.parent not in self._params:
                raise ValueError(f"Space: the condition on {child!r} names unknown parent {cond.parent!r}; the space has {list(self._params)!r}")
            if cond.parent == child:
                raise ValueError(f"Space: parameter {child!r} cannot be conditioned on itself")
            parent = self._params[cond.parent]
            values = tuple(parent.validate(cond.parent, v) for v in cond.values)
            checked[child] = InCondition(cond.parent, values)
        for child in checked:  # follow each chain of parents: it must end
            seen, name = [child], child
            while name in checked:
                name = checked[name].parent
                if name in seen:
                    raise ValueError(f"Space: conditions form a cycle: {' -> '.join(seen + [name])}")
                seen.append(name)
        return checked

    def _parents_first(self) -> list[str]:
        """The parameter names, every parent before its children, otherwise in space order."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            if name in self._conditions:
                visit(self._conditions[name].parent)
            order.append(name)

        for name in self._params:
            visit(name)
        return order

    def _is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active, given the (canonical) values of the active parameters
        decided so far in :attr:`_order` (an inactive parent is absent from ``values``)."""
        cond = self._conditions.get(name)
        return cond is None or (cond.parent in values and cond.holds(values[cond.parent]))

    def _active_part(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The active entries of a complete assignment ``values``, in space order."""
        active: dict[str, Any] = {}
        for name in self._order:
            if self._is_active(name, active):
                active[name] = values[name]
        return {name: active[name] for name in self._params if name in active}

    # Mapping protocol -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Hyperparameter:
        return self._params[name]

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._params.items())
        if not self._conditions:
            return f"Space({{{inner}}})"
        conds = ", ".join(f"{k!r}: {v!r}" for k, v in self._conditions.items())
        return f"Space({{{inner}}}, conditions={{{conds}}})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Space)
            and list(self._params.items()) == list(other._params.items())
            and self._conditions == other._conditions
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def conditions(self) -> dict[str, InCondition]:
        """The conditions, child name -> :class:`InCondition` (a copy; empty if none)."""
        return dict(self._conditions)

    # Validation ----------------------------------------------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``config`` with canonical types, in space order; raise ``ValueError`` on any problem.

        Inactive conditional parameters are dropped from the result (whatever their value);
        every active one must be present.
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"config must be a mapping of parameter names to values, got {type(config).__name__}")
        unknown = [k for k in config if k not in self._params]
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown!r}; the space has {list(self._params)!r}")
        out: dict[str, Any] = {}
        missing = []
        for name in self._order:
            if not self._is_active(name, out):
                continue
            if name not in config:
                missing.append(name)
                continue
            out[name] = self._params[name].validate(name, config[name])
        if missing:
            missing.sort(key=list(self._params).index)
            raise ValueError(f"missing parameter(s) {missing!r}; the space has {list(self._params)!r}")
        return {name: out[name] for name in self._params if name in out}

    # Encoding ---------------------------------------------------------------------------------------
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Encode one configuration to an array of shape ``(dim,)`` in ``[0, 1]``; the columns of
        inactive parameters are ``INACTIVE_VALUE``."""
        config = self.validate(config)
        return np.concatenate([
            param.encode(config[name]) if name in config else np.full(param.dim, INACTIVE_VALUE)
            for name, param in self._params.items()
        ])

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Encode configurations to an array of shape ``(n, dim)``."""
        rows = [self.encode(c) for c in configs]
        return np.stack(rows) if rows else np.zeros((0, self.dim))

    def decode(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Decode one point of shape ``(dim,)`` (values outside ``[0, 1]`` are clipped).

        Only the active parameters are decoded (parents first); the columns of inactive ones are
        ignored.
        """
        u = np.asarray(u, dtype=float)
        if u.shape != (self.dim,):
            raise ValueError(f"decode: expected an array of shape ({self.dim},), got {u.shape}")
        values: dict[str, Any] = {}
        for name in self._order:
            if self._is_active(name, values):
                values[name] = self._params[name].decode(u[self._slices[name]])
        return {name: values[name] for name in self._params if name in values}

    def decode_many(self, u: np.ndarray) -> list[dict[str, Any]]:
        """Decode an array of shape ``(n, dim)`` to ``n`` configurations."""
        u = np.asarray(u, dtype=float)
        if u.ndim != 2 or u.shape[1] != self.dim:
            raise ValueError(f"decode_many: expected an array of shape (n, {self.dim}), got {u.shape}")
        return [self.decode(row) for row in u]

    def round_trip(self, u: np.ndarray) -> np.ndarray:
        """Project unit-cube points ``(n, dim)`` onto encodings of valid configurations."""
        return self.encode_many(self.decode_many(u))

    def columns(self, name: str) -> slice:
        """The slice of encoding columns that belongs to parameter ``name``."""
        return self._slices[name]

    # Sampling ----------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """Sample uniformly in the encoding (so log-uniformly on log scales).

        Returns one configuration if ``n`` is ``None``, else a list of ``n`` configurations.
        Categorical choices are drawn uniformly (one-hot draws would favour no choice, but we
        draw the index directly to keep that obvious). Every parameter is drawn, in space order,
        and the inactive ones are then left out, so the draws do not depend on which parameters
        are active.
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"sample: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        count = 1 if n is None else int(n)
        if count < 0:
            raise ValueError(f"sample: n must be >= 0, got {n!r}")
        configs = []
        for _ in range(count):
            config = {}
            for name, param in self._params.items():
                if isinstance(param, Categorical):
                    config[name] = param.choices[int(rng.integers(len(param.choices)))]
                else:
                    config[name] = param.decode(rng.random(1))
            configs.append(self._active_part(config) if self._conditions else config)
        return configs[0] if n is None else configs

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{name: parameter dict}``; a conditional parameter's dict has a ``"condition"`` entry."""
        out = {name: param.to_dict() for name, param in self._params.items()}
        for child, cond in self._conditions.items():
            out[child]["condition"] = cond.to_dict()
        return out


class Fidelity:
    """A named fidelity axis: a continuous range, an integer range, or explicit levels.

    ``Fidelity("epochs", 1, 50, integer=True)``, ``Fidelity("z", 0.0, 1.0)`` or
    ``Fidelity("level", levels=[1, 2, 3, 4, 5])``. The target fidelity (the "real" objective)
    defaults to ``high`` (the largest level).

    Normalisation: ``s(v) = (v - low) / (target - low)``, on ``log v`` if ``log=True``, so
    ``s(low) = 0`` and ``s(target) = 1``; with the default ``target = high`` the whole range maps
    to ``[0, 1]``. A target below ``high`` lets a problem expose fidelities beyond the target
    (``s > 1``), which some benchmarks use for extrapolation.
    """

    def __init__(
        self,
        name: str,
        low: float | None = None,
        high: float | None = None,
        target: float | None = None,
        integer: bool = False,
        levels: Sequence[float] | None = None,
        log: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Fidelity: name must be a non-empty string, got {name!r}")
        self.name = name
        self.log = bool(log)
        if levels is not None:
            lv = [_number(f"fidelity {name!r}", "each level", x) for x in levels]
            if len(lv) < 2:
                raise ValueError(f"fidelity {name!r}: levels needs at least two values, got {list(levels)!r}")
            if any(b <= a for a, b in zip(lv, lv[1:])):
                raise ValueError(f"fidelity {name!r}: levels must be strictly increasing, got {list(levels)!r}")
            if low is not None and float(low) != lv[0] or high is not None and float(high) != lv[-1]:
                raise ValueError(f"fidelity {name!r}: low/high, when given with levels, must equal the first and last level")
            integer = integer or all(x == round(x) for x in lv)
            self.levels: tuple[float, ...] | None = tuple(int(x) if integer else x for x in lv)
            low, high = lv[0], lv[-1]
        else:
            if low is None or high is None:
                raise ValueError(f"fidelity {name!r}: give low and high, or levels")
            self.levels = None
        self.integer = bool(integer)
        low, high = _number(f"fidelity {name!r}", "low", low), _number(f"fidelity {name!r}", "high", high)
        _check_bounds(f"fidelity {name!r}", low, high, self.log)
        if self.integer and (low != round(low) or high != round(high)):
            raise ValueError(f"fidelity {name!r}: an integer fidelity needs integer bounds, got low={low}, high={high}")
        self.low = int(low) if self.integer else low
        self.high = int(high) if self.integer else high
        tgt = self.high if target is None else target
        self.target = self.validate(tgt, what="target")

    @property
    def is_discrete(self) -> bool:
        """True for explicit levels and integer ranges."""
        return self.levels is not None or self.integer

    def grid(self) -> tuple[float, ...]:
        """All allowed values of a discrete fidelity, in increasing order."""
        if self.levels is not None:
            return self.levels
        if self.integer:
            return tuple(range(int(self.low), int(self.high) + 1))
        raise ValueError(f"fidelity {self.name!r} is continuous and has no finite grid")

    def validate(self, value: Any, what: str = "value") -> float:
        """Return ``value`` in canonical type, or raise ``ValueError`` naming the fidelity."""
        try:
            if _not_a_number(value):
                raise ValueError
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"fidelity {self.name!r}: {what} must be a number, got {value!r}") from None
        if self.levels is not None:
            if v not in self.levels:
                raise ValueError(f"fidelity {self.name!r}: {what} {value!r} is not a level; allowed levels are {list(self.levels)!r}")
            return self.levels[self.levels.index(v)]
        if not (self.low <= v <= self.high):
            raise ValueError(f"fidelity {self.name!r}: {what} {value!r} is outside the allowed range [{self.low}, {self.high}]")
        if self.integer:
            if v != round(v):
                raise ValueError(f"fidelity {self.name!r}: {what} {value!r} must be an integer in [{self.low}, {self.high}]")
            return int(round(v))
        return v

    def _warp(self, v: float | np.ndarray) -> float | np.ndarray:
        return np.log(v) if self.log else v

    def normalize(self, value: float | np.ndarray) -> float | np.ndarray:
        """Map fidelity value(s) to ``s``; ``s = 0`` at ``low`` and ``s = 1`` at the target."""
        lo, tg = self._warp(self.low), self._warp(self.target)
        s = (self._warp(np.asarray(value, dtype=float)) - lo) / (tg - lo)
        return float(s) if np.ndim(s) == 0 else s

    def denormalize(self, s: float) -> float:
        """Map ``s`` back to the nearest allowed fidelity value (nearest level, or rounded)."""
        lo, tg = self._warp(self.low), self._warp(self.target)
        w = lo + float(s) * (tg - lo)
        v = float(np.exp(w)) if self.log else w
        v = min(max(v, float(self.low)), float(self.high))
        if self.levels is not None:
            # nearest level in the normalised (possibly log) scale
            ss = np.array([self.normalize(x) for x in self.levels])
            return self.levels[int(np.argmin(np.abs(ss - float(s))))]
        if self.integer:
            return int(round(v))
        return v

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "low": self.low, "high": self.high, "target": self.target}
        if self.levels is not None:
            out["levels"] = list(self.levels)
        if self.integer:
            out["integer"] = True
        if self.log:
            out["log"] = True
        return out

    def __repr__(self) -> str:
        if self.levels is not None:
            return f"Fidelity({self.name!r}, levels={list(self.levels)!r}, target={self.target!r})"
        extra = (", integer=True" if self.integer else "") + (", log=True" if self.log else "")
        return f"Fidelity({self.name!r}, {self.low!r}, {self.high!r}, target={self.target!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fidelity) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

"""Tabulated problems: record a problem on a fidelity grid once (:func:`record_table`,
``mfbo record``), then replay it in microseconds (:class:`TabularProblem`).

A table holds ``N`` configurations (a seeded random sample of the problem's space) evaluated at
every fidelity of a grid ``f_1 < ... < f_F`` that contains the target fidelity. Replaying it
returns the recorded values, costs, curves and numeric ``info`` fields, so the recorded cost can
drive a simulated clock (Syne Tune's idea: hours of training replayed in seconds), and
``target_value`` and ``optimum`` (the best recorded target-fidelity value) are exact.

Table format (``.npz``, ``numpy.load(path, allow_pickle=False)`` reads it)
-----------------------------------------------------------------------------
``meta``            JSON text: ``format``, ``problem`` (name), ``problem_options``,
                    ``problem_dict`` (its ``to_dict()``), ``space`` and ``fidelity`` (``to_dict()``),
                    ``grid``, ``resumable``, ``seed``, ``configs`` (the ``N`` configurations),
                    ``failures`` (``[i, j, error]`` triples), ``mfbo_version``, ``created``
``values``          ``(N, F)`` float64: the objective at ``f_j`` (NaN where it failed)
``costs``           ``(N, F)`` float64: the cost of evaluating ``f_j`` from scratch; on a resumable
                    problem the cumulative cost, so ``costs[i, j] - costs[i, k]`` is the increment
``curves``          ``(N, L)`` float64, resumable problems that report curves only: each
                    configuration's curve at the highest fidelity reached, NaN-padded
``curve_lengths``   ``(N, F)`` int32: the curve at ``f_j`` is ``curves[i, :curve_lengths[i, j]]``
``info.<key>``      ``(N, F)`` float64: each numeric ``Observation.info`` field (NaN where absent)

Recording. A resumable problem is recorded by continuation: each configuration is evaluated at
``f_1`` and then continued ``f_1 -> f_2 -> ... -> f_F`` with ``resume_from``, so an epoch problem
trains every configuration once, to the last epoch, and the cumulative cost is the sum of the
charged increments. Each curve must be a prefix of the last one (true of learning curves; checked).
After a failure (a diverged run) the remaining fidelities are recorded as the same failure, with
the cost spent until it failed. A non-resumable problem is evaluated from scratch at every grid
fidelity, and its curves (if any) are not stored.

The space of a table (a design choice)
---------------------------------------
:class:`TabularProblem` keeps the **recorded problem's space**, so every strategy works unchanged:
GP strategies encode configurations to the unit cube as usual, random search and bandit methods
sample the space freely. With ``lookup="nearest"`` (the default) a configuration is answered by
the recorded configuration nearest to it in the unit-cube encoding (Euclidean; ties go to the
lowest index), i.e. the table is a piecewise-constant (Voronoi) surrogate of the problem, as Syne
Tune's 1-nearest-neighbour surrogate for tabulated blackboxes. ``target_value`` uses the same
lookup, so regret against the table's ``optimum`` is exact and never negative; ``info`` carries
the ``config_id`` that answered and its ``distance``. A recorded configuration is answered by
itself (distance 0). ``lookup="exact"`` instead refuses any configuration that is not recorded
(``ValueError``), for methods that choose among :meth:`TabularProblem.configs` (candidate-set
strategies, replaying a logged run); strategies that sample the space freely fail every trial
there. The alternative, a single categorical "config id" parameter, would work for bandits but
hands GP strategies a one-hot space of ``N`` columns with no notion of similar configurations.

The fidelity is the recorded problem's when the grid covers all its levels (e.g. epochs
``1..50``), else ``Fidelity(name, levels=grid)`` with the original target and log flag.

The shipped table ``digits-mlp-table`` (``mfbo/problems/data/digits_mlp.npz``): 300 configurations
of ``digits-mlp`` (:mod:`mfbo.problems.training`) at every epoch 1..50, ``cost="model"``, seed 0,
recorded once with::

    OMP_NUM_THREADS=1 nice -n 19 mfbo record digits-mlp --configs 300 --seed 0 --out mfbo/problems/data/digits_mlp.npz \\
        --problem-option cost=model --problem-option threads=1

Its costs are the deterministic cost model's seconds, so runs on it are reproducible bit for bit.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ..files import replace_atomically
from ..space import Categorical, Fidelity, Float, Int, Space
from ..trial import Observation
from . import register
from .base import Problem

__all__ = ["TabularProblem", "record_table", "space_from_dict", "fidelity_from_dict", "shipped_table", "TABLE_FORMAT", "LOOKUPS"]

#: Version of the table layout written by :func:`record_table`.
TABLE_FORMAT = 1
#: How :class:`TabularProblem` maps a configuration to a recorded one.
LOOKUPS = ("nearest", "exact")
_INFO_PREFIX = "info."


def space_from_dict(description: Mapping[str, Mapping[str, Any]]) -> Space:
    """Rebuild a :class:`~mfbo.space.Space` from its ``to_dict()`` (conditions included)."""
    params: dict[str, Any] = {}
    conditions: dict[str, Any] = {}
    for name, d in description.items():
        kind = d.get("type")
        if kind == "float":
            params[name] = Float(d["low"], d["high"], log=d.get("log", False))
        elif kind == "int":
            params[name] = Int(d["low"], d["high"], log=d.get("log", False))
        elif kind == "categorical":
            params[name] = Categorical(tuple(d["choices"]), ordered=d.get("ordered", False))
        else:
            raise ValueError(f"space_from_dict: parameter {name!r} has unknown type {kind!r}; known types: float, int, categorical")
        if d.get("condition") is not None:
            from ..space import InCondition

            conditions[name] = InCondition(d["condition"]["parent"], tuple(d["condition"]["values"]))
    return Space(params, conditions=conditions) if conditions else Space(params)


def fidelity_from_dict(d: Mapping[str, Any]) -> Fidelity:
    """Rebuild a :class:`~mfbo.space.Fidelity` from its ``to_dict()``."""
    if "levels" in d:
        return Fidelity(d["name"], levels=d["levels"], target=d["target"], integer=d.get("integer", False), log=d.get("log", False))
    return Fidelity(d["name"], d["low"], d["high"], target=d["target"], integer=d.get("integer", False), log=d.get("log", False))


def _json_key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True)


# Recording ---------------------------------------------------------------------------------------
def _grid(problem: Problem, fidelities: Sequence[Any] | None) -> list[Any]:
    fid = problem.fidelity
    if fid is None:
        raise ValueError(f"record_table: problem {problem.name!r} has no fidelity; a table needs a fidelity grid")
    if fidelities is None:
        if not fid.is_discrete:
            raise ValueError(f"record_table: fidelity {fid.name!r} of {problem.name!r} is continuous in [{fid.low}, {fid.high}]; give the grid with fidelities=[...] (--fidelities)")
        return list(fid.grid())
    grid = sorted({fid.validate(f, what="grid value") for f in fidelities})
    if not grid:
        raise ValueError("record_table: fidelities must not be empty")
    if fid.target not in grid:
        raise ValueError(f"record_table: the fidelity grid must contain the target fidelity {fid.target!r} (so that target values and the optimum are known); got {grid!r}")
    return grid


def _evaluate_or_fail(problem: Problem, config: dict[str, Any], fidelity: Any, resume_from: Any) -> Observation:
    """``problem.evaluate``, with an exception recorded as a failure (as the run loop does),
    charged the known cost if any, else the measured time."""
    start = time.perf_counter()
    try:
        return problem.evaluate(config, fidelity, resume_from=resume_from)
    except Exception as err:  # an objective error is a recorded failure, not the end of the recording
        known = problem.increment_cost(config, fidelity, resume_from)
        return Observation.failure(f"{type(err).__name__}: {err}", cost=time.perf_counter() - start if known is None else known)


def record_table(
    problem: Problem | str,
    path: str | Path,
    n_configs: int,
    fidelities: Sequence[Any] | None = None,
    *,
    seed: int = 0,
    problem_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Evaluate ``n_configs`` random configurations of ``problem`` on a fidelity grid and write
    the table to ``path`` (``.npz``; see the module docstring for the layout).

    Args:
        problem: a :class:`Problem` or a registered name (built with ``problem_options``).
        path: the output file; ``.npz`` is appended if missing.
        n_configs: how many configurations, sampled with ``numpy.random.default_rng(seed)``.
        fidelities: the grid (must contain the target); default all levels of a discrete fidelity.
        seed: seeds the sample of configurations.
        problem_options: constructor options when ``problem`` is a name (stored in the table).
        progress: called as ``progress(done, n_configs)`` after each configuration.

    Returns:
        The path written.
    """
    from . import get

    options = dict(problem_options or {})
    if isinstance(problem, str):
        problem = get(problem, **options)
    elif options:
        raise ValueError("record_table: problem_options is only used when problem is given by name")
    if not isinstance(problem, Problem):
        raise ValueError(f"record_table: problem must be a Problem or a registered name, got {type(problem).__name__}")
    if isinstance(n_configs, bool) or int(n_configs) != n_configs or n_configs < 1:
        raise ValueError(f"record_table: n_configs must be a positive integer, got {n_configs!r}")
    n_configs = int(n_configs)
    grid = _grid(problem, fidelities)
    configs = [problem.space.validate(c) for c in problem.space.sample(np.random.default_rng(seed), n_configs)]
    F = len(grid)
    values = np.full((n_configs, F), np.nan)
    costs = np.full((n_configs, F), np.nan)
    curve_lengths = np.zeros((n_configs, F), dtype=np.int32)
    final_curves: list[list[float]] = []
    infos: dict[str, np.ndarray] = {}
    failures: list[list[Any]] = []

    for i, config in enumerate(configs):
        observations, costs[i] = _evaluate_on_grid(problem, config, grid)
        for j, obs in enumerate(observations):
            if obs.ok:
                values[i, j] = obs.value
                for key, value in obs.info.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        infos.setdefault(key, np.full((n_configs, F), np.nan))[i, j] = float(value)
            else:
                failures.append([i, j, obs.error or f"non-finite value {obs.value!r}"])
        if problem.resumable:
            curve_lengths[i], last = _curve_prefixes(problem, observations, grid)
            final_curves.append(last)
        if progress is not None:
            progress(i + 1, n_configs)

    meta = {
        "format": TABLE_FORMAT,
        "problem": problem.name,
        "problem_options": options,
        "problem_dict": problem.to_dict(),
        "space": problem.space.to_dict(),
        "fidelity": problem.fidelity.to_dict(),
        "grid": grid,
        "resumable": bool(problem.resumable),
        "seed": int(seed),
        "configs": configs,
        "failures": failures,
        "mfbo_version": _mfbo_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta)), "values": values, "costs": costs}
    if any(final_curves):
        width = max(len(c) for c in final_curves)
        curves = np.full((n_configs, width), np.nan)
        for i, curve in enumerate(final_curves):
            curves[i, : len(curve)] = curve
        arrays.update(curves=curves, curve_lengths=curve_lengths)
    for key, table in infos.items():
        arrays[_INFO_PREFIX + key] = table
    return _save_npz(Path(path), arrays)


def _evaluate_on_grid(problem: Problem, config: dict[str, Any], grid: list[Any]) -> tuple[list[Observation], np.ndarray]:
    """``config`` evaluated at every fidelity of ``grid``: the observations and the cost of
    reaching each fidelity from scratch, shape ``(len(grid),)``. A resumable problem continues
    one run up the grid (the cost accumulates its increments), and a failed run stays failed at
    the fidelities above it."""
    observations: list[Observation] = []
    costs = np.full(len(grid), np.nan)
    spent = 0.0
    for j, fidelity in enumerate(grid):
        if problem.resumable and observations and not observations[-1].ok:
            observations.append(observations[-1])
            costs[j] = costs[j - 1]
            continue
        resume_from = grid[j - 1] if problem.resumable and j > 0 else None
        obs = _evaluate_or_fail(problem, config, fidelity, resume_from)
        observations.append(obs)
        spent = (spent if resume_from is not None else 0.0) + obs.cost
        costs[j] = spent
    return observations, costs


def _curve_prefixes(problem: Problem, observations: list[Observation], grid: list[Any]) -> tuple[np.ndarray, list[float]]:
    """The learning curve of one resumable run, stored once: the length of the curve at each
    fidelity of ``grid`` and the curve at the last. Raises ``ValueError`` if a curve is not a
    prefix of the last one (the problem then does not continue runs as it says)."""
    last = observations[-1].curve_list() or []
    lengths = np.zeros(len(grid), dtype=np.int32)
    for j, obs in enumerate(observations):
        curve = obs.curve_list() or []
        if curve != last[: len(curve)] and not np.array_equal(curve, last[: len(curve)], equal_nan=True):
            raise ValueError(f"record_table: {problem.name!r} is resumable but the curve at {grid[j]!r} is not a prefix of the curve at {grid[-1]!r}; its curves cannot be tabulated as one per configuration")
        lengths[j] = len(curve)
    return lengths, last


def _mfbo_version() -> str:
    try:
        return version("mfbo")
    except PackageNotFoundError:  # pragma: no cover - source tree not installed
        return "unknown"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` appended if missing) with
    :func:`~mfbo.files.replace_atomically`: a crash or a full disk never leaves a half-written
    table under the final name (a table records hours of evaluations)."""
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    return replace_atomically(path, lambda f: np.savez_compressed(f, **arrays))


# Replaying ---------------------------------------------------------------------------------------
class TabularProblem(Problem):
    """Replay a table written by :func:`record_table` (see the module docstring).

    Args:
        path: the ``.npz`` table.
        lookup: ``"nearest"`` (any configuration of the space is answered by the nearest recorded
            one) or ``"exact"`` (only recorded configurations are accepted).
        name: the problem name (default ``"<recorded problem>-table"``).

    Attributes:
        meta: the table's metadata (see the module docstring).
        grid: the recorded fidelities, increasing.
        optimum: the best recorded target-fidelity value.
        resumable: that of the recorded problem; continuing charges the difference of the
            recorded cumulative costs.
    """

    noiseless_target = True  # an evaluation returns the recorded value, which target_value scores

    def __init__(self, path: str | Path, *, lookup: str = "nearest", name: str | None = None) -> None:
        if lookup not in LOOKUPS:
            raise ValueError(f"TabularProblem: lookup must be one of {list(LOOKUPS)}, got {lookup!r}")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TabularProblem: no such table: {path}")
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if "meta" not in arrays:
            raise ValueError(f"TabularProblem: {path} is not an mfbo table (no 'meta' entry)")
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != TABLE_FORMAT:
            raise ValueError(f"TabularProblem: {path} has table format {meta.get('format')!r}; this mfbo reads format {TABLE_FORMAT}")
        space = space_from_dict(meta["space"])
        original = fidelity_from_dict(meta["fidelity"])
        grid = [original.validate(f) for f in meta["grid"]]
        if original.is_discrete and list(original.grid()) == grid:
            fidelity = original
        else:
            fidelity = Fidelity(original.name, levels=grid, target=original.target, log=original.log)
        self.meta = meta
        self.path = path
        self.grid = grid
        self.lookup = lookup
        self.resumable = bool(meta["resumable"])
        self._configs = [space.validate(c) for c in meta["configs"]]
        self._values = arrays.pop("values")
        self._costs = arrays.pop("costs")
        self._curves = arrays.pop("curves", None)
        self._curve_lengths = arrays.pop("curve_lengths", None)
        self._info = {key[len(_INFO_PREFIX):]: table for key, table in arrays.items() if key.startswith(_INFO_PREFIX)}
        self._failures = {(int(i), int(j)): str(error) for i, j, error in meta["failures"]}
        self._target_column = grid.index(fidelity.target)
        self._encoded = space.encode_many(self._configs)
        self._index = {}
        for i, config in enumerate(self._configs):
            self._index.setdefault(_json_key(config), i)  # duplicates: the first recorded answers
        target = self._values[:, self._target_column]
        optimum = float(np.nanmin(target)) if np.isfinite(target).any() else None
        super().__init__(name or f"{meta['problem']}-table", space, fidelity, optimum)

    @property
    def n_configs(self) -> int:
        return len(self._configs)

    def configs(self) -> list[dict[str, Any]]:
        """The recorded configurations (copies), in table order: ``config_id`` indexes this list."""
        return [dict(c) for c in self._configs]

    def locate(self, config: Mapping[str, Any]) -> tuple[int, float]:
        """``(config_id, distance)`` of the recorded configuration that answers ``config``.

        Raises:
            ValueError: under ``lookup="exact"`` for a configuration that is not recorded.
        """
        config = self.space.validate(config)
        exact = self._index.get(_json_key(config))
        if exact is not None:
            return exact, 0.0
        if self.lookup == "exact":
            raise ValueError(
                f"problem {self.name!r}: configuration {config!r} is not in the table ({self.n_configs} recorded "
                "configurations; pick one of problem.configs(), or use lookup='nearest' to answer any configuration "
                "with its nearest recorded one)"
            )
        distances = np.linalg.norm(self._encoded - self.space.encode(config), axis=1)
        i = int(np.argmin(distances))
        return i, float(distances[i])

    def _column(self, fidelity: Any) -> int:
        return self.grid.index(self.validate_fidelity(fidelity))

    def _observation(self, config: Mapping[str, Any], fidelity: Any, resume_from: Any) -> Observation:
        i, distance = self.locate(config)
        j = self._column(fidelity)
        cost = float(self._costs[i, j])
        if resume_from is not None:
            cost -= float(self._costs[i, self._column(resume_from)])
        curve = None
        if self._curves is not None:
            curve = self._curves[i, : int(self._curve_lengths[i, j])].copy()
        if (i, j) in self._failures:
            return Observation(value=math.nan, cost=cost, curve=curve, info={"config_id": i, "distance": distance}, error=self._failures[i, j])
        info: dict[str, Any] = {key: float(table[i, j]) for key, table in self._info.items() if math.isfinite(table[i, j])}
        info.update(config_id=i, distance=distance)
        return Observation(value=float(self._values[i, j]), cost=cost, curve=curve, info=info)

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        return self._observation(config, fidelity, None)

    def _resume(self, config: dict[str, Any], fidelity: float, resume_from: float) -> Observation:
        return self._observation(config, fidelity, resume_from)

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float:
        """The recorded cost of evaluating ``config`` (its answering record) at ``fidelity`` from scratch."""
        i, _ = self.locate(config)
        return float(self._costs[i, self._column(fidelity)])

    def target_value(self, config: Mapping[str, Any]) -> float | None:
        """The recorded target-fidelity value of ``config``'s answering record (``None`` if it failed)."""
        i, _ = self.locate(config)
        value = float(self._values[i, self._target_column])
        return value if math.isfinite(value) else None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(table=str(self.path), lookup=self.lookup, n_configs=self.n_configs, recorded_problem=self.meta["problem_dict"])
        return out


# Shipped tables ----------------------------------------------------------------------------------
SHIPPED_TABLES = {"digits-mlp-table": "digits_mlp.npz"}


def shipped_table(name: str) -> Path:
    """The path of a table shipped with mfbo (``mfbo/problems/data/``)."""
    if name not in SHIPPED_TABLES:
        raise ValueError(f"shipped_table: unknown table {name!r}; shipped tables: {', '.join(SHIPPED_TABLES)}")
    return Path(str(resources.files("mfbo.problems").joinpath("data", SHIPPED_TABLES[name])))


def _shipped(name: str) -> Callable[..., TabularProblem]:
    def factory(*, lookup: str = "nearest") -> TabularProblem:
        return TabularProblem(shipped_table(name), lookup=lookup, name=name)

    return factory


register("table", TabularProblem)
for _name in SHIPPED_TABLES:
    register(_name, _shipped(_name))
del _name

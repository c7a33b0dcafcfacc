"""Study configs: a TOML file -> a validated :class:`Study`, the grid of its :class:`RunSpec`.

The format (every key but ``problems``, ``strategies`` and ``budget`` is optional)::

    name = "compare"                       # default: the file name without .toml
    description = "..."
    output = "results/compare"             # default: results/<name>; relative to the working dir
    seeds = 5                              # seeds 0..4 (default 1: seed 0), or a list: [0, 3, 7]
    budget = { target_evaluations = 30 }   # or { cost = 12.5 } (in the problems' cost units)
    workers = 1                            # simulated asynchronous workers per run
    stop = "cost"                          # or "wall_clock" (see mfbo.loop)
    if_unavailable = "error"               # or "skip": see "Unavailable pieces" below

    problems = [
        "forrester",                       # a registered problem,
        "yahpo-so:lcbench",                # a group (all its members, see mfbo.problems.groups()),
        { name = "digits-svm", options = { cost = "model" } },   # or a table
        { name = "my-problem", label = "my-problem-hard", options = { level = 3 }, target_cost = 60.0 },
    ]

    [[strategies]]                         # one table per entry; the label names the entry
    name = "mf-kg"
    label = "mf-kg-ar"                     # default: the name; labels must be unique
    options = { kernel = "autoregressive" }
    guard = { every = 10 }                 # optional: a bias guard (mfbo.strategies.guard)

    [[strategies]]                         # an entry for some of the problems only
    name = "fabolas"
    problems = ["digits-svm"]              # labels of the study's problems, or the groups/names they came from

    [[strategies]]                         # an ablation: one entry per value (a grid over keys)
    name = "hyperband"
    sweep = { eta = [2, 3, 4], r_min = [1, 3] }   # or a list of option sets: [{ eta = 2 }, { eta = 3, r_min = 3 }]

(``strategies = ["random", "gp-ei"]``, plain names, also works when no entry needs options.)

Sweeps
------
An entry's ``sweep`` expands it into one strategy per option set, before anything runs: a table
of lists is the grid over its keys (in the file's key order, the last key fastest), an array of
tables lists the option sets. Each gets the entry's ``options`` and ``guard`` plus its own
values and the label ``"<label>:<key>=<value>,..."`` (:func:`sweep_label`; values as JSON,
strings bare), which :mod:`mfbo.analysis.ablation` reads back to draw one ablation figure per
swept option. A swept option that the strategy does not have, an empty list, or an option given
both in ``options`` and in ``sweep`` is an error naming the strategy, the option and the allowed
ones. ``guard`` (any form :meth:`mfbo.strategies.GuardOptions.parse` takes) becomes the option
``guard`` of the entry's runs, which :func:`mfbo.strategies.make` applies to any strategy.

A problem's ``label`` (default: its name) lets one problem appear twice with different options.

An entry's ``problems`` restricts it to some of the study's problems: each item is a problem's
label, or the name (a problem or a group) of an item of the study's ``problems``, which stands
for all the problems that item gave. It is for a method that needs what only some problems have
(FABOLAS a data-subset fidelity, BOIL learning curves); the strategy's options are checked on
those problems only. Analyses rank strategies on the (problem, seed) blocks where all of them ran.

The runs are every (seed, problem, strategy) triple with the strategy's entry admitting the problem, in seed-major order, so an interrupted
study has every cell at its first seeds.

Budget
------
``budget.cost`` is the same total cost for every problem. ``budget.target_evaluations = n``
gives each problem ``n`` times the cost of one evaluation at its target fidelity, so one study
spans problems with different cost scales. That cost is, in order:

1. ``target_cost`` of the problem's entry, when given;
2. ``problem.cost(None, target)`` when the cost does not depend on the configuration (the
   synthetic suite);
3. when it does (a cost model or a surrogate that needs the configuration), the mean cost at the
   target of :data:`COST_SAMPLE_SIZE` configurations drawn with ``space.sample`` from
   ``numpy.random.default_rng(COST_SAMPLE_SEED)``: a fixed, documented sample;
4. otherwise (a cost measured only when evaluating, e.g. wall time) the file is invalid, and the
   error names the problem's key and asks for ``target_cost`` or ``budget.cost``.

Validation
----------
The whole file is checked before anything runs, and every mistake is reported at once: one
``ValueError`` (:class:`StudyConfigError`) listing each problem with its TOML key path
(``strategies[1].options.kernel``; indices count from 0). Strategy options are checked by
building each strategy, one option at a time (so a bad value names its key) and then with all
its options on every problem (for options that depend on the problem).

Unavailable pieces
------------------
A study may name strategies or problems that this installation does not have: not registered
(yet), or a problem whose optional dependency or data is missing (``ImportError``,
``FileNotFoundError``). With ``if_unavailable = "error"`` (default) these are validation errors;
with ``"skip"`` the file still loads, :attr:`Study.unavailable` names each missing piece, and
:func:`mfbo.study.run_study` skips the whole study with a note instead of running half of it.
Everything else in such a file is still validated.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import problems as problem_registry
from .. import strategies as strategy_registry
from ..loop import STOP_RULES
from ..problems.base import Problem
from ..strategies.guard import GuardOptions

__all__ = [
    "Study", "RunSpec", "ProblemEntry", "StrategyEntry", "StudyConfigError", "load_study", "parse_study",
    "target_cost", "run_file_name", "sweep_label", "COST_SAMPLE_SIZE", "COST_SAMPLE_SEED",
]

#: Configurations sampled to estimate a configuration-dependent cost per target evaluation.
COST_SAMPLE_SIZE = 64
COST_SAMPLE_SEED = 0

TOP_LEVEL_KEYS = ("name", "description", "output", "seeds", "budget", "workers", "stop", "if_unavailable", "problems", "strategies")
PROBLEM_KEYS = ("name", "label", "options", "target_cost")
STRATEGY_KEYS = ("name", "label", "options", "guard", "sweep", "problems")
BUDGET_KEYS = ("cost", "target_evaluations")
IF_UNAVAILABLE = ("error", "skip")
#: The most seeds a study may have (``seeds = N``).
MAX_SEEDS = 10_000


class StudyConfigError(ValueError):
    """A study file with mistakes; :attr:`errors` holds one ``"key: message"`` line per mistake."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"invalid study {source} ({len(self.errors)} error{'s' * (len(self.errors) != 1)}):\n{lines}")


def sweep_label(label: str, values: Mapping[str, Any]) -> str:
    """The label of one option set of a sweep: ``"hyperband:eta=2,r_min=3"`` (values as JSON,
    strings bare; see "Sweeps" above)."""
    text = ",".join(f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in values.items())
    return f"{label}:{text}"


def run_file_name(problem: str, label: str, seed: int) -> str:
    """The log file of one run (the same naming as ``mfbo run``: ``mfbo.cli.run_file_name``)."""
    from ..cli import run_file_name as cli_name  # the CLI owns the naming; imported late (cli imports us)

    return cli_name(problem, label, seed)


@dataclass(frozen=True)
class ProblemEntry:
    """One problem of the study (a group in the file becomes one entry per member)."""

    name: str
    label: str
    options: dict[str, Any]
    key: str  # where it came from, for messages: ``problems[2]``
    target_cost: float | None = None  # explicit cost of one target-fidelity evaluation
    item: str | None = None  # the name in the study's list: the problem's, or its group's


@dataclass(frozen=True)
class StrategyEntry:
    """One strategy entry: a registered strategy with options, under a unique label."""

    name: str
    label: str
    options: dict[str, Any]
    key: str  # ``strategies[1]``
    problems: tuple[str, ...] | None = None  # labels of the problems the entry runs on; None: all


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: everything that determines its trial log.

    ``budget`` is in cost units (resolved); ``budget_spec`` is the budget as the file gives it.
    The :attr:`spec_hash` covers :meth:`hashed` (not the labels, not the output directory).
    """

    problem: str
    problem_label: str
    problem_options: dict[str, Any]
    strategy: str
    label: str
    options: dict[str, Any]
    seed: int
    budget: float
    budget_spec: dict[str, float]
    workers: int
    stop: str

    def hashed(self) -> dict[str, Any]:
        """The fields the spec hash covers (JSON values). The budget is the one written in the
        file (``{"target_evaluations": 30}``), not its resolution in cost units, so that a
        study's hashes do not depend on float round-off of a sampled cost on another machine."""
        return {
            "problem": self.problem, "problem_options": self.problem_options, "strategy": self.strategy,
            "options": self.options, "seed": self.seed, "budget": self.budget_spec,
            "workers": self.workers, "stop": self.stop,
        }

    @property
    def spec_hash(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`hashed` as canonical JSON."""
        text = json.dumps(self.hashed(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        return run_file_name(self.problem_label, self.label, self.seed)

    @property
    def title(self) -> str:
        return f"{self.problem_label} / {self.label} / seed {self.seed}"


@dataclass
class Study:
    """A validated study file; :attr:`runs` is its grid."""

    name: str
    source: str
    output: Path
    seeds: list[int]
    budget_spec: dict[str, float]
    workers: int
    stop: str
    problems: list[ProblemEntry]
    strategies: list[StrategyEntry]
    runs: list[RunSpec]
    description: str = ""
    unavailable: list[str] = field(default_factory=list)  # missing pieces (if_unavailable = "skip")

    @property
    def available(self) -> bool:
        return not self.unavailable

    def with_output(self, output: str | Path) -> Study:
        """The same study writing to another directory (``mfbo study run --out``)."""
        return Study(**{**self.__dict__, "output": Path(output)})


def target_cost(problem: Problem) -> float | None:
    """The cost of one evaluation at the target fidelity (module docstring, "Budget", steps
    2-3), or ``None`` if the problem does not know its cost before evaluating."""
    try:
        cost = problem.cost(None, problem.target_fidelity)
    except (TypeError, KeyError, AttributeError, ValueError):  # the cost needs a configuration
        configs = problem.space.sample(np.random.default_rng(COST_SAMPLE_SEED), COST_SAMPLE_SIZE)
        costs = [problem.cost(c, problem.target_fidelity) for c in configs]
        if any(c is None for c in costs):
            return None
        cost = float(np.mean(costs))
    if cost is None:
        return None
    if not (math.isfinite(cost) and cost > 0):
        raise ValueError(f"problem {problem.name!r}: the cost of a target evaluation must be > 0, got {cost!r}")
    return float(cost)


# -- parsing -----------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _unavailable(err: BaseException) -> bool:
    """Errors that mean "not installed here" rather than "wrong"."""
    return isinstance(err, (ImportError, FileNotFoundError))


class _Parser:
    def __init__(self, source: str, default_name: str) -> None:
        self.source = source
        self.default_name = default_name
        self.errors: list[str] = []
        self.unavailable: list[str] = []
        self.skip_unavailable = False

    def error(self, key: str, message: str) -> None:
        self.errors.append(f"{key}: {message}")

    def missing(self, key: str, message: str, detail: str = "") -> None:
        """A piece this installation lacks: an error (``message`` + ``detail``), or a note
        (``message`` and the key) under ``if_unavailable = "skip"``."""
        if self.skip_unavailable:
            self.unavailable.append(f"{message} ({key})")
        else:
            self.error(key, message + detail)

    def unknown_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.error(f"{prefix}{key}", f"unknown key; allowed keys: {', '.join(allowed)}")

    # scalars --------------------------------------------------------------------------------------
    def string(self, data: Mapping[str, Any], key: str, default: str | None, path: str | None = None) -> str | None:
        value = data.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.error(path or key, f"must be a non-empty string, got {value!r}")
            return default
        return value

    def choice(self, data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
        value = data.get(key, allowed[0])
        if value not in allowed:
            self.error(key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
            return allowed[0]
        return value

    def seeds(self, data: Mapping[str, Any]) -> list[int]:
        value = data.get("seeds", 1)
        if _is_int(value):
            if not 1 <= value <= MAX_SEEDS:
                self.error("seeds", f"a number of seeds must be in [1, {MAX_SEEDS}], got {value}")
                return []
            return list(range(value))
        if isinstance(value, list) and value:
            out = []
            for i, seed in enumerate(value):
                if not _is_int(seed) or seed < 0:
                    self.error(f"seeds[{i}]", f"must be an integer >= 0, got {seed!r}")
                elif seed in out:
                    self.error(f"seeds[{i}]", f"seed {seed} is listed twice")
                else:
                    out.append(seed)
            return out
        self.error("seeds", f"must be a number of seeds (>= 1) or a non-empty array of integer seeds, got {value!r}")
        return []

    def budget(self, data: Mapping[str, Any]) -> dict[str, float]:
        if "budget" not in data:
            self.error("budget", "missing; give budget = { target_evaluations = N } or budget = { cost = C }")
            return {}
        value = data["budget"]
        if not isinstance(value, dict):
            self.error("budget", f"must be a table {{ target_evaluations = N }} or {{ cost = C }}, got {_type_name(value)} {value!r}")
            return {}
        self.unknown_keys(value, BUDGET_KEYS, "budget.")
        given = [k for k in BUDGET_KEYS if k in value]
        if len(given) != 1:
            self.error("budget", f"give exactly one of {', '.join(BUDGET_KEYS)}, got {given or 'neither'}")
            return {}
        key = given[0]
        amount = value[key]
        if not _is_number(amount) or amount <= 0:
            self.error(f"budget.{key}", f"must be a finite number > 0, got {amount!r}")
            return {}
        return {key: float(amount)}

    def workers(self, data: Mapping[str, Any]) -> int:
        value = data.get("workers", 1)
        if not _is_int(value) or value < 1:
            self.error("workers", f"must be an integer >= 1 (simulated workers per run), got {value!r}")
            return 1
        return value

    def options_table(self, entry: Mapping[str, Any], key: str) -> dict[str, Any]:
        options = entry.get("options", {})
        if not isinstance(options, dict):
            self.error(f"{key}.options", f"must be a table of options, got {_type_name(options)} {options!r}")
            return {}
        return dict(options)

    def distinct_file_names(self, problems: list[ProblemEntry], strategies: list[StrategyEntry]) -> None:
        """Two (problem, strategy) cells whose labels give one log file name (``rs/a`` and
        ``rs_a``: see :func:`mfbo.cli.safe_name`) are an error naming both labels."""
        seen: dict[str, tuple[ProblemEntry, StrategyEntry]] = {}
        reported: set[tuple[str, ...]] = set()
        for pe in problems:
            for se in strategies:
                name = run_file_name(pe.label, se.label, 0)
                if name not in seen:
                    seen[name] = (pe, se)
                    continue
                other_p, other_s = seen[name]
                where = f"{se.key}.label" if other_p is pe else f"{pe.key}.label"
                labels = (other_s.label, se.label) if other_p is pe else (other_p.label, pe.label)
                if (where, *labels) in reported:
                    continue
                reported.add((where, *labels))
                self.error(where, f"labels {labels[0]!r} and {labels[1]!r} give the same log file name {name.replace('seed0', 'seed<k>')!r} "
                                  "(characters other than letters, digits, '_', '.', '-' become '_'); rename one of them")

    # problems -------------------------------------------------------------------------------------
    def problems(self, data: Mapping[str, Any]) -> list[tuple[ProblemEntry, Problem | None]]:
        value = data.get("problems")
        if not isinstance(value, list) or not value:
            self.error("problems", f"must be a non-empty array of problem or group names (or tables with a name), got {value!r}")
            return []
        entries: list[tuple[ProblemEntry, Problem | None]] = []
        seen: dict[str, str] = {}
        unbuildable: dict[tuple[str, str], list[str]] = {}
        for i, item in enumerate(value):
            key = f"problems[{i}]"
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict):
                self.error(key, f"must be a problem name or a table with a name, got {_type_name(item)} {item!r}")
                continue
            self.unknown_keys(item, PROBLEM_KEYS, f"{key}.")
            name = self.string(item, "name", None, f"{key}.name")
            if name is None:
                if "name" not in item:
                    self.error(f"{key}.name", "missing")
                continue
            options = self.options_table(item, key)
            cost = item.get("target_cost")
            if cost is not None and (not _is_number(cost) or cost <= 0):
                self.error(f"{key}.target_cost", f"must be a finite number > 0, got {cost!r}")
                cost = None
            try:
                members = problem_registry.expand(name)
            except ValueError as err:
                self.missing(f"{key}.name", f"problem {name!r} is not registered here", f": {err}")
                continue
            label = self.string(item, "label", None, f"{key}.label")
            if label is not None and members != [name]:
                self.error(f"{key}.label", f"a label names one problem, but {name!r} is a group of {len(members)}")
                label = None
            for member in members:
                entry = ProblemEntry(name=member, label=label or member, options=options, key=key,
                                     target_cost=None if cost is None else float(cost), item=name)
                if entry.label in seen:
                    self.error(key, f"problem {entry.label!r} appears twice (also in {seen[entry.label]}); give one of them a label")
                    continue
                seen[entry.label] = key
                entries.append((entry, self.build_problem(entry, unbuildable)))
        for (where, why), names in unbuildable.items():  # one line for the members of a group
            self.missing(where, f"problem{'s' * (len(names) > 1)} {', '.join(map(repr, names))} cannot be built here ({why})")
        return entries

    def build_problem(self, entry: ProblemEntry, unbuildable: dict[tuple[str, str], list[str]]) -> Problem | None:
        """Build the problem of ``entry``; a missing dependency or data file goes to
        ``unbuildable`` (by key and reason), any other failure is an error at the entry's key."""
        where = f"{entry.key}.options" if entry.options else entry.key
        try:
            return problem_registry.get(entry.name, **entry.options)
        except Exception as err:  # a problem that cannot be built: name it and its key
            if _unavailable(err):
                unbuildable.setdefault((where, f"{type(err).__name__}: {err}"), []).append(entry.name)
            else:
                self.error(where, f"problem {entry.name!r}: {err}")
            return None

    # strategies -----------------------------------------------------------------------------------
    def strategies(self, data: Mapping[str, Any], problems: list[tuple[ProblemEntry, Problem | None]], seed: int) -> list[StrategyEntry]:
        value = data.get("strategies")
        if not isinstance(value, list) or not value:
            self.error("strategies", f"must be a non-empty array of tables ([[strategies]] with a name), got {value!r}")
            return []
        built = [(entry, problem) for entry, problem in problems if problem is not None]
        out: list[StrategyEntry] = []
        labels: dict[str, str] = {}
        for i, item in enumerate(value):
            key = f"strategies[{i}]"
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict):
                self.error(key, f"must be a table with a name (and optionally label, options), got {_type_name(item)} {item!r}")
                continue
            self.unknown_keys(item, STRATEGY_KEYS, f"{key}.")
            name = self.string(item, "name", None, f"{key}.name")
            if name is None:
                if "name" not in item:
                    self.error(f"{key}.name", "missing")
                continue
            label = self.string(item, "label", name, f"{key}.label") or name
            options = self.guard_option(item, key, self.options_table(item, key))
            only = self.entry_problems(item, key, problems)
            on = built if only is None else [(e, p) for e, p in built if e.label in only]
            if name not in strategy_registry.names():
                close = difflib.get_close_matches(name, strategy_registry.names(), n=3)
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                self.missing(f"{key}.name", f"strategy {name!r} is not registered here", f"{hint}; known strategies: {', '.join(strategy_registry.names())}")
                continue
            for values in self.sweep(item, key, name, options):
                entry_label = label if values is None else sweep_label(label, values)
                if entry_label in labels:
                    self.error(f"{key}.label", f"label {entry_label!r} is already used by {labels[entry_label]}; labels must be unique")
                    continue
                labels[entry_label] = key
                merged = {**options, **(values or {})}
                if self.strategy_options(name, merged, key, on, seed, swept=values or {}):
                    out.append(StrategyEntry(name=name, label=entry_label, options=merged, key=key, problems=only))
        return out

    def entry_problems(self, item: Mapping[str, Any], key: str, problems: list[tuple[ProblemEntry, Problem | None]]) -> tuple[str, ...] | None:
        """The labels of the problems that the entry's ``problems`` admits (module docstring), in
        the study's order; ``None`` without the key. Each item is a label, or the name of a
        problem or group of the study's ``problems``; anything else is an error listing them."""
        if "problems" not in item:
            return None
        value, where = item["problems"], f"{key}.problems"
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.error(where, f"must be a non-empty array of problem labels or names, got {value!r}")
            return ()
        named: dict[str, set[str]] = {}  # label, problem name or list item -> labels
        for entry, _ in problems:
            for name in {entry.label, entry.name, entry.item} - {None}:
                named.setdefault(name, set()).add(entry.label)
        wanted: set[str] = set()
        for name in value:
            if name not in named:
                self.error(where, f"{name!r} is not one of the study's problems; allowed: {', '.join(sorted(named))}")
            wanted |= named.get(name, set())
        return tuple(e.label for e, _ in problems if e.label in wanted)

    def guard_option(self, item: Mapping[str, Any], key: str, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with the entry's ``guard`` (checked, as a dict) as the option ``guard``."""
        if "guard" not in item:
            return options
        if "guard" in options:
            self.error(f"{key}.guard", "also given as options.guard; give it in one place")
            return options
        try:
            guard = GuardOptions.parse(item["guard"])
        except ValueError as err:
            self.error(f"{key}.guard", str(err))
            return options
        return options if guard is None else {**options, "guard": guard.to_dict()}

    def sweep(self, item: Mapping[str, Any], key: str, name: str, options: dict[str, Any]) -> list[dict[str, Any] | None]:
        """The option sets of the entry's ``sweep`` ("Sweeps" in the module docstring), ``[None]``
        without one, ``[]`` after reporting a mistake."""
        if "sweep" not in item:
            return [None]
        sweep, where = item["sweep"], f"{key}.sweep"
        allowed = [*strategy_registry.option_names(name), "guard"]
        if isinstance(sweep, dict) and sweep:
            sets = [dict(zip(sweep, combo)) for combo in itertools.product(*sweep.values())] if all(
                isinstance(v, list) and v for v in sweep.values()) else []
        elif isinstance(sweep, list) and sweep and all(isinstance(v, dict) and v for v in sweep):
            sets = [dict(v) for v in sweep]
        else:
            self.error(where, f"strategy {name!r}: must be a table of non-empty arrays ({{ eta = [2, 3, 4] }}) or a non-empty array of option tables ([{{ eta = 2 }}, {{ eta = 3 }}]), got {sweep!r}")
            return []
        ok = True
        for option in dict.fromkeys(k for s in ([sweep] if isinstance(sweep, dict) else sweep) for k in s):
            values = sweep[option] if isinstance(sweep, dict) else None
            if option not in allowed:
                self.error(f"{where}.{option}", f"strategy {name!r} has no option {option!r}; allowed options: {', '.join(allowed)}")
                ok = False
            elif option in options:
                self.error(f"{where}.{option}", f"strategy {name!r}: option {option!r} is also set in options; give it in one place")
                ok = False
            elif values is not None and (not isinstance(values, list) or not values):
                self.error(f"{where}.{option}", f"strategy {name!r}: option {option!r} must have a non-empty array of values to sweep, got {values!r}")
                ok = False
        return sets if ok else []

    def strategy_options(self, name: str, options: dict[str, Any], key: str, built: list[tuple[ProblemEntry, Problem]], seed: int,
                         swept: Mapping[str, Any] | None = None) -> bool:
        """Report every unknown option and every bad value of a known one (each at its key), then
        try all options together on every problem; ``True`` when all is well. Options in
        ``swept`` (a sweep's values) are reported at ``key.sweep.<option>``."""
        allowed = [*strategy_registry.option_names(name), "guard"]
        ok = True
        for option in options:
            if option not in allowed:
                self.error(f"{key}.options.{option}", f"unknown option of strategy {name!r}; allowed options: {', '.join(allowed) or '(none)'}")
                ok = False
        if not built:
            return ok
        first = built[0][1]
        known = {option: value for option, value in options.items() if option in allowed}
        for option, value in known.items():  # one at a time, so that a bad value names its key
            where = f"{key}.sweep.{option}" if option in (swept or {}) else f"{key}.options.{option}"
            try:
                strategy_registry.make(name, first, seed=seed, **{option: value})
            except ValueError as err:
                if option in str(err):
                    self.error(where, str(err))
                    ok = False
            except Exception as err:  # a constructor that fails on a bad value in another way
                self.error(where, f"{type(err).__name__}: {err}")
                ok = False
        if not ok:
            return False
        for entry, problem in built:  # all options together, on every problem
            try:
                strategy_registry.make(name, problem, seed=seed, **options)
            except Exception as err:
                where = f"{key}.options" if options else key
                self.error(where, f"strategy {name!r} cannot run on problem {entry.label!r} ({entry.key}): {err}")
                ok = False
        return ok


def parse_study(data: Mapping[str, Any], source: str = "<study>", default_name: str = "study") -> Study:
    """Validate a parsed TOML table (see the module docstring); raises :class:`StudyConfigError`."""
    p = _Parser(source, default_name)
    if not isinstance(data, Mapping):
        raise StudyConfigError(source, [f"(top level): must be a table, got {_type_name(data)}"])
    p.unknown_keys(data, TOP_LEVEL_KEYS, "")
    p.skip_unavailable = p.choice(data, "if_unavailable", IF_UNAVAILABLE) == "skip"
    name = p.string(data, "name", default_name) or default_name
    description = data.get("description", "")
    if not isinstance(description, str):
        p.error("description", f"must be a string, got {description!r}")
        description = ""
    output = p.string(data, "output", f"results/{name}") or f"results/{name}"
    seeds = p.seeds(data)
    budget_spec = p.budget(data)
    workers = p.workers(data)
    stop = p.choice(data, "stop", STOP_RULES)
    problems = p.problems(data)
    strategies = p.strategies(data, problems, seed=seeds[0] if seeds else 0)

    budgets: dict[str, float] = {}
    if budget_spec:
        for entry, problem in problems:
            if problem is None:
                continue
            if "cost" in budget_spec:
                budgets[entry.label] = budget_spec["cost"]
                continue
            try:
                cost = entry.target_cost if entry.target_cost is not None else target_cost(problem)
            except Exception as err:  # a cost model that fails
                p.error(entry.key, f"cannot compute the cost of a target-fidelity evaluation of {entry.name!r}: {type(err).__name__}: {err}")
                continue
            if cost is None:
                p.error(entry.key, f"problem {entry.name!r} does not know its cost before evaluating, so budget.target_evaluations cannot be converted to cost units; set {entry.key}.target_cost (the cost of one target-fidelity evaluation) or use budget.cost")
                continue
            budgets[entry.label] = budget_spec["target_evaluations"] * cost
    p.distinct_file_names([e for e, _ in problems], strategies)
    if p.errors:
        raise StudyConfigError(source, list(dict.fromkeys(p.errors)))  # a sweep repeats its entry's mistakes

    runs = [] if p.unavailable else [
        RunSpec(
            problem=entry.name, problem_label=entry.label, problem_options=entry.options, strategy=s.name,
            label=s.label, options=s.options, seed=seed, budget=budgets[entry.label], budget_spec=budget_spec,
            workers=workers, stop=stop,
        )
        for seed in seeds for entry, _ in problems for s in strategies
        if s.problems is None or entry.label in s.problems
    ]
    return Study(
        name=name, source=source, output=Path(output), seeds=seeds, budget_spec=budget_spec, workers=workers,
        stop=stop, problems=[e for e, _ in problems], strategies=strategies, runs=runs,
        description=description, unavailable=p.unavailable,
    )


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; raises ``ValueError`` (:class:`StudyConfigError`) listing
    every mistake with its key, or naming the file when it is missing or not TOML."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such study file: {path}")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"study {path} is not valid TOML: {err}") from None
    return parse_study(data, source=str(path), default_name=path.stem)

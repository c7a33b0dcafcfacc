"""YAHPO Gym surrogate benchmarks: LCBench, rbv2_xgboost, rbv2_rpart and iaml_glmnet.

YAHPO Gym (Pfisterer et al., "YAHPO Gym -- An Efficient Multi-Objective Multi-Fidelity Benchmark
for Hyperparameter Optimization", AutoML-Conf 2022) replaces real training runs by neural-network
surrogates fitted to large tables of real runs. One ONNX model per *scenario* predicts, for a
configuration, an *instance* (an OpenML task) and a fidelity, the metrics of the run and its
runtime. mfbo calls the ONNX models directly with ``onnxruntime`` and ``numpy`` (extra
``pip install 'mfbo[yahpo]'``); the ``yahpo-gym`` package is not needed.

Data
----
The surrogate files are the v1.0.2 files of YAHPO Gym's public data repository
(https://github.com/slds-lmu/yahpo_data, tag v1.0.2). Per scenario, ``config_space.json``,
``encoding.json`` and ``model.onnx`` must lie in ``<data dir>/yahpo/<scenario>/``, where the data
dir is the ``data_dir=`` argument or else the environment variable ``MFBO_DATA_DIR``. Nothing is
downloaded at run time; missing files raise a ``FileNotFoundError`` that says where they were
expected and where to get them.

Problems (registered as families, see :func:`mfbo.problems.families`)
-----------------------------------------------------------------------
=========================  ===============================  =======================  ==================
name                       objective (minimised)            fidelity                 cost (seconds)
=========================  ===============================  =======================  ==================
``lcbench/<task>``         ``1 - val_accuracy / 100``       ``epoch`` 1..52 (int)    cumulative ``time``
``rbv2_xgboost/<task>``    ``1 - acc``                      ``trainsize`` 0.03..1    ``timetrain``
``rbv2_rpart/<task>``      ``1 - acc``                      ``trainsize`` 0.03..1    ``timetrain``
``iaml_glmnet/<task>``     ``mmce``                         ``trainsize`` 0.03..1    ``timetrain``
=========================  ===============================  =======================  ==================

The target fidelity is the top of the range (epoch 52, trainsize 1). Every other surrogate output
goes to :attr:`Observation.info`. The values are the surrogate's, unclipped (a predicted accuracy
slightly above 1 gives a slightly negative value).

- **Search space**: built from ``config_space.json`` (bounds, log scales, integer types,
  categorical choices and the ``IN``/``EQ`` conditions: in rbv2_xgboost, ``booster`` decides which
  tree parameters are active, see :class:`mfbo.space.InCondition`). The fidelity, the instance
  (a problem argument) and ``repl`` are not part of the space. Float bounds are rounded to 12
  significant digits, so that round values stored with float noise (``learning_rate`` in
  ``[1.0000000000000009e-4, 0.10000000000000002]``) accept ``1e-4`` and ``0.1``.
- **repl** is fixed to :data:`REPL` = 10. In the rbv2 data ``repl`` indexes the replications
  (resampling iterations, 1..10) each run was repeated over; it is an input of the surrogate,
  not a hyperparameter. YAHPO Gym's own benchmark code and mf-prior-bench fix it to 10 as well;
  a fixed value makes the objective a deterministic function of ``(config, fidelity)``.
- **Cost**: the predicted runtime, clipped below at :data:`COST_FLOOR` (1 ms) because mfbo needs
  costs > 0. The floor is a guard: in 20,000 random configurations per scenario, at the lowest
  and highest fidelities, no prediction was below 0.1 s. ``cost(config, fidelity)`` calls the
  surrogate, so the run loop's budget check knows each trial's cost in advance.
- **Resuming** (LCBench only; :class:`LCBenchProblem`): a network trained to epoch ``e1`` is
  trained on to ``e2`` and charged ``time(e2) - time(e1)`` of the clipped cumulative times,
  itself clipped at :data:`COST_FLOOR`. A LCBench observation carries the learning curve
  ``1 - val_accuracy / 100`` at epochs ``1..e`` in :attr:`Observation.curve`, predicted in one
  batched ONNX call. rbv2 and iaml are not resumable: a larger ``trainsize`` is a new fit on a
  larger data subset, charged in full.

Surrogate inputs (per the data's FORMAT.md): categorical values mapped through
``encoding.json`` (an inactive categorical is the code of ``"#na#"``), continuous values raw in
the scenario's fixed column order (an inactive one is 0), ``int32``/``float32``. One ONNX session
per scenario folder and process (a module-level cache), with one intra-op thread. Batches are
padded to a multiple of :data:`PAD_ROWS` rows: onnxruntime's CPU matrix kernels treat the last
``n mod 4`` rows of a batch differently, and the padding makes a configuration's prediction
independent of the batch it is in (``evaluate_many`` equals ``evaluate`` one by one, bit for bit,
on the x86 CPU with AVX-512 we checked; without the padding they differ by up to 4e-5 relative).

Reference values (``optimum``)
------------------------------
No true optimum is known. ``optimum`` is a **reference value**: the best target-fidelity
objective among :data:`REFERENCE_SAMPLES` (100,000) configurations drawn with
``space.sample(numpy.random.default_rng(0), 100_000)``, the same sample for every instance of a
scenario, computed by ``experiments/yahpo_reference.py`` (:func:`reference_search`) and stored
with the best configuration in ``mfbo/problems/yahpo_reference.json`` (package data). An
optimiser can beat it, so **regret can be negative**. The script needs about 400 s of CPU on one
core for all 274 instances. On 44 of the 119 rbv2_xgboost instances (suite instances 12 and
40499 among them) the surrogate's accuracy saturates at 1, so their reference is exactly 0 and
their regret cannot be negative.

Batches: :meth:`YahpoProblem.evaluate_many` (one surrogate call for many configurations and
fidelities, curves included) and :meth:`YahpoProblem.target_values` serve calibration tools and
the reference search.

Groups (see :func:`mfbo.problems.groups`): ``yahpo-so:<scenario>`` are the instances of YAHPO
Gym's single-objective suite ``single_v1.0`` in these scenarios (lcbench 167168, 189873, 189906;
rbv2_xgboost 12, 1501, 16, 40499; rbv2_rpart 14, 40499), ``yahpo-so`` all of them.
iaml_glmnet has no instance in that suite, so there is no ``yahpo-so:iaml_glmnet``.
``yahpo:<scenario>`` lists every instance of a scenario.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..space import Categorical, Fidelity, Float, InCondition, Int, Space
from ..trial import Observation
from . import register_family, register_group
from .base import Problem

__all__ = [
    "YahpoProblem", "LCBenchProblem", "yahpo_problem", "Scenario", "SCENARIOS", "Surrogate",
    "load_surrogate", "space_from_configspace", "reference_search", "yahpo_data_dir", "instance_ids", "reference",
    "DATA_ENV", "DATA_VERSION", "REPL", "COST_FLOOR", "PAD_ROWS", "REFERENCE_SAMPLES", "REFERENCE_SEED",
]

#: Environment variable naming the data directory (its ``yahpo/`` folder holds the scenarios).
DATA_ENV = "MFBO_DATA_DIR"
#: The YAHPO Gym data release these problems are written for.
DATA_VERSION = "1.0.2"
DATA_SOURCE = "https://github.com/slds-lmu/yahpo_data"
DATA_FILES = ("config_space.json", "encoding.json", "model.onnx")
#: The fixed replication index of the rbv2 scenarios (see the module docstring).
REPL = 10
#: Lower bound of every charged cost, in seconds.
COST_FLOOR = 1e-3
#: Surrogate batches are padded to a multiple of this many rows (see the module docstring).
PAD_ROWS = 4
#: Rows per ONNX call (larger batches are split; a multiple of ``PAD_ROWS``).
CHUNK_ROWS = 1024
#: Random-search size and seed of the stored reference values.
REFERENCE_SAMPLES = 100_000
REFERENCE_SEED = 0
#: Suite of the ``yahpo-so`` groups (YAHPO Gym's ``suites/single_v1.0.json``).
SUITE = "single_v1.0"
NA = "#na#"


@dataclass(frozen=True)
class Scenario:
    """How one YAHPO scenario's surrogate is called and read (column orders per FORMAT.md)."""

    name: str
    instance_param: str
    fidelity_param: str
    cont_names: tuple[str, ...]
    cat_names: tuple[str, ...]
    y_names: tuple[str, ...]
    objective_output: str  # the value is 1 - y / accuracy_scale, or y itself if accuracy_scale is None
    accuracy_scale: float | None
    cost_output: str
    objective: str  # the objective in words, for logs
    fixed: tuple[tuple[str, float], ...] = ()  # surrogate inputs held constant (repl)
    learning_curve: bool = False  # the fidelity is epochs: curves and resuming

    def values(self, y: np.ndarray) -> np.ndarray:
        """Objective values ``(n,)`` from surrogate outputs ``(n, len(y_names))``."""
        raw = y[:, self.y_names.index(self.objective_output)].astype(np.float64)
        return raw if self.accuracy_scale is None else 1.0 - raw / self.accuracy_scale

    def costs(self, y: np.ndarray) -> np.ndarray:
        """Predicted runtimes ``(n,)`` clipped at :data:`COST_FLOOR`."""
        return np.maximum(y[:, self.y_names.index(self.cost_output)].astype(np.float64), COST_FLOOR)


_RBV2_Y = ("acc", "bac", "auc", "brier", "f1", "logloss", "timetrain", "timepredict", "memory")
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "lcbench", "OpenML_task_id", "epoch",
            ("epoch", "batch_size", "learning_rate", "momentum", "weight_decay", "num_layers", "max_units", "max_dropout"),
            ("OpenML_task_id",),
            ("time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "test_cross_entropy", "test_balanced_accuracy"),
            "val_accuracy", 100.0, "time", "1 - val_accuracy / 100", learning_curve=True,
        ),
        Scenario(
            "rbv2_xgboost", "task_id", "trainsize",
            ("nrounds", "eta", "gamma", "lambda", "alpha", "subsample", "max_depth", "min_child_weight",
             "colsample_bytree", "colsample_bylevel", "rate_drop", "skip_drop", "trainsize", "repl"),
            ("task_id", "booster", "num.impute.selected.cpo"),
            _RBV2_Y, "acc", 1.0, "timetrain", "1 - acc", fixed=(("repl", REPL),),
        ),
        Scenario(
            "rbv2_rpart", "task_id", "trainsize",
            ("cp", "maxdepth", "minbucket", "minsplit", "trainsize", "repl"),
            ("task_id", "num.impute.selected.cpo"),
            _RBV2_Y, "acc", 1.0, "timetrain", "1 - acc", fixed=(("repl", REPL),),
        ),
        Scenario(
            "iaml_glmnet", "task_id", "trainsize",
            ("alpha", "s", "trainsize"),
            ("task_id",),
            ("mmce", "f1", "auc", "logloss", "ramtrain", "rammodel", "rampredict", "timetrain", "timepredict", "mec", "ias", "nf"),
            "mmce", None, "timetrain", "mmce",
        ),
    )
}


def _scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"unknown YAHPO scenario {name!r}; supported scenarios: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


# Package data: instance ids, suite membership and reference values ------------------------------
REFERENCE_FILE = "yahpo_reference.json"


@functools.cache
def _package_data() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(REFERENCE_FILE).read_text())


def instance_ids(scenario: str) -> list[str]:
    """The instance (OpenML task) ids of ``scenario``, as listed in its ``config_space.json``."""
    return list(_package_data()["scenarios"][_scenario(scenario).name]["instances"])


def _check_instance(scenario: Scenario, instance: Any) -> str:
    valid = instance_ids(scenario.name)
    key = str(instance)
    if key not in valid:
        raise ValueError(f"unknown {scenario.name} instance {instance!r}; valid instances: {', '.join(valid)}")
    return key


def reference(scenario: str, instance: str) -> dict[str, Any] | None:
    """The stored reference ``{"value", "config"}`` of an instance (``None`` if none is stored)."""
    return _package_data()["scenarios"][_scenario(scenario).name].get("reference", {}).get(str(instance))


# Data directory and surrogate loading -----------------------------------------------------------
def _how_to_get(scenario: str) -> str:
    return (
        f"They are the v{DATA_VERSION} files of YAHPO Gym's public data repository ({DATA_SOURCE}, tag v{DATA_VERSION}): "
        f"put its folder {scenario}/ ({', '.join(DATA_FILES)}) at $MFBO_DATA_DIR/yahpo/{scenario}/, "
        f"with {DATA_ENV} set (or data_dir= passed) to your data directory."
    )


def yahpo_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``<data_dir>/yahpo``, with ``data_dir`` from the argument or else ``$MFBO_DATA_DIR``."""
    root = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if not root:
        raise FileNotFoundError(
            f"no data directory for the YAHPO Gym surrogates: set the environment variable {DATA_ENV} "
            f"(or pass data_dir=) to a directory whose yahpo/<scenario>/ folders hold the surrogate files. "
            + _how_to_get("<scenario>")
        )
    return Path(root).expanduser() / "yahpo"


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the YAHPO Gym problems need onnxruntime: pip install 'mfbo[yahpo]'") from None
    return onnxruntime


def _round_bound(x: float) -> float:
    return float(f"{float(x):.12g}")


def space_from_configspace(config_space: Mapping[str, Any], exclude: Sequence[str] = ()) -> Space:
    """Build a :class:`Space` from a ConfigSpace JSON dict (``json_format_version`` 0.2).

    Supports ``uniform_float``, ``uniform_int`` and ``categorical`` hyperparameters and ``IN`` /
    ``EQ`` conditions; ``exclude`` names hyperparameters to leave out (a condition on or of an
    excluded one is an error). Float bounds are rounded to 12 significant digits.

    Raises:
        ValueError: for an unsupported hyperparameter type, condition type, or forbidden clauses.
    """
    params: dict[str, Any] = {}
    for hp in config_space["hyperparameters"]:
        name, kind = hp["name"], hp["type"]
        if name in exclude:
            continue
        if kind == "uniform_float":
            params[name] = Float(_round_bound(hp["lower"]), _round_bound(hp["upper"]), log=bool(hp.get("log", False)))
        elif kind == "uniform_int":
            params[name] = Int(hp["lower"], hp["upper"], log=bool(hp.get("log", False)))
        elif kind == "categorical":
            params[name] = Categorical(hp["choices"])
        else:
            raise ValueError(f"config space: hyperparameter {name!r} has unsupported type {kind!r} (supported: uniform_float, uniform_int, categorical)")
    conditions = {}
    for cond in config_space.get("conditions", []):
        kind = cond.get("type")
        if kind not in ("IN", "EQ"):
            raise ValueError(f"config space: condition {cond!r} has unsupported type {kind!r} (supported: IN, EQ)")
        if cond["child"] in exclude or cond["parent"] in exclude:
            raise ValueError(f"config space: condition {cond!r} involves an excluded hyperparameter")
        conditions[cond["child"]] = InCondition(cond["parent"], cond["values"] if kind == "IN" else [cond["value"]])
    if config_space.get("forbiddens"):
        raise ValueError("config space: forbidden clauses are not supported")
    return Space(params, conditions=conditions)


class Surrogate:
    """One scenario's ONNX surrogate with its search space, fidelity and input encoding.

    Built by :func:`load_surrogate` (cached). ``inputs`` turns validated configurations and
    fidelity values into the ONNX input arrays; ``predict`` runs them for one instance.
    """

    def __init__(self, scenario: Scenario, folder: Path) -> None:
        self.scenario = scenario
        self.folder = folder
        missing = [f for f in DATA_FILES if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"YAHPO Gym surrogate files for scenario {scenario.name!r} are missing: expected {', '.join(missing)} "
                f"in {folder}. " + _how_to_get(scenario.name)
            )
        ort = _require_onnxruntime()
        config_space = json.loads((folder / "config_space.json").read_text())
        self._codes: dict[str, dict[str, int]] = json.loads((folder / "encoding.json").read_text())
        hps = {hp["name"]: hp for hp in config_space["hyperparameters"]}
        fixed = dict(scenario.fixed)
        expected = set(scenario.cont_names) | set(scenario.cat_names)
        if set(hps) != expected:
            raise ValueError(
                f"{folder / 'config_space.json'} does not match scenario {scenario.name!r} of YAHPO Gym v{DATA_VERSION}: "
                f"it has {sorted(hps)}, expected {sorted(expected)}"
            )
        self.space = space_from_configspace(config_space, exclude=[scenario.fidelity_param, scenario.instance_param, *fixed])
        fid = hps[scenario.fidelity_param]
        self.fidelity = Fidelity(scenario.fidelity_param, fid["lower"], fid["upper"], integer=fid["type"] == "uniform_int")
        self.instances: list[str] = [str(c) for c in hps[scenario.instance_param]["choices"]]
        for name, value in fixed.items():
            if not hps[name]["lower"] <= value <= hps[name]["upper"]:
                raise ValueError(f"fixed input {name}={value} is outside [{hps[name]['lower']}, {hps[name]['upper']}]")
        for name in scenario.cat_names:
            choices = self.instances if name == scenario.instance_param else list(self.space[name].choices)
            absent = [c for c in choices if str(c) not in self._codes.get(name, {})]
            if absent:
                raise ValueError(f"{folder / 'encoding.json'} has no code for {name} = {absent}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self._instance_column = scenario.cat_names.index(scenario.instance_param)

    def inputs(self, configs: Sequence[Mapping[str, Any]], fidelities: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x_cat, x_cont)`` of shapes ``(n, #cat)`` int32 and ``(n, #cont)`` float32 for validated
        configurations (inactive parameters absent); the instance column is set by :meth:`predict`."""
        n = len(configs)
        fixed = dict(self.scenario.fixed)
        x_cont = np.zeros((n, len(self.scenario.cont_names)), dtype=np.float32)
        for j, name in enumerate(self.scenario.cont_names):
            if name == self.scenario.fidelity_param:
                x_cont[:, j] = np.asarray(fidelities, dtype=np.float64)
            elif name in fixed:
                x_cont[:, j] = fixed[name]
            else:
                x_cont[:, j] = np.fromiter((c.get(name, 0.0) for c in configs), dtype=np.float64, count=n)
        x_cat = np.zeros((n, len(self.scenario.cat_names)), dtype=np.int32)
        for j, name in enumerate(self.scenario.cat_names):
            if name == self.scenario.instance_param:
                continue
            codes = self._codes[name]
            x_cat[:, j] = np.fromiter((codes[str(c[name])] if name in c else codes[NA] for c in configs), dtype=np.int64, count=n)
        return x_cat, x_cont

    def predict(self, x_cat: np.ndarray, x_cont: np.ndarray, instance: str) -> np.ndarray:
        """Surrogate outputs ``(n, len(y_names))`` (float32) for ``instance``; ``x_cat`` is not modified."""
        n = x_cont.shape[0]
        x_cat = x_cat.copy()
        x_cat[:, self._instance_column] = self._codes[self.scenario.instance_param][str(instance)]
        out = np.empty((n, len(self.scenario.y_names)), dtype=np.float32)
        for start in range(0, n, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, n)
            pad = -(stop - start) % PAD_ROWS  # repeat the last row: see PAD_ROWS
            cat = np.concatenate([x_cat[start:stop], np.repeat(x_cat[stop - 1 : stop], pad, axis=0)])
            cont = np.concatenate([x_cont[start:stop], np.repeat(x_cont[stop - 1 : stop], pad, axis=0)])
            out[start:stop] = self._session.run(None, {"x_cat": cat, "x_cont": cont})[0][: stop - start]
        return out


_SURROGATES: dict[Path, Surrogate] = {}


def load_surrogate(scenario: str, data_dir: str | os.PathLike | None = None) -> Surrogate:
    """The surrogate of ``scenario`` under the data directory (one per folder and process)."""
    spec = _scenario(scenario)
    folder = (yahpo_data_dir(data_dir) / spec.name).resolve()
    if folder not in _SURROGATES:
        _SURROGATES[folder] = Surrogate(spec, folder)
    return _SURROGATES[folder]


# Problems ---------------------------------------------------------------------------------------
class YahpoProblem(Problem):
    """One instance of a YAHPO scenario whose fidelity is a training-set fraction (rbv2_xgboost,
    rbv2_rpart, iaml_glmnet); see the module docstring. LCBench is :class:`LCBenchProblem`;
    :func:`yahpo_problem` picks the class.

    Args:
        scenario: one of :data:`SCENARIOS`.
        instance: the OpenML task id (str or int); an unknown one raises ``ValueError`` listing
            the valid ones.
        data_dir: the data directory (default: ``$MFBO_DATA_DIR``).

    Attributes:
        scenario: the :class:`Scenario`.
        instance: the task id (str).
        optimum: the stored reference value (not a true optimum; regret can be negative).
        reference_config: the configuration that attains ``optimum`` (``None`` if none stored).
    """

    noiseless_target = True  # repl is fixed: the surrogate is a deterministic function (module docstring)

    def __init__(self, scenario: str, instance: str | int, *, data_dir: str | os.PathLike | None = None) -> None:
        spec = _scenario(scenario)
        if spec.learning_curve and not isinstance(self, LCBenchProblem):
            raise ValueError(f"scenario {spec.name!r} has learning curves: use LCBenchProblem or yahpo_problem({spec.name!r}, ...)")
        instance = _check_instance(spec, instance)
        self.surrogate = load_surrogate(spec.name, data_dir)
        if instance not in self.surrogate.instances:
            raise ValueError(f"instance {instance!r} is not in {self.surrogate.folder / 'config_space.json'}; is it the v{DATA_VERSION} file?")
        ref = reference(spec.name, instance)
        super().__init__(f"{spec.name}/{instance}", self.surrogate.space, self.surrogate.fidelity,
                         optimum=None if ref is None else ref["value"])
        self.scenario = spec
        self.instance = instance
        self.reference_config = None if ref is None else self.space.validate(ref["config"])
        self._data_dir = data_dir

    def __reduce__(self):
        """Pickle by name (the ONNX session is not picklable): rebuilt from the cached surrogate."""
        return functools.partial(yahpo_problem, data_dir=self._data_dir), (self.scenario.name, self.instance)

    # Surrogate calls on validated inputs ---------------------------------------------------------
    def _outputs(self, configs: Sequence[dict[str, Any]], fidelities: Sequence[float]) -> np.ndarray:
        x_cat, x_cont = self.surrogate.inputs(configs, fidelities)
        return self.surrogate.predict(x_cat, x_cont, self.instance)

    def _info(self, row: np.ndarray) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.scenario.y_names, row)}

    def _observations(self, configs: list[dict[str, Any]], fidelities: list[float]) -> list[Observation]:
        y = self._outputs(configs, fidelities)
        values, costs = self.scenario.values(y), self.scenario.costs(y)
        return [Observation(value=float(values[i]), cost=float(costs[i]), info=self._info(y[i])) for i in range(len(configs))]

    def _evaluate(self, config: dict[str, Any], fidelity: float | None) -> Observation:
        return self._observations([config], [fidelity])[0]

    # Public interface -------------------------------------------------------------------------------
    def evaluate_many(self, configs: Sequence[Mapping[str, Any]], fidelities: Any = None) -> list[Observation]:
        """Evaluate many configurations in one batched surrogate call (as :meth:`evaluate` would,
        from scratch). ``fidelities``: ``None`` (the target), one value for all, or one per config."""
        configs = [self.space.validate(c) for c in configs]
        if fidelities is None or np.ndim(fidelities) == 0:
            fidelities = [fidelities] * len(configs)
        if len(fidelities) != len(configs):
            raise ValueError(f"evaluate_many: got {len(configs)} configurations but {len(fidelities)} fidelities")
        return self._observations(configs, [self.validate_fidelity(f) for f in fidelities]) if configs else []

    def target_values(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Target-fidelity objective values ``(n,)`` of many configurations, batched."""
        configs = [self.space.validate(c) for c in configs]
        if not configs:
            return np.zeros(0)
        return self.scenario.values(self._outputs(configs, [self.fidelity.target] * len(configs)))

    def target_value(self, config: Mapping[str, Any]) -> float:
        """The surrogate's (deterministic) objective of ``config`` at the target fidelity."""
        return float(self.target_values([config])[0])

    def cost(self, config: Mapping[str, Any], fidelity: Any = None) -> float:
        """The predicted cost (seconds, clipped at :data:`COST_FLOOR`) of evaluating ``config``
        at ``fidelity`` (default: the target) from scratch."""
        config = self.space.validate(config)
        return self.cost_many([config], fidelity)[0]

    def cost_many(self, configs: Sequence[Mapping[str, Any]], fidelity: Any = None) -> list[float]:
        """:meth:`cost` of each configuration at ``fidelity``, in one surrogate call."""
        configs = [self.space.validate(config) for config in configs]
        y = self._outputs(configs, [self.validate_fidelity(fidelity)] * len(configs))
        return [float(c) for c in self.scenario.costs(y)]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update({
            "scenario": self.scenario.name,
            "instance": self.instance,
            "objective": self.scenario.objective,
            "cost": f"{self.scenario.cost_output} (seconds, clipped at {COST_FLOOR})",
            "fixed_inputs": dict(self.scenario.fixed),
            "data_version": DATA_VERSION,
            "optimum_kind": f"reference: best of {_package_data()['n_samples']} random configurations (seed {_package_data()['seed']})",
        })
        return out


class LCBenchProblem(YahpoProblem):
    """One LCBench task: epochs 1..52, learning curves, resumable (see the module docstring).

    An observation at epoch ``e`` has ``curve`` = ``1 - val_accuracy / 100`` at epochs ``1..e``
    (shape ``(e,)``, its last entry is ``value``) and the outputs at epoch ``e`` in ``info``.
    """

    resumable = True

    def __init__(self, instance: str | int, *, data_dir: str | os.PathLike | None = None) -> None:
        super().__init__("lcbench", instance, data_dir=data_dir)

    def _curves(self, configs: list[dict[str, Any]], epochs: list[int]) -> list[np.ndarray]:
        """Surrogate outputs at epochs ``1..e`` for each configuration, ``(e, len(y_names))``
        each, from one batched call."""
        rows = [c for c, e in zip(configs, epochs) for _ in range(e)]
        steps = np.concatenate([np.arange(1, e + 1) for e in epochs])
        y = self._outputs(rows, steps)
        return np.split(y, np.cumsum(epochs)[:-1])

    def _observation(self, y: np.ndarray, cost: float) -> Observation:
        curve = self.scenario.values(y)
        return Observation(value=float(curve[-1]), cost=cost, curve=curve, info=self._info(y[-1]))

    def _observations(self, configs: list[dict[str, Any]], fidelities: list[float]) -> list[Observation]:
        return [self._observation(y, float(self.scenario.costs(y[-1:])[0])) for y in self._curves(configs, fidelities)]

    def _increment(self, y: np.ndarray, resume_from: int) -> float:
        """Cost of going from epoch ``resume_from`` to the last epoch of outputs ``y``."""
        done, total = self.scenario.costs(y[[resume_from - 1, -1]])
        return max(float(total - done), COST_FLOOR)

    def _resume(self, config: dict[str, Any], fidelity: float, resume_from: float) -> Observation:
        y = self._curves([config], [fidelity])[0]
        return self._observation(y, self._increment(y, resume_from))

    def increment_cost(self, config: Mapping[str, Any], fidelity: Any, resume_from: Any = None) -> float:
        """The predicted cost of training ``config`` to epoch ``fidelity``, continuing from epoch
        ``resume_from`` if given (exactly what :meth:`evaluate` will charge)."""
        if resume_from is None:
            return self.cost(config, fidelity)
        config, fidelity = self.space.validate(config), self.validate_fidelity(fidelity)
        start = self._validate_resume(fidelity, resume_from)
        return self._increment(self._curves([config], [fidelity])[0], start)


def yahpo_problem(scenario: str, instance: str | int, *, data_dir: str | os.PathLike | None = None) -> YahpoProblem:
    """Build instance ``instance`` of YAHPO ``scenario`` (what ``mfbo.problems.get("scenario/instance")`` does)."""
    if _scenario(scenario).learning_curve:
        return LCBenchProblem(instance, data_dir=data_dir)
    return YahpoProblem(scenario, instance, data_dir=data_dir)


# Reference values -------------------------------------------------------------------------------
def reference_search(
    scenario: str,
    n_samples: int = REFERENCE_SAMPLES,
    seed: int = REFERENCE_SEED,
    *,
    instances: Sequence[str] | None = None,
    data_dir: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]]:
    """Random search at the target fidelity: for each instance, the best objective among
    ``space.sample(numpy.random.default_rng(seed), n_samples)`` (one sample shared by all
    instances) and the configuration that attains it.

    Returns:
        ``{instance: {"value": float, "config": dict}}`` in the order of ``instances``
        (default: every instance of the scenario's ``config_space.json``).
    """
    spec = _scenario(scenario)
    surrogate = load_surrogate(spec.name, data_dir)
    chosen = surrogate.instances if instances is None else [str(i) for i in instances]
    unknown = [i for i in chosen if i not in surrogate.instances]
    if unknown:
        raise ValueError(f"reference_search: unknown {spec.name} instance(s) {unknown}; valid instances: {', '.join(surrogate.instances)}")
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"reference_search: n_samples must be a positive integer, got {n_samples!r}")
    configs = surrogate.space.sample(np.random.default_rng(seed), int(n_samples))
    x_cat, x_cont = surrogate.inputs(configs, np.full(len(configs), surrogate.fidelity.target))
    out = {}
    for instance in chosen:
        values = spec.values(surrogate.predict(x_cat, x_cont, instance))
        best = int(np.argmin(values))
        if not math.isfinite(values[best]):
            raise ValueError(f"reference_search: non-finite surrogate value for {spec.name}/{instance}")
        out[instance] = {"value": float(values[best]), "config": configs[best]}
    return out


# Registration (needs only the package JSON, not the data) ---------------------------------------
def _register() -> None:
    data = _package_data()
    for name in SCENARIOS:
        register_family(name, functools.partial(yahpo_problem, name), data["scenarios"][name]["instances"])
        register_group(f"yahpo:{name}", [f"{name}/{i}" for i in data["scenarios"][name]["instances"]])
    suite = data["suites"][SUITE]
    so_groups = []
    for name in SCENARIOS:
        if suite.get(name):
            register_group(f"yahpo-so:{name}", [f"{name}/{i}" for i in suite[name]])
            so_groups.append(f"yahpo-so:{name}")
    register_group("yahpo-so", so_groups)


_register()

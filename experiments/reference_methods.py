"""Reference multi-fidelity optimisers, run from their own packages as mfbo strategies.

Issue #12's benchmark (``experiments/bench_real.py``) compares mfbo's strategies with three
published multi-fidelity methods. Each runs **from its own package**, through the package's
ask/tell interface, wrapped in an mfbo :class:`~mfbo.strategies.Strategy`; the strategy objects
are passed to :func:`mfbo.minimize`, so the run loop does the cost accounting, the budget rule,
the trial log, the regret and the evaluation of the recommendation exactly as for mfbo's own
strategies. They are not in mfbo's strategy registry: they live with the experiments and need
the ``reference`` extra (``pip install -e '.[reference]'``).

================  ==========================================================================
name              package, components and papers
================  ==========================================================================
``dehb-ref``      :class:`DEHBStrategy`: ``dehb.DEHB`` (Awad, Mallik and Hutter, "DEHB:
                  Evolutionary Hyperband for Scalable, Robust and Efficient Hyperparameter
                  Optimization", IJCAI 2021): differential evolution in Hyperband brackets.
``smac-mf``       :class:`SMACMultiFidelityStrategy`: SMAC3 2.x ``MultiFidelityFacade``
                  (Lindauer et al., "SMAC3: A Versatile Bayesian Optimization Package for
                  Hyperparameter Optimization", JMLR 2022): random-forest EI proposing
                  configurations to a Hyperband intensifier (as in BOHB, Falkner et al. 2018).
``optuna-tpe-hb`` :class:`OptunaTPEHyperbandStrategy`: ``optuna`` ``TPESampler`` (Bergstra et al.,
                  NeurIPS 2011) with the ``HyperbandPruner`` (Li et al., JMLR 2018) (Akiba et
                  al., "Optuna", KDD 2019).
================  ==========================================================================

Budgets (:class:`ResourceScale`)
--------------------------------
The packages take a budget in ``[min, max]``; mfbo has a :class:`~mfbo.space.Fidelity`. All three
get the same scale, **proportional to the fidelity value**: resources ``1..R`` with
``R = floor(target / low)``, and resource ``r`` is the fidelity ``target * r / R`` (``R`` itself
is exactly the target), rounded for integer fidelities (epochs), the nearest level for level
fidelities, clipped to ``[low, target]``. LCBench (epochs 1..52) gets ``R = 52`` and resource =
epoch; rbv2 (``trainsize`` 0.03..1) gets ``R = 33``. A fidelity whose ``low`` is not positive has
no natural unit; it gets ``R = 27`` (:data:`RESOURCES_WITHOUT_UNIT`, three rungs below the target
at ``eta = 3``). DEHB and SMAC get ``min_budget = 1, max_budget = R``; Optuna's pruner
``min_resource = 1, max_resource = R``. ``eta = 3`` everywhere: each package's default.

Search spaces
-------------
:func:`configspace` maps an mfbo :class:`~mfbo.space.Space` to ``ConfigSpace`` (DEHB, SMAC):
``Float`` and ``Int`` to uniform float/integer hyperparameters with the same bounds and log scale,
``Categorical`` to a categorical (``ordered=True``: an ordinal) one, ``InCondition`` to an
``InCondition`` (``EqualsCondition`` for one value). Optuna samples define-by-run
(:func:`suggest_config`): a conditional parameter is suggested only when its condition holds, as
Optuna's documentation does for conditional spaces. Each sampled configuration goes through
``Space.validate``; numeric values are clipped to their bounds first (float round-off of the
packages' log transforms).

How each method is charged, and resumption
------------------------------------------
Every evaluation is charged what the problem reports: the loop charges a new trial
``cost(config, fidelity)`` and a :class:`~mfbo.strategies.Continuation` of trial ``k``
``increment_cost`` (the increment from trial ``k``'s fidelity on a resumable problem such as
LCBench, the full cost on any other, such as rbv2, where a larger ``trainsize`` is a new fit).

- **DEHB** and **SMAC** ask for a configuration at a budget; their papers charge each such run from
  scratch. Here, by default (``continue_promotions=True``), when the same configuration (equal after
  ``Space.validate``) was already evaluated successfully at a lower fidelity in this run, the
  trial is asked as a continuation of the highest such evaluation, so on a resumable problem a
  configuration promoted by Successive Halving pays only the increment. This is a deviation from
  the papers, in the methods' favour: it is what a user with checkpoints gets, and it gives them
  the same resumption that Optuna's pruning has. ``continue_promotions=False`` charges every
  evaluation from scratch, as in the papers. On a problem that cannot resume, both charge the same.
- **Optuna** runs each trial to the rung steps of Hyperband's first bracket, ``1, eta, eta^2, ...``
  (below ``R``) and ``R``, calling ``trial.report(value, step)`` and ``trial.should_prune()`` at
  each; each step after the first is a continuation of the previous one. The rung steps of every
  bracket are among these steps and the pruner reads a trial's value at its latest step only, so
  the pruner and TPE take the same decisions as with a report at every epoch. On a resumable
  problem a trial is charged ``cost(last step)`` in all; on a problem that cannot resume each
  step is a new evaluation charged in full (what Optuna's report/prune protocol costs when
  training cannot be checkpointed), including steps below the first rung of the trial's bracket,
  which the wrapper cannot know without Optuna's private bracket assignment.
- **The end of the budget.** The loop ends a run at the first trial whose known cost would exceed
  what is left. mfbo's model-based strategies propose only what still fits
  (:meth:`mfbo.strategies.Strategy.budget_left`); the reference methods keep their own proposal
  rules (their packages count budget in evaluations or rungs, not in the problem's cost units),
  so a run of theirs can end with part of the budget unspent, as it would for their users.

Recommendation
--------------
:meth:`ReferenceStrategy.recommend` is mfbo's default rule
(:class:`mfbo.strategies.base.BestAtHighestFidelity`, the rule of every strategy that does not
name its own): the best configuration observed at the target fidelity, or, before any target
evaluation, the best observed at the highest fidelity evaluated so far, ties by trial id. At
the target this is SMAC's ``incumbent_selection="highest_budget"`` incumbent; DEHB's own
incumbent is the best value at **any** fidelity, which can be a low-fidelity fluke, so the
common rule is used for DEHB too.

Defaults not in the papers
--------------------------
- SMAC: 5 initial random configurations, as in SMAC's own multi-fidelity example
  (``examples/2_multi_fidelity/1_mlp_epochs.py``: ``get_initial_design(scenario, n_configs=5)``);
  the facade's default (10 per hyperparameter, capped at a quarter of ``n_trials``) needs a trial
  count, and a run here has a cost budget instead. ``n_trials`` is :data:`SMAC_TRIAL_CAP` (the loop
  stops on the budget), ``deterministic=True`` (the problems are deterministic), Hyperband's
  ``incumbent_selection="highest_budget"`` as in that example, SMAC's logging left unconfigured
  (``logging_level=False``), its output in a temporary directory removed with the strategy.
- DEHB: one worker, no Dask client, ``save_freq="end"`` (nothing written by ``tell``); DEHB
  configures loguru globally (a stdout handler at import, a log file per instance), so the
  wrapper removes loguru's handlers after building DEHB and DEHB logs nothing.
- Optuna: in-memory storage, study name ``mfbo-seed<seed>`` (the HyperbandPruner assigns trials
  to brackets by a hash of the study name and trial number; the default name is a random UUID),
  Optuna's own logging set to warnings only. ``TPESampler`` with its defaults.
- A failed evaluation is told as fitness ``+inf`` (DEHB), status ``CRASHED`` with cost ``+inf``
  (SMAC) and state ``FAIL`` (Optuna).

Seeds: ``seed`` goes to ``DEHB(seed=...)`` and its ``ConfigurationSpace``, to SMAC's
``Scenario(seed=...)`` and to ``TPESampler(seed=...)``; no global random state is touched, and
the same seed gives the same trial log within a process (tests/experiments/). **SMAC across
processes**: SMAC 2.4.1's local search takes its start points from ``list(set(configurations))``
(``smac/acquisition/maximizer/local_search.py``), an order that follows Python's per-process
string hashing (``Configuration.__hash__`` hashes its repr), so a SMAC run reproduces in another
process only under the same ``PYTHONHASHSEED``; ``bench_real.py`` starts its workers with
``PYTHONHASHSEED=0``. DEHB and Optuna runs reproduce across processes as they are.

Package versions: ``dehb`` 0.1.2 pins ``numpy<2``, which would downgrade numpy under torch; the
extra asks for ``dehb>=0.1.1,!=0.1.2`` (0.1.1 is the same algorithm without that pin). The
version of the package that ran is in each strategy's options, so in every run log.
"""

from __future__ import annotations

import importlib
import math
import shutil
import tempfile
import warnings
import weakref
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

from mfbo.problems.base import Problem
from mfbo.space import Categorical, Fidelity, Float, Int, Space
from mfbo.strategies import Continuation, Strategy
from mfbo.trial import Observation, Trial

__all__ = [
    "ResourceScale", "configspace", "from_configspace", "suggest_config", "ReferenceStrategy",
    "DEHBStrategy", "SMACMultiFidelityStrategy", "OptunaTPEHyperbandStrategy", "REFERENCE_STRATEGIES",
    "unavailable", "make", "RESOURCES_WITHOUT_UNIT", "SMAC_TRIAL_CAP",
]

#: ``R`` of a fidelity whose lowest value is not positive (see "Budgets" above).
RESOURCES_WITHOUT_UNIT = 27
#: SMAC's ``n_trials``: no cap in practice, the run loop stops on the cost budget.
SMAC_TRIAL_CAP = 10**9


# Budgets ----------------------------------------------------------------------------------------
class ResourceScale:
    """The packages' budget ``r in [1, max_resource]`` as an mfbo fidelity (module docstring)."""

    def __init__(self, fidelity: Fidelity):
        if not isinstance(fidelity, Fidelity):
            raise ValueError(f"ResourceScale: fidelity must be an mfbo.Fidelity, got {type(fidelity).__name__}")
        low, target = float(fidelity.low), float(fidelity.target)
        self.fidelity = fidelity
        self.max_resource = math.floor(target / low) if low > 0 else RESOURCES_WITHOUT_UNIT
        if self.max_resource < 2:
            raise ValueError(f"fidelity {fidelity.name!r}: target / low = {target / low:.3g} leaves no budget range for Hyperband (needs >= 2)")

    def to_fidelity(self, resource: float) -> Any:
        """The fidelity of budget ``resource`` (``max_resource`` is exactly the target)."""
        if resource >= self.max_resource * (1 - 1e-12):
            return self.fidelity.target
        value = min(max(float(self.fidelity.target) * resource / self.max_resource, float(self.fidelity.low)), float(self.fidelity.target))
        if self.fidelity.levels is not None:
            reachable = [level for level in self.fidelity.levels if level <= self.fidelity.target]
            return min(reachable, key=lambda level: abs(level - value))
        return self.fidelity.validate(round(value) if self.fidelity.integer else value)


# Search spaces ----------------------------------------------------------------------------------
def configspace(space: Space, seed: int):
    """The ``ConfigSpace.ConfigurationSpace`` of ``space``, seeded (module docstring)."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    for name, param in space.items():
        if isinstance(param, Float):
            cs.add(CS.UniformFloatHyperparameter(name, param.low, param.high, log=param.log))
        elif isinstance(param, Int):
            cs.add(CS.UniformIntegerHyperparameter(name, param.low, param.high, log=param.log))
        elif isinstance(param, Categorical) and param.ordered:
            cs.add(CS.OrdinalHyperparameter(name, list(param.choices)))
        elif isinstance(param, Categorical):
            cs.add(CS.CategoricalHyperparameter(name, list(param.choices)))
        else:
            raise ValueError(f"configspace: parameter {name!r} is a {type(param).__name__}; supported: Float, Int, Categorical")
    for child, cond in space.conditions.items():
        values = list(cond.values)
        cs.add(CS.EqualsCondition(cs[child], cs[cond.parent], values[0]) if len(values) == 1
               else CS.InCondition(cs[child], cs[cond.parent], values))
    return cs


def _within_bounds(param: Any, value: Any) -> Any:
    """A package's value as a Python scalar, numeric ones clipped to the parameter's bounds."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(param, (Float, Int)):
        return min(max(value, param.low), param.high)
    return value


def from_configspace(configuration: Any, space: Space) -> dict[str, Any]:
    """An mfbo configuration from a ``ConfigSpace.Configuration`` (its active values)."""
    return space.validate({name: _within_bounds(space[name], value) for name, value in dict(configuration).items()})


def _suggest_one(trial: Any, name: str, param: Any) -> Any:
    if isinstance(param, Float):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    if isinstance(param, Int):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    if isinstance(param, Categorical):
        return trial.suggest_categorical(name, list(param.choices))
    raise ValueError(f"suggest_config: parameter {name!r} is a {type(param).__name__}; supported: Float, Int, Categorical")


def suggest_config(trial: Any, space: Space) -> dict[str, Any]:
    """Sample a configuration with an Optuna trial, define-by-run: each parameter is suggested once
    its condition's parent is decided and only if the condition holds."""
    values: dict[str, Any] = {}
    undecided = list(space)
    progress = True
    while progress:
        progress = False
        for name in list(undecided):
            cond = space.conditions.get(name)
            if cond is None or (cond.parent in values and cond.holds(values[cond.parent])):
                values[name] = _suggest_one(trial, name, space[name])
                undecided.remove(name)
                progress = True
    return space.validate(values)  # the parameters left undecided are inactive


# The common wrapper -----------------------------------------------------------------------------
class ReferenceStrategy(Strategy):
    """An mfbo strategy that drives a package's ask/tell optimiser (module docstring).

    Subclasses implement :meth:`_next_job` (ask the package; return its job and the mfbo
    suggestion) and :meth:`_report` (tell the package a job's outcome).
    """

    #: The distribution that provides the method (its version goes into :meth:`options`).
    package: ClassVar[str] = ""
    #: The module imported to check that the package is usable.
    module: ClassVar[str] = ""
    #: How to install the package (said when it is missing).
    install: ClassVar[str] = "pip install -e '.[reference]'"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None, eta: int = 3):
        super().__init__(space, fidelity, seed=seed, problem=problem)
        if fidelity is None:
            raise ValueError(f"strategy {self.name!r}: needs a problem with a fidelity (it is {self.package}'s budget), got none")
        if isinstance(eta, bool) or not isinstance(eta, int) or eta < 2:
            raise ValueError(f"strategy {self.name!r}: eta must be an integer >= 2, got {eta!r}")
        self.eta = eta
        self.scale = ResourceScale(fidelity)
        self._asked_job: Any = None
        self._jobs: dict[int, Any] = {}  # mfbo trial id -> the package's job

    def ask(self) -> Trial:
        trial = super().ask()
        self._jobs[trial.id] = self._asked_job
        return trial

    def _suggest(self) -> tuple[dict[str, Any], Any] | Continuation:
        self._asked_job, suggestion = self._next_job()
        return suggestion

    def _observe(self, trial: Trial, observation: Observation) -> None:
        if trial.id not in self._jobs:
            raise ValueError(f"strategy {self.name!r}: {self.package} can only be told the trials it asked for; "
                             f"trial {trial.id} was not (add_observation and warm starts are not supported)")
        self._report(self._jobs.pop(trial.id), trial, observation)

    def _next_job(self) -> tuple[Any, tuple[dict[str, Any], Any] | Continuation]:
        raise NotImplementedError  # abstract

    def _report(self, job: Any, trial: Trial, observation: Observation) -> None:
        raise NotImplementedError  # abstract

    def _continue_if_seen(self, config: dict[str, Any], fidelity: Any) -> tuple[dict[str, Any], Any] | Continuation:
        """A continuation of the highest successful evaluation of ``config`` below ``fidelity``,
        if there is one, else a new evaluation."""
        lower = [t for t, o in self.history if o.ok and t.config == config and t.fidelity < fidelity]
        if not lower:
            return config, fidelity
        return Continuation(max(lower, key=lambda t: t.fidelity).id, fidelity)

    def options(self) -> dict[str, Any]:
        return {"eta": self.eta, "package": f"{self.package} {version(self.package)}"}


# DEHB -------------------------------------------------------------------------------------------
def _new_dehb(cs: Any, max_resource: int, eta: int, seed: int) -> Any:
    """``dehb.DEHB`` on one worker, writing and logging nothing (module docstring)."""
    from dehb import DEHB
    from loguru import logger

    with tempfile.TemporaryDirectory(prefix="mfbo-dehb-") as output, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dehb 0.1.1 calls ConfigSpace 0.x names
        dehb = DEHB(cs=cs, dimensions=len(cs), min_fidelity=1, max_fidelity=max_resource, eta=eta, seed=seed,
                    n_workers=1, output_path=output, save_freq="end")
        logger.remove()  # DEHB's stdout handler and the log file it opened in `output`
    return dehb


class DEHBStrategy(ReferenceStrategy):
    """DEHB from the ``dehb`` package (module docstring).

    Options:
        eta: Hyperband's reduction factor.
        continue_promotions: continue a configuration evaluated before at a lower fidelity
            instead of evaluating it from scratch (module docstring, "resumption").
    """

    name = "dehb-ref"
    package = "dehb"
    module = "dehb"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: int = 3, continue_promotions: bool = True):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta)
        self.continue_promotions = bool(continue_promotions)
        self._dehb = _new_dehb(configspace(space, self.seed), self.scale.max_resource, eta, self.seed)

    def _next_job(self) -> tuple[dict[str, Any], tuple[dict[str, Any], Any] | Continuation]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            job = self._dehb.ask()
        config = from_configspace(job["config"], self.space)
        fidelity = self.scale.to_fidelity(job["fidelity"])
        return job, self._continue_if_seen(config, fidelity) if self.continue_promotions else (config, fidelity)

    def _report(self, job: dict[str, Any], trial: Trial, observation: Observation) -> None:
        fitness = observation.value if observation.ok else math.inf
        self._dehb.tell(job, {"fitness": fitness, "cost": observation.cost})

    def options(self) -> dict[str, Any]:
        return {**super().options(), "continue_promotions": self.continue_promotions}


# SMAC -------------------------------------------------------------------------------------------
class SMACMultiFidelityStrategy(ReferenceStrategy):
    """SMAC3's ``MultiFidelityFacade`` (random forest + EI, Hyperband) from the ``smac`` package.

    Options:
        eta: Hyperband's reduction factor.
        n_initial: random configurations before the model proposes (SMAC's example uses 5).
        continue_promotions: as for :class:`DEHBStrategy`.
    """

    name = "smac-mf"
    package = "smac"
    module = "smac"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: int = 3, n_initial: int = 5, continue_promotions: bool = True):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta)
        if isinstance(n_initial, bool) or not isinstance(n_initial, int) or n_initial < 1:
            raise ValueError(f"strategy {self.name!r}: n_initial must be an integer >= 1, got {n_initial!r}")
        self.n_initial = n_initial
        self.continue_promotions = bool(continue_promotions)
        self._output = tempfile.mkdtemp(prefix="mfbo-smac-")
        weakref.finalize(self, shutil.rmtree, self._output, ignore_errors=True)
        self._smac = self._new_facade()

    def _new_facade(self) -> Any:
        from smac import MultiFidelityFacade, Scenario

        scenario = Scenario(configspace(self.space, self.seed), deterministic=True, n_trials=SMAC_TRIAL_CAP, min_budget=1,
                            max_budget=self.scale.max_resource, seed=self.seed, output_directory=Path(self._output))
        return MultiFidelityFacade(
            scenario, None, overwrite=True, logging_level=False,
            initial_design=MultiFidelityFacade.get_initial_design(scenario, n_configs=self.n_initial),
            intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=self.eta, incumbent_selection="highest_budget"),
        )

    def _next_job(self) -> tuple[Any, tuple[dict[str, Any], Any] | Continuation]:
        info = self._smac.ask()
        config = from_configspace(info.config, self.space)
        fidelity = self.scale.to_fidelity(info.budget)
        return info, self._continue_if_seen(config, fidelity) if self.continue_promotions else (config, fidelity)

    def _report(self, info: Any, trial: Trial, observation: Observation) -> None:
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        if observation.ok:
            value = TrialValue(cost=observation.value, time=observation.cost)
        else:
            value = TrialValue(cost=math.inf, time=observation.cost, status=StatusType.CRASHED)
        self._smac.tell(info, value, save=False)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "n_initial": self.n_initial, "continue_promotions": self.continue_promotions}


# Optuna -----------------------------------------------------------------------------------------
@dataclass
class _OptunaRun:
    """One Optuna trial on its way up the rung steps."""

    trial: Any  # optuna.Trial
    config: dict[str, Any]
    stop: int = 0  # index into OptunaTPEHyperbandStrategy.steps of the step being evaluated
    last_id: int | None = None  # the mfbo trial that reached the previous step


class OptunaTPEHyperbandStrategy(ReferenceStrategy):
    """Optuna's TPE sampler with its HyperbandPruner (module docstring).

    Options:
        eta: the pruner's ``reduction_factor``.
    """

    name = "optuna-tpe-hb"
    package = "optuna"
    module = "optuna"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None, eta: int = 3):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(
            study_name=f"mfbo-seed{self.seed}", direction="minimize", sampler=optuna.samplers.TPESampler(seed=self.seed),
            pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.scale.max_resource, reduction_factor=eta),
        )
        self.steps = self._rung_steps()
        self._ready: list[_OptunaRun] = []  # told, not pruned, waiting for their next step

    def _rung_steps(self) -> list[int]:
        """``1, eta, eta^2, ... < R`` and ``R``, keeping the last of steps that share a fidelity."""
        steps, step = [], 1
        while step < self.scale.max_resource:
            steps.append(step)
            step *= self.eta
        steps.append(self.scale.max_resource)
        fidelities = [self.scale.to_fidelity(s) for s in steps]
        return [s for s, f, after in zip(steps, fidelities, fidelities[1:] + [None]) if f != after]

    def _next_job(self) -> tuple[_OptunaRun, tuple[dict[str, Any], Any] | Continuation]:
        if self._ready:
            run = self._ready.pop(0)
            return run, Continuation(run.last_id, self.scale.to_fidelity(self.steps[run.stop]))
        trial = self._study.ask()
        run = _OptunaRun(trial, suggest_config(trial, self.space))
        return run, (run.config, self.scale.to_fidelity(self.steps[0]))

    def _report(self, run: _OptunaRun, trial: Trial, observation: Observation) -> None:
        from optuna.trial import TrialState

        if not observation.ok:
            self._study.tell(run.trial, state=TrialState.FAIL)
            return
        step = self.steps[run.stop]
        run.trial.report(observation.value, step)
        if run.trial.should_prune():
            self._study.tell(run.trial, state=TrialState.PRUNED)
        elif run.stop == len(self.steps) - 1:
            self._study.tell(run.trial, observation.value)
        else:
            run.stop, run.last_id = run.stop + 1, trial.id
            self._ready.append(run)


# Registry of this module ------------------------------------------------------------------------
REFERENCE_STRATEGIES: dict[str, type[ReferenceStrategy]] = {
    cls.name: cls for cls in (DEHBStrategy, SMACMultiFidelityStrategy, OptunaTPEHyperbandStrategy)
}


def _lookup(name: str) -> type[ReferenceStrategy]:
    if name not in REFERENCE_STRATEGIES:
        raise ValueError(f"unknown reference method {name!r}; known: {', '.join(REFERENCE_STRATEGIES)}")
    return REFERENCE_STRATEGIES[name]


def unavailable(name: str, cls: type[ReferenceStrategy] | None = None) -> str | None:
    """Why reference method ``name`` (class ``cls``, by default looked up here) cannot run here
    (its package does not import), or ``None``."""
    cls = cls or _lookup(name)
    try:
        importlib.import_module(cls.module)
    except ImportError as err:
        return f"{name}: skipped, package {cls.package!r} does not import ({err}); install it with {cls.install}"
    return None


def make(name: str, problem: Problem, seed: int = 0, **options: Any) -> ReferenceStrategy:
    """Reference method ``name`` for ``problem``, seeded (options: the class's keyword options)."""
    return _lookup(name)(problem.space, problem.fidelity, seed=seed, problem=problem, **options)

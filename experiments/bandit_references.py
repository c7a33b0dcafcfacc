"""Reference implementations of the bandit methods of issue #14, run from their own packages as
mfbo strategies, for ``experiments/bench_reference.py``.

Each wrapper drives a published package through its own scheduling code, behind the
:class:`~reference_methods.ReferenceStrategy` interface of ``experiments/reference_methods.py``
(same budget scale, search-space mapping, charging of promotions as continuations, recommendation
rule and version stamp; read that module's docstring first). They are not in mfbo's registry and
need the ``reference`` extra.

=======================  =================================================================================
name                     package and what runs
=======================  =================================================================================
``sh-smac``              SMAC3 ``RandomFacade`` with its ``SuccessiveHalving`` intensifier: random
                         configurations in one successive-halving bracket (``s = s_max``, so
                         ``n = eta**s_max`` configurations at ``R * eta**-s_max``), repeated.
                         Jamieson & Talwalkar 2016.
``hyperband-smac``       SMAC3 ``RandomFacade`` with its ``Hyperband`` intensifier: random
                         configurations in Hyperband's brackets ``s_max ... 0``; SMAC computes
                         ``n = ceil(eta**s (s_max + 1) / (s + 1))`` as Li et al. 2018 (the paper's table).
``hyperband-hpbandster`` ``hpbandster.optimizers.HyperBand`` (Falkner et al.'s package): random
                         configurations, Hyperband's brackets with hpbandster's
                         ``n = floor((s_max + 1) / (s + 1)) * eta**s`` (**not** the paper's ceiling: for
                         ``eta = 3, R = 81`` the brackets start 81, 27, 9, 6, 5 configurations instead of
                         81, 34, 15, 8, 5).
``bohb-hpbandster``      ``hpbandster.optimizers.BOHB``: the BOHB authors' code (Falkner, Klein & Hutter,
                         ICML 2018), its KDE config generator with the paper's defaults, in
                         hpbandster's brackets (as above).
``asha-synetune``        Syne Tune's ``AsynchronousSuccessiveHalving`` (its ``ASHA`` baseline: random
                         search, one bracket), Li et al., MLSys 2020.
``asha-optuna``          Optuna's ``SuccessiveHalvingPruner`` (Optuna's ASHA) with its ``RandomSampler``.
``dehb-ref``             ``dehb.DEHB``, from ``reference_methods`` unchanged.
=======================  =================================================================================

Driving the packages without their runtimes
-------------------------------------------
- **hpbandster** runs a Pyro4 name server and workers; its ``Master.run`` loop only asks the active
  iterations for their next run (``get_next_run``), opens the next iteration when none has one
  (``get_next_iteration``) and, when a job finishes, calls the iteration's ``register_result`` and
  the config generator's ``new_result``. :class:`HpBandSterStrategy` builds the package's own
  ``HyperBand`` / ``BOHB`` object with its dispatcher replaced by a stub that starts no thread and
  opens no socket, and runs exactly that loop in ``ask`` / ``tell`` (with an unbounded number of
  iterations; mfbo's budget stops the run). A failed evaluation is a job whose result is ``None``,
  which hpbandster treats as crashed (loss ``+inf`` for the KDE, never promoted).
- **Syne Tune** 0.16's ASHA is the *stopping* variant (also Ray Tune's): a trial trains on and is
  stopped at a rung milestone when it is not in the top ``1/eta`` of the results recorded there so
  far. The wrapper evaluates each trial at the bracket's milestones ``grace_period * eta**k`` and at
  ``max_t = R`` only (the decisions happen only there), as ``reference_methods`` does for Optuna;
  each step after the first is a continuation. Li et al.'s ASHA (Algorithm 2) is the *promotion*
  variant: when a worker frees up it promotes a configuration of the top ``1/eta`` of a rung. Both
  rank a configuration against the results of its rung seen so far, with the same rungs; the
  stopping variant decides when the result arrives, the promotion variant when a worker is free, so
  with one worker both evaluate the same rungs but the promotion variant may promote later and more.
  No package at hand implements the promotion variant (Syne Tune 0.16 has no ``type="promotion"``
  scheduler any more).
- **Optuna**'s ``SuccessiveHalvingPruner`` is the stopping variant too; the wrapper is
  ``reference_methods.OptunaTPEHyperbandStrategy`` with ``RandomSampler`` and this pruner.
- **SMAC** runs through ``ask`` / ``tell`` as in ``reference_methods``, with the ``RandomFacade``'s
  own initial design: the space's default configuration (its centre; the log-centre on log scales)
  first, then configurations drawn at random from the ConfigSpace. (With a random initial design
  SMAC 2.4.1's first configuration after the design equals the design's first, apparently because
  the design samples a copy of the space with the same seed, so a bracket of 81 held 80 distinct
  configurations.) The
  option ``n_initial`` of the parent class is unused.

Randomness: hpbandster, statsmodels, scipy's ``truncnorm.rvs`` and Syne Tune's bracket choice draw
from NumPy's *global* random state. Each wrapper keeps its own global state (seeded by the
strategy seed) and swaps it in for the duration of every call into the package
(:class:`PrivateGlobalNumpyState`), so a run is reproducible and the caller's global state is left
as it was. ConfigSpace spaces are seeded with the strategy seed.

Package versions (the one that ran is in each strategy's options): hpbandster 0.7.4 (with
ConfigSpace 1.2.2: it calls ConfigSpace's deprecated 0.x names, whose warnings are silenced here),
syne-tune 0.16.0 (installed with ``--no-deps``: the scheduler imports with numpy and pandas alone),
smac 2.4.1, optuna 5.1.0, dehb 0.1.1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import reference_methods as rm
from reference_methods import ReferenceStrategy, from_configspace

from mfbo.problems.base import Problem
from mfbo.space import Categorical, Fidelity, Float, Int, Space
from mfbo.strategies import Continuation
from mfbo.trial import Observation, Trial

__all__ = [
    "PrivateGlobalNumpyState", "HpBandSterStrategy", "HpBandSterHyperband", "HpBandSterBOHB",
    "SMACRandomBandit", "SMACSuccessiveHalving", "SMACHyperband", "SyneTuneASHA", "OptunaASHA",
    "BANDIT_REFERENCES", "unavailable", "make", "MODULES",
]


class PrivateGlobalNumpyState:
    """A private copy of NumPy's global random state, seeded; ``with state:`` swaps it in and
    restores the caller's global state afterwards (module docstring, "Randomness")."""

    def __init__(self, seed: int):
        self._state = np.random.RandomState(seed).get_state()

    @contextmanager
    def active(self) -> Iterator[None]:
        saved = np.random.get_state()
        np.random.set_state(self._state)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # hpbandster calls ConfigSpace 0.x names
                warnings.simplefilter("ignore", FutureWarning)  # statsmodels on pandas
                yield
        finally:
            self._state = np.random.get_state()
            np.random.set_state(saved)


# hpbandster -----------------------------------------------------------------------------------------
class _NoDispatcher:
    """Stands in for hpbandster's Pyro4 dispatcher: ``Master.__init__`` starts ``run`` in a
    thread; here it returns at once, and no job is ever submitted through it."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def run(self) -> None:
        pass


def _offline_master(cls: type, **kwargs: Any) -> Any:
    """The package's optimizer ``cls(**kwargs)`` (``HyperBand``, ``BOHB``) built with the stub
    dispatcher: its constructor, brackets and config generator are hpbandster's own."""
    import hpbandster.core.master as master

    real = master.Dispatcher
    master.Dispatcher = _NoDispatcher
    try:
        return cls(run_id="mfbo", nameserver="127.0.0.1", **kwargs)
    finally:
        master.Dispatcher = real


class HpBandSterStrategy(ReferenceStrategy):
    """An hpbandster optimizer driven by ``Master.run``'s loop in ask/tell (module docstring).

    Options:
        eta: Hyperband's reduction factor.
        continue_promotions: continue the configuration's lower-fidelity run (``reference_methods``).
    """

    package = "hpbandster"
    module = "hpbandster"
    #: ``"HyperBand"`` or ``"BOHB"`` in ``hpbandster.optimizers``.
    optimizer: ClassVar[str] = ""

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None,
                 eta: int = 3, continue_promotions: bool = True, **optimizer_options: Any):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta)
        import hpbandster.optimizers as optimizers

        self.continue_promotions = bool(continue_promotions)
        self.optimizer_options = optimizer_options
        self._numpy = PrivateGlobalNumpyState(self.seed)
        with self._numpy.active():
            self._master = _offline_master(getattr(optimizers, self.optimizer), configspace=rm.configspace(space, self.seed),
                                           eta=eta, min_budget=1, max_budget=self.scale.max_resource, **optimizer_options)

    def _next_run(self) -> tuple[tuple[int, int, int], dict[str, Any], float]:
        """``Master.run``'s scheduling step: the first active iteration with a run to give, else
        a new iteration (there is always one: the number of iterations is not bounded)."""
        master = self._master
        while True:
            for i in master.active_iterations():
                run = master.iterations[i].get_next_run()
                if run is not None:
                    return run
            master.iterations.append(master.get_next_iteration(len(master.iterations), {}))

    def _next_job(self) -> tuple[Any, tuple[dict[str, Any], Any] | Continuation]:
        with self._numpy.active():
            config_id, config, budget = self._next_run()
        mine = from_configspace(config, self.space)
        fidelity = self.scale.to_fidelity(budget)
        return (config_id, config, budget), self._continue_if_seen(mine, fidelity) if self.continue_promotions else (mine, fidelity)

    def _report(self, job: tuple[tuple[int, int, int], dict[str, Any], float], trial: Trial, observation: Observation) -> None:
        from hpbandster.core.dispatcher import Job

        config_id, config, budget = job
        done = Job(config_id, config=config, budget=budget, working_directory=".")
        done.timestamps = {"submitted": 0.0, "started": 0.0, "finished": observation.cost}
        if observation.ok:
            done.result = {"loss": observation.value, "info": {}}
        else:
            done.exception = observation.error or "failed"
        with self._numpy.active():
            self._master.iterations[config_id[0]].register_result(done)
            self._master.config_generator.new_result(done)

    def brackets_started(self) -> int:
        """How many Hyperband iterations (brackets) hpbandster has opened."""
        return len(self._master.iterations)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "continue_promotions": self.continue_promotions, **self.optimizer_options}


class HpBandSterHyperband(HpBandSterStrategy):
    """``hpbandster.optimizers.HyperBand``: random configurations in hpbandster's brackets."""

    name = "hyperband-hpbandster"
    optimizer = "HyperBand"


class HpBandSterBOHB(HpBandSterStrategy):
    """``hpbandster.optimizers.BOHB`` with its defaults (top 15 %, ``d + 1`` points, 64 samples,
    random fraction 1/3, bandwidth factor 3, minimum bandwidth 1e-3), which are the paper's."""

    name = "bohb-hpbandster"
    optimizer = "BOHB"

    def model_based_picks(self) -> int:
        """How many configurations BOHB's KDEs proposed so far (not drawn at random)."""
        return sum(bool(d.config_info.get("model_based_pick")) for it in self._master.iterations for d in it.data.values())


# SMAC3 ------------------------------------------------------------------------------------------------
class SMACRandomBandit(rm.SMACMultiFidelityStrategy):
    """SMAC3's ``RandomFacade`` with a successive-halving intensifier (module docstring)."""

    #: ``"SuccessiveHalving"`` or ``"Hyperband"`` in ``smac.intensifier``.
    intensifier: ClassVar[str] = ""

    def _new_facade(self) -> Any:
        import smac.intensifier
        from smac import RandomFacade, Scenario

        scenario = Scenario(rm.configspace(self.space, self.seed), deterministic=True, n_trials=rm.SMAC_TRIAL_CAP, min_budget=1,
                            max_budget=self.scale.max_resource, seed=self.seed, output_directory=rm.Path(self._output))
        intensifier = getattr(smac.intensifier, self.intensifier)(scenario, eta=self.eta, incumbent_selection="highest_budget")
        return RandomFacade(scenario, None, overwrite=True, logging_level=False, intensifier=intensifier,
                            initial_design=RandomFacade.get_initial_design(scenario))


class SMACSuccessiveHalving(SMACRandomBandit):
    name = "sh-smac"
    intensifier = "SuccessiveHalving"


class SMACHyperband(SMACRandomBandit):
    name = "hyperband-smac"
    intensifier = "Hyperband"


# Syne Tune -----------------------------------------------------------------------------------------------
def synetune_space(space: Space) -> dict[str, Any]:
    """Syne Tune's ``config_space`` of an mfbo space without conditions."""
    from syne_tune import config_space as cs

    if space.conditions:
        raise ValueError("synetune_space: conditional parameters are not supported by this wrapper")
    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            out[name] = (cs.loguniform if p.log else cs.uniform)(p.low, p.high)
        elif isinstance(p, Int):
            out[name] = (cs.lograndint if p.log else cs.randint)(p.low, p.high)
        elif isinstance(p, Categorical):
            out[name] = cs.choice(list(p.choices))
        else:
            raise ValueError(f"synetune_space: parameter {name!r} is a {type(p).__name__}; supported: Float, Int, Categorical")
    return out


@dataclass
class _SteppedRun:
    """One trial of a stopping-type scheduler on its way up the rung steps."""

    trial: Any  # the package's trial object
    config: dict[str, Any]
    stop: int = 0  # index into the steps of the step being evaluated
    last_id: int | None = None  # the mfbo trial that reached the previous step


class SyneTuneASHA(ReferenceStrategy):
    """Syne Tune's ``AsynchronousSuccessiveHalving`` (random search, one bracket, grace period
    ``1``, ``max_t = R``) evaluated at its rung milestones (module docstring).

    Options:
        eta: the scheduler's ``reduction_factor``.
    """

    name = "asha-synetune"
    package = "syne-tune"
    module = "syne_tune"
    install = "pip install --no-deps syne-tune==0.16.0 (not in the reference extra: its dependencies pull xgboost and CUDA)"
    METRIC, TIME = "loss", "resource"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None, eta: int = 3):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta)
        from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving

        self._numpy = PrivateGlobalNumpyState(self.seed)
        with self._numpy.active():
            self._scheduler = AsynchronousSuccessiveHalving(
                synetune_space(space), metric=self.METRIC, do_minimize=True, searcher="random_search", time_attr=self.TIME,
                max_t=self.scale.max_resource, grace_period=1, reduction_factor=eta, brackets=1, random_seed=self.seed)
        milestones = sorted(m for m, _ in self._scheduler.brackets[0].rungs if m < self.scale.max_resource)
        self.steps = [*milestones, self.scale.max_resource]
        self._ready: list[_SteppedRun] = []
        self._count = 0

    def _next_job(self) -> tuple[_SteppedRun, tuple[dict[str, Any], Any] | Continuation]:
        if self._ready:
            run = self._ready.pop(0)
            return run, Continuation(run.last_id, self.scale.to_fidelity(self.steps[run.stop]))
        from syne_tune.backend.trial_status import Trial as SyneTrial

        with self._numpy.active():
            suggestion = self._scheduler.suggest()
            trial = SyneTrial(trial_id=self._count, config=suggestion.config, creation_time=None)
            self._scheduler.on_trial_add(trial)
        self._count += 1
        run = _SteppedRun(trial, self.space.validate({k: _plain(v) for k, v in suggestion.config.items()}))
        return run, (run.config, self.scale.to_fidelity(self.steps[0]))

    def _report(self, run: _SteppedRun, trial: Trial, observation: Observation) -> None:
        with self._numpy.active():
            if not observation.ok:
                self._scheduler.on_trial_error(run.trial)
                return
            result = {self.METRIC: observation.value, self.TIME: self.steps[run.stop]}
            decision = self._scheduler.on_trial_result(run.trial, result)
            if run.stop == len(self.steps) - 1:
                self._scheduler.on_trial_complete(run.trial, result)
            elif decision == "CONTINUE":
                run.stop, run.last_id = run.stop + 1, trial.id
                self._ready.append(run)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# Optuna -------------------------------------------------------------------------------------------------------
class OptunaASHA(rm.OptunaTPEHyperbandStrategy):
    """Optuna's ``SuccessiveHalvingPruner`` (``min_resource = 1``, ``reduction_factor = eta``,
    ``min_early_stopping_rate = 0``) with its ``RandomSampler``; the rung steps ``1, eta, ...`` and
    ``R`` are those of the parent wrapper (module docstring)."""

    name = "asha-optuna"

    def __init__(self, space: Space, fidelity: Fidelity | None = None, *, seed: int = 0, problem: Problem | None = None, eta: int = 3):
        super().__init__(space, fidelity, seed=seed, problem=problem, eta=eta)
        import optuna

        self._study = optuna.create_study(
            study_name=f"mfbo-seed{self.seed}", direction="minimize", sampler=optuna.samplers.RandomSampler(seed=self.seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta, min_early_stopping_rate=0),
        )


# Registry ---------------------------------------------------------------------------------------------------
BANDIT_REFERENCES: dict[str, type[ReferenceStrategy]] = {
    cls.name: cls for cls in (SMACSuccessiveHalving, SMACHyperband, HpBandSterHyperband, HpBandSterBOHB, SyneTuneASHA,
                              OptunaASHA, rm.DEHBStrategy)
}
#: The module each reference imports (to skip it cleanly when missing).
MODULES = {name: cls.module for name, cls in BANDIT_REFERENCES.items()}


def unavailable(name: str) -> str | None:
    """Why reference ``name`` cannot run here (its package does not import), or ``None``."""
    return rm.unavailable(name, BANDIT_REFERENCES[name])


def make(name: str, problem: Problem, seed: int = 0, **options: Any) -> ReferenceStrategy:
    """Reference ``name`` for ``problem``, seeded."""
    if name not in BANDIT_REFERENCES:
        raise ValueError(f"unknown bandit reference {name!r}; known: {', '.join(BANDIT_REFERENCES)}")
    return BANDIT_REFERENCES[name](problem.space, problem.fidelity, seed=seed, problem=problem, **options)


"""Adapters for users' own training code: LoopProblem (init/step, save/load) and
OptunaStyleProblem (an Optuna-style objective, unchanged). Costs come from a fake clock or are
counted in epochs; nothing here depends on wall time."""

import gc
import json
import math
import threading

import pytest

import mfbo
from mfbo import Categorical, Float, Int, Space
from mfbo.space import InCondition
from mfbo.loop import TIMING_FIELDS
from mfbo.problems.adapters import LoopProblem, OptunaStyleProblem, TrialPruned

SPACE = Space(x=Float(0.0, 1.0), k=Int(1, 5))


class FakeClock:
    """``clock()`` reads the time; the training code advances it."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def curve_value(config, epoch):
    return (config["x"] - 0.3) ** 2 + 0.1 * abs(config["k"] - 3) + 1.0 / epoch


def make_loop(clock, **options):
    """init takes 0.5 s, epoch e takes e seconds (on ``clock``); calls are counted."""
    calls = {"init": 0, "step": 0}

    def init(config):
        calls["init"] += 1
        clock.now += 0.5
        return {"config": dict(config), "epoch": 0}

    def step(state, epoch):
        calls["step"] += 1
        assert epoch == state["epoch"] + 1  # the adapter never skips or repeats an epoch of a state
        clock.now += epoch
        state["epoch"] = epoch
        return state, curve_value(state["config"], epoch), {"train_loss": 1.0 / epoch}

    return LoopProblem(init, step, SPACE, 9, clock=clock, name="toy", **options), calls


def test_a_continuation_is_charged_only_the_measured_time_of_its_extra_epochs():
    clock = FakeClock()
    problem, calls = make_loop(clock)
    config = {"x": 0.5, "k": 2}
    first = problem.evaluate(config, 3)
    assert first.cost == 0.5 + 1 + 2 + 3  # init counted in epoch 1
    more = problem.evaluate(config, 7, resume_from=3)
    assert more.cost == 4 + 5 + 6 + 7 and calls == {"init": 1, "step": 7}
    assert more.curve_list() == [curve_value(config, e) for e in range(1, 8)]
    assert more.value == curve_value(config, 7) and more.info["train_loss"] == 1 / 7
    assert more.info["epochs_run"] == 4 and more.info["checkpoint"] == "memory" and "note" not in more.info
    assert problem.stats == {"epochs_trained": 7, "from_checkpoint": 1, "from_scratch": 1, "missing_checkpoints": 0}
    assert problem.cost(config, 7) is None and problem.resumable  # measured time is not known in advance

    # a new evaluation below the kept epoch reads the kept curve and is charged its recorded epochs
    again = problem.evaluate(config, 2)
    assert again.cost == 0.5 + 1 + 2 and again.curve_list() == more.curve_list()[:2] and calls["step"] == 7


def test_the_known_cost_of_a_continuation_counts_the_epochs_a_missing_checkpoint_runs_again(tmp_path):
    save, load = disk_functions([])
    problem, _ = make_loop(FakeClock(), cost="epochs", cache_size=1, save=save, load=load, checkpoint_dir=tmp_path)
    a, b = {"x": 0.1, "k": 1}, {"x": 0.9, "k": 5}
    problem.evaluate(a, 3)
    assert problem.increment_cost(a, 7, 3) == 4.0 and problem.increment_cost(b, 7, 3) == 7.0
    problem.evaluate(b, 2)  # a leaves memory, its checkpoint stays on disk
    assert problem.increment_cost(a, 7, 3) == 4.0
    for path in tmp_path.glob("*.ckpt"):
        path.unlink()
    assert problem.increment_cost(a, 7, 3) == 7.0 == problem.evaluate(a, 7, resume_from=3).cost
    prob = OptunaStyleProblem(make_objective(), n_steps=27, cost="steps", cache_size=0)
    result = mfbo.minimize(prob, "hyperband", budget=600, seed=0)  # every promotion retrains from scratch
    assert prob.stats["missing_checkpoints"] > 0 and result.total_cost <= 600


def test_cost_in_epochs_is_known_in_advance_and_a_maximised_value_is_negated():
    problem, _ = make_loop(FakeClock(), cost="epochs", direction="maximize")
    assert problem.cost({"x": 0.1, "k": 1}, 4) == 4.0 and problem.increment_cost({"x": 0.1, "k": 1}, 9, 4) == 9.0  # nothing kept yet
    obs = problem.evaluate({"x": 0.1, "k": 1}, 4)
    assert obs.cost == 4.0 and obs.value == -curve_value({"x": 0.1, "k": 1}, 4)
    assert problem.increment_cost({"x": 0.1, "k": 1}, 9, 4) == 5.0
    assert problem.evaluate({"x": 0.1, "k": 1}, 9, resume_from=4).cost == 5.0


def disk_functions(log):
    def save(state, path):
        log.append(("save", state["epoch"]))
        with open(path, "w") as f:
            json.dump(state, f)

    def load(path):
        log.append(("load",))
        with open(path) as f:
            return json.load(f)

    return save, load


def test_checkpoints_on_disk_round_trip_across_a_restart(tmp_path):
    clock, log = FakeClock(), []
    save, load = disk_functions(log)
    config = {"x": 0.2, "k": 4}
    first, _ = make_loop(clock, save=save, load=load, checkpoint_dir=tmp_path, cache_size=0)
    assert first.evaluate(config, 3).cost == 6.5
    assert log == [("save", 3)] and len(list(tmp_path.glob("*.ckpt"))) == len(list(tmp_path.glob("*.json"))) == 1

    restarted, calls = make_loop(clock, save=save, load=load, checkpoint_dir=tmp_path, cache_size=0)
    obs = restarted.evaluate(config, 6, resume_from=3)
    assert obs.cost == 4 + 5 + 6 and calls == {"init": 0, "step": 3}
    assert obs.info["checkpoint"] == "disk" and log[1:] == [("load",), ("save", 6)]
    assert obs.curve_list() == [curve_value(config, e) for e in range(1, 7)] and obs.info["train_loss"] == 1 / 6
    assert restarted.stats["from_checkpoint"] == 1 and restarted.stats["missing_checkpoints"] == 0


def test_a_missing_checkpoint_trains_from_scratch_is_charged_in_full_and_noted(tmp_path):
    clock, log = FakeClock(), []
    save, load = disk_functions(log)
    config = {"x": 0.2, "k": 4}
    problem, calls = make_loop(clock, save=save, load=load, checkpoint_dir=tmp_path, cache_size=0)
    problem.evaluate(config, 3)
    (next(tmp_path.glob("*.ckpt"))).unlink()
    obs = problem.evaluate(config, 5, resume_from=3)
    assert obs.ok and obs.cost == 0.5 + 1 + 2 + 3 + 4 + 5 and calls == {"init": 2, "step": 8}
    assert obs.info["checkpoint"] == "no checkpoint file" and "no checkpoint at epoch 3" in obs.info["note"]
    assert "charged" in obs.info["note"] and problem.stats["missing_checkpoints"] == 1

    def broken_load(path):
        raise OSError("disk on fire")

    broken, _ = make_loop(clock, save=save, load=broken_load, checkpoint_dir=tmp_path, cache_size=0)
    obs = broken.evaluate(config, 6, resume_from=5)
    assert obs.ok and obs.cost == 0.5 + sum(range(1, 7))
    assert obs.info["checkpoint"] == "load failed: OSError: disk on fire"


def test_a_save_that_raises_keeps_the_result_and_says_so(tmp_path):
    def save(state, path):
        raise PermissionError("read-only disk")

    problem, _ = make_loop(FakeClock(), save=save, load=lambda path: None, checkpoint_dir=tmp_path)
    obs = problem.evaluate({"x": 0.4, "k": 2}, 3)
    assert obs.ok and obs.info["note"] == "checkpoint not saved: save raised PermissionError: read-only disk"
    assert problem.evaluate({"x": 0.4, "k": 2}, 5, resume_from=3).cost == 4 + 5  # the state in memory still serves


def test_an_evicted_state_in_memory_is_retrained_in_full_and_close_is_called():
    closed = []
    problem, calls = make_loop(FakeClock(), cache_size=1, close=lambda state: closed.append(state["config"]["x"]))
    a, b = {"x": 0.1, "k": 1}, {"x": 0.9, "k": 5}
    problem.evaluate(a, 2)
    problem.evaluate(b, 2)  # evicts a
    assert closed == [0.1]
    obs = problem.evaluate(a, 4, resume_from=2)  # evicts b
    assert obs.cost == 0.5 + 1 + 2 + 3 + 4 and "no checkpoint at epoch 2 (none kept)" in obs.info["note"]
    problem.evaluate(a, 9, resume_from=4)  # the target epoch: the state is closed, the curve kept
    assert closed == [0.1, 0.9, 0.1] and calls["init"] == 3
    assert problem.evaluate(a, 9).curve_list() == [curve_value(a, e) for e in range(1, 10)]


def failing_loop(clock):
    def init(config):
        return {"x": config["x"]}

    def step(state, epoch):
        clock.now += 1.0
        if state["x"] > 0.8 and epoch == 3:
            raise RuntimeError("CUDA out of memory")
        if state["x"] < 0.2 and epoch == 2:
            return state, math.nan
        return state, state["x"] + 1.0 / epoch

    return LoopProblem(init, step, Space(x=Float(0.0, 1.0)), 4, clock=clock, name="fails")


def test_a_step_that_raises_or_returns_nan_is_a_failed_trial_that_keeps_its_curve():
    problem = failing_loop(FakeClock())
    raised = problem.evaluate({"x": 0.9}, 4)
    assert not raised.ok and raised.error == "epoch 3: step raised RuntimeError: CUDA out of memory"
    assert raised.cost == 3.0 and raised.curve_list() == [1.9, 1.4]
    nan = problem.evaluate({"x": 0.1}, 4)
    assert not nan.ok and nan.error == "epoch 2: step returned a non-finite value (nan)" and nan.cost == 2.0
    assert nan.curve_list() == [1.1]
    assert problem.evaluate({"x": 0.5}, 4).ok


def test_failed_trials_do_not_stop_a_run_and_the_same_seed_gives_the_same_log():
    result, records = run_records(failing_loop(FakeClock()), "random", 60, seed=3)
    assert run_records(failing_loop(FakeClock()), "random", 60, seed=3)[1] == records
    statuses = {r.status for r in result.trials}
    assert statuses == {"ok", "failed"} and result.stop_reason.startswith("budget")
    failed = [r for r in result.trials if r.status == "failed"]
    assert all(r.error.startswith(("epoch 3: step raised RuntimeError", "epoch 2: step returned a non-finite")) for r in failed)
    assert all(r.cost > 0 for r in failed)


def test_a_step_that_returns_the_wrong_thing_gets_one_clear_message():
    problem = LoopProblem(lambda c: 0, lambda s, e: 0.5, SPACE, 3, cost="epochs")
    obs = problem.evaluate({"x": 0.5, "k": 1}, 2)
    assert obs.error == "epoch 1: step must return (state, value) or (state, value, info_dict), got float: 0.5"


@pytest.mark.parametrize("options, message", [
    ({"max_epochs": 1}, "max_epochs must be an integer >= 2, got 1"),
    ({"min_epochs": 9}, "min_epochs must be < max_epochs (9), got 9"),
    ({"cost": "wall"}, "cost must be one of ['time', 'epochs'], got 'wall'"),
    ({"direction": "up"}, "direction must be one of ['minimize', 'maximize'], got 'up'"),
    ({"save": print}, "save, load and checkpoint_dir go together"),
    ({"step": 3}, "step must be a callable, got int"),
    ({"cache_size": -1}, "cache_size must be an integer >= 0, got -1"),
])
def test_bad_loop_arguments_raise_one_clear_error(options, message):
    args = {"init": lambda c: 0, "step": lambda s, e: (s, 0.0), "space": SPACE, "max_epochs": 9, **options}
    with pytest.raises(ValueError, match="problem 'toy': " + __import__("re").escape(message)):
        LoopProblem(name="toy", **args)


# Optuna-style objectives --------------------------------------------------------------------------
def make_objective(clock=None, counts=None, n_epochs=27):
    """An analytic "training": the value after ``epoch`` is the final loss plus 1/epoch; the
    minimum of the final loss is 0 at x = 0.3, width = 64, act = 'relu', drop = 0.25."""

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        width = trial.suggest_int("width", 8, 512, log=True)
        act = trial.suggest_categorical("act", ["tanh", "relu"])
        drop = trial.suggest_float("drop", 0.0, 0.5, step=0.25)
        if counts is not None:
            counts["setup"] += 1
        final = (x - 0.3) ** 2 + 0.05 * abs(math.log2(width / 64)) + (act == "tanh") + abs(drop - 0.25)
        value = None
        for epoch in range(n_epochs):
            if clock is not None:
                clock.now += 2.0
            value = final + 1.0 / (epoch + 1)
            trial.report(value, epoch)
            if trial.should_prune():
                if counts is not None:
                    counts["pruned"] += 1
                raise TrialPruned()
        return value

    return objective


def test_the_space_is_read_from_a_dry_run():
    problem = OptunaStyleProblem(make_objective(), n_steps=27)
    assert problem.space == Space(x=Float(0.0, 1.0), width=Int(8, 512, log=True), act=Categorical(("tanh", "relu")),
                                  drop=Categorical((0.0, 0.25, 0.5), ordered=True))
    assert problem.fidelity.name == "steps" and (problem.fidelity.low, problem.target_fidelity) == (1, 27)


def test_a_trial_stops_at_the_step_asked_for_and_its_continuation_resumes_it():
    clock, counts = FakeClock(), {"setup": 0, "pruned": 0}
    problem = OptunaStyleProblem(make_objective(clock, counts), n_steps=27, clock=clock)
    assert counts == {"setup": 1, "pruned": 1}  # the dry run stopped at its first report
    counts.update(setup=0, pruned=0)
    config = {"x": 0.3, "width": 64, "act": "relu", "drop": 0.25}
    low = problem.evaluate(config, 3)
    assert low.value == 1 / 3 and low.cost == 6.0 and low.info["step"] == 2 and low.curve_list() == [1, 1 / 2, 1 / 3]
    high = problem.evaluate(config, 9, resume_from=3)
    assert high.value == 1 / 9 and high.cost == 12.0 and high.info["steps_run"] == 6
    assert counts == {"setup": 1, "pruned": 0}  # the same objective call went on
    problem.evaluate(config, 27, resume_from=9)  # the target: the objective is told to stop
    assert counts == {"setup": 1, "pruned": 1}
    problem.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("mfbo-trial-")]


def test_a_problem_dropped_without_close_lets_its_paused_objectives_end():
    ended = threading.Event()

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        try:
            for step in range(5):
                trial.report(x, step)
                if trial.should_prune():
                    raise TrialPruned()
        finally:
            if trial.number == 0:
                ended.set()

    problem = OptunaStyleProblem(objective, n_steps=5, cost="steps")
    problem.evaluate({"x": 0.5}, 2)  # trial 0 waits at its second report for a continuation
    (paused,) = [t for t in threading.enumerate() if t.name == "mfbo-trial-0"]
    assert not ended.is_set()
    del problem
    gc.collect()
    paused.join(timeout=60)  # a safety net against a hang, not a time limit
    assert ended.is_set() and not paused.is_alive()


def test_optunas_own_trial_pruned_and_an_objective_that_ignores_should_prune():
    optuna = pytest.importorskip("optuna")
    ended = []

    def objective(trial):
        x = trial.suggest_float("x", -1.0, 1.0)
        try:
            for step in range(10):
                trial.report(x * x + 1.0 / (step + 1), step)
                if trial.should_prune() and x > 0:
                    raise optuna.TrialPruned()
        finally:
            ended.append(x)
        return x * x

    problem = OptunaStyleProblem(objective, n_steps=10, cost="steps")
    assert problem.evaluate({"x": 0.5}, 4).value == 0.25 + 0.25  # stopped by optuna.TrialPruned
    assert problem.evaluate({"x": -0.5}, 4).value == 0.25 + 0.25  # ignores should_prune: report raises StopTrial
    problem.close()
    assert sorted(ended) == [-0.5, 0.0, 0.5]  # the dry run's, then both trials ended (their finally ran)


def test_an_objective_that_prunes_itself_or_returns_early_is_a_failed_trial():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(5):
            trial.report(x, step)
            if x > 0.9 and step == 1:
                raise TrialPruned()
        return x

    problem = OptunaStyleProblem(objective, n_steps=8, cost="steps")
    pruned = problem.evaluate({"x": 0.95}, 4)
    assert pruned.error.startswith("step 3: the objective raised TrialPruned after 2 reported steps, before report 3")
    early = problem.evaluate({"x": 0.5}, 8)
    assert early.error.startswith("step 6: the objective returned after 5 reported steps, before report 6 of the 8 (n_steps)")
    assert early.curve_list() == [0.5] * 5 and early.cost == 6.0


def test_a_suggest_call_that_changes_between_trials_fails_that_trial_and_the_run_goes_on():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number % 3 == 1:
            trial.suggest_float("lr", 1e-3, 1.0, log=True)  # a name the space does not have
        elif trial.number % 3 == 2 and trial.number >= 0:  # the dry run's number is -1
            trial.suggest_int("x", 0, 1)  # the same name, another kind
        for step in range(4):
            trial.report(x + 1.0 / (step + 1), step)
            if trial.should_prune():
                raise TrialPruned()
        return x

    problem = OptunaStyleProblem(objective, n_steps=4, cost="steps")
    result = mfbo.minimize(problem, "random", budget=36, seed=0)
    errors = sorted({r.error for r in result.trials if r.status == "failed"})
    assert len(errors) == 2 and any(r.status == "ok" for r in result.trials) and result.stop_reason.startswith("budget")
    assert errors[0] == ("step 1: the objective raised ValueError: suggest_float('lr', 0.001, 1.0, log=True): parameter 'lr' "
                         "is not in the space ['x']; the objective must suggest the same parameters in every trial (one "
                         "that only some trials use needs space= with a condition)")
    assert errors[1].startswith("step 1: the objective raised ValueError: suggest_int('x', 0, 1) asks for Int(low=0, high=1, "
                                "log=False), but the space has 'x' = Float(low=0.0, high=1.0, log=False)")
    problem.close()


def test_a_step_reported_twice_counts_once_and_a_step_going_back_fails():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(0, 10, 2):  # steps 0, 2, 4, ...: the fidelity counts reports, not step numbers
            trial.report(x + step, step)
            trial.report(x + step + 100, step)  # ignored, as in Optuna
        trial.report(x, 1 if x > 0.5 else 10)  # step 1 was never reported: going back
        return x

    problem = OptunaStyleProblem(objective, n_steps=6, cost="steps", cache_size=0)
    obs = problem.evaluate({"x": 0.25}, 5)
    assert obs.curve_list() == [0.25, 2.25, 4.25, 6.25, 8.25] and obs.info["step"] == 8
    assert problem.evaluate({"x": 0.25}, 6).value == 0.25
    assert problem.evaluate({"x": 0.75}, 6).error == ("step 6: the objective raised ValueError: report: steps must increase, "
                                                      "got step 1 after step 8")


def test_a_declared_space_skips_the_dry_run_and_checks_every_call():
    calls = []

    def objective(trial):
        calls.append(trial.number)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        for step in range(1, 6):
            trial.report(lr * step, step)
        return lr

    problem = OptunaStyleProblem(objective, n_steps=5, space=Space(lr=Float(1e-4, 1e-1, log=True)), cost="steps",
                                 direction="maximize")
    assert calls == [] and problem.evaluate({"lr": 0.01}, 5).value == -0.05
    narrower = OptunaStyleProblem(objective, n_steps=5, space=Space(lr=Float(1e-3, 1e-1, log=True)), cost="steps")
    assert "but the space has 'lr' = Float(low=0.001" in narrower.evaluate({"lr": 0.01}, 5).error


def test_a_declared_conditional_space_answers_only_the_active_parameters():
    space = Space(opt=Categorical(("sgd", "adam")), momentum=Float(0.0, 0.99), conditions={"momentum": InCondition("opt", ["sgd"])})

    def objective(trial):
        opt = trial.suggest_categorical("opt", ["sgd", "adam"])
        momentum = trial.suggest_float("momentum", 0.0, 0.99) if opt == "sgd" or trial.number > 1 else 0.0
        for step in range(3):
            trial.report(momentum + step, step)
        return momentum

    problem = OptunaStyleProblem(objective, n_steps=3, space=space, cost="steps", cache_size=0)
    assert problem.evaluate({"opt": "sgd", "momentum": 0.5}, 3).value == 2.5
    assert problem.evaluate({"opt": "adam"}, 3).value == 2.0
    wrong = problem.evaluate({"opt": "adam"}, 2)  # trial 2 suggests momentum whatever opt is
    assert wrong.error == ("step 1: the objective raised ValueError: suggest_float('momentum', 0.0, 0.99): parameter 'momentum' is "
                           "inactive in this configuration (its condition InCondition(parent='opt', values=('sgd',)) does not hold)")


@pytest.mark.parametrize("body, message", [
    ("return 1.0", "suggested no parameter before its first report (dry run)"),
    ("trial.suggest_float('x', 0, 1); return 1.0", "returned without calling trial.report(value, step)"),
    ("trial.suggest_float('x', 1, 0)", "dry run of the objective raised ValueError: suggest_float('x', 1, 0): low must be <= high"),
    ("trial.suggest_int('n', 1, 9, step=2, log=True)", "suggest_int('n', 1, 9, step=2, log=True): step > 1 and log=True"),
    ("trial.suggest_categorical('c', [None, 1])", "suggest_categorical('c', [None, 1]): Categorical: each choice"),
])
def test_a_bad_objective_gets_one_clear_message_from_the_dry_run(body, message):
    namespace = {}
    exec(f"def objective(trial):\n    {body}", namespace)
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        OptunaStyleProblem(namespace["objective"], n_steps=5, name="bad")


@pytest.mark.parametrize("options, message", [
    ({"n_steps": 1}, "n_steps must be an integer >= 2, got 1"),
    ({"min_steps": 5}, "min_steps must be < n_steps (5), got 5"),
    ({"cost": "epochs"}, "cost must be one of ['time', 'steps'], got 'epochs'"),
    ({"direction": "max"}, "direction must be one of ['minimize', 'maximize'], got 'max'"),
    ({"space": {"x": Float(0, 1)}}, "space must be an mfbo.Space or None (read from a dry run), got dict"),
    ({"objective": "f"}, "objective must be a callable objective(trial), got str"),
])
def test_bad_optuna_style_arguments_raise_one_clear_error(options, message):
    args = {"objective": make_objective(), "n_steps": 5, **options}
    with pytest.raises(ValueError, match="problem 'obj': " + __import__("re").escape(message)):
        OptunaStyleProblem(name="obj", **args)


def run_records(problem, strategy, budget, seed):
    result = mfbo.minimize(problem, strategy, budget=budget, seed=seed)
    return result, [{k: v for k, v in r.to_dict().items() if k not in TIMING_FIELDS} for r in result.trials]


def test_hyperband_finds_the_optimum_of_an_optuna_style_objective_with_identical_logs_per_seed():
    problem = OptunaStyleProblem(make_objective(), n_steps=27, cost="steps")
    result, records = run_records(problem, "hyperband", 600, seed=1)
    assert any(r.continues is not None for r in result.trials)  # promotions resume paused objectives
    best = result.recommendation
    assert best["act"] == "relu" and best["drop"] == 0.25 and abs(best["x"] - 0.3) < 0.15
    assert result.best_value < 1 / 27 + 0.05  # the final loss of the recommendation is below 0.05
    assert result.total_cost <= 600
    problem.close()
    again = OptunaStyleProblem(make_objective(), n_steps=27, cost="steps")
    assert run_records(again, "hyperband", 600, seed=1)[1] == records
    again.close()

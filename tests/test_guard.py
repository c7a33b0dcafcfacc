"""Bias guards (mfbo.strategies.guard): when a guard trial is asked, what it costs, what the log
and ``mfbo show`` say, and how the recommendation uses it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo.cli import main
from mfbo.loop import TIMING_FIELDS
from mfbo.strategies import GuardedStrategy, GuardOptions, Strategy, make
from mfbo.study.config import parse_study

SPACE = Space(x=Float(0.0, 1.0))
FIDELITY = Fidelity("epochs", 1, 9, integer=True)


def misleading(config: dict[str, Any], epochs: int) -> float:
    """Cheap epochs favour x = 0.8, the target (epoch 9) favours x = 0.2."""
    return (config["x"] - 0.2) ** 2 if epochs == 9 else (config["x"] - 0.8) ** 2


def toy_problem(fn=misleading) -> Problem:
    return Problem.from_function(fn, SPACE, FIDELITY, cost=lambda epochs: epochs / 9, optimum=0.0, name="misleading",
                                 target_value=lambda c: (c["x"] - 0.2) ** 2)


class ResumableToy(type(toy_problem())):
    """The toy problem, resumable: a continuation is charged the extra epochs only."""

    resumable = True

    def _resume(self, config, fidelity, resume_from):
        return Observation(misleading(config, fidelity), cost=(fidelity - resume_from) / 9)


class Scripted(Strategy):
    """Evaluates x = 0.5, 0.8, 0.3, 0.6, ... at epoch 1 and recommends the best epoch-1 value,
    blind to the target: a strategy that a cheap fidelity misleads."""

    name = "scripted"
    XS = (0.5, 0.8, 0.3, 0.6, 0.7, 0.4)

    def _suggest(self):
        n = sum(t.fidelity == 1 for t, _ in self.history) + sum(t.fidelity == 1 for t in self.pending.values())
        return {"x": self.XS[n % len(self.XS)]}, 1

    def recommend(self):
        cheap = [(o.value, t.id, t.config) for t, o in self.history if o.ok and t.fidelity == 1]
        return dict(min(cheap)[2]) if cheap else None


class ScriptedWithModel(Scripted):
    """The same with a surrogate that predicts 0.05 +- 0.1 at the target for everything."""

    def predict(self, configs, fidelity=None):
        return np.full(len(configs), 0.05), np.full(len(configs), 0.1)


ON_CHANGE = GuardOptions(on_change=True, max_share=1.0)


def run(problem=None, strategy=Scripted, guard=ON_CHANGE, budget=3.0, **kwargs):
    problem = problem or toy_problem()
    return mfbo.minimize(problem, strategy(problem.space, problem.fidelity, problem=problem), budget, guard=guard, **kwargs)


# Options ------------------------------------------------------------------------------------------
def test_guard_options_spellings_and_errors():
    assert GuardOptions.parse(10) == GuardOptions(every=10)
    assert GuardOptions.parse("change") == GuardOptions(on_change=True)
    assert GuardOptions.parse({"every": 5, "on_change": True, "max_share": 0.5}) == GuardOptions(5, True, 0.5)
    assert GuardOptions.parse(None) is None and GuardOptions.parse(False) is None
    for bad, says in ((0, "every must be an integer >= 1"), ({"every": 2, "evry": 3}, "allowed keys: every, on_change, max_share"),
                      ({"on_change": False}, "give every"), ("sometimes", "guard must be one of"),
                      ({"every": 3, "max_share": 0}, "max_share must be a number in (0, 1]")):
        with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
            GuardOptions.parse(bad)


def test_make_wraps_any_strategy_and_keeps_its_name_and_model():
    problem = mfbo.problems.get("mfhartmann6-good")
    strategy = make("mf-ucb", problem, seed=0, guard={"every": 4})
    assert isinstance(strategy, GuardedStrategy) and strategy.name == "mf-ucb"
    assert strategy.options()["guard"] == {"every": 4, "on_change": False, "max_share": 0.25}
    assert callable(strategy.predict)  # the wrapped strategy's surrogate stays reachable
    with pytest.raises(ValueError, match="already guarded"):
        GuardedStrategy(strategy, GuardOptions(every=2))


# A run ----------------------------------------------------------------------------------------------
def test_guard_trials_are_charged_logged_and_replace_a_misled_recommendation(tmp_path):
    result = run(log_path=tmp_path / "run.jsonl")
    trials = result.trials
    # x = 0.5 at epoch 1, its guard at 9, x = 0.8 at 1 (now recommended: 0 < 0.09), its guard, ...
    assert [(t.config["x"], t.fidelity, t.guard is not None) for t in trials[:4]] == [
        (0.5, 1, False), (0.5, 9, True), (0.8, 1, False), (0.8, 9, True)]
    g = trials[3].guard
    assert g["reason"] == "change" and g["prediction"] == "observed at fidelity 1"
    assert g["predicted"] == pytest.approx(0.0) and g["observed"] == pytest.approx(0.36) and g["error"] == pytest.approx(0.36)
    # the budget: every trial charged, guard trials included, never exceeded
    assert sum(t.cost for t in trials) == pytest.approx(result.total_cost) and result.total_cost <= 3.0 + 1e-9
    assert trials[1].cost == pytest.approx(1.0)
    # the misled strategy still recommends x = 0.8; the guard's x = 0.5 (0.09 < 0.36 at the target) replaces it
    assert trials[3].recommendation == {"x": 0.5} and trials[3].other_recommendations["unguarded"]["config"] == {"x": 0.8}
    assert trials[3].regret == pytest.approx(0.09) and trials[3].other_recommendations["unguarded"]["regret"] == pytest.approx(0.36)
    logged = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert logged[0]["spec"]["options"]["guard"]["on_change"] is True
    assert [r["guard"] is not None for r in logged[1:5]] == [False, True, False, True]


def test_every_k_checks_and_already_evaluated_configurations_cost_nothing():
    result = run(guard=GuardOptions(every=2, max_share=1.0), budget=2.0)
    fidelities = [t.fidelity for t in result.trials]
    assert fidelities[:3] == [1, 1, 9]  # two strategy trials, then the check
    assert result.trials[2].guard["reason"] == "every" and result.trials[2].config == {"x": 0.8}
    # the recommendation stays x = 0.8, now known at the target: later checks note it, no new guard trial
    assert sum(t.guard is not None for t in result.trials) == 1


class AtTarget(Strategy):
    """Random search at the target: its recommendations are always known there."""

    name = "at-target"

    def _suggest(self):
        return self.space.sample(self.rng), 9


def test_a_recommendation_already_evaluated_at_the_target_costs_nothing_and_is_noted():
    result = run(strategy=AtTarget, budget=3.0)
    assert all(t.guard is None for t in result.trials) and len(result.trials) == 3
    assert any("already evaluated at the target" in n for t in result.trials for n in t.notes)


def test_model_prediction_is_the_expectation_when_the_strategy_has_one():
    result = run(strategy=ScriptedWithModel)
    g = result.trials[1].guard
    assert g["prediction"] == "posterior mean at the target"
    assert (g["predicted"], g["predicted_std"]) == (pytest.approx(0.05), pytest.approx(0.1))
    assert g["error"] == pytest.approx(0.09 - 0.05)


def test_guard_share_cap_skips_checks_with_a_note():
    result = run(guard=GuardOptions(on_change=True, max_share=0.4), budget=3.0)
    assert sum(t.guard is not None for t in result.trials) == 1  # 1.0 of a cap of 1.2
    assert any("over max_share = 0.4" in n for t in result.trials for n in t.notes)


def test_resumable_problem_guard_continues_the_run_and_pays_the_increment():
    result = run(problem=ResumableToy(misleading, SPACE, FIDELITY, cost=lambda e: e / 9, optimum=0.0, name="resumable"))
    guard = result.trials[1]
    assert guard.continues == 0 and guard.cost == pytest.approx(8 / 9)


def test_failed_guard_trial_is_logged_and_the_run_goes_on():
    def fails_at_target_for_half(config, epochs):
        if epochs == 9 and config["x"] == 0.5:
            raise RuntimeError("diverged")
        return misleading(config, epochs)

    result = run(problem=toy_problem(fails_at_target_for_half))
    first, second = result.trials[1], result.trials[3]
    assert first.status == "failed" and first.guard["status"] == "failed" and first.guard["observed"] is None
    assert second.guard["status"] == "ok" and result.trials[3].recommendation == {"x": 0.8}  # inf never wins
    assert result.stop_reason.startswith("budget")


def _records(result):
    return [{k: v for k, v in t.to_dict().items() if k not in TIMING_FIELDS} for t in result.trials]


def test_same_spec_and_seed_give_the_same_guarded_log():
    runs = [mfbo.minimize("mfhartmann6-terrible", "hyperband", budget=5, seed=3, strategy_options={"guard": "change"})
            for _ in range(2)]
    assert _records(runs[0]) == _records(runs[1])
    assert any(t.guard for t in runs[0].trials)


# Command line and study ---------------------------------------------------------------------------------
def test_cli_guard_flags_and_show(tmp_path, capsys):
    argv = ["run", "--problem", "mfhartmann6-terrible", "--strategy", "hyperband", "--budget", "5", "--quiet",
            "--out", str(tmp_path), "--guard-on-change"]
    assert main(argv) == 0
    path = tmp_path / "mfhartmann6-terrible__hyperband_guard__seed0.jsonl"
    assert json.loads(path.read_text().splitlines()[0])["label"] == "hyperband+guard"  # not the unguarded run's label
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "guard     1 guard trials, cost 1 (" in out and "(change): expected" in out
    assert main(argv[:-1] + ["--guard-every", "0"]) == 2
    assert "every must be an integer >= 1" in capsys.readouterr().err


def test_study_guard_key_becomes_the_guard_option():
    data = {"problems": ["mfhartmann6-terrible"], "budget": {"cost": 3},
            "strategies": [{"name": "hyperband", "guard": {"every": 5}}, {"name": "random", "label": "plain"}]}
    study = parse_study(data)
    assert study.strategies[0].options == {"guard": {"every": 5, "on_change": False, "max_share": 0.25}}
    assert "guard" not in study.strategies[1].options
    with pytest.raises(ValueError, match=r"strategies\[0\]\.guard: guard: unknown key"):
        parse_study({**data, "strategies": [{"name": "hyperband", "guard": {"often": True}}]})
    assert math.isfinite(study.runs[0].budget)

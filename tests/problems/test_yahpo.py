"""YAHPO Gym surrogate problems: FORMAT.md sanity values, spaces and conditions, resuming,
batching, costs, reference values, registry families and groups, and the error messages.

Tests that call a surrogate need the v1.0.2 data: ``$MFBO_DATA_DIR/yahpo`` if the variable is
set, else ``<repo>/../shared/data/yahpo``; they are skipped (with the reason) when neither exists.
The error-message tests need no data.
"""

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import mfbo
from mfbo import problems
from mfbo.loop import TIMING_FIELDS
from mfbo.problems import yahpo
from mfbo.problems.yahpo import COST_FLOOR, LCBenchProblem, YahpoProblem, yahpo_problem
from mfbo.runlog import read_run
from mfbo.space import Categorical, Float, Int

DATA_DIR = Path(os.environ.get(yahpo.DATA_ENV) or Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "yahpo").is_dir(),
    reason=f"YAHPO Gym v1.0.2 data not found at {DATA_DIR / 'yahpo'} (set {yahpo.DATA_ENV})",
)

#: FORMAT.md's sanity configuration (lcbench, task 167168).
SANITY = {"batch_size": 64, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 1e-4,
          "num_layers": 3, "max_units": 256, "max_dropout": 0.2}
TREE = {"colsample_bylevel", "colsample_bytree", "eta", "gamma", "max_depth", "min_child_weight"}
DART = {"rate_drop", "skip_drop"}
LINEAR = {"alpha", "booster", "lambda", "nrounds", "num.impute.selected.cpo", "subsample"}
SO_SUITE = {
    "yahpo-so:lcbench": ["lcbench/167168", "lcbench/189873", "lcbench/189906"],
    "yahpo-so:rbv2_xgboost": ["rbv2_xgboost/12", "rbv2_xgboost/1501", "rbv2_xgboost/16", "rbv2_xgboost/40499"],
    "yahpo-so:rbv2_rpart": ["rbv2_rpart/14", "rbv2_rpart/40499"],
}
ONE_PER_SCENARIO = ["lcbench/167168", "rbv2_xgboost/40499", "rbv2_rpart/14", "iaml_glmnet/1489"]


def get(name):
    return problems.get(name, data_dir=DATA_DIR)


def same_observation(a, b):
    assert (a.value, a.cost, a.info, a.error) == (b.value, b.cost, b.info, b.error)
    assert (a.curve is None) == (b.curve is None)
    if a.curve is not None:
        assert np.array_equal(a.curve, b.curve)


# The surrogates reproduce the published numbers ----------------------------------------------------
@needs_data
def test_format_md_sanity_values():
    p = get("lcbench/167168")
    obs = p.evaluate(SANITY, 52)
    accuracy = 100 * (1 - obs.curve)
    assert obs.curve.shape == (52,) and obs.value == obs.curve[-1]
    assert accuracy[[0, 25, 51]] == pytest.approx([22.2, 72.9, 75.8], abs=0.05)
    assert obs.info["val_accuracy"] == pytest.approx(75.8, abs=0.05)
    assert obs.cost == obs.info["time"] == pytest.approx(179, abs=0.5)
    assert p.cost(SANITY, 1) == pytest.approx(9.9, abs=0.05)
    assert p.evaluate(SANITY, 26).value == pytest.approx(1 - 0.729, abs=5e-4)
    assert set(obs.info) == {"time", "val_accuracy", "val_cross_entropy", "val_balanced_accuracy",
                             "test_cross_entropy", "test_balanced_accuracy"}


@needs_data
@pytest.mark.parametrize(
    "name, objective, cost",
    [("rbv2_xgboost/40499", "acc", "timetrain"), ("rbv2_rpart/14", "acc", "timetrain"), ("iaml_glmnet/1489", "mmce", "timetrain")],
)
def test_objective_and_cost_are_the_documented_outputs(name, objective, cost):
    p = get(name)
    config = p.space.sample(np.random.default_rng(1))
    obs = p.evaluate(config, 0.5)
    expected = obs.info[objective] if objective == "mmce" else 1 - obs.info[objective]
    assert obs.value == pytest.approx(expected, abs=1e-12)
    assert obs.cost == max(obs.info[cost], COST_FLOOR) and obs.curve is None
    assert p.evaluate(config).value == p.target_value(config)  # default fidelity is the target, trainsize 1


# Spaces from config_space.json ---------------------------------------------------------------------
@needs_data
def test_spaces_keep_types_log_scales_and_leave_out_fidelity_instance_and_repl():
    lc = get("lcbench/167168")
    assert list(lc.space) == ["batch_size", "learning_rate", "max_dropout", "max_units", "momentum", "num_layers", "weight_decay"]
    assert lc.space["batch_size"] == Int(16, 512, log=True)
    assert lc.space["learning_rate"] == Float(1e-4, 0.1, log=True)  # bounds rounded from 1.0000000000000009e-4
    assert lc.space["num_layers"] == Int(1, 5)
    assert lc.fidelity.name == "epoch" and lc.fidelity.integer and (lc.fidelity.low, lc.fidelity.target) == (1, 52)
    xgb = get("rbv2_xgboost/12")
    assert xgb.space["booster"] == Categorical(["gblinear", "gbtree", "dart"])
    assert xgb.space["nrounds"] == Int(7, 2981, log=True)
    assert set(xgb.space.conditions) == TREE | DART
    assert xgb.space.conditions["rate_drop"].values == ("dart",)
    assert set(xgb.space.conditions["eta"].values) == {"dart", "gbtree"}
    for p in (lc, xgb, get("rbv2_rpart/14"), get("iaml_glmnet/1067")):
        assert not {"epoch", "trainsize", "repl", "task_id", "OpenML_task_id"} & set(p.space)
    rpart = get("rbv2_rpart/14")
    assert rpart.fidelity.name == "trainsize" and (rpart.fidelity.low, rpart.fidelity.high) == (0.03, 1.0)
    assert not rpart.fidelity.integer


@needs_data
@pytest.mark.parametrize("name", ONE_PER_SCENARIO)
def test_space_round_trips(name):
    p = get(name)
    configs = p.space.sample(np.random.default_rng(0), 100)
    for config in configs:
        assert p.space.validate(config) == config
        back = p.space.decode(p.space.encode(config))
        assert back.keys() == config.keys()
        for key, value in config.items():
            assert back[key] == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value)
    u = np.random.default_rng(1).random((50, p.space.dim))
    once = p.space.round_trip(u)
    assert np.allclose(p.space.round_trip(once), once, rtol=0, atol=1e-12)
    assert all(o.ok for o in p.evaluate_many(p.space.decode_many(u), p.fidelity.target))


@needs_data
def test_xgboost_booster_decides_the_active_parameters():
    p = get("rbv2_xgboost/16")
    by_booster = {}
    for config in p.space.sample(np.random.default_rng(2), 60):
        by_booster.setdefault(config["booster"], set()).update([frozenset(config)])
    assert by_booster == {
        "gblinear": {frozenset(LINEAR)},
        "gbtree": {frozenset(LINEAR | TREE)},
        "dart": {frozenset(LINEAR | TREE | DART)},
    }
    linear = {"booster": "gblinear", "alpha": 0.5, "lambda": 2.0, "nrounds": 100, "num.impute.selected.cpo": "impute.mean", "subsample": 0.7}
    with_tree_values = {**linear, "eta": 0.3, "max_depth": 6, "rate_drop": 0.1}
    assert p.space.validate(with_tree_values) == linear  # inactive parameters are dropped
    same_observation(p.evaluate(with_tree_values, 0.5), p.evaluate(linear, 0.5))
    # surrogate inputs: inactive continuous parameters are 0
    x_cat, x_cont = p.surrogate.inputs([p.space.validate(linear)], [0.5])
    cont = dict(zip(p.scenario.cont_names, x_cont[0]))
    assert all(cont[name] == 0 for name in TREE | DART)
    assert cont["trainsize"] == np.float32(0.5) and cont["repl"] == yahpo.REPL and cont["alpha"] == np.float32(0.5)
    with pytest.raises(ValueError, match=r"missing parameter\(s\) \['colsample_bylevel', 'colsample_bytree', 'eta', 'gamma', 'max_depth', 'min_child_weight'\]"):
        p.evaluate({**linear, "booster": "gbtree"}, 0.5)
    # the tree parameters matter when active
    tree = p.space.validate({**linear, "booster": "gbtree", **{k: p.space[k].decode(np.array([0.5])) for k in TREE}})
    shallow, deep = ({**tree, "max_depth": d} for d in (1, 15))
    assert p.target_value(shallow) != p.target_value(deep)


# Costs, resuming, batching -------------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("name", ONE_PER_SCENARIO)
def test_cost_method_predicts_the_charged_cost(name):
    p = get(name)
    fid = p.fidelity
    for config, f in zip(p.space.sample(np.random.default_rng(3), 4), (fid.low, fid.denormalize(0.4), fid.target, fid.denormalize(0.9))):
        obs = p.evaluate(config, f)
        assert obs.cost == p.cost(config, f) == p.increment_cost(config, f) >= COST_FLOOR
    configs = p.space.sample(np.random.default_rng(5), 6)
    assert p.cost_many(configs, fid.target) == [p.cost(c, fid.target) for c in configs]  # one batched call


@needs_data
def test_lcbench_resume_charges_the_time_increment_and_keeps_the_curve():
    p = get("lcbench/189873")
    assert p.resumable
    for config in p.space.sample(np.random.default_rng(4), 3) + [SANITY]:
        start = p.evaluate(config, 10)
        scratch = p.evaluate(config, 30)
        resumed = p.evaluate(config, 30, resume_from=10)
        assert np.array_equal(resumed.curve, scratch.curve) and resumed.curve.shape == (30,)
        assert np.array_equal(resumed.curve[:10], start.curve)
        assert resumed.value == scratch.value and resumed.info == scratch.info
        expected = max(scratch.info["time"] - start.info["time"], COST_FLOOR)
        assert resumed.cost == expected == p.increment_cost(config, 30, resume_from=10)
        assert start.cost + resumed.cost == pytest.approx(scratch.cost, rel=1e-12)


@needs_data
def test_trainsize_problems_are_not_resumable():
    p = get("rbv2_rpart/40499")
    config = p.space.sample(np.random.default_rng(5))
    assert not p.resumable
    full = p.evaluate(config, 1.0)
    same_observation(p.evaluate(config, 1.0, resume_from=0.25), full)
    assert p.increment_cost(config, 1.0, resume_from=0.25) == full.cost


@needs_data
@pytest.mark.parametrize("name", ONE_PER_SCENARIO)
def test_batched_evaluation_equals_one_by_one(name):
    """Bit for bit: batches are padded so a row's prediction does not depend on its batch."""
    p = get(name)
    rng = np.random.default_rng(6)
    configs = p.space.sample(rng, 7)
    grid = np.array(p.fidelity.grid()) if p.fidelity.is_discrete else np.linspace(p.fidelity.low, p.fidelity.high, 20)
    fidelities = [p.fidelity.validate(f) for f in rng.choice(grid, size=7)]
    batch = p.evaluate_many(configs, fidelities)
    for config, fidelity, obs in zip(configs, fidelities, batch):
        same_observation(obs, p.evaluate(config, fidelity))
    assert p.target_values(configs).tolist() == [p.target_value(c) for c in configs]
    assert [o.value for o in p.evaluate_many(configs)] == p.target_values(configs).tolist()
    with pytest.raises(ValueError, match="got 7 configurations but 2 fidelities"):
        p.evaluate_many(configs, fidelities[:2])


@needs_data
def test_problems_pickle_by_name():
    p = get("lcbench/167168")
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is LCBenchProblem and q.name == p.name and q.space == p.space and q.optimum == p.optimum
    same_observation(q.evaluate(SANITY, 5), p.evaluate(SANITY, 5))


# Reference values and package data -----------------------------------------------------------------
@needs_data
def test_package_data_matches_the_data_files():
    stored = yahpo._package_data()
    assert stored["n_samples"] == yahpo.REFERENCE_SAMPLES == 100_000 and stored["seed"] == yahpo.REFERENCE_SEED
    assert stored["data_version"] == yahpo.DATA_VERSION and stored["fixed_inputs"] == {"repl": yahpo.REPL}
    for scenario in yahpo.SCENARIOS:
        surrogate = yahpo.load_surrogate(scenario, DATA_DIR)
        assert stored["scenarios"][scenario]["instances"] == surrogate.instances
        assert list(stored["scenarios"][scenario]["reference"]) == surrogate.instances
        assert problems.families()[scenario] == surrogate.instances
    suite = json.loads((DATA_DIR / "yahpo" / "suites" / "single_v1.0.json").read_text())
    for scenario in yahpo.SCENARIOS:
        assert stored["suites"]["single_v1.0"][scenario] == [e["instance"] for e in suite if e["scenario"] == scenario]


@needs_data
@pytest.mark.parametrize("name", problems.expand("yahpo-so") + ["iaml_glmnet/40981"])
def test_stored_reference_is_reproduced(name):
    p = get(name)
    assert p.reference_config is not None and np.isfinite(p.optimum)
    assert p.target_value(p.reference_config) == pytest.approx(p.optimum, rel=1e-6, abs=1e-9)
    # the reference beats every configuration of a fresh random sample (it is the best of 100,000)
    assert p.target_values(p.space.sample(np.random.default_rng(123), 200)).min() >= p.optimum - 1e-6


@needs_data
def test_reference_search_is_seeded_and_shares_one_sample():
    a = yahpo.reference_search("iaml_glmnet", 300, seed=1, instances=["1067", "40981"], data_dir=DATA_DIR)
    assert a == yahpo.reference_search("iaml_glmnet", 300, seed=1, instances=["1067", "40981"], data_dir=DATA_DIR)
    assert list(a) == ["1067", "40981"]
    sample = yahpo.load_surrogate("iaml_glmnet", DATA_DIR).space.sample(np.random.default_rng(1), 300)
    for instance, ref in a.items():
        p = yahpo_problem("iaml_glmnet", instance, data_dir=DATA_DIR)
        assert ref["config"] in sample
        assert ref["value"] == p.target_values(sample).min()
    with pytest.raises(ValueError, match="unknown iaml_glmnet instance\\(s\\) \\['7'\\]"):
        yahpo.reference_search("iaml_glmnet", 10, instances=["7"], data_dir=DATA_DIR)


# Registry: families and groups ---------------------------------------------------------------------
def test_groups_expand_to_the_single_objective_suite():
    groups = problems.groups()
    for group, members in SO_SUITE.items():
        assert groups[group] == members
    assert "yahpo-so:iaml_glmnet" not in groups  # the suite has no iaml_glmnet instance
    assert problems.expand("yahpo-so") == [m for members in SO_SUITE.values() for m in members]
    assert problems.expand(["forrester", "yahpo-so:rbv2_rpart", "rbv2_rpart/14", "lcbench/3945"]) == [
        "forrester", "rbv2_rpart/14", "rbv2_rpart/40499", "lcbench/3945",
    ]
    assert problems.expand("yahpo:iaml_glmnet") == ["iaml_glmnet/40981", "iaml_glmnet/41146", "iaml_glmnet/1489", "iaml_glmnet/1067"]
    assert len(problems.expand("yahpo:lcbench")) == 34 and len(problems.families()["rbv2_xgboost"]) == 119
    with pytest.raises(ValueError, match=r"unknown problem 'yahpo-sO'.*did you mean 'yahpo-so'"):
        problems.expand(["yahpo-sO"])
    with pytest.raises(ValueError, match=r"unknown lcbench instance '1'"):
        problems.expand(["lcbench/1"])


def test_register_group_checks_its_members(monkeypatch):
    monkeypatch.setattr(problems, "_GROUPS", dict(problems._GROUPS))
    problems.register_group("mine", ["forrester", "yahpo-so:rbv2_rpart"])
    assert problems.expand(["mine"]) == ["forrester", "rbv2_rpart/14", "rbv2_rpart/40499"]
    with pytest.raises(ValueError, match="already a registered group or problem"):
        problems.register_group("mine", ["forrester"])
    with pytest.raises(ValueError, match="already a registered group or problem"):
        problems.register_group("lcbench/3945", ["forrester"])
    with pytest.raises(ValueError, match=r"unknown member\(s\) \['nope', 'lcbench/0'\]"):
        problems.register_group("other", ["forrester", "nope", "lcbench/0"])
    with pytest.raises(ValueError, match="needs at least one member"):
        problems.register_group("empty", [])


def test_families_are_not_in_names_and_need_no_data(monkeypatch, tmp_path):
    assert not any("/" in n for n in problems.names())
    assert set(yahpo.SCENARIOS) <= set(problems.families())
    monkeypatch.setenv(yahpo.DATA_ENV, str(tmp_path))  # registration and name checks work without data
    assert "lcbench/167168" in problems.expand("yahpo-so")


# Error messages ------------------------------------------------------------------------------------
def test_unknown_instance_or_scenario_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown lcbench instance '999' in problem 'lcbench/999'; valid instances: 3945, 7593, .*167168"):
        problems.get("lcbench/999")
    with pytest.raises(ValueError, match=r"unknown rbv2_rpart instance 999; valid instances: 41138, 4135"):
        YahpoProblem("rbv2_rpart", 999)
    with pytest.raises(ValueError, match=r"unknown YAHPO scenario 'nb301'; supported scenarios: lcbench, rbv2_xgboost, rbv2_rpart, iaml_glmnet"):
        yahpo_problem("nb301", "CIFAR10")
    with pytest.raises(ValueError, match=r"unknown problem 'lcbnch/167168'.*known problems: .*lcbench/<instance>"):
        problems.get("lcbnch/167168")
    with pytest.raises(ValueError, match=r"use LCBenchProblem"):
        YahpoProblem("lcbench", "167168")


def test_missing_data_names_the_path_and_how_to_get_the_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        yahpo_problem("rbv2_rpart", "14", data_dir=tmp_path)
    message = str(err.value)
    for part in (str(tmp_path / "yahpo" / "rbv2_rpart"), "config_space.json, encoding.json, model.onnx",
                 "github.com/slds-lmu/yahpo_data", "tag v1.0.2", "$MFBO_DATA_DIR/yahpo/rbv2_rpart/", "MFBO_DATA_DIR"):
        assert part in message
    monkeypatch.delenv(yahpo.DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"set the environment variable MFBO_DATA_DIR \(or pass data_dir=\)"):
        problems.get("lcbench/167168")
    monkeypatch.setenv(yahpo.DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=rf"expected config_space.json, encoding.json, model.onnx in {tmp_path}"):
        problems.get("lcbench/167168")


def test_missing_onnxruntime_says_what_to_install(tmp_path, monkeypatch):
    folder = tmp_path / "yahpo" / "iaml_glmnet"
    folder.mkdir(parents=True)
    for name in yahpo.DATA_FILES:
        (folder / name).write_text("")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ImportError, match=r"need onnxruntime: pip install 'mfbo\[yahpo\]'"):
        yahpo_problem("iaml_glmnet", "1067", data_dir=tmp_path)


@needs_data
def test_out_of_range_fidelity_is_a_clear_error():
    lc = get("lcbench/167168")
    with pytest.raises(ValueError, match=r"fidelity 'epoch': value 60 is outside the allowed range \[1, 52\]"):
        lc.evaluate(SANITY, 60)
    with pytest.raises(ValueError, match=r"fidelity 'epoch': value 2.5 must be an integer in \[1, 52\]"):
        lc.cost(SANITY, 2.5)
    with pytest.raises(ValueError, match=r"resume_from must be a fidelity below the requested 10, got 20"):
        lc.evaluate(SANITY, 10, resume_from=20)
    with pytest.raises(ValueError, match=r"fidelity 'trainsize': value 0.01 is outside the allowed range \[0.03, 1.0\]"):
        get("iaml_glmnet/1067").evaluate({"alpha": 0.5, "s": 1.0}, 0.01)


# Runs ------------------------------------------------------------------------------------------------
@needs_data
def test_random_search_run_on_lcbench_is_reproducible(tmp_path):
    paths = [tmp_path / f"{i}.jsonl" for i in range(3)]
    for path, seed in zip(paths, (0, 0, 1)):
        result = mfbo.minimize("lcbench/167168", "random", budget=3000, seed=seed, log_path=path,
                               problem_options={"data_dir": str(DATA_DIR)})
        assert result.trials and all(t.status == "ok" and t.fidelity == 52 and len(t.curve) == 52 for t in result.trials)
        assert np.isfinite(result.regret) and result.regret == result.recommendation_value - get("lcbench/167168").optimum
        assert result.total_cost <= 3000
    a, b, c = ([{k: v for k, v in t.items() if k not in TIMING_FIELDS} for t in read_run(p).trials] for p in paths)
    assert a == b and a != c
    header = read_run(paths[0]).header
    assert header["problem"]["objective"] == "1 - val_accuracy / 100" and header["problem"]["instance"] == "167168"


@needs_data
@pytest.mark.parametrize(
    "strategy, options",
    [("gp-ei", {"n_init": 4, "num_restarts": 2, "raw_samples": 64}),
     # a 1-second design budget: 4 cheap points and 1 target point, then two KG steps
     ("mf-kg", {"num_discrete": 16, "num_restarts": 2, "raw_samples": 32, "maxiter": 20, "min_init": 4,
                "min_target_init": 1, "init_fraction": 1e-4})],
)
def test_gp_strategies_run_on_the_conditional_xgboost_space(strategy, options):
    p = get("rbv2_xgboost/40499")
    result = mfbo.minimize(p, mfbo.strategies.make(strategy, p, seed=0, **options), budget=1e4, max_trials=7)
    assert len(result.trials) == 7 and all(t.status == "ok" for t in result.trials)
    assert result.recommendation is not None and np.isfinite(result.regret)
    assert p.space.validate(result.recommendation) == result.recommendation
    assert len({t.config["booster"] for t in result.trials}) >= 2  # configurations of different shapes went through the GP

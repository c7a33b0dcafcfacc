"""Spaces and fidelities: encoding round trips, sampling, and the error messages."""

import json
import math

import numpy as np
import pytest

from mfbo import Categorical, Fidelity, Float, Int, Space
from mfbo.space import INACTIVE_VALUE, InCondition


@pytest.fixture
def space():
    return Space(
        {"lr": Float(1e-4, 1e-1, log=True), "momentum": Float(0.0, 0.99)},
        width=Int(16, 1024, log=True),
        depth=Int(1, 5),
        act=Categorical(["relu", "tanh", "gelu"]),
        opt=Categorical(["sgd", "adam"], ordered=True),
        bn=Categorical([True, False]),
    )


def test_dim_and_columns(space):
    assert space.dim == 1 + 1 + 1 + 1 + 3 + 1 + 2
    assert list(space) == ["lr", "momentum", "width", "depth", "act", "opt", "bn"]
    assert space.columns("act") == slice(4, 7)


def test_round_trip_configs(space):
    rng = np.random.default_rng(0)
    for config in space.sample(rng, 200):
        u = space.encode(config)
        assert u.shape == (space.dim,)
        assert np.all((u >= 0) & (u <= 1))
        back = space.decode(u)
        assert back.keys() == config.keys()
        for name, value in config.items():
            if isinstance(value, float):
                assert back[name] == pytest.approx(value, rel=1e-12)
            else:
                assert back[name] == value and type(back[name]) is type(value)


def test_round_trip_unit_cube_is_a_projection(space):
    u = np.random.default_rng(1).random((50, space.dim))
    once = space.round_trip(u)
    assert np.allclose(space.round_trip(once), once)


def test_log_float_encoding_is_log_linear():
    p = Float(1e-4, 1e-1, log=True)
    assert p.encode(1e-4)[0] == pytest.approx(0.0)
    assert p.encode(1e-1)[0] == pytest.approx(1.0)
    assert p.encode(math.sqrt(1e-4 * 1e-1))[0] == pytest.approx(0.5)


def test_int_bins_are_equal_width_and_sampling_is_uniform():
    p = Int(1, 4)
    assert [p.decode(np.array([u])) for u in (0.0, 0.24, 0.26, 0.49, 0.51, 0.74, 0.76, 1.0)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [p.encode(v)[0] for v in (1, 2, 3, 4)] == pytest.approx([0.125, 0.375, 0.625, 0.875])
    space = Space(k=p)
    counts = np.bincount([c["k"] for c in space.sample(np.random.default_rng(0), 4000)], minlength=5)[1:]
    assert counts.min() > 900  # each of 4 integers gets about 1000


def test_categorical_one_hot_and_ordinal():
    c = Categorical(["a", "b", "c"])
    assert c.encode("b").tolist() == [0, 1, 0]
    assert c.decode(np.array([0.2, 0.1, 0.7])) == "c"
    o = Categorical(["lo", "mid", "hi"], ordered=True)
    assert o.dim == 1
    assert [o.decode(o.encode(v)) for v in ("lo", "mid", "hi")] == ["lo", "mid", "hi"]


def test_sampling_is_seeded(space):
    a = space.sample(np.random.default_rng(7), 5)
    b = space.sample(np.random.default_rng(7), 5)
    assert a == b
    assert space.sample(np.random.default_rng(8), 5) != a


def test_validate_canonicalises_types(space):
    config = {"lr": 0.01, "momentum": 0, "width": 64.0, "depth": 3, "act": "relu", "opt": "adam", "bn": True}
    out = space.validate(config)
    assert isinstance(out["momentum"], float) and isinstance(out["width"], int)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"lr": 0.01, "momentum": 0.5, "width": 64, "depth": 3, "act": "relu", "opt": "sgd", "bn": True, "extra": 1}, r"unknown parameter\(s\) \['extra'\]"),
        ({"lr": 0.01, "momentum": 0.5, "width": 64, "depth": 3, "act": "relu", "opt": "sgd"}, r"missing parameter\(s\) \['bn'\]"),
        ({"lr": 0.5, "momentum": 0.5, "width": 64, "depth": 3, "act": "relu", "opt": "sgd", "bn": True}, r"'lr': value 0.5 is outside the allowed range \[0.0001, 0.1\]"),
        ({"lr": 0.01, "momentum": 0.5, "width": 64, "depth": 2.5, "act": "relu", "opt": "sgd", "bn": True}, r"'depth': value 2.5 is not an integer in \[1, 5\]"),
        ({"lr": 0.01, "momentum": 0.5, "width": 64, "depth": 3, "act": "swish", "opt": "sgd", "bn": True}, r"'act': 'swish' is not one of the allowed choices \['relu', 'tanh', 'gelu'\]"),
        ({"lr": 0.01, "momentum": 0.5, "width": 64, "depth": 3, "act": "relu", "opt": "sgd", "bn": 1}, r"'bn': 1 is not one of the allowed choices"),
        ({"lr": "fast", "momentum": 0.5, "width": 64, "depth": 3, "act": "relu", "opt": "sgd", "bn": True}, r"'lr': expected a number"),
    ],
)
def test_validation_errors_name_parameter_and_allowed_values(space, config, match):
    with pytest.raises(ValueError, match=match):
        space.validate(config)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Float(1.0, 1.0), r"low must be < high, got low=1.0, high=1.0"),
        (lambda: Int(5, 2), r"low must be < high, got low=5, high=2"),
        (lambda: Float(0.0, 1.0, log=True), r"log scale needs low > 0, got low=0.0"),
        (lambda: Int(0, 10, log=True), r"log scale needs low > 0, got low=0"),
        (lambda: Int(1.5, 3), r"low must be an integer, got 1.5"),
        (lambda: Categorical([]), r"choices must not be empty"),
        (lambda: Categorical(["a", "a"]), r"choices must be distinct"),
        (lambda: Space(), r"at least one hyperparameter"),
        (lambda: Space(x=(0, 1)), r"parameter 'x' must be a Float, Int or Categorical"),
        (lambda: Fidelity("z", 1.0, 0.0), r"fidelity 'z': low must be < high"),
        (lambda: Fidelity("z", -1.0, 1.0, log=True), r"fidelity 'z': a log scale needs low > 0"),
        (lambda: Fidelity("level", levels=[1, 3, 2]), r"levels must be strictly increasing"),
        (lambda: Fidelity("level", levels=[1, 2], target=5), r"target 5 is not a level; allowed levels are \[1, 2\]"),
        (lambda: Fidelity("epochs", 1, 50, integer=True, target=60), r"target 60 is outside the allowed range \[1, 50\]"),
        (lambda: Fidelity("z"), r"give low and high, or levels"),
    ],
)
def test_construction_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_fidelity_continuous_normalisation():
    f = Fidelity("z", 0.0, 1.0)
    assert f.target == 1.0 and f.normalize(1.0) == 1.0 and f.normalize(0.25) == 0.25
    assert f.denormalize(0.3) == pytest.approx(0.3)
    assert not f.is_discrete
    with pytest.raises(ValueError, match=r"fidelity 'z': value 1.5 is outside the allowed range \[0.0, 1.0\]"):
        f.validate(1.5)


def test_fidelity_integer_range():
    f = Fidelity("epochs", 1, 50, integer=True)
    assert f.target == 50 and f.is_discrete and f.grid() == tuple(range(1, 51))
    assert f.normalize(1) == 0.0 and f.normalize(50) == 1.0
    assert f.denormalize(f.normalize(17)) == 17
    with pytest.raises(ValueError, match=r"fidelity 'epochs': value 2.5 must be an integer in \[1, 50\]"):
        f.validate(2.5)


def test_fidelity_levels_and_log():
    f = Fidelity("subset", levels=[1 / 64, 1 / 16, 1 / 4, 1.0], log=True)
    assert f.target == 1.0
    assert [f.normalize(v) for v in f.levels] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert f.denormalize(0.30) == 1 / 16
    with pytest.raises(ValueError, match=r"fidelity 'subset': value 0.5 is not a level; allowed levels are"):
        f.validate(0.5)
    g = Fidelity("level", levels=[1, 2, 3, 4, 5])
    assert g.integer and g.target == 5 and isinstance(g.validate(3.0), int)


def test_fidelity_target_below_high_extrapolates():
    f = Fidelity("epochs", 1, 100, integer=True, target=51)
    assert f.normalize(51) == 1.0 and f.normalize(100) > 1.0


# Conditional parameters ------------------------------------------------------------------------


@pytest.fixture
def conditional():
    """An xgboost-like space: ``booster`` decides which parameters are active."""
    return Space(
        {
            "booster": Categorical(["gblinear", "gbtree", "dart"]),
            "alpha": Float(1e-3, 1e3, log=True),
            "eta": Float(1e-3, 1.0, log=True),
            "depth": Int(1, 15),
            "rate_drop": Float(0.0, 1.0),
        },
        conditions={
            "eta": InCondition("booster", ["gbtree", "dart"]),
            "depth": InCondition("booster", ("gbtree", "dart")),
            "rate_drop": InCondition("booster", "dart"),  # a single value: an "EQ" condition
        },
    )


TREE = ["eta", "depth"]


def test_conditional_validate_drops_inactive_and_requires_active(conditional):
    linear = conditional.validate({"booster": "gblinear", "alpha": 1.0, "eta": 0.1, "depth": 3, "rate_drop": 0.5})
    assert linear == {"booster": "gblinear", "alpha": 1.0}
    tree = conditional.validate({"depth": 3.0, "booster": "gbtree", "alpha": 1, "eta": 0.1})
    assert list(tree) == ["booster", "alpha", "eta", "depth"] and isinstance(tree["depth"], int)
    # an inactive value is dropped without being checked
    assert conditional.validate({"booster": "gblinear", "alpha": 1.0, "depth": 99}) == {"booster": "gblinear", "alpha": 1.0}
    with pytest.raises(ValueError, match=r"missing parameter\(s\) \['eta', 'depth'\]"):
        conditional.validate({"booster": "gbtree", "alpha": 1.0})
    with pytest.raises(ValueError, match=r"missing parameter\(s\) \['rate_drop'\]"):
        conditional.validate({"booster": "dart", "alpha": 1.0, "eta": 0.1, "depth": 3})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['gamma'\]"):
        conditional.validate({"booster": "gblinear", "alpha": 1.0, "gamma": 1.0})
    with pytest.raises(ValueError, match=r"'depth': value 99 is not an integer in \[1, 15\]"):
        conditional.validate({"booster": "gbtree", "alpha": 1.0, "eta": 0.1, "depth": 99})


def test_conditional_sample_decode_encode_round_trip(conditional):
    configs = conditional.sample(np.random.default_rng(0), 300)
    boosters = [c["booster"] for c in configs]
    assert set(boosters) == {"gblinear", "gbtree", "dart"}
    for config in configs:
        expected = {"booster", "alpha"} | ({"eta", "depth"} if config["booster"] != "gblinear" else set())
        expected |= {"rate_drop"} if config["booster"] == "dart" else set()
        assert set(config) == expected
        assert conditional.validate(config) == config
        u = conditional.encode(config)
        assert u.shape == (conditional.dim,) and np.all((u >= 0) & (u <= 1))
        for name in set(conditional) - expected:  # inactive columns hold the documented value
            assert np.all(u[conditional.columns(name)] == INACTIVE_VALUE)
        back = conditional.decode(u)
        assert back.keys() == config.keys()
        for name, value in config.items():
            expected_value = pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
            assert back[name] == expected_value


def test_conditional_round_trip_is_a_projection_and_ignores_inactive_columns(conditional):
    u = np.random.default_rng(1).random((200, conditional.dim))
    once = conditional.round_trip(u)
    assert np.allclose(conditional.round_trip(once), once, rtol=0, atol=1e-12)
    linear = conditional.columns("booster").start  # one-hot column of "gblinear"
    rows = u[:, linear] > u[:, linear + 1 : linear + 3].max(axis=1)
    assert rows.any()
    for name in TREE + ["rate_drop"]:
        assert np.all(once[rows][:, conditional.columns(name)] == INACTIVE_VALUE)
    a = {"booster": "gblinear", "alpha": 2.0}
    assert np.array_equal(conditional.encode(a), conditional.encode({**a, "eta": 0.5, "depth": 7}))


def test_conditional_sampling_draws_do_not_depend_on_conditions(conditional):
    """The conditional space draws what its unconditional twin draws, then leaves out the
    inactive parameters (so adding a condition never shifts the random stream)."""
    free = Space(dict(conditional))
    for c, f in zip(conditional.sample(np.random.default_rng(3), 50), free.sample(np.random.default_rng(3), 50)):
        assert c == {k: v for k, v in f.items() if k in c}


def test_condition_chains_follow_the_parent():
    chained = Space(
        {"child": Float(0.0, 1.0), "mid": Categorical(["on", "off"]), "top": Categorical([True, False])},
        conditions={"child": InCondition("mid", ["on"]), "mid": InCondition("top", [True])},
    )
    assert chained.validate({"top": False, "mid": "on", "child": 0.3}) == {"top": False}
    assert chained.validate({"top": True, "mid": "on", "child": 0.3}) == {"child": 0.3, "mid": "on", "top": True}
    assert list(chained.validate({"top": True, "mid": "on", "child": 0.3})) == ["child", "mid", "top"]  # space order
    assert chained.decode(chained.encode({"top": True, "mid": "off"})) == {"mid": "off", "top": True}


def test_conditions_in_equality_repr_and_to_dict(conditional):
    assert conditional == Space(dict(conditional), conditions=conditional.conditions)
    assert conditional != Space(dict(conditional))
    other = dict(conditional.conditions, rate_drop=InCondition("booster", ["gbtree"]))
    assert conditional != Space(dict(conditional), conditions=other)
    d = conditional.to_dict()
    assert d["eta"]["condition"] == {"parent": "booster", "values": ["gbtree", "dart"]}
    assert d["rate_drop"]["condition"] == {"parent": "booster", "values": ["dart"]}
    assert "condition" not in d["alpha"]
    json.dumps(d)
    assert "conditions={'eta': InCondition(parent='booster'" in repr(conditional)


@pytest.mark.parametrize(
    "conditions, match",
    [
        ({"z": InCondition("a", ["x"])}, r"condition on unknown parameter 'z'"),
        ({"b": InCondition("q", ["x"])}, r"condition on 'b' names unknown parent 'q'"),
        ({"b": InCondition("b", [1])}, r"'b' cannot be conditioned on itself"),
        ({"b": InCondition("a", ["w"])}, r"parameter 'a': 'w' is not one of the allowed choices \['x', 'y'\]"),
        ({"b": ("a", ["x"])}, r"the condition on 'b' must be an InCondition, got tuple"),
        ({"a": InCondition("b", [1]), "b": InCondition("a", ["x"])}, r"conditions form a cycle: a -> b -> a"),
    ],
)
def test_condition_errors(conditions, match):
    with pytest.raises(ValueError, match=match):
        Space({"a": Categorical(["x", "y"]), "b": Int(1, 3)}, conditions=conditions)
    with pytest.raises(ValueError, match=r"values must not be empty"):
        InCondition("a", [])

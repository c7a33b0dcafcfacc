"""Spaces and fidelities: encoding round trips, sampling, and the error messages."""

import math

import numpy as np
import pytest

from mfbo import Categorical, Fidelity, Float, Int, Space


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

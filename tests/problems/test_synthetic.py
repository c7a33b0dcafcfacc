"""The synthetic suite: optima are attained and are minima, costs, fidelities, noise, vectorisation."""

import contextlib
import json
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import spearmanr

import mfbo.problems as problems
from mfbo.space import Int

try:  # L-BFGS-B on tiny problems is much slower with a multi-threaded BLAS on a busy machine
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

NAMES = problems.expand("synthetic")  # the suite; real problems have their own tests
CORRELATIONS = ("good", "moderate", "bad", "terrible")

# The optima as quoted in the literature, with the precision they are quoted to.
QUOTED_OPTIMA = {
    "forrester": (-6.020740, 1e-6),
    "currin": (-13.7987, 1e-4),
    "park": (-25.5893, 1e-4),
    "borehole": (-309.576, 1e-3),
    "hartmann3": (-3.86278, 1e-5),
    "hartmann6": (-3.32237, 1e-5),
    "augmented-hartmann": (-3.32237, 0.0),
    "augmented-branin": (0.397887, 0.0),
    "quadratic-ladder": (0.0, 0.0),
    **{f"mfhartmann3-{c}": (-3.86278, 1e-5) for c in CORRELATIONS},
    **{f"mfhartmann6-{c}": (-3.32237, 1e-5) for c in CORRELATIONS},
}
TARGET_COST = {"augmented-hartmann": 6.0, "augmented-branin": 6.0, "quadratic-ladder": 0.5}


def tol(optimum):
    return max(1e-4, 1e-5 * abs(optimum))


def bounds(problem):
    return np.array([[p.low, p.high] for p in problem.space.values()], dtype=float)


def fidelity_grid(problem):
    fid = problem.fidelity
    return np.array(fid.grid() if fid.is_discrete else np.linspace(fid.low, fid.high, 11), dtype=float)


def random_fidelities(problem, rng, n):
    fid = problem.fidelity
    if fid.is_discrete:
        return rng.choice(np.array(fid.grid(), dtype=float), size=n)
    return rng.uniform(fid.low, fid.high, size=n)


def local_min(fun, x0, box):
    """L-BFGS-B from ``x0`` on ``box``, with a forward-difference gradient from one vectorised call."""
    h = 1e-7 * (box[:, 1] - box[:, 0])

    def fun_and_grad(x):
        step = np.where(x + h <= box[:, 1], h, -h)
        values = fun(np.vstack([x, x + np.diag(step)]))
        return values[0], (values[1:] - values[0]) / step

    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        return minimize(fun_and_grad, x0, jac=True, method="L-BFGS-B", bounds=box).fun


def test_registry_names():
    expected = {
        "forrester", "currin", "park", "borehole", "hartmann3", "hartmann6",
        "augmented-hartmann", "augmented-branin", "quadratic-ladder",
    } | {f"mfhartmann{d}-{c}" for d in (3, 6) for c in CORRELATIONS}
    assert expected == set(NAMES) and expected <= set(problems.names())
    assert set(QUOTED_OPTIMA) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_attains_the_optimum(name):
    p = problems.get(name)
    quoted, digits = QUOTED_OPTIMA[name]
    assert p.optimum == pytest.approx(quoted, abs=digits)
    assert p.optimizer is not None
    assert p.target_value(p.optimizer) == pytest.approx(p.optimum, rel=1e-5, abs=1e-4)
    obs = p.evaluate(p.optimizer)  # default fidelity is the target
    assert obs.ok
    assert obs.value == pytest.approx(p.optimum, rel=1e-5, abs=1e-4)
    assert obs.value == p.target_value(p.optimizer)
    json.dumps(p.to_dict())


@pytest.mark.parametrize("name", [n for n in NAMES if "hartmann" not in n or n.startswith("augmented")])
def test_optimum_is_the_minimum(name):
    """Nothing at the target fidelity is lower than ``optimum``: grid or multi-start L-BFGS-B.

    (hartmann3/6 and mfhartmann*, all plain Hartmann at the target, are checked below.)
    """
    p = problems.get(name)
    box = bounds(p)
    lo, width = box[:, 0], box[:, 1] - box[:, 0]
    d = len(box)
    rng = np.random.default_rng(0)
    if d <= 2:
        axes = [
            np.arange(param.low, param.high + 1, dtype=float) if isinstance(param, Int) else np.linspace(param.low, param.high, 1001)
            for param in p.space.values()
        ]
        X = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
    else:
        X = lo + rng.random((10000, d)) * width
    values = p.values(X, noise=False)
    assert values.min() >= p.optimum - tol(p.optimum)
    # polish the best candidates and some random starts (Int parameters are relaxed: a lower
    # bound on the integer minimum is all we need).
    starts = np.vstack([X[np.argsort(values)[:12]], lo + rng.random((8, d)) * width])
    unit = np.array([[0.0, 1.0]] * d)
    best = min(local_min(lambda u: p.values(lo + u * width, noise=False), (x - lo) / width, unit) for x in starts)
    assert best >= p.optimum - tol(p.optimum)
    assert best == pytest.approx(p.optimum, abs=1e-3 * max(1.0, abs(p.optimum)))  # the search does find it


@pytest.mark.parametrize("dim", [3, 6])
def test_hartmann_optimum_is_the_minimum(dim):
    # one check serves hartmann{dim} and the mfhartmann{dim}-* family: all equal plain Hartmann at the target
    p = problems.get(f"hartmann{dim}")
    rng = np.random.default_rng(1)
    X = rng.random((3000, dim))
    for name in [f"mfhartmann{dim}-{c}" for c in CORRELATIONS] + [f"hartmann{dim}"]:
        assert np.array_equal(problems.get(name).values(X, noise=False), p.values(X))
    values = p.values(X)
    starts = np.vstack([X[np.argsort(values)[:15]], rng.random((10, dim))])
    best = min(local_min(p.values, x, np.array([[0.0, 1.0]] * dim)) for x in starts)
    assert best >= p.optimum - tol(p.optimum)
    assert best == pytest.approx(p.optimum, abs=1e-6)


@pytest.mark.parametrize("dim", [3, 6])
def test_hartmann_optimizers(dim):
    known = {3: (0.114614, 0.555649, 0.852547), 6: (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)}
    for name in [f"hartmann{dim}", f"mfhartmann{dim}-good"] + (["augmented-hartmann"] if dim == 6 else []):
        assert tuple(problems.get(name).optimizer.values()) == pytest.approx(known[dim], abs=1e-6)


def test_forrester_and_currin_optimizer_locations():
    assert problems.get("forrester").optimizer["x"] == pytest.approx(0.757249, abs=1e-6)
    assert problems.get("currin").optimizer == pytest.approx({"x1": 13 / 60, "x2": 0.0}, abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_costs_positive_increasing_and_normalised(name):
    p = problems.get(name)
    config = p.optimizer
    grid = fidelity_grid(p)
    costs = np.array([p.cost(config, f) for f in grid])
    assert np.all(costs > 0)
    assert np.all(np.diff(costs) > 0)
    assert p.cost(config) == pytest.approx(TARGET_COST.get(name, 1.0), rel=1e-12)
    assert p.cost(config, p.target_fidelity) == p.cost(config)
    for f, c in zip(grid, costs):
        assert p.evaluate(config, f).cost == c


def test_documented_costs():
    assert problems.get("forrester").cost(None, 0) == pytest.approx(0.1)
    assert problems.get("currin").cost(None, 0.5) == pytest.approx(0.1 + 0.9 * 0.25)
    assert problems.get("augmented-branin").cost(None, 0.0) == pytest.approx(5.0)
    assert problems.get("quadratic-ladder").cost(None, 2) == pytest.approx(0.2)
    assert problems.get("mfhartmann3-good").cost(None, 1) == pytest.approx(0.05 + 0.95e-4)
    assert problems.get("mfhartmann6-bad").cost(None, 50) == pytest.approx(0.05 + 0.95 * 0.25)


def test_forrester_low_fidelity_is_misleading():
    p = problems.get("forrester")
    x = np.linspace(0.0, 1.0, 100001)
    low = p.values(x[:, None], 0)
    assert x[np.argmin(low)] == pytest.approx(0.09, abs=0.01)
    high = p.values(x[:, None], 1)
    assert x[np.argmin(high)] == pytest.approx(0.757249, abs=1e-4)


def test_currin_handles_the_x2_zero_edge_without_warnings():
    p = problems.get("currin")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for z in (0.0, 0.5, 1.0):
            value = p.evaluate({"x1": 0.3, "x2": 0.0}, z).value
            assert np.isfinite(value)
        assert np.all(np.isfinite(p.values(np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]), 0.2)))


def test_blended_problems_interpolate_linearly():
    for name in ("park", "borehole", "currin"):
        p = problems.get(name)
        X = bounds(p)[:, 0] + np.random.default_rng(2).random((50, len(p.space))) * np.diff(bounds(p), axis=1).ravel()
        v0, v1, vh = p.values(X, 0.0), p.values(X, 1.0), p.values(X, 0.5)
        assert np.allclose(vh, 0.5 * (v0 + v1), rtol=1e-12, atol=1e-12)
        assert not np.allclose(v0, v1)


@pytest.mark.parametrize("name", [f"mfhartmann{d}-{c}" for d in (3, 6) for c in CORRELATIONS])
def test_mfhartmann_noise_and_target(name):
    p = problems.get(name)
    rng = np.random.default_rng(3)
    configs = p.space.sample(rng, 20)
    for config in configs:
        assert p.evaluate(config, 100).value == p.target_value(config)  # exact: no noise at the target
    # the noise is a pure function of (seed, x, z): repeatable, yet different across x and z
    assert p.evaluate(configs[0], 1).value == p.evaluate(configs[0], 1).value
    noise = [p.evaluate(c, 1).value - p.values(np.array([list(c.values())]), 1, noise=False)[0] for c in configs]
    assert len(set(noise)) == len(configs)
    assert p.evaluate(configs[0], 2).value - p.values(np.array([list(configs[0].values())]), 2, noise=False)[0] != noise[0]
    # the noise |eps| * n * (1 - zhat) is non-negative and vanishes at the target
    X = np.array([[c[k] for k in p.space] for c in configs])
    assert np.all(p.values(X, 10) >= p.values(X, 10, noise=False))
    assert np.any(p.values(X, 10) > p.values(X, 10, noise=False))


def test_mfhartmann_seed_reproducibility():
    configs = problems.get("mfhartmann6-bad").space.sample(np.random.default_rng(4), 15)

    def run(seed):
        p = problems.get("mfhartmann6-bad", seed=seed)
        return [p.evaluate(c, f).value for c, f in zip(configs, range(1, 100, 7))]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert problems.get("mfhartmann3-good").seed == 0


@pytest.mark.parametrize("dim", [3, 6])
def test_mfhartmann_correlation_presets(dim):
    """Rank correlation with the target falls from 'good' to 'terrible' (at z = 1 all are weak)."""
    X = np.random.default_rng(5).random((1000, dim))
    for z in (1, 10, 50):
        rho = []
        for corr in CORRELATIONS:
            p = problems.get(f"mfhartmann{dim}-{corr}")
            rho.append(spearmanr(p.values(X, z), p.values(X, 100)).statistic)
        assert rho[-1] < rho[0]
        if z > 1:
            assert np.all(np.diff(rho) < 0), rho


@pytest.mark.parametrize(
    "name, fidelity",
    [("forrester", 0.5), ("forrester", 2), ("quadratic-ladder", 6), ("quadratic-ladder", 2.5),
     ("currin", 1.5), ("currin", -0.1), ("mfhartmann3-good", 0), ("mfhartmann3-good", 101),
     ("mfhartmann6-terrible", 2.5), ("augmented-branin", 1.01)],
)
def test_bad_fidelity_is_rejected(name, fidelity):
    p = problems.get(name)
    with pytest.raises(ValueError, match=f"fidelity '{p.fidelity.name}'"):
        p.evaluate(p.optimizer, fidelity)
    with pytest.raises(ValueError, match=f"fidelity '{p.fidelity.name}'"):
        p.values(np.array([list(p.optimizer.values())]), fidelity)


@pytest.mark.parametrize("name", NAMES)
def test_vectorised_values_agree_with_evaluate(name):
    p_vec, p_one = problems.get(name), problems.get(name)
    rng = np.random.default_rng(6)
    configs = p_one.space.sample(rng, 25)
    fids = random_fidelities(p_one, rng, 25)
    X = np.array([[c[k] for k in p_one.space] for c in configs])
    expected = np.array([p_one.evaluate(c, f).value for c, f in zip(configs, fids)])
    np.testing.assert_allclose(p_vec.values(X, fids), expected, rtol=1e-12, atol=1e-12)
    # scalar fidelity broadcasts; None is the target
    target = np.array([p_one.target_value(c) for c in configs])
    np.testing.assert_allclose(p_vec.values(X, noise=False), target, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p_vec.values(X[0]), target[:1], rtol=1e-12, atol=1e-12)


def test_augmented_hartmann_with_the_tutorial_levels():
    """The discrete variant of BoTorch's tutorial: raw s in {0.5, 0.75, 1} and cost 5 + s."""
    p = problems.get("augmented-hartmann", levels=[0.5, 0.75, 1.0])
    assert [p.cost(p.optimizer, s) for s in (0.5, 0.75, 1.0)] == [5.5, 5.75, 6.0]
    continuous = problems.get("augmented-hartmann")
    assert p.evaluate(p.optimizer, 0.75).value == continuous.evaluate(continuous.optimizer, 0.75).value
    with pytest.raises(ValueError, match=r"levels must be increasing values in \[0, 1\] ending at 1.0"):
        problems.get("augmented-hartmann", levels=[0.5, 0.75])

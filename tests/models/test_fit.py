"""fit_model: robustness (degenerate data, forced failures, retries with jitter, fallbacks),
warm starts, subset fitting, determinism and option errors."""

import numpy as np
import pytest
import torch
from linear_operator.settings import cholesky_jitter
from linear_operator.utils.errors import NotPSDError

import mfbo.models.fit as fit_module
from mfbo.models import KERNELS, FitReport, build_mf_gp, fit_model
from mfbo.models.fit import fit_subset, hyperparameters

DT = torch.double
D = 2
LEVELS = torch.tensor([0.0, 0.5, 1.0], dtype=DT)


def data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, D + 1, generator=g, dtype=DT)
    X[:, -1] = LEVELS[torch.randint(0, 3, (n,), generator=g)]
    Y = -(torch.sin(5 * X[:, :1]) + X[:, 1:2] ** 2 + 0.3 * (1 - X[:, -1:]))
    return X, Y


def assert_equal_params(model, state):
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), state[name]), name


@pytest.mark.parametrize("kernel", KERNELS)
def test_survives_duplicated_inputs_and_constant_outcomes(kernel):
    X, Y = data(6)
    Xd = torch.cat([X, X, X])  # every point three times
    Yd = torch.cat([Y, Y + 0.01, Y - 0.01])
    Xt = torch.rand(5, D + 1, dtype=DT)
    for Ytrain in (Yd, torch.full_like(Yd, 2.5)):
        model = build_mf_gp(Xd, Ytrain, kernel=kernel, fidelities=LEVELS)
        report = fit_model(model, seed=0)
        assert isinstance(report, FitReport) and not model.training
        with torch.no_grad():
            post = model.posterior(Xt)
        assert torch.isfinite(post.mean).all() and torch.isfinite(post.variance).all()
    assert torch.allclose(post.mean, torch.full_like(post.mean, 2.5), atol=1e-3)  # constant data: constant prediction


def _failing(exc=NotPSDError("forced failure"), times=None, calls=None):
    """A fit_gpytorch_mll stand-in that raises ``times`` times (always if None), then fits."""
    real = fit_module.fit_gpytorch_mll
    count = [0]

    def fake(mll, **kwargs):
        count[0] += 1
        if calls is not None:
            calls.append(cholesky_jitter.value(DT))
        if times is None or count[0] <= times:
            raise exc
        return real(mll, **kwargs)

    return fake


def test_forced_failure_falls_back_to_previous_state(monkeypatch):
    X, Y = data()
    first = build_mf_gp(X, Y)
    assert fit_model(first, seed=0).ok
    previous = first.state_dict()
    model = build_mf_gp(X, Y)
    monkeypatch.setattr(fit_module, "fit_gpytorch_mll", _failing())
    report = fit_model(model, seed=1, previous_state=previous, max_attempts=3)
    assert not report.ok and report.fallback == "previous" and report.attempts == 3
    assert report.jitter == 1e-4  # 1e-8 (default) -> 1e-6 -> 1e-4
    assert "NotPSDError" in report.message and "previous" in report.message
    assert_equal_params(model, hyperparameters(first))
    assert not model.training
    with torch.no_grad():
        assert torch.allclose(model.posterior(X).mean, first.posterior(X).mean)


def test_forced_failure_without_previous_state_falls_back_to_initial(monkeypatch):
    X, Y = data()
    model = build_mf_gp(X, Y)
    initial = hyperparameters(model)
    monkeypatch.setattr(fit_module, "fit_gpytorch_mll", _failing(RuntimeError("boom")))
    report = fit_model(model, seed=0, max_attempts=2)
    assert not report.ok and report.fallback == "initial" and report.attempts == 2
    assert "RuntimeError: boom" in report.message
    assert_equal_params(model, initial)
    with torch.no_grad():
        assert torch.isfinite(model.posterior(X).mean).all()


def test_retry_raises_jitter_and_restarts(monkeypatch):
    X, Y = data()
    model = build_mf_gp(X, Y)
    jitters = []
    monkeypatch.setattr(fit_module, "fit_gpytorch_mll", _failing(times=2, calls=jitters))
    report = fit_model(model, seed=0, max_attempts=4)
    assert report.ok and report.fallback is None and report.attempts == 3 and report.jitter == 1e-4
    assert jitters == [1e-8, 1e-6, 1e-4]
    assert "attempt 1: NotPSDError" in report.message


def test_non_finite_result_counts_as_failure(monkeypatch):
    X, Y = data()
    model = build_mf_gp(X, Y)

    def nan_fit(mll, **kwargs):
        with torch.no_grad():
            mll.model.likelihood.noise_covar.raw_noise.fill_(float("nan"))

    monkeypatch.setattr(fit_module, "fit_gpytorch_mll", nan_fit)
    report = fit_model(model, seed=0, max_attempts=2)
    assert not report.ok and report.fallback == "initial" and "non-finite" in report.message
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_same_seed_same_fit_after_a_random_restart(monkeypatch):
    X, Y = data()
    fits = []
    for _ in range(2):
        monkeypatch.setattr(fit_module, "fit_gpytorch_mll", _failing(times=1))  # attempt 2 restarts from the prior
        model = build_mf_gp(X, Y, kernel="icm", fidelities=LEVELS)
        state = torch.get_rng_state()
        assert fit_model(model, seed=7).attempts == 2
        assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
        fits.append(hyperparameters(model))
    assert all(torch.equal(fits[0][k], fits[1][k]) for k in fits[0])


def test_warm_start_loads_hyperparameters_only():
    X, Y = data()
    first = build_mf_gp(X, Y, kernel="product")
    fit_model(first, seed=0)
    previous = {k: v.clone() for k, v in first.state_dict().items()}
    previous["outcome_transform.means"] = torch.full_like(previous["outcome_transform.means"], 100.0)  # a buffer
    previous["covar_module.base_kernel.kernels.0.raw_lengthscale"] = torch.ones(1, 5, dtype=DT)  # wrong shape
    X2, Y2 = torch.cat([X, X[:2] + 0.05]), torch.cat([Y, Y[:2] + 0.1])  # the next step: two more points
    model = build_mf_gp(X2, Y2, kernel="product")
    report = fit_model(model, seed=0, previous_state=previous)
    assert report.ok and "warm start" in report.message
    assert torch.allclose(model.outcome_transform.means, Y2.mean(0))  # own standardisation kept
    with torch.no_grad():
        assert (model.posterior(X2).mean - Y2).abs().max() < 0.1 * Y2.std()


def test_a_warm_started_fit_is_capped_at_warm_maxiter():
    """A refit from the last step's hyperparameters gets ``warm_maxiter`` iterations, a cold fit
    ``maxiter``: both limits are honoured and reported."""
    X, Y = data(20)
    cold = build_mf_gp(X, Y)
    assert "4 L-BFGS-B iterations, " in (message := fit_model(cold, seed=0, maxiter=4).message) and "(maxiter reached)" in message
    far = hyperparameters(build_mf_gp(X, Y))  # a warm start far from the optimum
    model = build_mf_gp(X, Y)
    report = fit_model(model, seed=0, previous_state=far, maxiter=200, warm_maxiter=3)
    assert report.ok and "3 L-BFGS-B iterations, " in report.message and "(maxiter reached)" in report.message


def test_a_warm_started_fit_is_capped_at_warm_maxfun_evaluations(monkeypatch):
    X, Y = data(20)
    far = hyperparameters(build_mf_gp(X, Y))
    calls = []
    real = fit_module.fit_gpytorch_mll

    def spy(mll, **kwargs):
        calls.append(kwargs["optimizer_kwargs"]["options"])
        return real(mll, **kwargs)

    monkeypatch.setattr(fit_module, "fit_gpytorch_mll", spy)
    report = fit_model(build_mf_gp(X, Y), seed=0, previous_state=far, warm_maxiter=50, warm_maxfun=4)
    assert report.ok and "(evaluation cap reached)" in report.message and calls[-1] == {"maxiter": 50, "maxfun": 4}
    fit_model(build_mf_gp(X, Y), seed=0, maxiter=7, warm_maxfun=4)  # a cold fit: scipy's own evaluation limit
    assert calls[-1] == {"maxiter": 7}


def test_subset_fitting_then_conditions_on_all_points(monkeypatch):
    X, Y = data(40, seed=3)
    model = build_mf_gp(X, Y)
    sizes = []
    real = fit_module.fit_gpytorch_mll

    def spy(mll, **kwargs):
        sizes.append(mll.model.train_targets.numel())
        return real(mll, **kwargs)

    monkeypatch.setattr(fit_module, "fit_gpytorch_mll", spy)
    report = fit_model(model, seed=0, max_fit_points=15)
    assert report.ok and report.n_fit == 15 and sizes == [15] and "15 of 40" in report.message
    assert model.train_inputs[0].shape == (40, D + 1) and torch.equal(model.train_inputs[0], X)
    with torch.no_grad():
        assert (model.posterior(X).mean - Y).abs().max() < 0.1 * Y.std()  # interpolates all 40 points
    assert fit_model(build_mf_gp(X, Y), seed=0, max_fit_points=40).n_fit == 40


def test_fit_subset_keeps_the_best_points_and_is_seeded():
    Y = torch.linspace(0, 1, 100, dtype=DT)[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    idx = fit_subset(Y, 30, np.random.default_rng(0))
    assert idx.shape == (30,) and idx.unique().numel() == 30 and torch.equal(idx, idx.sort().values)
    assert set(torch.topk(Y, 3).indices.tolist()) <= set(idx.tolist())  # best 30 // 10 = 3 always in
    assert torch.equal(idx, fit_subset(Y, 30, np.random.default_rng(0)))
    assert not torch.equal(idx, fit_subset(Y, 30, np.random.default_rng(1)))
    assert torch.equal(fit_subset(Y, 100, np.random.default_rng(0)), torch.arange(100))


@pytest.mark.parametrize(
    "kwargs, option", [({"seed": -1}, "seed"), ({"max_fit_points": 0}, "max_fit_points"), ({"max_attempts": 0}, "max_attempts"), ({"warm_maxiter": 0}, "warm_maxiter"), ({"warm_maxfun": 0}, "warm_maxfun")]
)
def test_bad_options_name_the_option(kwargs, option):
    X, Y = data(6)
    with pytest.raises(ValueError, match=f"option {option} must be an integer"):
        fit_model(build_mf_gp(X, Y), **{"seed": 0, **kwargs})

"""Tests of the augmented expected improvement (``mf-ei``, Huang et al. 2006)."""

from __future__ import annotations

import pytest
import torch
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.models import ModelListGP, SingleTaskGP, SingleTaskMultiFidelityGP
from botorch.models.transforms import Standardize

from mfbo.models import FidelityGaussianLikelihood
from mfbo.acquisition.ei import (
    ExactGPMoments,
    LogAugmentedEI,
    MultiFidelityEI,
    PosteriorMoments,
    effective_best,
    gp_moments,
)

DTYPE = torch.double
FAST = {"num_restarts": 4, "raw_samples": 64, "maxiter": 100}
# cost, f, g, fitted, context, design: fixtures of conftest.py


@pytest.fixture(scope="module")
def ctx2d(context):
    """A fitted 2-D problem with a continuous fidelity, n = 16."""
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(16, 3, generator=gen, dtype=DTYPE)
    Y = (-((X[:, :2] - 0.3) ** 2).sum(-1) + 0.2 * (1 - X[:, 2]) * torch.sin(7 * X[:, 0])).unsqueeze(-1)
    return context(X, Y)


@pytest.fixture(scope="module")
def correlated(design, f):
    """1-D, the cheap fidelity equals the target (y(x, s) = f(x)); its maximum x = 0.25 unexplored."""
    X = design([0.05, 0.45, 0.55, 0.7, 0.95], [0.5, 0.85])
    return X, f(X).unsqueeze(-1)


# ------------------------------------------------------------------------------------------------
# The acquisition function
# ------------------------------------------------------------------------------------------------
def test_shapes_and_gradients_match_finite_differences(ctx2d):
    acqf, _ = MultiFidelityEI().objective(ctx2d)
    X = torch.tensor([[[0.2, 0.7, 0.3]], [[0.5, 0.1, 0.9]], [[0.9, 0.9, 0.0]]], dtype=DTYPE, requires_grad=True)
    value = acqf(X)
    assert value.shape == (3,) and torch.isfinite(value).all()
    (grad,) = torch.autograd.grad(value.sum(), X)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    eps = 1e-6
    for i, j in [(0, 0), (1, 1), (2, 2), (0, 2)]:
        E = torch.zeros_like(X)
        E[i, 0, j] = eps
        with torch.no_grad():
            fd = (acqf(X + E)[i] - acqf(X - E)[i]) / (2 * eps)
        assert torch.isclose(grad[i, 0, j], fd, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="one point per batch"):
        acqf(torch.rand(2, 2, 3, dtype=DTYPE))


def test_alpha1_and_alpha3_are_one_at_the_target_and_below_elsewhere(ctx2d):
    acqf, _ = MultiFidelityEI().objective(ctx2d)
    x = torch.rand(6, 1, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1))
    at_target = acqf.factors(torch.cat([x, torch.ones(6, 1, 1, dtype=DTYPE)], -1))
    assert torch.allclose(at_target.alpha1, torch.ones(6, dtype=DTYPE), atol=1e-8)
    assert torch.allclose(at_target.alpha3, torch.ones(6, dtype=DTYPE))
    low = acqf.factors(torch.cat([x, torch.full((6, 1, 1), 0.2, dtype=DTYPE)], -1))
    assert (low.alpha1.abs() < 1).all()
    assert torch.allclose(low.alpha3, torch.full((6,), 1.0 / (0.1 + 0.9 * 0.2**2), dtype=DTYPE))
    # the EI factor is computed at the target: independent of s
    assert torch.allclose(low.log_ei, at_target.log_ei)


def test_ei_factor_and_alpha2_known_answers(ctx2d):
    """log EI equals BoTorch's LogEI at the target against T; α2 = 1 - σ_ε / sqrt(σ² + σ_ε²)
    with σ_ε² the likelihood noise in output units."""
    model = ctx2d.model
    acqf, _ = MultiFidelityEI().objective(ctx2d)
    X = torch.rand(5, 1, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(2))
    fac = acqf.factors(X)
    X1 = X.clone()
    X1[..., -1] = 1.0
    expected = LogExpectedImprovement(model, best_f=acqf.best_f)(X1)
    assert torch.allclose(fac.log_ei, expected, rtol=1e-6, atol=1e-8)
    noise = model.likelihood.noise.reshape(()) * model.outcome_transform.stdvs.reshape(()) ** 2
    var = model.posterior(X).variance.reshape(-1)
    assert torch.allclose(fac.alpha2, 1 - noise.sqrt() / (var + noise).sqrt(), rtol=1e-6)
    assert ((fac.alpha2 > 0) & (fac.alpha2 < 1)).all()


def test_effective_best_is_huangs_incumbent(ctx2d):
    moments = gp_moments(ctx2d.model, None)
    configs = torch.unique(torch.cat([ctx2d.train_X[:, :2], torch.ones(16, 1, dtype=DTYPE)], -1), dim=0)
    post = ctx2d.model.posterior(configs.unsqueeze(-2))
    mean, sd = post.mean.reshape(-1), post.variance.reshape(-1).sqrt()
    for c in (0.0, 1.0, 5.0):
        T, x_best = effective_best(moments, ctx2d.train_X, c)
        i = int(torch.argmax(mean - c * sd))
        assert torch.isclose(T, mean[i], rtol=1e-6) and torch.allclose(x_best, configs[i : i + 1])


# ------------------------------------------------------------------------------------------------
# Posterior moments: the fast exact path and the generic one agree
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", ["homoskedastic", "fixed", "fidelity"])
def test_fast_and_generic_moments_agree_with_and_without_pending(ctx2d, noise):
    X, Y = ctx2d.train_X, ctx2d.train_Y
    if noise == "fixed":
        model = SingleTaskGP(X, Y, train_Yvar=torch.full_like(Y, 1e-3), outcome_transform=Standardize(1))
        model.load_state_dict(ctx2d.model.state_dict(), strict=False)
    elif noise == "fidelity":
        model = SingleTaskGP(X, Y, likelihood=FidelityGaussianLikelihood(), outcome_transform=Standardize(1))
        model.load_state_dict(ctx2d.model.state_dict(), strict=False)
        model.likelihood.noise_covar.extra_noise = 0.5
    else:
        model = ctx2d.model
    assert ExactGPMoments.supports(model)
    Q = torch.rand(4, 2, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(3))
    for pending in (None, torch.tensor([[0.3, 0.3, 1.0], [0.6, 0.2, 0.4]], dtype=DTYPE)):
        fast, generic = ExactGPMoments(model, pending), PosteriorMoments(model, pending)
        for (a, b) in zip(fast.joint(Q), generic.joint(Q)):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-9)
        assert torch.allclose(fast.noise(Q), generic.noise(Q), rtol=1e-5, atol=1e-12)
        assert isinstance(gp_moments(model, pending, X), ExactGPMoments)
    # the believer keeps the mean and shrinks the variance at the pending point to c0 τ² / (c0 + τ²)
    for s in (1.0, 0.2):
        P = torch.tensor([[[0.3, 0.3, s]]], dtype=DTYPE)
        m0, c0 = ExactGPMoments(model).joint(P)
        m1, c1 = ExactGPMoments(model, P[0]).joint(P)
        tau2 = ExactGPMoments(model).noise(P)
        assert torch.allclose(m0, m1, atol=1e-8)
        torch.testing.assert_close(c1.reshape(()), (c0 * tau2 / (c0 + tau2)).reshape(()), rtol=1e-6, atol=1e-12)


def test_models_without_the_fast_path_use_the_posterior(ctx2d, context):
    wrapped = ModelListGP(ctx2d.model)
    assert not ExactGPMoments.supports(wrapped)
    assert isinstance(gp_moments(wrapped, None), PosteriorMoments)
    X = torch.rand(5, 1, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(4))
    fast, _ = MultiFidelityEI().objective(ctx2d)
    slow, _ = MultiFidelityEI().objective(context(ctx2d.train_X, ctx2d.train_Y, model=wrapped))
    assert isinstance(slow.moments, PosteriorMoments) and isinstance(fast.moments, ExactGPMoments)
    assert torch.allclose(fast(X), slow(X), rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# Behaviour: which fidelity it picks
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fidelities", [None, torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE)])
def test_a_cheap_perfectly_correlated_fidelity_is_used(correlated, fidelities, context):
    X, Y = correlated
    ctx = context(X, Y, fidelities)
    assert ctx.model.covar_module.lengthscale[0, 1] > 1.0  # the model learnt: s does not matter
    candidate = MultiFidelityEI(**FAST).propose(ctx)
    assert candidate.shape == (1, 2)
    assert abs(candidate[0, 0].item() - 0.25) < 0.1  # the target's maximiser...
    assert candidate[0, 1].item() < 0.1  # ...at (about) the cheapest fidelity


@pytest.mark.parametrize("fidelities", [None, torch.tensor([0.0, 1.0], dtype=DTYPE)])
def test_an_uncorrelated_fidelity_is_not_trusted(correlated, fidelities, context, f, g):
    """Same design, but the cheap fidelity is an unrelated function: α1 ≈ 0 there, so the
    cheaper-by-ten fidelity loses to the target (or, continuous, to fidelities close to it)."""
    X, _ = correlated
    Y = torch.where(X[:, 1] > 0.5, f(X), g(X)).unsqueeze(-1)
    ctx = context(X, Y, fidelities)
    acqf, _ = MultiFidelityEI().objective(ctx)
    x = torch.linspace(0, 1, 11, dtype=DTYPE).reshape(-1, 1, 1)
    assert acqf.factors(torch.cat([x, torch.zeros_like(x)], -1)).alpha1.abs().max() < 0.1
    candidate = MultiFidelityEI(**FAST).propose(ctx)
    if fidelities is None:
        assert candidate[0, 1].item() > 0.7
    else:
        assert candidate[0, 1].item() == 1.0


def test_discrete_fidelities_return_levels(ctx2d, context):
    levels = torch.tensor([0.0, 0.3, 1.0], dtype=DTYPE)
    ctx = context(ctx2d.train_X, ctx2d.train_Y, levels, model=ctx2d.model)
    batch = MultiFidelityEI(**FAST).propose(ctx, q=3)
    assert batch.shape == (3, 3)
    assert all(float(s) in levels.tolist() for s in batch[:, -1])
    assert ((batch[:, :2] >= 0) & (batch[:, :2] <= 1)).all()


def test_pending_points_change_the_suggestion(ctx2d, context):
    acq = MultiFidelityEI(**FAST)
    first = acq.propose(ctx2d)
    ctx = context(ctx2d.train_X, ctx2d.train_Y, model=ctx2d.model, X_pending=first)
    second = acq.propose(ctx)
    assert (second - first).abs().max() > 1e-2
    # q = 2 is the same sequential-greedy construction
    batch = acq.propose(ctx2d, q=2)
    assert torch.allclose(batch[0], first[0]) and torch.allclose(batch[1], second[0])


# ------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------
def test_options_and_defaults():
    acq = MultiFidelityEI()
    assert acq.name == "mf-ei"
    assert acq.options() == {"c": 1.0, "num_restarts": 10, "raw_samples": 512, "maxiter": 200}
    assert MultiFidelityEI(c=0).options()["c"] == 0.0


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("c", -0.5, ">= 0"),
        ("c", float("nan"), ">= 0"),
        ("c", "1", ">= 0"),
        ("num_restarts", 0, ">= 1"),
        ("raw_samples", 2.5, ">= 1"),
        ("maxiter", True, ">= 1"),
    ],
)
def test_bad_options_name_the_option_value_and_allowed_values(option, value, allowed):
    with pytest.raises(ValueError) as err:
        MultiFidelityEI(**{option: value})
    message = str(err.value)
    assert "mf-ei" in message and option in message and repr(value) in message and allowed in message


def test_multi_fidelity_kernels_work_too(context, fitted, f):
    """A BoTorch multi-fidelity kernel (linear truncated) through the fast path."""
    gen = torch.Generator().manual_seed(5)
    X = torch.rand(12, 2, generator=gen, dtype=DTYPE)
    Y = f(X).unsqueeze(-1)
    model = fitted(SingleTaskMultiFidelityGP(X, Y, data_fidelities=[1], outcome_transform=Standardize(1)))
    ctx = context(X, Y, model=model)
    acqf, _ = MultiFidelityEI().objective(ctx)
    assert isinstance(acqf.moments, ExactGPMoments)
    assert isinstance(acqf, LogAugmentedEI)
    candidate = MultiFidelityEI(**FAST).propose(ctx)
    assert candidate.shape == (1, 2) and 0 <= candidate[0, 1] <= 1


def test_a_model_the_fast_path_misreads_falls_back_with_a_warning(ctx2d):
    """A model whose ``forward`` is not ``MVN(mean_module, covar_module)`` fails the check against
    ``model.posterior`` and is served by the generic path."""

    class ShiftedGP(SingleTaskGP):
        def forward(self, x):
            mvn = super().forward(x)
            return type(mvn)(mvn.mean + 1.0, mvn.lazy_covariance_matrix)

    model = ShiftedGP(ctx2d.train_X, ctx2d.train_Y, outcome_transform=Standardize(1))
    model.load_state_dict(ctx2d.model.state_dict())
    assert ExactGPMoments.supports(model)
    with pytest.warns(RuntimeWarning, match="fast path does not reproduce"):
        moments = gp_moments(model, None, ctx2d.train_X)
    assert isinstance(moments, PosteriorMoments)

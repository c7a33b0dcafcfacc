"""build_mf_gp: every kernel builds, fits, predicts with gradients, interpolates, fantasizes;
the BoTorch-derived kernels match BoTorch's SingleTaskMultiFidelityGP; ICM structure and errors."""

import math

import pytest
import torch
from botorch.models import SingleTaskMultiFidelityGP
from botorch.sampling import SobolQMCNormalSampler

from mfbo.models import KERNELS, build_mf_gp, fit_model
from mfbo.models.kernels import NearestLevelIndexKernel, matern_with_dim_scaled_prior

DT = torch.double
D = 2
LEVELS = torch.tensor([0.0, 0.5, 1.0], dtype=DT)


def objective(X):
    """A smooth 2-D function with a fidelity-dependent bias (value; Y = -value)."""
    x, s = X[..., :D], X[..., -1]
    return torch.sin(5 * x[..., 0]) + x[..., 1] ** 2 + 0.3 * (1 - s) * x[..., 0]


def data(n=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, D + 1, generator=g, dtype=DT)
    X[:, -1] = LEVELS[torch.randint(0, 3, (n,), generator=g)]
    return X, -objective(X).unsqueeze(-1)


@pytest.fixture(scope="module", params=KERNELS)
def fitted(request):
    X, Y = data()
    model = build_mf_gp(X, Y, kernel=request.param, fidelities=LEVELS)
    report = fit_model(model, seed=0)
    return request.param, model, X, Y, report


def test_fit_succeeds_and_leaves_eval_mode(fitted):
    _, model, X, _, report = fitted
    assert report.ok and report.fallback is None and report.n_fit == X.shape[0]
    assert not model.training


def test_posterior_shapes_and_gradients(fitted):
    kernel, model, _, _, _ = fitted
    Xt = torch.rand(4, 3, D + 1, dtype=DT, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    post = model.posterior(Xt)
    assert post.mean.shape == (4, 3, 1) and post.variance.shape == (4, 3, 1)
    assert (post.variance > 0).all()
    (post.mean.sum() + post.variance.sum()).backward()
    grad = Xt.grad
    assert torch.isfinite(grad).all()
    assert (grad[..., :D].abs() > 0).any()
    if kernel == "icm":  # piecewise constant in s
        assert (grad[..., -1] == 0).all()
    else:
        assert (grad[..., -1].abs() > 0).any()


def test_interpolates_training_data(fitted):
    _, model, X, Y, _ = fitted
    with torch.no_grad():
        post = model.posterior(X)
    assert (post.mean - Y).abs().max() < 0.1 * Y.std()
    assert post.variance.sqrt().max() < 0.1 * Y.std()


def test_fantasize_and_condition_on_observations(fitted):
    _, model, X, _, _ = fitted
    Xnew = torch.tensor([[0.3, 0.7, 1.0], [0.8, 0.2, 0.5]], dtype=DT)
    fant = model.fantasize(Xnew.expand(3, 2, D + 1), SobolQMCNormalSampler(torch.Size([4]), seed=0))
    Xt = torch.rand(3, 5, D + 1, dtype=DT)
    with torch.no_grad():
        post = fant.posterior(Xt)
        assert post.mean.shape == (4, 3, 5, 1) and torch.isfinite(post.mean).all()
        # fantasizing an observation at Xnew removes most of the variance there
        var_before = model.posterior(Xnew).variance
        var_after = fant.posterior(Xnew.expand(3, 2, D + 1)).variance
        assert (var_after < 0.5 * var_before + 1e-6).all()
        # conditioning on y_new pulls the posterior towards it and shrinks the variance there
        prior = model.posterior(Xnew)
        y_new = prior.mean + 3 * prior.variance.sqrt()
        cond = model.condition_on_observations(Xnew, y_new).posterior(Xnew)
        assert ((cond.mean - y_new).abs() < 0.5 * (prior.mean - y_new).abs()).all()
        assert (cond.variance < 0.5 * prior.variance).all()


def _log_prior(model, skip=()):
    return sum(
        prior.log_prob(closure(module)).sum()
        for name, module, prior, closure, _ in model.named_priors()
        if not any(k in name for k in skip)
    )


@pytest.mark.parametrize("kernel", ["linear-truncated", "exp-decay", "downsampling"])
def test_matches_botorch_single_task_multi_fidelity_gp(kernel):
    """Same covariance and priors as BoTorch's model at the same hyperparameters (except the
    linear-truncated power, which we fix at 1), with BoTorch's homoskedastic likelihood."""
    X, Y = data(8)
    ours = build_mf_gp(X, Y, kernel=kernel, noise="homoskedastic")
    if kernel == "linear-truncated":
        theirs = SingleTaskMultiFidelityGP(X, Y, data_fidelities=[D])
        rename = lambda name: name.replace("covar_module.base_kernel.", "covar_module.base_kernel.kernels.0.")  # noqa: E731
    else:
        fid = {"iteration_fidelity": D} if kernel == "exp-decay" else {"data_fidelities": [D]}
        theirs = SingleTaskMultiFidelityGP(
            X, Y, linear_truncated=False, covar_module=matern_with_dim_scaled_prior(list(range(D)), D), **fid
        )
        rename = lambda name: name  # noqa: E731
    theirs_params = dict(theirs.named_parameters())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in ours.named_parameters():  # random hyperparameters, copied into BoTorch's model
            if p.requires_grad:
                p.copy_(0.5 + torch.rand(p.shape, generator=g, dtype=DT))
            theirs_params[rename(name)].copy_(p)
    assert len(theirs_params) == len(dict(ours.named_parameters()))
    Xt = torch.rand(6, D + 1, generator=g, dtype=DT)
    assert torch.allclose(ours.covar_module(Xt).to_dense(), theirs.covar_module(Xt).to_dense())
    assert torch.allclose(_log_prior(ours), _log_prior(theirs, skip=("power_prior",) if kernel == "linear-truncated" else ()))


def test_linear_truncated_power_is_fixed_at_one_and_the_kernel_is_psd():
    X, Y = data(8)
    model = build_mf_gp(X, Y, kernel="linear-truncated")
    kernel = model.covar_module.base_kernel
    assert kernel.power.item() == pytest.approx(1.0) and not kernel.raw_power.requires_grad
    fit_model(model, seed=0)
    assert kernel.power.item() == pytest.approx(1.0)
    # constant x, dense s: the fidelity factor alone decides definiteness
    Z = torch.cat([torch.full((40, D), 0.3, dtype=DT), torch.linspace(0, 1, 40, dtype=DT).unsqueeze(-1)], -1)
    with torch.no_grad():
        assert torch.linalg.eigvalsh(model.covar_module(Z).to_dense()).min() > -1e-10
        kernel.power = torch.full_like(kernel.power, 0.5)  # what BoTorch's learned power can reach
        assert torch.linalg.eigvalsh(model.covar_module(Z).to_dense()).min() < -1e-6


def test_autoregressive_kernel_is_linear_truncated_at_rho_zero_and_psd_for_any_rho():
    X, Y = data(8)
    ar, lt = build_mf_gp(X, Y, kernel="autoregressive"), build_mf_gp(X, Y, kernel="linear-truncated")
    Z = torch.rand(30, D + 1, dtype=DT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ar.covar_module(Z).to_dense(), lt.covar_module(Z).to_dense())
        for rho in (-3.0, -1.0, 0.7):
            ar.covar_module.base_kernel.rho.fill_(rho)
            K = ar.covar_module(Z).to_dense()
            assert torch.linalg.eigvalsh(K).min() > -1e-10
            torch.testing.assert_close(ar.covar_module(Z, diag=True), K.diagonal())


def _inverted_cheap_fidelity(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """30 points at ``s = 0``, 20 at the target; ``value(x, 0) = -1.5 f(x) + 0.2 x_0``."""
    X = torch.rand(50, 3, dtype=DT, generator=generator)
    X[:30, -1], X[30:, -1] = 0.0, 1.0
    f = torch.sin(6 * X[:, 0]) + X[:, 1]
    return X, (f * (1 - 2.5 * (1 - X[:, -1])) + 0.2 * (1 - X[:, -1]) * X[:, 0]).unsqueeze(-1)


def test_autoregressive_kernel_learns_an_inverted_cheap_fidelity():
    """``value(x, 0) = -1.5 f(x) + small bias``: the fit finds ``rho ~ -2.5`` (so ``a(0) = -1.5``)
    and predicts the target from mostly cheap data; the linear-truncated kernel, whose bias
    must be independent of the target, fits far worse."""
    g = torch.Generator().manual_seed(0)
    X, Y = _inverted_cheap_fidelity(g)
    ar, lt = build_mf_gp(X, Y, kernel="autoregressive"), build_mf_gp(X, Y, kernel="linear-truncated")
    loss_ar, loss_lt = (float(fit_model(m, seed=0).message.rsplit("= ", 1)[1]) for m in (ar, lt))
    assert ar.covar_module.base_kernel.rho.item() == pytest.approx(-2.5, abs=0.2)
    assert loss_ar < loss_lt - 0.3  # -mll per point


def test_damped_autoregressive_kernel_never_inverts_the_target():
    """On the inverted cheap fidelity above, the damped kernel's ``rho`` stops at the bound -1
    (``a(0) = 0``: a cheap level carries no copy of the target rather than an inverted one), its
    scale stays non-negative, and it equals the autoregressive kernel at the same ``rho``."""
    g = torch.Generator().manual_seed(0)
    X, Y = _inverted_cheap_fidelity(g)
    damped, ar = build_mf_gp(X, Y, kernel="autoregressive-damped"), build_mf_gp(X, Y, kernel="autoregressive")
    assert damped.covar_module.base_kernel.rho.item() == pytest.approx(0.0, abs=1e-12)  # starts at 0
    fit_model(damped, seed=0)
    kernel = damped.covar_module.base_kernel
    assert -1.0 < kernel.rho.item() < -0.95
    with torch.no_grad():
        assert kernel.scale(torch.linspace(0, 1, 11, dtype=DT)).min() >= 0.0
        ar.load_state_dict({k: v for k, v in damped.state_dict().items() if "rho" not in k}, strict=False)
        ar.covar_module.base_kernel.rho.fill_(kernel.rho.item())
        Z = torch.rand(20, 3, dtype=DT, generator=g)
        torch.testing.assert_close(ar.covar_module(Z).to_dense(), damped.covar_module(Z).to_dense())


def _correlation_with_target(model, s: float, n: int = 40) -> float:
    """Mean over random ``x`` of the kernel's correlation between ``(x, s)`` and ``(x, 1)``."""
    kernel = model.covar_module.base_kernel
    x = torch.rand(n, D, dtype=DT, generator=torch.Generator().manual_seed(3))
    at_s, at_target = (torch.cat([x, torch.full((n, 1), v, dtype=DT)], -1) for v in (s, 1.0))
    with torch.no_grad():
        cross = kernel(at_s, at_target, diag=True)
        return float((cross / (kernel(at_s, at_s, diag=True) * kernel(at_target, at_target, diag=True)).sqrt()).mean())


def test_shaped_autoregressive_kernel_is_the_autoregressive_one_at_kappa_one_and_psd():
    X, Y = data(8)
    shaped, ar = build_mf_gp(X, Y, kernel="autoregressive-shaped"), build_mf_gp(X, Y, kernel="autoregressive")
    Z = torch.rand(30, D + 1, dtype=DT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for kernel in (shaped, ar):
            kernel.covar_module.base_kernel.rho.fill_(-0.8)
        torch.testing.assert_close(shaped.covar_module(Z).to_dense(), ar.covar_module(Z).to_dense())
        for rho, kappa in ((-1.0, 20.0), (-2.5, 0.3), (0.7, 3.0)):
            shaped.covar_module.base_kernel.rho.fill_(rho)
            shaped.covar_module.base_kernel.log_kappa.fill_(math.log(kappa))
            K = shaped.covar_module(Z).to_dense()
            assert torch.linalg.eigvalsh(K).min() > -1e-10
            torch.testing.assert_close(shaped.covar_module(Z, diag=True), K.diagonal())


def test_shaped_autoregressive_kernel_learns_a_ladder_whose_cheapest_level_is_uninformative():
    """A learning-curve ladder: epoch 1 (``s = 0``) unrelated to the target, ``s = 0.5`` and
    ``0.75`` the target plus a small bias. ``a(s) = 1 + rho (1 - s)`` must reach ``a(0) = 0``
    through ``a(0.5) = 0.5``, so the plain autoregressive kernel calls ``s = 0.5`` weakly
    correlated; ``(1 - s)^kappa`` lets the shaped one drop only near ``s = 0``, and it fits better."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(80, D + 1, dtype=DT, generator=g)
    X[:, -1] = torch.tensor([0.0, 0.5, 0.75, 1.0], dtype=DT)[torch.tensor([0] * 40 + [1] * 20 + [2] * 10 + [3] * 10)]
    s = X[:, -1]
    target = torch.sin(6 * X[:, 0]) + X[:, 1]
    unrelated = torch.cos(9 * X[:, 1] + 3 * X[:, 0])
    Y = -torch.where(s == 0, unrelated, target + 0.2 * (1 - s) * X[:, 0]).unsqueeze(-1)
    ar, shaped = build_mf_gp(X, Y, kernel="autoregressive"), build_mf_gp(X, Y, kernel="autoregressive-shaped")
    loss_ar, loss_shaped = (float(fit_model(m, seed=0).message.rsplit("= ", 1)[1]) for m in (ar, shaped))
    assert loss_shaped < loss_ar - 0.1  # -mll per point
    assert abs(_correlation_with_target(shaped, 0.0)) < 0.3 and abs(_correlation_with_target(ar, 0.0)) < 0.3
    assert _correlation_with_target(shaped, 0.5) > 0.8
    assert _correlation_with_target(ar, 0.5) < 0.7
    assert shaped.covar_module.base_kernel.log_kappa.exp().item() > 2.0


@pytest.mark.parametrize("fitted", ["icm"], indirect=True)
def test_icm_covariance_structure(fitted):
    _, model, _, _, _ = fitted
    kx, kb = model.covar_module.kernels
    assert isinstance(kb, NearestLevelIndexKernel)
    B = kb.covar_matrix.detach()
    assert torch.allclose(B, B.T) and (torch.linalg.eigvalsh(B) > 0).all()
    assert B[-1, -1] == pytest.approx(1.0)  # unit scale at the target level
    corr = B / torch.outer(B.diag().sqrt(), B.diag().sqrt())
    assert (corr >= 0).all()
    x = torch.tensor([[0.2, 0.4]], dtype=DT)
    with torch.no_grad():
        kxx = kx(torch.cat([x, torch.zeros(1, 1, dtype=DT)], -1)).to_dense()
        for i, j in [(0, 0), (0, 2), (1, 2)]:
            # a fidelity near a level is mapped to that level
            a = torch.cat([x, LEVELS[i].reshape(1, 1) + 0.01], -1)
            b = torch.cat([x, LEVELS[j].reshape(1, 1) - 0.01], -1)
            assert torch.allclose(model.covar_module(a, b).to_dense(), kxx * B[i, j])


def test_icm_rank_option():
    X, Y = data(8)
    model = build_mf_gp(X, Y, kernel="icm", fidelities=LEVELS, icm_rank=1)
    assert model.covar_module.kernels[1].covar_factor.shape == (3, 1)
    assert build_mf_gp(X, Y, kernel="icm", fidelities=LEVELS).covar_module.kernels[1].covar_factor.shape == (3, 2)
    with pytest.raises(ValueError, match=r"icm_rank.*\[1, 3\].*5"):
        build_mf_gp(X, Y, kernel="icm", fidelities=LEVELS, icm_rank=5)


def test_icm_rejects_continuous_fidelity():
    X, Y = data(8)
    with pytest.raises(ValueError, match=r"'icm' needs a discrete fidelity.*fidelities=None.*continuous"):
        build_mf_gp(X, Y, kernel="icm", fidelities=None)
    X[0, -1] = 0.3
    with pytest.raises(ValueError, match=r"'icm'.*levels \[0.0, 0.5, 1.0\].*0.3"):
        build_mf_gp(X, Y, kernel="icm", fidelities=LEVELS)


def test_downsampling_rejects_fidelity_above_target():
    X, Y = data(8)
    X[0, -1] = 1.2
    with pytest.raises(ValueError, match=r"'downsampling'.*s <= 1.*1.2"):
        build_mf_gp(X, Y, kernel="downsampling")


def test_unknown_kernel_names_the_option_and_the_choices():
    X, Y = data(8)
    with pytest.raises(ValueError, match="kernel") as err:
        build_mf_gp(X, Y, kernel="rbf")
    assert "'rbf'" in str(err.value) and all(k in str(err.value) for k in KERNELS)


def test_bad_data_shapes():
    X, Y = data(8)
    with pytest.raises(ValueError, match=r"train_Y must have shape \(n, 1\)"):
        build_mf_gp(X, Y[:5])
    with pytest.raises(ValueError, match=r"train_X must have shape \(n, d \+ 1\)"):
        build_mf_gp(X[:, :1], Y)


@pytest.mark.parametrize("kernel", KERNELS)
def test_build_is_deterministic_and_leaves_torch_rng_alone(kernel):
    X, Y = data(8)
    state = torch.get_rng_state()
    a = build_mf_gp(X, Y, kernel=kernel, fidelities=LEVELS)
    b = build_mf_gp(X, Y, kernel=kernel, fidelities=LEVELS)
    assert torch.equal(torch.get_rng_state(), state)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)

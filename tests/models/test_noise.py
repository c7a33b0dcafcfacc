"""The fidelity-dependent likelihood: what it learns, and that every BoTorch path accepts it."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood

from mfbo.models import FidelityGaussianLikelihood, build_mf_gp, fit_model
from mfbo.models.noise import SharedResidualKernel, shared_residual_start

DT = torch.double


def two_level_data(noise_sd, n_low=40, n_high=20, seed=0):
    """``f(x) = sin(6 x1) + x2`` (plus a small bias at ``s = 0.1``) observed at ``s = 0.1`` and ``s = 1``."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n_low + n_high, 3, dtype=DT, generator=g)
    X[:n_low, -1], X[n_low:, -1] = 0.1, 1.0
    f = torch.sin(6 * X[:, 0]) + X[:, 1] + 0.3 * (1 - X[:, -1]) * X[:, 0]
    Y = f + torch.randn(len(X), dtype=DT, generator=g) * noise_sd(X[:, -1])
    return X, Y.unsqueeze(-1)


def fitted(X, Y, noise):
    model = build_mf_gp(X, Y, noise=noise)
    assert fit_model(model, seed=0).ok
    return model


def test_learns_noise_that_grows_towards_cheap_fidelities():
    """Noise sd 0.01 at the target and 0.91 at s = 0.1: the fidelity likelihood finds both levels
    (in standardised units) and a far better marginal likelihood than one shared noise level,
    which puts about a quarter of the cheap level's scatter on the target as well."""
    X, Y = two_level_data(lambda s: 0.01 + (1 - s))
    model = fitted(X, Y, "fidelity")
    var_y = float(Y.var())
    with torch.no_grad():
        low, high = model.likelihood.noise_variance(torch.tensor([[0.5, 0.5, 0.1], [0.5, 0.5, 1.0]], dtype=DT))
    assert float(high) < 0.01  # target: ~1e-4 of signal
    assert float(low) * var_y == pytest.approx(0.91**2, rel=0.35)
    shared = fitted(X, Y, "homoskedastic").likelihood.noise.item()
    assert shared > 20 * float(high)


@pytest.mark.parametrize("name,noise_sd", [("noise-free", lambda s: 0 * s), ("homoskedastic", lambda s: 0.2 + 0 * s)])
def test_reduces_to_the_homoskedastic_model_when_noise_does_not_depend_on_fidelity(name, noise_sd):
    X, Y = two_level_data(noise_sd)
    model = fitted(X, Y, "fidelity")
    reference = fitted(X, Y, "homoskedastic").likelihood.noise.item()
    assert model.likelihood.extra_noise.item() < 0.05 * max(reference, 1e-3)
    assert model.likelihood.noise.item() == pytest.approx(reference, rel=0.3, abs=1e-4)


def test_posterior_conditioning_and_fantasies_use_the_noise_at_each_fidelity():
    X, Y = two_level_data(lambda s: 0.01 + (1 - s))
    model = fitted(X, Y, "fidelity")
    model.eval()
    T = torch.tensor([[0.3, 0.5, 1.0], [0.3, 0.5, 0.1]], dtype=DT)
    noisy = model.posterior(T, observation_noise=True).variance.squeeze(-1)
    latent = model.posterior(T).variance.squeeze(-1)
    scale2 = model.outcome_transform.stdvs.reshape(()) ** 2
    expected = scale2 * model.likelihood.noise_variance(T)
    torch.testing.assert_close(noisy - latent, expected, rtol=1e-6, atol=1e-10)
    # conditioning on a noisy cheap observation shrinks the variance less than a target one
    shrink = []
    for row in T:
        cond = model.condition_on_observations(row[None], model.posterior(row[None]).mean.detach())
        shrink.append(float(latent[0] - cond.posterior(T[:1]).variance.reshape(())))
    assert shrink[0] > 2 * shrink[1] > 0
    fantasies = model.fantasize(T, SobolQMCNormalSampler(torch.Size([4])))
    assert fantasies.posterior(T).mean.shape == (4, 2, 1)


def test_likelihood_without_inputs_and_bad_option_name_the_problem():
    with pytest.raises(ValueError, match="needs the inputs"):
        FidelityGaussianLikelihood().noise_covar()
    X, Y = two_level_data(lambda s: 0 * s)
    with pytest.raises(ValueError, match=r"noise must be one of \['fidelity', 'correlated', 'homoskedastic'\], got 'hetero'"):
        build_mf_gp(X, Y, noise="hetero")


def curve_data(shared_sd, independent_sd, n=24, seed=0):
    """``n`` configurations, each observed along one curve at ``s = 0.2, 0.4, 0.6`` and, for the
    first half, at the target: ``f(x) + (1 - s) (shared_sd * u_x + independent_sd * e)``, with one
    draw ``u_x`` per configuration and one ``e`` per point. Returns ``X, Y`` and the ``(n/2, 3)``
    inputs of the configurations not seen at the target, at the target, with their true values."""
    g = torch.Generator().manual_seed(seed)
    configs = torch.rand(n, 2, dtype=DT, generator=g)
    f = lambda x: torch.sin(5 * x[:, 0]) + x[:, 1]  # noqa: E731
    offset = torch.randn(n, dtype=DT, generator=g)
    rows, values = [], []
    for i in range(n):
        for s in (0.2, 0.4, 0.6) + ((1.0,) if i < n // 2 else ()):
            e = torch.randn((), dtype=DT, generator=g)
            rows.append(torch.cat([configs[i], torch.tensor([s], dtype=DT)]))
            values.append(f(configs[i : i + 1])[0] + (1 - s) * (shared_sd * offset[i] + independent_sd * e))
    unseen = torch.cat([configs[n // 2 :], torch.ones(n - n // 2, 1, dtype=DT)], dim=-1)
    return torch.stack(rows), torch.stack(values).unsqueeze(-1), unseen, f(configs[n // 2 :])


def negative_mll(model):
    """``-mll / n`` of a fitted model on its training data (priors included, as the fit)."""
    model.train()
    with torch.no_grad():
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        return float(-mll(model(*model.train_inputs), model.train_targets, *model.train_inputs))


def test_correlated_noise_learns_what_one_curve_shares_and_predicts_the_target_better():
    """Each curve is off by its own ``0.6 u (1 - s)``: independent noise reads the offsets as
    signal or scatter; the shared term takes them (``τ²_r`` well above ``τ²_Δ``), the marginal
    likelihood improves, and the target values of the configurations seen only at cheap
    fidelities are predicted better."""
    X, Y, unseen, truth = curve_data(shared_sd=0.6, independent_sd=0.02)
    errors, losses = {}, {}
    for noise in ("fidelity", "correlated"):
        model = build_mf_gp(X, Y, noise=noise)
        assert fit_model(model, seed=0).ok
        losses[noise] = negative_mll(model)
        model.eval()
        with torch.no_grad():
            errors[noise] = float((model.posterior(unseen).mean.squeeze(-1) - truth).abs().mean())
    shared = model.covar_module.kernels[-1]
    assert isinstance(shared, SharedResidualKernel)
    assert float(shared.shared_noise) > 10 * float(model.likelihood.extra_noise)
    assert losses["correlated"] < losses["fidelity"] - 0.3
    assert errors["correlated"] < 0.7 * errors["fidelity"]


def test_correlated_noise_stays_off_when_the_points_of_a_curve_scatter_independently():
    X, Y, _, _ = curve_data(shared_sd=0.0, independent_sd=0.5)
    model = build_mf_gp(X, Y, noise="correlated")
    assert fit_model(model, seed=0).ok
    assert float(model.covar_module.kernels[-1].shared_noise) < 0.1 * float(model.likelihood.extra_noise)


def test_shared_residual_kernel_links_only_one_configuration_and_vanishes_at_the_target():
    kernel = SharedResidualKernel()
    kernel.shared_noise = 2.0
    Z = torch.tensor([[0.1, 0.2, 0.0], [0.1, 0.2, 0.5], [0.1, 0.2 + 1e-6, 0.5], [0.1, 0.2, 1.0]], dtype=DT)
    with torch.no_grad():
        K = kernel(Z).to_dense()
        diag = kernel(Z, diag=True)
    assert float(kernel.decay_scale) == pytest.approx(0.5) and float(kernel.decay_power) == pytest.approx(0.5)
    k = lambda s, t: 2.0 * (1 - s) * (1 - t) * math.sqrt(0.5 / (s + t + 0.5))  # noqa: E731
    expected = torch.tensor([[k(0, 0), k(0, 0.5), 0, 0], [k(0.5, 0), k(0.5, 0.5), 0, 0], [0, 0, k(0.5, 0.5), 0], [0, 0, 0, 0]], dtype=DT)
    torch.testing.assert_close(K, expected)
    torch.testing.assert_close(diag, torch.diagonal(K))
    batch = Z.expand(3, 4, 3)  # (b, n, d + 1) batches, as the acquisitions evaluate
    assert kernel(batch, Z[:2]).to_dense().shape == (3, 4, 2)


def test_correlated_noise_conditions_and_fantasizes_along_a_configurations_own_curve():
    """After the fit, the posterior at a cheap fidelity of an evaluated configuration follows that
    configuration's curve (its residual is shared), and BoTorch's fantasy path accepts the kernel."""
    X, Y, _, _ = curve_data(shared_sd=0.6, independent_sd=0.02)
    model = build_mf_gp(X, Y, noise="correlated")
    assert fit_model(model, seed=0).ok
    model.eval()
    seen = X[X[:, -1] == 0.4][:6]  # configurations observed at s = 0.4 (and 0.2, 0.6)
    with torch.no_grad():
        at_half = seen.clone()
        at_half[:, -1] = 0.5  # between two of their evaluated fidelities
        mean = model.posterior(at_half).mean.squeeze(-1)
        between = 0.5 * (Y[X[:, -1] == 0.4][:6] + Y[X[:, -1] == 0.6][:6]).squeeze(-1)
    assert float((mean - between).abs().max()) < 0.1
    fantasies = model.fantasize(at_half[:2], SobolQMCNormalSampler(torch.Size([4])))
    assert fantasies.posterior(at_half[:2]).mean.shape == (4, 2, 1)


def rough_curves(n=12, seed=0):
    """Learning curves ``(x - 0.3)^2 + (1 + sin(300 x)) / e`` at epochs 1, 3, 9 and 27 (``s = (e -
    1) / 26``) of ``n`` configurations: each curve is off by its own, rough-in-``x`` amount."""
    g = torch.Generator().manual_seed(seed)
    rows, values = [], []
    for x in torch.rand(n, dtype=DT, generator=g):
        for e in (1, 3, 9, 27):
            rows.append([float(x), (e - 1) / 26])
            values.append(-(float(x - 0.3) ** 2 + (1 + math.sin(300 * float(x))) / e))
    return torch.tensor(rows, dtype=DT), torch.tensor(values, dtype=DT).unsqueeze(-1)


def test_the_correlated_fit_tries_the_shared_start_and_keeps_the_better_mode():
    """From the default start the fit of the rough curves keeps independent noise; the shared
    start finds the mode where each curve's residual is shared, with a far better likelihood."""
    X, Y = rough_curves()
    single = build_mf_gp(X, Y, noise="correlated")
    assert fit_model(single, seed=0).ok
    both = build_mf_gp(X, Y, noise="correlated")
    start = shared_residual_start(both)
    assert set(start) == {"covar_module.kernels.1.raw_shared_noise", "likelihood.noise_covar.raw_extra_noise"}
    report = fit_model(both, seed=0, alternative_starts=[start])
    assert report.ok and report.message.endswith("best of 2 starts: alternative 1")
    assert negative_mll(both) < negative_mll(single) - 0.2
    assert float(both.covar_module.kernels[-1].shared_noise) > 10 * float(single.covar_module.kernels[-1].shared_noise)
    assert shared_residual_start(build_mf_gp(X, Y)) == {}

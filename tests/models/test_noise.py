"""The fidelity-dependent likelihood: what it learns, and that every BoTorch path accepts it."""

from __future__ import annotations

import pytest
import torch
from botorch.sampling import SobolQMCNormalSampler

from mfbo.models import FidelityGaussianLikelihood, build_mf_gp, fit_model

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
    with pytest.raises(ValueError, match=r"noise must be one of \['fidelity', 'homoskedastic'\], got 'hetero'"):
        build_mf_gp(X, Y, noise="hetero")

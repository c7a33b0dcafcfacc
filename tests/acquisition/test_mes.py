"""Tests of multi-fidelity MES (``mf-mes``) and its GIBBON lower bound (``mf-gibbon``)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP, SingleTaskMultiFidelityGP
from botorch.models.transforms import Standardize
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood
from scipy import integrate, stats

from mfbo.acquisition.base import AcquisitionContext
from mfbo.acquisition.mes import (
    MultiFidelityGIBBON,
    MultiFidelityMES,
    candidate_set,
    gibbon_information_gain,
    joint_moments,
    rows_per_configuration,
    mes_information_gain,
    sample_max_values,
)

DT = torch.double
D = 2
LEVELS = torch.tensor([0.0, 0.5, 1.0], dtype=DT)
#: small optimiser settings: the tests check behaviour, not the optimiser's reach
FAST = dict(num_restarts=2, raw_samples=64, maxiter=20, num_candidates=64, num_mv_samples=8)
CLASSES = (MultiFidelityMES, MultiFidelityGIBBON)


def objective_fn(x: torch.Tensor) -> torch.Tensor:
    """``-value`` of a smooth 2-D test function (to be maximised)."""
    return torch.sin(3 * x[..., 0]) + torch.cos(4 * x[..., 1]) - (x**2).sum(-1)


def cost(X: torch.Tensor) -> torch.Tensor:
    return 0.1 + 0.9 * X[..., -1] ** 2


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """One torch thread: the test machine's two cores are shared, and oversubscribed intra-op
    threads slow these small problems down several times (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit(model):
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model.eval()


def make_ctx(model, X, Y, fidelities=None, pending=None, seed=0) -> AcquisitionContext:
    return AcquisitionContext(
        model=model, cost=cost, dim=D, fidelities=fidelities, train_X=X, train_Y=Y, X_pending=pending, seed=seed,
        project=lambda x: x,
    )


@pytest.fixture(scope="module")
def mf_data():
    """BoTorch's multi-fidelity GP on 20 points whose low fidelities are biased."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, D, generator=g, dtype=DT)
    s = torch.rand(20, 1, generator=g, dtype=DT)
    Y = (objective_fn(x) + 0.3 * (1 - s[:, 0]) * torch.sin(5 * x[:, 0])).unsqueeze(-1)
    X = torch.cat([x, s], -1)
    return fit(SingleTaskMultiFidelityGP(X, Y, data_fidelities=[D], outcome_transform=Standardize(1))), X, Y


@pytest.fixture(scope="module")
def correlated():
    """Every fidelity observes the same function: the GP learns a long fidelity lengthscale."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(24, D, generator=g, dtype=DT)
    X = torch.cat([x, torch.rand(24, 1, generator=g, dtype=DT)], -1)
    Y = objective_fn(x).unsqueeze(-1)
    return fit(SingleTaskGP(X, Y, outcome_transform=Standardize(1))), X, Y


@pytest.fixture(scope="module")
def uncorrelated():
    """Levels 0 and 0.5 observe independent noise, only the target observes the function."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(30, D, generator=g, dtype=DT)
    s = LEVELS[torch.arange(30) % 3].unsqueeze(-1)
    Y = torch.where(s[:, 0] == 1, objective_fn(x), torch.randn(30, generator=g, dtype=DT)).unsqueeze(-1)
    X = torch.cat([x, s], -1)
    return fit(SingleTaskGP(X, Y, outcome_transform=Standardize(1))), X, Y


def gain_of(acq, objective, X):
    """The information gain before dividing by the cost (MES), or GIBBON's quality term."""
    return objective.information_gain(X) if isinstance(acq, MultiFidelityMES) else objective.quality(X)


# ------------------------------------------------------------------------------------------------
# The information-gain formulas
# ------------------------------------------------------------------------------------------------
def _mes_reference(gamma: float, rho: float) -> float:
    """``H[y] - H[y | f_M <= f*]`` by adaptive quadrature of the skew normal's entropy."""
    r = math.sqrt(1 - rho**2)

    def density(u):
        return stats.norm.pdf(u) * stats.norm.cdf((gamma - rho * u) / r) / stats.norm.cdf(gamma)

    def integrand(u):
        p = density(u)
        return -p * math.log(p) if p > 0 else 0.0

    entropy, _ = integrate.quad(integrand, -12, 12, points=[gamma / rho], limit=400, epsabs=1e-12)
    return 0.5 * math.log(2 * math.pi * math.e) - entropy


@pytest.mark.parametrize("gamma", [-3.0, -0.5, 0.0, 1.0, 2.5])
@pytest.mark.parametrize("rho2", [0.1, 0.5, 0.9, 0.99])
def test_mes_information_gain_matches_quadrature_reference(gamma, rho2):
    value = float(mes_information_gain(torch.tensor(gamma, dtype=DT), torch.tensor(rho2, dtype=DT)))
    assert value == pytest.approx(_mes_reference(gamma, math.sqrt(rho2)), rel=1e-4, abs=1e-8)


def test_mes_information_gain_limits():
    gamma = torch.linspace(-4, 4, 17, dtype=DT)
    lam = torch.as_tensor(stats.norm.pdf(gamma.numpy()) / stats.norm.cdf(gamma.numpy()))
    wang_jegelka = 0.5 * gamma * lam - torch.special.log_ndtr(gamma)  # the noiseless target, ρ = 1
    torch.testing.assert_close(mes_information_gain(gamma, torch.ones_like(gamma)), wang_jegelka, rtol=1e-5, atol=1e-8)
    assert torch.all(mes_information_gain(gamma, torch.zeros_like(gamma)) < 1e-12)  # uncorrelated: no information
    # beyond γ = 8 the quadrature is skipped: the gain there and just before is negligible
    far = torch.tensor([7.99, 8.0, 8.01, 20.0], dtype=DT)
    assert torch.all(mes_information_gain(far, torch.full_like(far, 0.9)) < 1e-13)


def test_gibbon_is_a_lower_bound_of_mes_and_both_are_nonnegative_with_finite_gradients():
    gamma = torch.linspace(-8, 6, 29, dtype=DT)
    rho2 = torch.tensor([0.0, 1e-4, 0.3, 0.7, 0.95, 0.999, 1.0], dtype=DT)
    G, R = (t.clone().requires_grad_(True) for t in torch.meshgrid(gamma, rho2, indexing="ij"))
    mes, gibbon = mes_information_gain(G, R), gibbon_information_gain(G, R)
    assert torch.all(mes >= 0) and torch.all(gibbon >= 0)
    assert torch.all(gibbon <= mes * (1 + 1e-5) + 1e-9)
    (mes.sum() + gibbon.sum()).backward()
    assert torch.isfinite(G.grad).all() and torch.isfinite(R.grad).all()


# ------------------------------------------------------------------------------------------------
# Max-value samples
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["gumbel", "posterior"])
def test_max_value_samples_are_sensible(mf_data, sampler):
    model, X, Y = mf_data
    ctx = make_ctx(model, X, Y)
    A = candidate_set(ctx, 64)
    assert torch.all(A[:, -1] == 1.0) and A.shape[0] >= 64
    samples = sample_max_values(model, A, 32, sampler, seed=0)
    with torch.no_grad():
        target_mean = model.posterior(ctx.at_target(X)).mean.max()
    assert samples.shape == (32,) and torch.isfinite(samples).all()
    assert torch.all(samples >= target_mean - 1e-9)  # never below a value believed attained
    assert samples.std() > 0  # a distribution, not a point
    # the max of the function is above the best evaluated configuration, typically by a margin
    assert samples.median() > target_mean
    torch.testing.assert_close(samples, sample_max_values(model, A, 32, sampler, seed=0))


def test_gumbel_and_posterior_max_values_agree(mf_data):
    model, X, Y = mf_data
    A = candidate_set(make_ctx(model, X, Y), 64)
    gumbel = sample_max_values(model, A, 64, "gumbel", seed=0)
    exact = sample_max_values(model, A, 64, "posterior", seed=0)
    spread = float(Y.std())
    assert abs(float(gumbel.median() - exact.median())) < 0.5 * spread


# ------------------------------------------------------------------------------------------------
# The objectives
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("with_pending", [False, True])
def test_objective_shapes_values_and_gradients(mf_data, cls, with_pending):
    model, X, Y = mf_data
    pending = torch.tensor([[0.3, 0.6, 0.2], [0.8, 0.1, 1.0]], dtype=DT) if with_pending else None
    acq = cls(**FAST)
    objective = acq.objective(make_ctx(model, X, Y, pending=pending))
    Xq = torch.rand(7, 1, D + 1, dtype=DT, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    value = objective(Xq)
    assert value.shape == (7,) and torch.isfinite(value).all()
    value.sum().backward()
    assert torch.isfinite(Xq.grad).all() and Xq.grad.abs().sum() > 0
    with torch.no_grad():
        gain = gain_of(acq, objective, Xq)
        assert gain.shape == (7,) and torch.all(gain >= 0)  # an information gain
        if not with_pending:  # a batch of one: value = gain / cost
            torch.testing.assert_close(value, gain / cost(Xq[:, 0]))


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("with_pending", [False, True])
def test_objective_gradients_match_finite_differences(mf_data, cls, with_pending):
    model, X, Y = mf_data
    objective = cls(**FAST).objective(make_ctx(model, X, Y, pending=X[:2] if with_pending else None))
    raw = torch.rand(300, 1, D + 1, dtype=DT, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        informative = raw[torch.topk(objective(raw), 3).indices]  # where the gain is far from 0
    assert torch.autograd.gradcheck(objective, (informative.clone().requires_grad_(True),), eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("cls, size", [(MultiFidelityMES, 1200), (MultiFidelityGIBBON, 4500)])
def test_large_batches_are_scored_in_blocks_consistently(mf_data, cls, size):
    model, X, Y = mf_data
    objective = cls(**FAST).objective(make_ctx(model, X, Y, pending=X[:2]))
    Xq = torch.rand(size, 1, D + 1, dtype=DT, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(objective(Xq)[:7], objective(Xq[:7]))


@pytest.mark.parametrize("with_pending", [False, True])
def test_configurations_scored_at_every_level_share_one_batch_with_the_same_moments(mf_data, with_pending):
    """optimize_joint's raw layout (each configuration at every level, consecutively) is scored
    with one posterior batch per configuration; moments and values equal the row-by-row ones."""
    model, X, Y = mf_data
    ctx = make_ctx(model, X, Y, pending=X[:2] if with_pending else None)
    x = torch.rand(5, D, dtype=DT, generator=torch.Generator().manual_seed(9))
    grid = torch.cat([x.repeat_interleave(len(LEVELS), 0), LEVELS.repeat(5).unsqueeze(-1)], -1).unsqueeze(1)  # (15, 1, D + 1)
    assert rows_per_configuration(grid, D) == len(LEVELS)
    assert rows_per_configuration(grid[1:], D) == 1 and rows_per_configuration(grid[:1], D) == 1
    S = X[:2] if with_pending else None
    with torch.no_grad():
        shared = joint_moments(ctx, grid, S, var_floor=0.0)
        alone = [joint_moments(ctx, row.unsqueeze(0), S, var_floor=0.0) for row in grid]
        for field in ("mean_M", "var_M", "var_y", "cov_yM", "explained_M", "explained_y", "explained_yM"):
            torch.testing.assert_close(getattr(shared, field), torch.cat([getattr(m, field) for m in alone]), rtol=1e-6, atol=1e-10)
        for cls in CLASSES:
            objective = cls(**FAST).objective(ctx)
            torch.testing.assert_close(objective(grid), torch.cat([objective(row.unsqueeze(0)) for row in grid]), rtol=1e-6, atol=1e-12)


def test_gibbon_quality_is_below_mes_on_the_same_samples(mf_data):
    model, X, Y = mf_data
    ctx = make_ctx(model, X, Y)
    max_values = MultiFidelityMES(**FAST).max_values(ctx)
    Xq = torch.rand(32, 1, D + 1, dtype=DT, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        mes = MultiFidelityMES(**FAST).objective(ctx, max_values).information_gain(Xq)
        gibbon = MultiFidelityGIBBON(**FAST).objective(ctx, max_values).quality(Xq)
    assert torch.all(gibbon <= mes * (1 + 1e-5) + 1e-9)
    assert gibbon.max() > 0.01 and torch.all(gibbon[mes > 0.05] > 0.1 * mes[mes > 0.05])  # a useful bound


def test_conditioning_on_pending_matches_botorch_fantasy_model(mf_data):
    """The Schur complements of :func:`joint_moments` are the fantasy model's posterior
    (co)variances: conditioning on pending observations does not depend on their values."""
    model, X, Y = mf_data
    ctx = make_ctx(model, X, Y)
    S = torch.tensor([[0.3, 0.6, 0.2], [0.35, 0.55, 1.0]], dtype=DT)
    Xq = torch.tensor([[[0.32, 0.58, 0.4]], [[0.9, 0.1, 0.7]]], dtype=DT)
    with torch.no_grad():
        m = joint_moments(ctx, Xq, S, var_floor=0.0)
        fantasy = model.fantasize(S, SobolQMCNormalSampler(torch.Size([1]), seed=0))
        x = Xq[:, 0]
        Z = torch.stack([x, ctx.at_target(x)], dim=-2)  # (b, 2, d + 1)
        C = fantasy.posterior(Z).distribution.covariance_matrix.reshape(len(x), 2, 2)  # noiseless
        noisy = fantasy.posterior(Z, observation_noise=True).variance.reshape(len(x), 2)[:, 0]
    torch.testing.assert_close(m.var_M - m.explained_M, C[:, 1, 1], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(m.cov_yM - m.explained_yM, C[:, 0, 1], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(m.var_y - m.explained_y, noisy, rtol=1e-5, atol=1e-9)
    assert m.explained_M[0] > 10 * m.explained_M[1]  # the pending points are near the first point


def test_pending_average_matches_botorch_fantasy_models(mf_data):
    """The exact fantasy average of MF-MES equals the average of the unconditioned MF-MES over
    BoTorch fantasy models (same max-values), next to the pending points where it matters."""
    model, X, Y = mf_data
    acq = MultiFidelityMES(**FAST)
    max_values = acq.max_values(make_ctx(model, X, Y))
    raw = torch.rand(256, 1, D + 1, dtype=DT, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        best = raw[torch.argmax(acq.objective(make_ctx(model, X, Y), max_values).information_gain(raw))]
    nearby = best + torch.tensor([[0.02, -0.02, 0.0]], dtype=DT)
    cheaper = best * torch.tensor([[1.0, 1.0, 0.5]], dtype=DT)  # same configuration, lower fidelity
    pending = torch.cat([nearby, cheaper]).clamp(0, 1)
    Xq = torch.stack([best, (best + 0.03).clamp(0, 1), (best - 0.05).clamp(0, 1)])  # (3, 1, d + 1)
    with torch.no_grad():
        exact = acq.objective(make_ctx(model, X, Y, pending=pending), max_values).information_gain(Xq)
        unconditioned = acq.objective(make_ctx(model, X, Y), max_values).information_gain(Xq)
        fantasies = model.fantasize(pending, SobolQMCNormalSampler(torch.Size([1024]), seed=1))
        x = Xq[:, 0]
        Z = torch.stack([x, make_ctx(model, X, Y).at_target(x)], dim=-2).unsqueeze(1)  # (b, 1, 2, d + 1)
        posterior = fantasies.posterior(Z, observation_noise=True)  # batch (b, fantasies)
        C = posterior.distribution.covariance_matrix
        var_M = fantasies.posterior(Z).variance[..., 1, 0]  # noiseless
        rho2 = C[..., 0, 1].square() / (C[..., 0, 0] * var_M)
        gamma = (max_values[:, None, None] - posterior.mean[None, ..., 1, 0]) / var_M.sqrt()
        monte_carlo = mes_information_gain(gamma, rho2).mean((0, 2))
    assert torch.all(exact < 0.5 * unconditioned)  # the pending points took most of the information
    torch.testing.assert_close(exact, monte_carlo, rtol=3e-2, atol=1e-6)


def test_gibbon_batch_value_is_half_log_det_correlation_plus_qualities(mf_data):
    model, X, Y = mf_data
    ctx = make_ctx(model, X, Y)
    acq = MultiFidelityGIBBON(**FAST)
    max_values = acq.max_values(ctx)
    B = torch.tensor([[0.2, 0.7, 0.3], [0.25, 0.65, 1.0], [0.9, 0.2, 0.6]], dtype=DT)
    gain, chosen = 0.0, B[:0]
    with torch.no_grad():
        for z in B:  # the greedy accumulation of propose()
            gain += float(acq.objective(ctx, max_values, chosen).gain(z.reshape(1, 1, -1)))
            chosen = torch.cat([chosen, z.unsqueeze(0)])
        cov = model.posterior(B, observation_noise=True).distribution.covariance_matrix
        sd = cov.diagonal().sqrt()
        log_det_corr = torch.logdet(cov / sd[:, None] / sd[None, :])
        qualities = acq.objective(ctx, max_values).quality(B.unsqueeze(1)).sum()
    assert gain == pytest.approx(float(0.5 * log_det_corr + qualities), rel=1e-6)
    assert log_det_corr < -0.1  # the first two points are correlated: the batch is penalised


# ------------------------------------------------------------------------------------------------
# Proposals
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES)
def test_cheap_perfectly_correlated_fidelity_is_preferred(correlated, cls):
    model, X, Y = correlated
    candidate = cls(**FAST).propose(make_ctx(model, X, Y))
    assert candidate.shape == (1, D + 1)
    assert float(candidate[0, -1]) < 0.3  # cost 0.1 + 0.9 s²: the same information, far cheaper


@pytest.mark.parametrize("cls", CLASSES)
def test_uncorrelated_low_fidelities_are_not_chosen(uncorrelated, cls):
    model, X, Y = uncorrelated
    acq = cls(**FAST)
    ctx = make_ctx(model, X, Y, fidelities=LEVELS)
    candidate = acq.propose(ctx)
    assert float(candidate[0, -1]) == 1.0
    xs = torch.rand(16, 1, D, dtype=DT, generator=torch.Generator().manual_seed(5))
    objective = acq.objective(ctx)
    with torch.no_grad():
        at = {float(s): gain_of(acq, objective, torch.cat([xs, torch.full_like(xs[..., :1], float(s))], -1)) for s in LEVELS}
    assert at[0.0].max() < 0.05 * at[1.0].max()  # noise carries (almost) no information on f*


@pytest.mark.parametrize("cls", CLASSES)
def test_discrete_fidelity_proposals_are_on_the_levels(mf_data, cls):
    model, X, Y = mf_data
    candidates = cls(**FAST).propose(make_ctx(model, X, Y, fidelities=LEVELS), q=2)
    assert candidates.shape == (2, D + 1)
    assert all(float(s) in LEVELS.tolist() for s in candidates[:, -1])
    assert torch.all((candidates[:, :D] >= 0) & (candidates[:, :D] <= 1))


@pytest.mark.parametrize("cls", CLASSES)
def test_pending_points_change_the_suggestion(mf_data, cls):
    model, X, Y = mf_data
    acq = cls(**FAST)
    first = acq.propose(make_ctx(model, X, Y))
    second = acq.propose(make_ctx(model, X, Y, pending=first))
    assert torch.linalg.norm(first - second) > 1e-2


def test_gibbon_batch_of_three_is_distinct(mf_data):
    model, X, Y = mf_data
    batch = MultiFidelityGIBBON(**FAST).propose(make_ctx(model, X, Y), q=3)
    assert batch.shape == (3, D + 1)
    distances = torch.cdist(batch, batch) + torch.eye(3, dtype=DT)
    assert distances.min() > 1e-2


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("sampler", ["gumbel", "posterior"])
def test_same_seed_same_proposal(mf_data, cls, sampler):
    model, X, Y = mf_data
    acq = cls(**{**FAST, "mv_sampler": sampler})
    with torch.random.fork_rng():  # the result must not depend on torch's global RNG
        torch.manual_seed(123)
        first = acq.propose(make_ctx(model, X, Y, seed=7))
        torch.manual_seed(456)
        again = acq.propose(make_ctx(model, X, Y, seed=7))
    assert torch.equal(first, again)


# ------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "option, value",
    [
        ("num_mv_samples", 0),
        ("num_mv_samples", 2.5),
        ("mv_sampler", "thompson"),
        ("num_candidates", -1),
        ("num_restarts", 0),
        ("raw_samples", True),
        ("maxiter", "10"),
    ],
)
def test_bad_options_raise_value_errors_naming_them(cls, option, value):
    with pytest.raises(ValueError, match=option) as err:
        cls(**{option: value})
    assert repr(value) in str(err.value) and cls.name in str(err.value)


def test_allowed_samplers_are_listed_and_options_reported():
    with pytest.raises(ValueError, match="'gumbel', 'posterior'"):
        MultiFidelityMES(mv_sampler="exact")
    assert MultiFidelityGIBBON(mv_sampler="posterior", num_mv_samples=4).options() == {
        "num_mv_samples": 4,
        "mv_sampler": "posterior",
        "num_candidates": 512,
        "num_restarts": 6,
        "raw_samples": 512,
        "maxiter": 50,
    }


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_q_raises(mf_data, cls):
    model, X, Y = mf_data
    with pytest.raises(ValueError, match="q"):
        cls(**FAST).propose(make_ctx(model, X, Y), q=0)

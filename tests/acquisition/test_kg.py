"""Tests of the cost-aware multi-fidelity knowledge gradient (``mfbo.acquisition.kg``)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP, SingleTaskMultiFidelityGP
from botorch.models.transforms import Normalize, Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood

from mfbo.acquisition.base import AcquisitionContext
from mfbo.models import FidelityGaussianLikelihood
from mfbo.acquisition.kg import (
    KGObjective,
    MultiFidelityKG,
    _CholeskyPieces,
    _PosteriorPieces,
    expected_max_gain,
)

DTYPE = torch.double
FAST = dict(num_discrete=16, num_restarts=2, raw_samples=64, maxiter=20)


def target(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(6 * x[..., 0]) + torch.cos(5 * x[..., 1]) + x[..., 0]


def other(x: torch.Tensor) -> torch.Tensor:
    """A smooth function unrelated to :func:`target`."""
    return torch.cos(7 * x[..., 1] + 1.0) * torch.sin(4 * x[..., 0] - 2.0)


def cost(X: torch.Tensor) -> torch.Tensor:
    return 0.1 + 0.9 * X[..., -1] ** 2


def fit(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model.eval()


def make_ctx(model, X, Y, fidelities=None, X_pending=None, seed=0) -> AcquisitionContext:
    return AcquisitionContext(
        model=model, cost=cost, dim=X.shape[-1] - 1, fidelities=fidelities, train_X=X, train_Y=Y,
        X_pending=X_pending, seed=seed, project=lambda x: x,
    )


@pytest.fixture(scope="module")
def correlated():
    """``y(x, s) = f(x)`` at every fidelity: the fitted GP correlates the fidelities almost fully."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        X = torch.rand(20, 3, dtype=DTYPE)
        Y = -target(X).unsqueeze(-1)
        model = fit(SingleTaskGP(X, Y, outcome_transform=Standardize(1)))
    return model, X, Y


@pytest.fixture(scope="module")
def mf_model():
    """A BoTorch multi-fidelity GP on data whose low fidelity is a biased version of the target."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        X = torch.rand(16, 3, dtype=DTYPE)
        Y = -(target(X) + 0.5 * (1 - X[:, 2]) * other(X)).unsqueeze(-1)
        model = fit(SingleTaskMultiFidelityGP(X, Y, data_fidelities=[2], outcome_transform=Standardize(1)))
    return model, X, Y


# ------------------------------------------------------------------------------------------------
# E[max_i (a_i + b_i Z)] - max_i a_i
# ------------------------------------------------------------------------------------------------
def _quadrature(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    z = torch.linspace(-12, 12, 200_001, dtype=DTYPE)
    w = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    return ((a.unsqueeze(-1) + b.unsqueeze(-1) * z).amax(-2) * w).sum(-1) - a.amax(-1)


def _by_intervals(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Independent exact reference: line ``i`` is the maximum on ``[L_i, U_i]``, so
    ``E[max] = Σ_i a_i (Φ(U_i) - Φ(L_i)) + b_i (φ(L_i) - φ(U_i))``; ``O(m^2)``."""
    n = a.shape[-1]
    a_i, a_j, b_i, b_j = a.unsqueeze(-1), a.unsqueeze(-2), b.unsqueeze(-1), b.unsqueeze(-2)
    r = (a_j - a_i) / torch.where(b_i == b_j, torch.ones_like(b_i - b_j), b_i - b_j)
    lower = torch.where(b_i > b_j, r, -torch.inf).amax(-1)
    upper = torch.where(b_i < b_j, r, torch.inf).amin(-1)
    first = torch.arange(n).unsqueeze(-1) > torch.arange(n)  # [i, j]: j comes first
    beaten = ((b_i == b_j) & ((a_j > a_i) | ((a_j == a_i) & first))).any(-1)
    upper = torch.where(beaten | (upper < lower), lower, upper)
    pdf = lambda z: torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)  # noqa: E731
    ndtr = torch.special.ndtr
    value = a * (ndtr(upper) - ndtr(lower)) + b * (pdf(lower) - pdf(upper))
    return value.sum(-1) - a.amax(-1)


def test_expected_max_gain_known_values():
    r2pi = 1 / math.sqrt(2 * math.pi)
    cases = [
        ([0.0, 0.0], [0.0, 1.0], r2pi),  # E[max(0, Z)] = φ(0)
        ([0.0, 0.0], [-1.0, 1.0], 2 * r2pi),  # E|Z|
        ([0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], 2 * r2pi),  # three lines through one point
        ([0.0, 0.0, 0.0, 0.0], [-1.0, 1.0, 1.0, -1.0], 2 * r2pi),  # duplicated lines
        ([1.0, -5.0, 2.0], [0.3, 0.3, 0.3], 0.0),  # equal slopes: no gain
    ]
    for a, b, expected in cases:
        got = expected_max_gain(torch.tensor(a, dtype=DTYPE), torch.tensor(b, dtype=DTYPE))
        assert float(got) == pytest.approx(expected, abs=1e-12)


def test_expected_max_gain_matches_monte_carlo_and_quadrature():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 9, dtype=DTYPE, generator=gen)
    b = torch.randn(6, 9, dtype=DTYPE, generator=gen)
    a[1, 3], b[1, 3] = a[1, 4], b[1, 4]  # a duplicated line
    b[2, 0], a[2, 0] = b[2, 1], a[2, 1] - 1.0  # a line dominated by a parallel one
    b[3] = torch.round(b[3])  # many equal slopes
    a[4, :3] -= 50.0  # lines far below the others
    b[5] = 0.0
    got = expected_max_gain(a, b)
    assert got.shape == (6,)
    assert torch.all(got >= 0) and float(got[5]) == 0.0
    torch.testing.assert_close(got, _quadrature(a, b), atol=1e-8, rtol=1e-7)
    torch.testing.assert_close(got, _by_intervals(a, b), atol=1e-10, rtol=1e-9)
    Z = torch.randn(200_000, dtype=DTYPE, generator=gen)
    samples = (a.unsqueeze(-1) + b.unsqueeze(-1) * Z).amax(-2) - a.amax(-1, keepdim=True)
    se = samples.std(-1) / math.sqrt(Z.numel())
    assert torch.all((got - samples.mean(-1)).abs() <= 4 * se + 1e-12)


def test_expected_max_gain_many_lines_and_batch_shape():
    """With many lines the pruning step must keep every line of the envelope."""
    gen = torch.Generator().manual_seed(1)
    for scale in (0.01, 0.3, 3.0):
        a = torch.randn(2, 3, 120, dtype=DTYPE, generator=gen)
        b = scale * torch.randn(2, 3, 120, dtype=DTYPE, generator=gen)
        got = expected_max_gain(a, b)
        assert got.shape == (2, 3)
        torch.testing.assert_close(got, _by_intervals(a, b), atol=1e-10, rtol=1e-9)


def test_expected_max_gain_in_chunks(monkeypatch):
    """Bounding the temporaries' memory splits the work without changing the values."""
    import mfbo.acquisition.kg as kg

    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(40, 30, dtype=DTYPE, generator=gen), torch.randn(40, 30, dtype=DTYPE, generator=gen)
    whole = expected_max_gain(a, b)
    monkeypatch.setattr(kg, "_ENVELOPE_ELEMENTS", 1000)
    torch.testing.assert_close(expected_max_gain(a, b), whole, rtol=0, atol=0)


def test_expected_max_gain_gradient():
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(3, 7, dtype=DTYPE, generator=gen).requires_grad_(True)
    b = torch.randn(3, 7, dtype=DTYPE, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(expected_max_gain, (a, b))


def test_expected_max_gain_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        expected_max_gain(torch.zeros(3, dtype=DTYPE), torch.zeros(4, dtype=DTYPE))


# ------------------------------------------------------------------------------------------------
# The KG objective
# ------------------------------------------------------------------------------------------------
def test_objective_shape_sign_and_gradient(mf_model):
    model, X, Y = mf_model
    ctx = make_ctx(model, X, Y)
    acq = MultiFidelityKG(**FAST)
    objective = acq.objective(ctx)
    Xc = torch.rand(5, 1, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    value = objective(Xc)
    assert value.shape == (5,)
    assert torch.all(value >= 0) and torch.all(value > 0)
    torch.testing.assert_close(value, objective.kg(Xc) / cost(Xc).reshape(-1))
    (grad,) = torch.autograd.grad(value.sum(), Xc)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # matches central finite differences in every column, the fidelity included
    eps, fd = 1e-6, torch.zeros_like(grad)
    with torch.no_grad():
        for k in range(3):
            step = torch.zeros_like(Xc)
            step[..., k] = eps
            fd[..., k] = ((objective(Xc + step) - objective(Xc - step)) / (2 * eps)).unsqueeze(-1)
    torch.testing.assert_close(grad, fd, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("fidelity_noise", [False, True])
@pytest.mark.parametrize("pending", [False, True])
def test_cholesky_pieces_match_the_posterior(pending, fidelity_noise):
    """The fast path (GP pieces, internal scale) equals the generic one (``model.posterior``),
    with input and outcome transforms, Kriging-believer pending points, and a homoskedastic or
    fidelity-dependent likelihood."""
    gen = torch.Generator().manual_seed(4)
    X = torch.rand(12, 3, dtype=DTYPE, generator=gen)
    Y = -(target(X) * 3.0 + 10.0).unsqueeze(-1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        likelihood = FidelityGaussianLikelihood() if fidelity_noise else None
        model = fit(SingleTaskGP(X, Y, likelihood=likelihood, input_transform=Normalize(3), outcome_transform=Standardize(1)))
    if fidelity_noise:  # make the noise clearly fidelity-dependent
        model.likelihood.noise_covar.extra_noise = 0.5
    assert _CholeskyPieces.supports(model)
    X_pending = torch.rand(3, 3, dtype=DTYPE, generator=gen) if pending else None
    A = torch.cat([torch.rand(20, 2, dtype=DTYPE, generator=gen), torch.ones(20, 1, dtype=DTYPE)], -1)
    C = torch.cat([torch.rand(7, 3, dtype=DTYPE, generator=gen), X[:2]])  # incl. training points
    C1 = torch.cat([C[:, :2], torch.ones(9, 1, dtype=DTYPE)], -1)
    fast, slow = _CholeskyPieces(model, A, X_pending), _PosteriorPieces(model, A, X_pending)
    (a_f, b_f), (a_s, b_s) = fast.lines(C, C1), slow.lines(C, C1)
    offset = model.outcome_transform.means.reshape(())
    torch.testing.assert_close(a_f * fast.scale + offset, a_s, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(b_f * fast.scale, b_s, rtol=1e-7, atol=1e-9)
    ctx = make_ctx(model, X, Y, X_pending=X_pending)
    kg_f, kg_s = KGObjective(fast, ctx).kg(C.unsqueeze(1)), KGObjective(slow, ctx).kg(C.unsqueeze(1))
    torch.testing.assert_close(kg_f, kg_s, rtol=1e-6, atol=1e-10)


def test_generic_path_proposes_the_same_points(mf_model):
    """A model the fast path cannot read (a one-output ``ModelListGP``) goes through
    ``model.posterior`` and gets the same proposals, pending points included."""
    model, X, Y = mf_model
    assert _CholeskyPieces.supports(model)
    wrapped = ModelListGP(model)
    assert not _CholeskyPieces.supports(wrapped)
    pending = torch.tensor([[0.3, 0.6, 0.2]], dtype=DTYPE)
    fast = MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y, X_pending=pending), q=2)
    slow = MultiFidelityKG(**FAST).propose(make_ctx(wrapped, X, Y, X_pending=pending), q=2)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-4)


def test_pending_points_lower_kg_near_them(mf_model):
    model, X, Y = mf_model
    acq = MultiFidelityKG(**FAST)
    ctx = make_ctx(model, X, Y)
    best = acq.propose(ctx)
    before = acq.objective(ctx)(best.unsqueeze(0))
    after = acq.objective(make_ctx(model, X, Y, X_pending=best))(best.unsqueeze(0))
    assert float(after.detach()) < 0.5 * float(before.detach())


# ------------------------------------------------------------------------------------------------
# The discretisation (what experiments/bench_approximations.py relies on)
# ------------------------------------------------------------------------------------------------
def _at_target(X: torch.Tensor) -> torch.Tensor:
    return torch.cat([X[..., :2], torch.ones_like(X[..., :1])], -1)


def test_lines_are_the_posterior_mean_after_one_observation(mf_model):
    """``μ_{n+1}(a, 1) = μ_n(a, 1) + σ̃(a; c) Z``: the lines of the KG are the posterior mean of the
    model conditioned on ``y(c) = μ_n(c) + sqrt(Σ_n(c, c) + τ²) Z``, on the set and at ``(x, 1)``."""
    model, X, Y = mf_model
    gen = torch.Generator().manual_seed(6)
    A = _at_target(torch.rand(12, 3, dtype=DTYPE, generator=gen))
    C = torch.tensor([[0.3, 0.7, 0.4], [0.8, 0.2, 1.0]], dtype=DTYPE)
    pieces = _CholeskyPieces(model, A, None)
    a, b = pieces.lines(C, _at_target(C))  # internal scale: output = offset + scale * internal
    offset, scale = float(model.outcome_transform.means.reshape(())), pieces.scale
    with torch.no_grad():
        y = model.posterior(C.unsqueeze(1), observation_noise=True)
        mu_y, sd_y = y.mean.reshape(-1), y.variance.reshape(-1).sqrt()
        for i in range(len(C)):
            for z in (-2.0, 0.5, 3.0):
                updated = model.condition_on_observations(C[i : i + 1], (mu_y[i] + sd_y[i] * z).reshape(1, 1))
                mean = updated.posterior(torch.cat([A, _at_target(C[i : i + 1])])).mean.reshape(-1)
                torch.testing.assert_close(mean, offset + scale * (a[i] + b[i] * z), rtol=1e-6, atol=1e-8)


def test_kg_grows_with_the_set_when_the_baseline_is_shared(mf_model):
    """``KG`` over ``A ⊂ A'`` is at most ``KG`` over ``A'`` when ``A`` holds the maximiser of ``μ_n``
    over ``A'`` (the expected maximum can only grow, the baseline ``max μ_n`` is the same): why the
    finite set's KG is a lower bound of the dense one when both hold the posterior-mean maximiser.
    (Without a shared baseline KG is not monotone in the set.)"""
    model, X, Y = mf_model
    ctx = make_ctx(model, X, Y)
    sobol = torch.quasirandom.SobolEngine(2, scramble=True, seed=7).draw(512, dtype=DTYPE)
    dense_A = _at_target(torch.cat([sobol, torch.zeros(512, 1, dtype=DTYPE)], -1))
    with torch.no_grad():
        best = int(model.posterior(dense_A).mean.argmax())
    finite_A = torch.cat([dense_A[best : best + 1], dense_A[::64]])
    C = torch.rand(64, 1, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        finite = KGObjective(MultiFidelityKG._pieces(ctx, finite_A), ctx).kg(C)
        dense = KGObjective(MultiFidelityKG._pieces(ctx, dense_A), ctx).kg(C)
        same = KGObjective(MultiFidelityKG._pieces(ctx, finite_A[torch.randperm(len(finite_A), generator=torch.Generator().manual_seed(9))]), ctx).kg(C)
    assert torch.all(finite <= dense * (1 + 1e-9) + 1e-12)
    assert float((finite / dense).median()) < 0.99  # a real gap, not equality
    torch.testing.assert_close(same, finite, rtol=1e-9, atol=1e-12)  # the order of the set is irrelevant


# ------------------------------------------------------------------------------------------------
# Proposals
# ------------------------------------------------------------------------------------------------
def test_correlated_cheap_fidelity_is_preferred(correlated):
    model, X, Y = correlated
    lengthscale = model.covar_module.lengthscale.reshape(-1)
    assert float(lengthscale[-1]) > 3.0  # the fit saw that s does not matter
    x = MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y))
    assert x.shape == (1, 3)
    assert float(x[0, -1]) < 0.3
    # discrete levels: the cheapest is chosen, and it is one of the levels
    levels = torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE)
    x = MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y, fidelities=levels))
    assert float(x[0, -1]) == 0.0


def test_uncorrelated_low_fidelity_is_ignored():
    """The low fidelity is another function, observed at the same configurations."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = torch.rand(10, 2, dtype=DTYPE)
        X = torch.cat([torch.cat([x, torch.full((10, 1), s, dtype=DTYPE)], -1) for s in (0.0, 1.0)])
        Y = -torch.where(X[:, 2] == 1, target(X), other(X)).unsqueeze(-1)
        model = fit(SingleTaskGP(X, Y, outcome_transform=Standardize(1)))
    correlation = math.exp(-0.5 / float(model.covar_module.lengthscale.reshape(-1)[-1]) ** 2)
    assert correlation < 0.05  # the fit saw that the two fidelities are unrelated
    levels = torch.tensor([0.0, 1.0], dtype=DTYPE)
    for seed in range(2):
        x = MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y, fidelities=levels, seed=seed))
        assert float(x[0, -1]) == 1.0


def test_discrete_levels_and_batch(mf_model):
    model, X, Y = mf_model
    levels = torch.tensor([0.25, 0.5, 1.0], dtype=DTYPE)
    acq = MultiFidelityKG(**FAST)
    x = acq.propose(make_ctx(model, X, Y, fidelities=levels), q=3)
    assert x.shape == (3, 3)
    assert all(float(s) in levels.tolist() for s in x[:, -1])
    assert torch.all((x >= 0) & (x <= 1))
    assert torch.cdist(x, x)[~torch.eye(3, dtype=torch.bool)].min() > 1e-3  # distinct points
    torch.testing.assert_close(acq.last_candidates, x)


def test_pending_points_change_the_suggestion(mf_model):
    model, X, Y = mf_model
    acq = MultiFidelityKG(**FAST)
    first = acq.propose(make_ctx(model, X, Y))
    again = MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y))
    torch.testing.assert_close(first, again)  # deterministic given the seed
    second = MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y, X_pending=first))
    assert float(torch.linalg.norm(second - first)) > 0.05


def test_warm_start_reuses_the_last_maximiser(mf_model):
    model, X, Y = mf_model
    ctx = make_ctx(model, X, Y)
    strong = MultiFidelityKG(**FAST)
    best = strong.propose(ctx)
    objective = strong.objective(ctx)
    weak = MultiFidelityKG(num_discrete=16, num_restarts=1, raw_samples=1, maxiter=1, warm_start=True)
    weak_objective = weak.objective(ctx)  # the same step's objective as in weak.propose
    weak.last_candidates = best
    x = weak.propose(ctx)
    assert float(weak_objective(x.unsqueeze(0))) >= float(weak_objective(best.unsqueeze(0))) - 1e-12
    assert float(objective(x.unsqueeze(0))) >= 0.9 * float(objective(best.unsqueeze(0)))


def test_options_and_validation():
    acq = MultiFidelityKG()
    assert acq.name == "mf-kg"
    assert acq.options() == {"num_discrete": 128, "num_restarts": 6, "raw_samples": 256, "maxiter": 50, "warm_start": True}
    for option, bad in [
        ("num_discrete", -1), ("num_discrete", 2.5), ("num_restarts", 0), ("raw_samples", 0),
        ("maxiter", 0), ("maxiter", True), ("warm_start", 1), ("warm_start", "yes"),
    ]:
        with pytest.raises(ValueError, match=rf"option {option} must be .*got {bad!r}"):
            MultiFidelityKG(**{option: bad})


def test_q_validation(mf_model):
    model, X, Y = mf_model
    with pytest.raises(ValueError, match="q must be an integer >= 1"):
        MultiFidelityKG(**FAST).propose(make_ctx(model, X, Y), q=0)

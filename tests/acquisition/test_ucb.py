"""Tests of BOCA (``mf-ucb``, Kandasamy et al. 2017): the UCB step and the fidelity rule."""

from __future__ import annotations

import math

import pytest
import torch
from botorch.acquisition.analytic import UpperConfidenceBound
from botorch.models import SingleTaskMultiFidelityGP
from botorch.models.transforms import Standardize

from mfbo.acquisition.base import AcquisitionContext
from mfbo.acquisition.ei import ExactGPMoments, PosteriorMoments
from mfbo.acquisition.ucb import MultiFidelityUCB

DTYPE = torch.double
FAST = {"num_restarts": 4, "raw_samples": 64, "maxiter": 100}
# cost, f, g, fitted, context, design: fixtures of conftest.py


def step(acq: MultiFidelityUCB, ctx: AcquisitionContext):
    moments = acq.moments(ctx)
    x = acq.select_x(moments, ctx, acq.exploration_weight(ctx))
    return x, acq.fidelity_rule(moments, ctx, x, acq.beta_t(ctx))


@pytest.fixture(scope="module")
def correlated_ctx(context, design, f):
    """Few points, the cheap fidelity equals the target; the UCB maximiser x = 0.25 unexplored."""
    X = design([0.05, 0.45, 0.55, 0.7, 0.95], [0.5, 0.85])
    return context(X, f(X).unsqueeze(-1))


# ------------------------------------------------------------------------------------------------
# The two steps
# ------------------------------------------------------------------------------------------------
def test_x_step_is_the_argmax_of_the_target_ucb(correlated_ctx):
    ctx = correlated_ctx
    acq = MultiFidelityUCB(**FAST)
    beta = acq.exploration_weight(ctx)
    x = acq.select_x(acq.moments(ctx), ctx, beta)
    assert x.shape == (1, 2) and x[0, 1].item() == 1.0
    grid = torch.stack([torch.linspace(0, 1, 4001, dtype=DTYPE), torch.ones(4001, dtype=DTYPE)], -1).unsqueeze(-2)
    ucb = UpperConfidenceBound(ctx.model, beta=beta)  # BoTorch: mean + sqrt(beta) * std
    with torch.no_grad():
        values = ucb(grid)
        at_x = ucb(x.unsqueeze(0))
    assert abs(x[0, 0].item() - grid[int(values.argmax()), 0, 0].item()) < 2e-3
    assert at_x.item() >= values.max().item() - 1e-8


def test_x_step_scores_the_configurations_whose_runs_can_be_continued(correlated_ctx):
    """A continuable configuration with a higher target UCB than the search's point wins, at the
    target; one whose continuation the budget left cannot pay for does not; lower, it loses."""
    from dataclasses import replace

    ctx = correlated_ctx
    acq = MultiFidelityUCB(**FAST)
    beta = acq.exploration_weight(ctx)
    moments = acq.moments(ctx)
    searched = acq.select_x(moments, ctx, beta)
    ucb = UpperConfidenceBound(ctx.model, beta=beta)
    grid = torch.stack([torch.linspace(0, 1, 401, dtype=DTYPE), torch.ones(401, dtype=DTYPE)], -1).unsqueeze(-2)
    with torch.no_grad():
        values = ucb(grid)
    worse = grid[int(values.argmin()), 0]  # the lowest target UCB
    offered = torch.tensor([[worse[0].item(), 0.5], [worse[0].item(), 1.0]], dtype=DTYPE)
    assert torch.equal(acq.select_x(moments, replace(ctx, candidates=offered), beta), searched)

    def best_ucb_at(X):  # a model whose UCB peaks at x = 0.9 exactly, which no search returns
        return -((X[..., 0] - 0.9) ** 2).reshape(-1)

    class Peaked:  # moments whose mean is best_ucb_at and whose variance is nil
        def joint(self, X):
            return best_ucb_at(X).reshape(*X.shape[:-2], 1), torch.zeros(*X.shape[:-2], 1, 1, dtype=DTYPE)

    spike = torch.tensor([[0.9, 0.5]], dtype=DTYPE)
    x = acq.select_x(Peaked(), replace(ctx, candidates=spike), beta)
    assert x.tolist() == [[0.9, 1.0]]
    too_dear = replace(ctx, candidates=spike, cost=lambda X: torch.where((X[..., 0] - 0.9).abs() < 1e-12, 10.0, 0.1), max_cost=1.0)
    assert acq.select_x(Peaked(), too_dear, beta)[0, 0].item() != 0.9


def test_cost_cooled_x_step_prefers_cheap_configurations_early_and_none_at_the_end(correlated_ctx):
    """Two optima of the target UCB: 1.0 at the cheap x = 0.2 (cost 0.1), 1.2 at the expensive
    x = 0.8 (cost ~10). The cost-cooled step divides the optimistic improvement over the
    incumbent by cost^alpha, alpha = 1 - spent / budget: with the budget untouched it takes the
    cheap optimum, with the budget spent (alpha = 0) and without cooling the UCB's argmax."""
    from dataclasses import replace

    def bumps(X):
        x = X[..., 0]
        return torch.maximum(torch.exp(-((x - 0.2) ** 2) / 0.005), 1.2 * torch.exp(-((x - 0.8) ** 2) / 0.005))

    class TwoBumps:  # moments with mean ``bumps`` and no variance, so the UCB is ``bumps``
        def joint(self, X):
            return bumps(X).reshape(*X.shape[:-2], 1), torch.zeros(*X.shape[:-2], 1, 1, dtype=DTYPE)

    def cost(X):
        return 0.1 + 10.0 * torch.sigmoid(40.0 * (X[..., 0] - 0.5))

    def chosen(acq, spent):
        ctx = replace(correlated_ctx, cost=cost, options={"budget": 100.0, "spent": spent})
        return acq.select_x(TwoBumps(), ctx, 1.0)[0, 0].item()

    cooled = MultiFidelityUCB(cost_cooling=True, **FAST)
    assert cooled.cooling_exponent(replace(correlated_ctx, cost=cost, options={"budget": 100.0, "spent": 25.0})) == 0.75
    fidelity_only = replace(correlated_ctx, cost=lambda X: 1.0 + X[..., -1], options={"budget": 100.0, "spent": 25.0})
    assert cooled.cooling_exponent(fidelity_only) is None  # the same price for every x: the plain step
    assert chosen(cooled, 0.0) == pytest.approx(0.2, abs=0.01)
    assert chosen(cooled, 100.0) == pytest.approx(0.8, abs=0.01)
    assert chosen(MultiFidelityUCB(**FAST), 0.0) == pytest.approx(0.8, abs=0.01)
    assert cooled.cooling_exponent(correlated_ctx) is None  # no budget: the plain UCB step


def test_beta_schedule_and_override(correlated_ctx, context):
    ctx = correlated_ctx
    n, d = ctx.train_X.shape[0], ctx.dim
    beta_t = 0.5 * d * math.log(2 * d * (n + 1) + 1)
    assert MultiFidelityUCB().beta_t(ctx) == pytest.approx(beta_t)
    assert MultiFidelityUCB().exploration_weight(ctx) == pytest.approx(0.2 * beta_t)
    assert MultiFidelityUCB(beta_scale=1.0).exploration_weight(ctx) == pytest.approx(beta_t)
    pending = context(ctx.train_X, ctx.train_Y, model=ctx.model, X_pending=torch.rand(3, 2, dtype=DTYPE))
    assert MultiFidelityUCB().beta_t(pending) == pytest.approx(0.5 * d * math.log(2 * d * (n + 4) + 1))
    assert MultiFidelityUCB(beta=2.5).beta_t(ctx) == 2.5 == MultiFidelityUCB(beta=2.5).exploration_weight(ctx)


def test_information_gap_of_the_linear_truncated_fidelity_kernel(context, fitted, f):
    """For BoTorch's LinearTruncatedFidelityKernel the prior correlation of s = 0 with the target
    is exactly 1/sqrt(2) (whatever the hyperparameters), so ξ(0) = 1/sqrt(2) and ξ(1) = 0; ξ is
    read from the model's prior, not from a kernel-specific formula."""
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(10, 2, generator=gen, dtype=DTYPE)
    model = fitted(SingleTaskMultiFidelityGP(X, f(X).unsqueeze(-1), data_fidelities=[1], outcome_transform=Standardize(1)))
    ctx = context(X, f(X).unsqueeze(-1), model=model)
    acq = MultiFidelityUCB(grid_size=11)
    rule = acq.fidelity_rule(acq.moments(ctx), ctx, torch.tensor([0.3, 1.0], dtype=DTYPE), beta=4.0)
    assert rule.xi[0].item() == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert rule.xi[-1].item() == pytest.approx(0.0, abs=1e-6)
    assert (rule.xi[:-1] > 0).all() and (rule.tau > 0).all() and (rule.tau <= 1 + 1e-9).all()


def test_fidelity_rule_is_the_papers(correlated_ctx, cost):
    """Z_t = {z: λ(z) < λ(z•), τ > γ = ξ (λ/λ•)^q, ξ >= β^{-1/2} max ξ}; z_t its cheapest member."""
    ctx = correlated_ctx
    acq = MultiFidelityUCB(grid_size=21)
    beta = 3.0
    rule = acq.fidelity_rule(acq.moments(ctx), ctx, torch.tensor([0.25, 1.0], dtype=DTYPE), beta)
    q = 1 / (1 + 1 + 2)
    assert torch.allclose(rule.gamma, rule.xi * (rule.cost / cost(torch.ones(1, 2, dtype=DTYPE))) ** q)
    expected = (rule.cost < rule.cost[-1]) & (rule.tau > rule.gamma) & (rule.xi >= rule.xi.max() / math.sqrt(beta))
    assert torch.equal(rule.eligible, expected) and expected.any()
    assert rule.chosen == rule.s[expected][rule.cost[expected].argmin()].item()
    # γ scales with the threshold option: a huge threshold leaves only the target
    assert MultiFidelityUCB(threshold=1e6).fidelity_rule(acq.moments(ctx), ctx, torch.tensor([0.25]), beta).chosen == 1.0
    # and the exponent option replaces q
    rule_q = MultiFidelityUCB(grid_size=21, cost_exponent=2.0).fidelity_rule(acq.moments(ctx), ctx, torch.tensor([0.25]), beta)
    assert torch.allclose(rule_q.gamma, rule.xi * (rule.cost / rule.cost[-1]) ** 2.0)


def test_tau_is_discounted_by_the_noise_at_each_fidelity(correlated_ctx):
    """``τ_eff = τ sqrt(τ² / (τ² + σ²(s)))``: with a fidelity-dependent likelihood whose cheap
    levels are very noisy, the cheap fidelity fails the test that it passes without noise."""
    from botorch.models import SingleTaskGP

    from mfbo.models import FidelityGaussianLikelihood

    ctx = correlated_ctx
    acq, x, beta = MultiFidelityUCB(grid_size=21), torch.tensor([0.25, 1.0], dtype=DTYPE), 3.0
    quiet = acq.fidelity_rule(acq.moments(ctx), ctx, x, beta)
    assert quiet.chosen < 1.0  # the cheap fidelity is used while it is noise-free
    model = SingleTaskGP(ctx.train_X, ctx.train_Y, likelihood=FidelityGaussianLikelihood(), outcome_transform=Standardize(1))
    model.load_state_dict(ctx.model.state_dict(), strict=False)
    model.likelihood.noise_covar.noise = 1e-4
    model.likelihood.noise_covar.extra_noise = 100.0
    noisy_ctx = AcquisitionContext(**{**ctx.__dict__, "model": model})
    moments = acq.moments(noisy_ctx)
    noisy = acq.fidelity_rule(moments, noisy_ctx, x, beta)
    points = torch.cat([x.expand(21, 2)[:, :1], noisy.s.unsqueeze(-1)], -1).unsqueeze(-2)
    _, cov = moments.joint(points)
    noise = moments.noise(points)[..., 0]
    latent = noisy.tau / (cov[..., 0, 0] / (cov[..., 0, 0] + noise)).sqrt()
    assert (noisy.tau[:10] < 0.2 * latent[:10]).all()  # the noisy half of the range is discounted
    # ... and the noisiest, cheapest fidelities leave Z_t: a dearer, quieter one is chosen
    assert not (noisy.eligible & ~quiet.eligible).any() and noisy.eligible.sum() < quiet.eligible.sum()
    assert noisy.chosen > quiet.chosen


def test_generic_and_fast_moments_give_the_same_rule(correlated_ctx):
    ctx = correlated_ctx
    acq = MultiFidelityUCB(grid_size=11)
    x = torch.tensor([0.3, 1.0], dtype=DTYPE)
    pending = torch.tensor([[0.32, 0.0]], dtype=DTYPE)
    for P in (None, pending):
        fast = acq.fidelity_rule(ExactGPMoments(ctx.model, P), ctx, x, 4.0)
        generic = acq.fidelity_rule(PosteriorMoments(ctx.model, P), ctx, x, 4.0)
        assert torch.allclose(fast.xi, generic.xi, atol=1e-6) and torch.allclose(fast.tau, generic.tau, atol=1e-5)
    # a pending low-fidelity point nearby shrinks τ at s = 0 and leaves the prior (ξ) alone
    before = acq.fidelity_rule(ExactGPMoments(ctx.model), ctx, x, 4.0)
    after = acq.fidelity_rule(ExactGPMoments(ctx.model, pending), ctx, x, 4.0)
    assert after.tau[0] < 0.5 * before.tau[0]
    assert torch.allclose(after.xi, before.xi)


# ------------------------------------------------------------------------------------------------
# Behaviour
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fidelities", [None, torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE)])
def test_a_cheap_perfectly_correlated_fidelity_is_used_early(correlated_ctx, fidelities, context):
    ctx = context(correlated_ctx.train_X, correlated_ctx.train_Y, fidelities, model=correlated_ctx.model)
    x, rule = step(MultiFidelityUCB(**FAST), ctx)
    assert abs(x[0, 0].item() - 0.25) < 0.1
    assert rule.xi[0] < 0.5  # the model learnt that s hardly matters
    assert rule.chosen == 0.0
    candidate = MultiFidelityUCB(**FAST).propose(ctx)
    assert candidate[0, 1].item() == 0.0


def test_an_uncorrelated_explored_fidelity_leaves_the_target(context, design, f, g):
    """The cheap level is an unrelated function (ξ ≈ 1), already well sampled (τ small): the
    threshold γ ≈ (λ/λ•)^q is far above τ, so BOCA queries the target."""
    X = design([i / 11 for i in range(12)], [0.1, 0.5, 0.6, 0.9])
    Y = torch.where(X[:, 1] > 0.5, f(X), g(X)).unsqueeze(-1)
    ctx = context(X, Y, torch.tensor([0.0, 1.0], dtype=DTYPE))
    x, rule = step(MultiFidelityUCB(**FAST), ctx)
    assert rule.xi[0] > 0.9 and rule.tau[0] < rule.gamma[0]
    assert rule.chosen == 1.0
    assert MultiFidelityUCB(**FAST).propose(ctx)[0, 1].item() == 1.0
    # the same design with a correlated cheap level: ξ small, the rule is much more permissive
    ctx_corr = context(X, f(X).unsqueeze(-1), torch.tensor([0.0, 1.0], dtype=DTYPE))
    _, rule_corr = step(MultiFidelityUCB(**FAST), ctx_corr)
    assert rule_corr.gamma[0] < 0.1 * rule.gamma[0]


def test_discrete_fidelities_return_levels(context):
    gen = torch.Generator().manual_seed(1)
    levels = torch.tensor([0.0, 0.4, 1.0], dtype=DTYPE)
    X = torch.rand(10, 3, generator=gen, dtype=DTYPE)
    X[:, -1] = levels[torch.randint(3, (10,), generator=gen)]
    Y = (-((X[:, :2] - 0.4) ** 2).sum(-1)).unsqueeze(-1)
    batch = MultiFidelityUCB(**FAST).propose(context(X, Y, levels), q=3)
    assert batch.shape == (3, 3)
    assert all(float(s) in levels.tolist() for s in batch[:, -1])


def test_pending_points_change_the_suggestion(correlated_ctx, context):
    acq = MultiFidelityUCB(**FAST)
    first = acq.propose(correlated_ctx)
    ctx = context(correlated_ctx.train_X, correlated_ctx.train_Y, model=correlated_ctx.model, X_pending=first)
    second = acq.propose(ctx)
    assert abs(second[0, 0] - first[0, 0]).item() > 1e-2
    batch = acq.propose(correlated_ctx, q=2)
    assert torch.allclose(batch, torch.cat([first, second]))


# ------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------
def test_options_and_defaults(cost):
    acq = MultiFidelityUCB()
    assert acq.name == "mf-ucb"
    assert acq.options() == {
        "beta": None, "beta_scale": 0.2, "threshold": 1.0, "cost_exponent": None, "target_share": (0.25, 0.5), "window": 20, "design_in_window": True, "max_cost_ratio": 1.0,
        "threshold_step": 1.1, "grid_size": 101, "cost_cooling": False, "num_restarts": 10, "raw_samples": 512,
        "maxiter": 200,
    }
    ctx = AcquisitionContext(
        model=None, cost=cost, dim=2, fidelities=None, train_X=torch.rand(4, 3, dtype=DTYPE),
        train_Y=torch.rand(4, 1, dtype=DTYPE), X_pending=None, seed=0, project=lambda x: x,
    )
    assert len(MultiFidelityUCB(grid_size=7).fidelity_candidates(ctx)) == 7


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("beta", 0.0, "> 0"),
        ("beta", -1, "> 0"),
        ("beta_scale", 0, "> 0"),
        ("threshold", float("inf"), "> 0"),
        ("cost_exponent", 0, "> 0"),
        ("grid_size", 1, ">= 2"),
        ("cost_cooling", 1, "True or False"),
        ("target_share", (0.5, 0.25), "0 <= low < high <= 1"),
        ("target_share", (0.25, 0.5, 0.75), "0 <= low < high <= 1"),
        ("target_share", 0.25, "0 <= low < high <= 1"),
        ("window", 0, ">= 1"),
        ("design_in_window", "no", "True or False"),
        ("max_cost_ratio", 0.0, "(0, 1]"),
        ("max_cost_ratio", float("nan"), "(0, 1]"),
        ("max_cost_ratio", 1.5, "(0, 1]"),
        ("threshold_step", 1.0, "> 1"),
        ("num_restarts", 0, ">= 1"),
        ("raw_samples", "64", ">= 1"),
        ("maxiter", 0, ">= 1"),
    ],
)
def test_bad_options_name_the_option_value_and_allowed_values(option, value, allowed):
    with pytest.raises(ValueError) as err:
        MultiFidelityUCB(**{option: value})
    message = str(err.value)
    assert "mf-ucb" in message and option in message and repr(value) in message and allowed in message


def test_max_cost_ratio_keeps_fidelities_that_cost_nearly_the_target_out(correlated_ctx):
    ctx, x, beta = correlated_ctx, torch.tensor([0.25, 1.0], dtype=DTYPE), 3.0
    free = MultiFidelityUCB(grid_size=21).fidelity_rule(MultiFidelityUCB().moments(ctx), ctx, x, beta)
    eligible_ratios = free.cost[free.eligible] / free.cost[-1]
    assert free.eligible.sum() >= 2
    cap = float(eligible_ratios.max()) * 0.999  # the dearest eligible fidelity goes out, the others stay
    capped = MultiFidelityUCB(grid_size=21, max_cost_ratio=cap).fidelity_rule(MultiFidelityUCB().moments(ctx), ctx, x, beta)
    assert torch.equal(capped.eligible, free.eligible & (free.cost < cap * free.cost[-1]))
    assert capped.eligible.sum() == free.eligible.sum() - 1
    cheapest = float(free.cost[free.eligible].min() / free.cost[-1])
    none = MultiFidelityUCB(grid_size=21, max_cost_ratio=cheapest * 0.999).fidelity_rule(MultiFidelityUCB().moments(ctx), ctx, x, beta)
    assert not none.eligible.any() and none.chosen == 1.0  # nothing cheap enough: the target


# ------------------------------------------------------------------------------------------------
# The authors' target-share controller
# ------------------------------------------------------------------------------------------------
def _history_ctx(cost, at_target: list[bool], design_size: int) -> AcquisitionContext:
    s = torch.tensor([1.0 if t else 0.2 for t in at_target], dtype=DTYPE)
    X = torch.cat([torch.rand(len(s), 2, dtype=DTYPE, generator=torch.Generator().manual_seed(0)), s[:, None]], -1)
    return AcquisitionContext(
        model=None, cost=cost, dim=2, fidelities=None, train_X=X, train_Y=torch.zeros(len(s), 1, dtype=DTYPE),
        X_pending=None, seed=0, project=lambda x: x, options={"design_size": design_size},
    )


def test_threshold_controller_replays_the_authors_rule(cost):
    acq = MultiFidelityUCB(window=4, threshold_step=2.0)
    # 8 design points, then 3 cheap choices: steps k = 8..11 see windows of 0/4 target -> x2 each
    history = [True, False, False, False, False, False, False, False] + [False] * 3
    assert acq.threshold_scale(_history_ctx(cost, history, 8)) == 2.0**4
    # all at the target: every window share is 1 >= 0.5 -> /2 per step
    assert acq.threshold_scale(_history_ctx(cost, [True] * 10, 8)) == 0.5**3
    # hand-computed, window 4, steps k = 5, 6, 7 see the observations k-4 .. k-1:
    # k=5: F,F,T,F -> 1/4 <= 0.25 -> x2; k=6: F,T,F,T -> 2/4 >= 0.5 -> /2; k=7: T,F,T,F -> /2
    history = [True, False, False, True, False, True, False]
    assert acq.threshold_scale(_history_ctx(cost, history, 5)) == 0.5
    # the paper's fixed threshold
    assert MultiFidelityUCB(target_share=None).threshold_scale(_history_ctx(cost, [False] * 30, 0)) == 1.0


def test_controller_without_the_design_in_its_window_reads_only_the_models_own_choices(cost):
    """``design_in_window=False``: the window holds post-design queries only and the share is
    over the queries it holds, so a cheap design does not raise the threshold by itself."""
    acq = MultiFidelityUCB(window=4, threshold_step=2.0, design_in_window=False)
    design = [True] + [False] * 7
    assert acq.threshold_scale(_history_ctx(cost, design, 8)) == 1.0  # no choice made yet: no update
    # the dragonfly window would read 0/4 at each of k = 8..11 (x2^4, the test above); here
    # k = 9: T -> 1/1 (/2); k = 10: T,F -> 1/2 (/2); k = 11: T,F,F -> 1/3 (no change)
    assert acq.threshold_scale(_history_ctx(cost, design + [True, False, False], 8)) == 0.25
    # k = 12..14 hold the last 4 post-design queries: F,F,F,F -> x2 at k = 13 and 14 (k = 12: T,F,F,F -> 1/4, x2)
    assert acq.threshold_scale(_history_ctx(cost, design + [True, False, False, False, False, False], 8)) == 0.25 * 2.0**3
    # the windows over the last 4 post-design queries, not the design
    assert acq.threshold_scale(_history_ctx(cost, [False] * 8 + [True] * 5, 8)) == 0.5**5


def test_learning_curve_points_are_not_queries_for_the_controller_or_the_beta_schedule(cost):
    """A strategy appends learning-curve points below the target to ``train_X``; counted as
    queries they would make every window look cheap and raise the threshold step after step."""
    from dataclasses import replace

    acq = MultiFidelityUCB(window=4, threshold_step=2.0)
    ctx = _history_ctx(cost, [True, False, True, False, True, True], 4)  # k = 4, 5, 6: 2/4, 2/4, 3/4 -> /2 each
    curve = torch.cat([ctx.train_X[:, :2], torch.full((6, 1), 0.1, dtype=DTYPE)], -1)  # 6 points at s = 0.1
    with_curves = replace(
        ctx, train_X=torch.cat([ctx.train_X, curve]), train_Y=torch.zeros(12, 1, dtype=DTYPE),
        options={**ctx.options, "curve_points": 6},
    )
    assert torch.equal(with_curves.evaluated_X, ctx.train_X)
    assert acq.threshold_scale(with_curves) == acq.threshold_scale(ctx) == 0.5**3
    assert acq.beta_t(with_curves) == acq.beta_t(ctx)
    # unmarked, they read as 6 more cheap queries: k = 7, 8 see 2/4 (/2), k = 9..12 see <= 1/4 (x2)
    assert acq.threshold_scale(replace(with_curves, options=ctx.options)) == 0.5**3 * 0.5**2 * 2.0**4


def test_controller_raises_the_threshold_until_the_target_is_chosen(correlated_ctx, cost):
    """On the perfectly correlated cheap level the paper's rule picks the cheap fidelity; after a
    long run of cheap queries the controller's coefficient makes the same rule pick the target."""
    ctx = correlated_ctx
    acq = MultiFidelityUCB(grid_size=21)
    x, beta = torch.tensor([0.25, 1.0], dtype=DTYPE), 3.0
    moments = acq.moments(ctx)
    assert acq.fidelity_rule(moments, ctx, x, beta).chosen < 1.0
    scale = MultiFidelityUCB().threshold_scale(_history_ctx(cost, [False] * 60, 0))
    assert scale == pytest.approx(1.1**61)
    assert acq.fidelity_rule(moments, ctx, x, beta, scale).chosen == 1.0

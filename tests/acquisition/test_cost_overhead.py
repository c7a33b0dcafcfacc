"""The fixed cost per evaluation (``AcquisitionContext.cost_overhead``, the strategies' option
``cost_overhead``): what the acquisitions divide by, and what it does to near-free fidelities."""

from __future__ import annotations

import pytest
import torch
from botorch.models import SingleTaskMultiFidelityGP
from botorch.models.transforms import Standardize

import mfbo
from mfbo.acquisition.base import AcquisitionContext
from mfbo.acquisition.kg import MultiFidelityKG
from mfbo.acquisition.mes import MultiFidelityGIBBON, MultiFidelityMES
from mfbo.strategies import make

DT = torch.double
D = 2
LEVELS = torch.tensor([0.0, 0.5, 1.0], dtype=DT)
FAST = dict(num_restarts=2, raw_samples=64, maxiter=20)
MES_FAST = dict(FAST, num_candidates=64, num_mv_samples=8)


def acquisition(cls):
    return cls(**(MES_FAST if cls is not MultiFidelityKG else FAST))


def near_free(X: torch.Tensor) -> torch.Tensor:
    """``1e-3 + s²``: the cheapest level costs a thousandth of the target."""
    return 1e-3 + X[..., -1] ** 2


@pytest.fixture(scope="module")
def biased_data(fitted):
    """20 points at random fidelities; the low fidelities carry a strong bias."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, D, generator=g, dtype=DT)
    s = torch.rand(20, 1, generator=g, dtype=DT)
    target = torch.sin(3 * x[:, 0]) + torch.cos(4 * x[:, 1]) - (x**2).sum(-1)
    Y = (target + 0.8 * (1 - s[:, 0]) * torch.sin(5 * x[:, 0])).unsqueeze(-1)
    X = torch.cat([x, s], -1)
    model = fitted(SingleTaskMultiFidelityGP(X, Y, data_fidelities=[D], outcome_transform=Standardize(1)))  # conftest.py
    return model.eval(), X, Y


def context(data, overhead):
    model, X, Y = data
    return AcquisitionContext(
        model=model, cost=near_free, dim=D, fidelities=LEVELS, train_X=X, train_Y=Y, X_pending=None, seed=0,
        project=lambda x: x, cost_overhead=overhead,
    )


def test_effort_adds_the_overhead_and_the_budget_cap_still_reads_the_cost(biased_data):
    ctx = context(biased_data, 0.25)
    Z = torch.tensor([[[0.3, 0.4, 0.0]], [[0.3, 0.4, 1.0]]], dtype=DT)
    torch.testing.assert_close(ctx.effort(Z), near_free(Z) + 0.25)
    torch.testing.assert_close(context(biased_data, 0.0).effort(Z), near_free(Z))
    assert ctx.cost is near_free  # what the optimiser compares with max_cost


@pytest.mark.parametrize("cls", [MultiFidelityMES, MultiFidelityKG])
def test_the_value_per_cost_divides_by_cost_plus_overhead(biased_data, cls):
    acq = acquisition(cls)
    Z = torch.rand(8, 1, D + 1, dtype=DT, generator=torch.Generator().manual_seed(3))
    values = {}
    for overhead in (0.0, 0.4):
        ctx = context(biased_data, overhead)
        with torch.random.fork_rng():  # KG's inner maximisation needs gradients
            torch.manual_seed(0)
            objective = acq.objective(ctx, acq.max_values(ctx)) if cls is MultiFidelityMES else acq.objective(ctx)
            values[overhead] = objective(Z).detach()
    cost = near_free(Z).reshape(-1)
    torch.testing.assert_close(values[0.4] * (cost + 0.4), values[0.0] * cost)


@pytest.mark.parametrize("cls", [MultiFidelityMES, MultiFidelityGIBBON, MultiFidelityKG])
def test_an_overhead_moves_proposals_off_a_near_free_biased_fidelity(biased_data, cls):
    """Dividing by a cost of 1e-3 makes the biased cheapest level win whatever it is worth; with an
    overhead of half the target's cost the proposal goes up the ladder."""
    acq = acquisition(cls)
    assert float(acq.propose(context(biased_data, 0.0))[0, -1]) == 0.0
    assert float(acq.propose(context(biased_data, 0.5))[0, -1]) > 0.0


def test_strategy_option_is_a_fraction_of_the_mean_target_cost_and_is_checked():
    problem = mfbo.problems.get("currin")
    strategy = make("mf-mes", problem, seed=0, cost_overhead=0.1)
    assert strategy.options()["cost_overhead"] == 0.1
    mfbo.minimize(problem, strategy, budget=8 * problem.cost({"x1": 0.5, "x2": 0.5}), seed=0)
    cost = strategy._surrogate()[3]
    target = float(cost(torch.tensor([[[0.5, 0.5, 1.0]]], dtype=DT)).reshape(()))
    assert strategy._overhead(cost) == pytest.approx(0.1 * target)  # currin's cost depends on s alone
    assert make("mf-mes", problem, seed=0)._overhead(cost) == 0.0
    with pytest.raises(ValueError, match=r"option cost_overhead must be a number in \[0, 1\], got 2"):
        make("mf-kg", problem, cost_overhead=2)

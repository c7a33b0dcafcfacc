"""Cost models: KnownCost tabulates a problem's fidelity-only cost (exact at levels, close on a
continuous axis, refuses unknown or config-dependent costs); LearnedCost recovers a cost curve."""

import numpy as np
import pytest
import torch

from mfbo import Fidelity, Float, Problem, Space, problems
from mfbo.models import CostModel, KnownCost, LearnedCost, LogFidelityValue

DT = torch.double


def inputs(s, d, seed=0):
    """``(len(s), d + 1)`` inputs with random configurations and fidelity column ``s``."""
    s = torch.as_tensor(s, dtype=DT)
    x = torch.rand(s.numel(), d, generator=torch.Generator().manual_seed(seed), dtype=DT)
    return torch.cat([x, s.reshape(-1, 1)], dim=-1)


def test_known_cost_is_exact_at_the_levels_of_a_discrete_fidelity():
    problem = problems.get("quadratic-ladder")
    cost = KnownCost.from_problem(problem)
    assert isinstance(cost, CostModel) and cost.kind == "known"
    d = problem.space.dim
    s = torch.tensor([problem.fidelity.normalize(level) for level in problem.fidelity.grid()], dtype=DT)
    assert torch.equal(cost(inputs(s, d)), 0.1 * torch.arange(1.0, 6.0, dtype=DT))
    # between levels: linear (0.1 * level is linear in s = (level - 1) / 4), slope 0.4 in s
    X = inputs([0.1, 0.6, 0.9], d).requires_grad_(True)
    c = cost(X)
    assert torch.allclose(c, 0.1 * (1 + 4 * X[:, -1].detach()))
    c.sum().backward()
    assert torch.allclose(X.grad[:, -1], torch.full((3,), 0.4, dtype=DT)) and (X.grad[:, :-1] == 0).all()


@pytest.mark.parametrize("name", ["quadratic-ladder", "forrester", "mfhartmann3-good"])
def test_known_cost_matches_the_problem_at_every_level(name):
    problem = problems.get(name)
    cost = KnownCost.from_problem(problem)
    levels = problem.fidelity.grid()
    s = torch.tensor([problem.fidelity.normalize(v) for v in levels], dtype=DT)
    config = problem.space.sample(np.random.default_rng(1))
    expected = torch.tensor([problem.cost(config, v) for v in levels], dtype=DT)
    assert torch.allclose(cost(inputs(s, problem.space.dim)), expected, rtol=1e-12)


def test_known_cost_is_close_on_a_continuous_fidelity_and_keeps_batch_shapes():
    problem = problems.get("hartmann3")
    cost = KnownCost.from_problem(problem, grid_size=65)
    s = torch.linspace(0, 1, 1001, dtype=DT)
    c = cost(inputs(s, 3))
    assert (c - (0.1 + 0.9 * s**2)).abs().max() < 1e-4  # 0.9 h^2 / 8 with h = 1/64
    knots = torch.linspace(0, 1, 65, dtype=DT)
    assert torch.allclose(cost(inputs(knots, 3)), 0.1 + 0.9 * knots**2, rtol=1e-12)
    X = torch.rand(4, 3, 4, dtype=DT)
    assert cost(X).shape == (4, 3)
    assert cost(torch.tensor([0.5, 0.5, 0.5, 2.0], dtype=DT)) == pytest.approx(1.0)  # clamped beyond the axis


def test_known_cost_refuses_problems_without_a_fidelity_or_a_stated_cost():
    space = Space(x=Float(0.0, 1.0))
    with pytest.raises(ValueError, match="has no fidelity"):
        KnownCost.from_problem(Problem.from_function(lambda c: c["x"], space, name="plain"))
    no_cost = Problem.from_function(lambda c, z: c["x"], space, Fidelity("z", 0.0, 1.0), name="nocost")
    with pytest.raises(ValueError, match=r"'nocost' does not state its cost \(problem.cost returned None\)"):
        KnownCost.from_problem(no_cost)


def test_known_cost_refuses_a_config_dependent_cost():
    class ConfigCost(Problem):
        def cost(self, config, fidelity=None):
            return 0.1 + config["x"] * fidelity

    problem = ConfigCost("configcost", Space(x=Float(0.0, 1.0)), Fidelity("z", 0.0, 1.0))
    with pytest.raises(ValueError, match="depends on the configuration.*LearnedCost"):
        KnownCost.from_problem(problem)


def test_known_cost_validates_its_table():
    with pytest.raises(ValueError, match="strictly increasing"):
        KnownCost(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="> 0"):
        KnownCost(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 2.0]))


def test_learned_cost_recovers_a_known_curve():
    d, n = 2, 40
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.random((n, d + 1)), dtype=DT)
    costs = (0.1 + 0.9 * X[:, -1] ** 2) * torch.as_tensor(np.exp(0.02 * rng.standard_normal(n)), dtype=DT)
    model = LearnedCost(X, costs, seed=0)
    assert model.kind == "learned" and model.report.ok
    s = torch.linspace(0, 1, 21, dtype=DT)
    Xt = inputs(s, d, seed=1).requires_grad_(True)
    pred = model(Xt)
    truth = 0.1 + 0.9 * s**2
    assert pred.shape == (21,) and (pred > 0).all()
    assert ((pred.detach() - truth).abs() / truth).max() < 0.1
    pred.sum().backward()
    assert torch.isfinite(Xt.grad).all() and (Xt.grad[:, -1] > 0).all()  # cost grows with s
    assert model(Xt.detach().reshape(3, 7, d + 1)).shape == (3, 7)


def test_learned_cost_rejects_bad_costs():
    X = torch.rand(5, 3, dtype=DT)
    with pytest.raises(ValueError, match="costs finite and > 0"):
        LearnedCost(X, torch.tensor([1.0, 2.0, 0.0, 1.0, 1.0], dtype=DT))
    with pytest.raises(ValueError, match=r"train_X must be \(n, d \+ 1\) and costs \(n,\)"):
        LearnedCost(X, torch.ones(4, dtype=DT))


def test_learned_cost_prediction_is_the_posterior_median_of_the_fitted_gp():
    """The cached-weights prediction equals ``exp(model.posterior(X).mean)`` at any batch shape."""
    gen = torch.Generator().manual_seed(0)
    X = torch.rand(60, 4, dtype=torch.double, generator=gen)
    costs = torch.exp(2 * X.sum(-1)) * (1 + 0.05 * torch.rand(60, dtype=torch.double, generator=gen))
    cost = LearnedCost(X, costs, seed=0)
    Z = torch.rand(9, 2, 1, 4, dtype=torch.double, generator=gen)
    reference = cost.model.posterior(Z.reshape(-1, 1, 4)).mean.reshape(9, 2, 1).exp()
    assert torch.allclose(cost(Z), reference, rtol=1e-6)


def test_learned_cost_reuses_hyperparameters_without_refitting():
    gen = torch.Generator().manual_seed(1)
    X = torch.rand(30, 3, dtype=torch.double, generator=gen)
    costs = torch.exp(X.sum(-1))
    first = LearnedCost(X[:20], costs[:20], seed=0)
    reused = LearnedCost(X, costs, previous_state=first.hyperparameters, refit=False)
    assert reused.report is None
    for name, value in first.hyperparameters.items():
        assert torch.equal(reused.hyperparameters[name], value)
    assert torch.allclose(reused(X[20:]), costs[20:], rtol=0.2)  # it conditions on the new points
    with pytest.raises(ValueError, match="refit=False needs the previous_state"):
        LearnedCost(X, costs, refit=False)


def _power_law_costs(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """``cost(x, e) = exp(3 x_0) e`` over epochs ``e in 1..50`` (linear ``s``); most configurations
    seen at epoch 5 only, a few at 20 and 50."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 3, dtype=torch.double, generator=g)
    epochs = torch.tensor([[5, 5, 5, 5, 20, 20, 50][i % 7] if i < n - 3 else 5 for i in range(n)], dtype=torch.double)
    X[:, -1] = (epochs - 1) / 49
    return X, (3 * X[:, 0]).exp() * epochs


def test_learned_cost_with_the_fidelity_trend_extrapolates_a_configurations_cost_up_the_fidelity():
    """The power-law mean carries an expensive configuration seen at epoch 5 to epochs 1 and 50;
    the constant mean reverts towards the average configuration's cost."""
    X, costs = _power_law_costs()
    at_five = torch.nonzero((X[:, -1] - 4 / 49).abs() < 1e-12).reshape(-1)
    j = int(at_five[torch.argmax(X[at_five, 0])])  # the most expensive configuration seen at epoch 5 only
    at = lambda s: torch.cat([X[j, :2], torch.tensor([s], dtype=torch.double)]).unsqueeze(0)  # noqa: E731
    trend, constant = LearnedCost(X, costs, seed=0, trend=LogFidelityValue(1, 50)), LearnedCost(X, costs, seed=0)
    with torch.no_grad():
        assert float(trend(at(1.0))) == pytest.approx(10 * float(costs[j]), rel=0.05)
        assert float(trend(at(0.0))) == pytest.approx(float(costs[j]) / 5, rel=0.05)
        assert float(constant(at(1.0))) < 0.8 * 10 * float(costs[j]) and float(constant(at(0.0))) > 2 * float(costs[j]) / 5
        assert trend.model.mean_module.slope.item() > 0


def test_log_fidelity_value_on_both_scales_and_where_it_cannot_be_taken():
    s = torch.tensor([0.0, 0.5, 1.0], dtype=torch.double)
    torch.testing.assert_close(LogFidelityValue(1, 51)(s), torch.tensor([1.0, 26.0, 51.0], dtype=torch.double).log())
    torch.testing.assert_close(LogFidelityValue(1, 100, log=True)(s), torch.tensor([1.0, 10.0, 100.0], dtype=torch.double).log())
    epochs = Fidelity("epoch", 1, 52, integer=True)
    assert LogFidelityValue.from_fidelity(epochs).target == 52
    assert LogFidelityValue.from_fidelity(Fidelity("fraction", 0.0, 1.0)) is None
    with pytest.raises(ValueError, match="0 < low < target"):
        LogFidelityValue(0, 1)

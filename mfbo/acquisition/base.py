"""The interface between the multi-fidelity GP strategy and its acquisitions.

Conventions (shared by every module in :mod:`mfbo.acquisition` and :mod:`mfbo.models`):

- **Inputs** are ``d + 1`` columns: the unit-cube encoding of the configuration
  (:meth:`mfbo.Space.encode`, ``d = Space.dim``) followed by the normalised fidelity
  ``s in [0, 1]`` (:meth:`mfbo.Fidelity.normalize`; ``s = 1`` is the target fidelity).
  Tensors are float64.
- **Outputs**: models are fitted to ``Y = -value`` because BoTorch maximises; mfbo minimises,
  and the sign is flipped once, where the strategy builds ``train_Y``.
- **Cost**: ``ctx.cost(X)`` maps inputs of shape ``batch x q x (d + 1)`` (any leading batch
  shape) to positive costs of shape ``batch x q``, in the problem's cost units. It is
  differentiable in ``X`` where the cost model allows.
- **Randomness**: :meth:`Acquisition.propose` runs inside
  :func:`mfbo.rng.torch_seed_scope`, so torch's global RNG is already seeded from the run seed;
  ``ctx.seed`` is there for code that takes an explicit seed (QMC samplers, Sobol engines).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from botorch.models.model import Model
from torch import Tensor

__all__ = ["AcquisitionContext", "Acquisition", "CostFn"]

#: ``X (..., d + 1) -> cost (...)``, positive.
CostFn = Callable[[Tensor], Tensor]


@dataclass
class AcquisitionContext:
    """Everything an acquisition may use to propose the next ``(x, s)`` points.

    Attributes:
        model: fitted BoTorch model on ``d + 1`` input columns, one output (``-value``).
        cost: the active cost model (known or learned), see the module docstring.
        dim: ``d``, the number of configuration columns.
        fidelities: for a discrete fidelity, the allowed normalised values, shape ``(L,)``,
            increasing, ending at ``1.0``; ``None`` for a continuous fidelity on ``[0, 1]``.
        train_X: ``n x (d + 1)`` inputs of the successful observations.
        train_Y: ``n x 1`` targets (``-value``).
        X_pending: ``m x (d + 1)`` inputs asked but not yet told, or ``None``.
        seed: an int seed for samplers that take one.
        project: maps unit-cube configuration columns ``(..., d)`` onto encodings of valid
            configurations (rounds integers, one-hot categoricals); identity for float-only
            spaces. Apply it to final candidates, not inside gradient-based optimisation.
        options: free-form extras, never required: ``budget`` and ``spent`` (the run's cost
            budget and what it has spent), ``design_size`` (how many trials the initial design
            asked for; the observations after them are the model's own choices),
            ``curve_points`` (how many rows at the end of ``train_X`` and ``train_Y`` are
            learning-curve points the strategy added beside its evaluations; see
            :attr:`evaluated_X`).
        candidates: ``k x (d + 1)`` points that the optimiser scores as they are, besides its
            own search, or ``None``: on a resumable problem, the continuations of evaluated
            configurations to higher fidelities, which ``cost`` charges only the increment
            (:class:`~mfbo.models.ContinuationCost`). Only joint ``(x, s)`` searches use them.
        max_cost: what the run's budget has left (:meth:`mfbo.strategies.Strategy.budget_left`),
            or ``None``: a joint ``(x, s)`` search never proposes a point whose ``cost``
            exceeds it while it scored one that does not (:func:`~mfbo.acquisition.optimize.optimize_joint`).
        cost_overhead: a fixed cost, in the problem's units, that every evaluation carries
            besides ``cost`` where an acquisition weighs value against cost (:meth:`effort`):
            BoTorch's ``AffineFidelityCostModel(fixed_cost=...)``. It keeps an acquisition that
            divides by the cost from valuing near-free evaluations without bound. It is not
            charged, and the budget cap ``max_cost`` compares ``cost`` alone.
    """

    model: Model
    cost: CostFn
    dim: int
    fidelities: Tensor | None
    train_X: Tensor
    train_Y: Tensor
    X_pending: Tensor | None
    seed: int
    project: Callable[[Tensor], Tensor]
    options: dict[str, Any] | None = None
    candidates: Tensor | None = None
    max_cost: float | None = None
    cost_overhead: float = 0.0

    def effort(self, X: Tensor) -> Tensor:
        """``cost(X) + cost_overhead``, shape ``X.shape[:-1]``: what an acquisition divides its
        value by (or weighs it against)."""
        cost = self.cost(X)
        return cost + self.cost_overhead if self.cost_overhead else cost

    @property
    def target_s(self) -> float:
        return 1.0

    @property
    def bounds(self) -> Tensor:
        """``2 x (d + 1)`` box bounds of the joint ``(x, s)`` space."""
        return torch.stack([torch.zeros(self.dim + 1, dtype=torch.double), torch.ones(self.dim + 1, dtype=torch.double)])

    @property
    def evaluated_X(self) -> Tensor:
        """``train_X`` without the learning-curve points a strategy appended to it
        (``options["curve_points"]`` rows at the end): the evaluations themselves, ``(n, d + 1)``,
        in the order they were told. Rules that count or replay the queries read this."""
        curve_points = int((self.options or {}).get("curve_points", 0))
        return self.train_X[: self.train_X.shape[0] - curve_points]

    def at_target(self, X: Tensor) -> Tensor:
        """Append (or overwrite) the fidelity column with the target: ``(..., d) -> (..., d + 1)``."""
        X = X[..., : self.dim]
        return torch.cat([X, torch.ones_like(X[..., :1])], dim=-1)


class Acquisition:
    """A cost-aware multi-fidelity acquisition: picks configuration and fidelity jointly.

    Subclasses set :attr:`name`, take their knobs as keyword arguments in ``__init__`` (each
    validated with an error naming the option and its allowed values), and implement
    :meth:`propose`.
    """

    name: ClassVar[str] = "acquisition"
    #: whether :meth:`propose` supports ``q > 1`` (all may still be asked with pending points).
    supports_batch: ClassVar[bool] = True
    #: whether the acquisition maximises a value divided by the cost of ``(x, s)`` (KG, MES,
    #: GIBBON, EI), rather than choosing the fidelity by a rule (BOCA); such acquisitions are
    #: restricted to a ladder of fidelities on resumable problems by default (option
    #: ``fidelity_levels`` of :class:`mfbo.strategies.mf_gp.MultiFidelityGPStrategy`).
    per_unit_cost: ClassVar[bool] = True

    def propose(self, ctx: AcquisitionContext, q: int = 1) -> Tensor:
        """Return ``q x (d + 1)`` candidates: configuration columns in ``[0, 1]`` and a fidelity
        column on the allowed set (one of ``ctx.fidelities`` when discrete)."""
        raise NotImplementedError  # abstract

    def options(self) -> dict[str, Any]:
        """The acquisition's knobs, for logs: every ``__init__`` parameter, read back from the
        attribute of the same name (subclasses store each validated option under its name)."""
        params = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in params if name != "self"}

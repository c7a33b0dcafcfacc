"""Fixtures shared by the acquisition tests (``test_ei.py``, ``test_ucb.py``).

Each helper is a fixture that returns a function, so a test asks for it by name: ``cost`` (the
cost model), ``f`` and ``g`` (two orthogonal 1-D test functions), ``fitted`` (fit a model's
hyperparameters), ``context`` (an :class:`AcquisitionContext`, fitting a ``SingleTaskGP`` unless
given a model) and ``design`` (1-D configurations at a low fidelity and at the target).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood

from mfbo.acquisition.base import AcquisitionContext

DTYPE = torch.double


def _cost(X: torch.Tensor) -> torch.Tensor:
    return 0.1 + 0.9 * X[..., -1] ** 2


def _f(X: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * math.pi * X[..., 0])


def _g(X: torch.Tensor) -> torch.Tensor:  # orthogonal to f on [0, 1]
    return torch.cos(2 * math.pi * X[..., 0])


def _fitted(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def _context(X, Y, fidelities=None, model=None, X_pending=None) -> AcquisitionContext:
    model = model if model is not None else _fitted(SingleTaskGP(X, Y, outcome_transform=Standardize(1)))
    return AcquisitionContext(
        model=model, cost=_cost, dim=X.shape[-1] - 1, fidelities=fidelities, train_X=X, train_Y=Y,
        X_pending=X_pending, seed=0, project=lambda x: x,
    )


def _design(lows, highs, s_low=0.0):
    """1-D configurations observed at ``s_low`` and at the target."""
    return torch.tensor([[x, s_low] for x in lows] + [[x, 1.0] for x in highs], dtype=DTYPE)


@pytest.fixture(scope="session")
def cost():
    """``X (..., d + 1) -> 0.1 + 0.9 s²``, the cost of every context built here."""
    return _cost


@pytest.fixture(scope="session")
def f():
    """``sin(2π x)`` on the first column."""
    return _f


@pytest.fixture(scope="session")
def g():
    """``cos(2π x)`` on the first column, orthogonal to ``f`` on ``[0, 1]``."""
    return _g


@pytest.fixture(scope="session")
def fitted():
    """``fitted(model)``: fits the hyperparameters by maximum marginal likelihood, warnings
    silenced; returns the model."""
    return _fitted


@pytest.fixture(scope="session")
def context():
    """``context(X, Y, fidelities=None, model=None, X_pending=None)``: the acquisition context,
    fitting a ``SingleTaskGP`` with ``Standardize`` when no model is given."""
    return _context


@pytest.fixture(scope="session")
def design():
    """``design(lows, highs, s_low=0.0)``: 1-D configurations observed at ``s_low`` and at the
    target, ``(len(lows) + len(highs), 2)``."""
    return _design

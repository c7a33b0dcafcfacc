"""Surrogates for multi-fidelity BO: the GP on ``(x, s)``, its robust fitting, and cost models.

- :func:`build_mf_gp`: a BoTorch ``SingleTaskGP`` on ``d + 1`` columns (configuration, then the
  normalised fidelity) with one of :data:`KERNELS` (:mod:`mfbo.models.kernels`,
  :mod:`mfbo.models.mf_gp`) and a likelihood from :data:`NOISE_MODELS`, by default noise that
  grows towards cheap fidelities (:mod:`mfbo.models.noise`).
- :func:`fit_model` / :class:`FitReport`: warm-started, retried, never-raising MAP fitting, on
  a subset of the data when it is large (:mod:`mfbo.models.fit`).
- :class:`OutputWarp` / :data:`OUTPUT_WARPS`: monotone warps of the objective values (identity,
  Gaussian copula, Yeo-Johnson) fitted before the GP (:mod:`mfbo.models.warping`).
- :class:`CostModel`, :class:`KnownCost`, :class:`LearnedCost`, :class:`ContinuationCost`: ``X (..., d + 1) -> cost (...)``
  (:mod:`mfbo.models.cost`).

>>> model = build_mf_gp(train_X, train_Y, kernel="linear-truncated")   # doctest: +SKIP
>>> report = fit_model(model, seed=0, previous_state=last_state)       # doctest: +SKIP
"""

from .cost import ContinuationCost, CostModel, KnownCost, LearnedCost, LogFidelityValue
from .fit import FitReport, fit_model
from .kernels import KERNELS
from .mf_gp import build_mf_gp
from .noise import NOISE_MODELS, FidelityGaussianLikelihood
from .warping import OUTPUT_WARPS, OutputWarp

__all__ = ["KERNELS", "NOISE_MODELS", "FidelityGaussianLikelihood", "build_mf_gp", "fit_model", "FitReport", "CostModel", "KnownCost", "LearnedCost", "ContinuationCost", "LogFidelityValue", "OUTPUT_WARPS", "OutputWarp"]

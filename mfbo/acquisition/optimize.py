"""Maximise an acquisition jointly over configuration and fidelity.

:func:`optimize_joint` takes any callable ``acqf: X (b, 1, d + 1) -> (b,)`` (a BoTorch
``AcquisitionFunction`` or a plain function) and returns the best ``1 x (d + 1)`` point.

- **Continuous fidelity**: ``raw_samples`` scrambled-Sobol points of the joint box are scored in
  one batched call; the ``num_restarts`` best start L-BFGS-B over all ``d + 1`` columns, all
  restarts in one batched objective (the sum over restarts, whose gradient separates).
- **Discrete fidelity**: every raw configuration is scored at *every* level in one batched call
  (``raw_samples * L`` points, a configuration's ``L`` rows consecutive and in one chunk, which
  an acquisition may exploit: :func:`mfbo.acquisition.mes.joint_moments`) rather than one
  optimisation per level as BoTorch's ``optimize_acqf_mixed`` does; each restart then keeps its
  own level fixed while L-BFGS-B moves ``x``. The cost is one optimisation instead of ``L``.

Both paths finish with ``ctx.project`` on the configuration columns and re-score the projected
candidates, so the returned point is a valid configuration and its value is honest. The
context's explicit ``candidates`` (continuations of evaluated configurations) join that final
scoring unchanged: they are discrete choices whose cost is only exact where they stand, so
they are compared, never polished.

**Within the budget.** With ``ctx.max_cost`` set (what the run's budget has left), a joint search
ranks the points whose ``ctx.cost`` exceeds it below every point within it, at the raw scoring
and at the final one, so a cost-aware acquisition near the end of a run proposes the best thing
the budget still pays for instead of one the loop would refuse (which ends the run with budget
unspent). When no scored point is within it, the scores are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..lbfgsb import minimize_lbfgsb
from .base import AcquisitionContext

__all__ = ["optimize_joint", "score_in_chunks", "sequential_greedy", "within_budget"]

AcqFn = Callable[[Tensor], Tensor]
#: Rows per call when scoring many points without gradients.
_CHUNK = 2048


def score_in_chunks(acqf: AcqFn, X: Tensor, chunk: int = _CHUNK) -> Tensor:
    """Evaluate ``acqf`` on ``X`` of shape ``(n, q, d + 1)`` in chunks, without gradients: ``(n,)``."""
    with torch.no_grad():
        return torch.cat([acqf(X[i : i + chunk]).reshape(-1) for i in range(0, X.shape[0], chunk)])


def within_budget(scores: Tensor, X: Tensor, ctx: AcquisitionContext) -> Tensor:
    """``scores (n,)`` of the points ``X (n, 1, d + 1)`` with those whose cost exceeds
    ``ctx.max_cost`` set to ``-inf``, unless that would leave none (module docstring)."""
    if ctx.max_cost is None:
        return scores
    with torch.no_grad():
        over = ctx.cost(X).reshape(-1) > ctx.max_cost
    if bool(over.all()):
        return scores
    return scores.masked_fill(over, -torch.inf)


def _lbfgsb(acqf: AcqFn, X0: Tensor, free: Tensor, maxiter: int) -> Tensor:
    """Batched L-BFGS-B ascent of ``acqf`` from starts ``X0 (b, 1, D)``, moving only the
    columns where ``free`` (bool, ``(D,)``) is true; all columns stay in ``[0, 1]``."""
    shape = X0[..., free].shape
    fixed = X0.detach().clone()

    def assemble(z: np.ndarray) -> Tensor:
        X = fixed.clone()
        X[..., free] = torch.as_tensor(z, dtype=X0.dtype).reshape(shape)
        return X

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        zt = torch.as_tensor(z, dtype=X0.dtype).requires_grad_(True)
        X = fixed.clone()
        X[..., free] = zt.reshape(shape)
        loss = -acqf(X).sum()
        (grad,) = torch.autograd.grad(loss, zt)
        return float(loss.detach()), grad.detach().numpy().astype(np.float64)

    z0 = X0[..., free].detach().reshape(-1).numpy().astype(np.float64)
    res = minimize_lbfgsb(fun, z0, [(0.0, 1.0)] * z0.size, maxiter)
    return assemble(res.x)


def optimize_joint(
    acqf: AcqFn,
    ctx: AcquisitionContext,
    *,
    num_restarts: int = 10,
    raw_samples: int = 512,
    maxiter: int = 200,
    fixed_s: float | None = None,
    extra_starts: Tensor | None = None,
    respect_budget: bool | None = None,
    score_candidates: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Maximise ``acqf`` over ``(x, s)``; returns ``(candidate (1, d + 1), value ())``.

    Args:
        acqf: ``X (b, 1, d + 1) -> (b,)``, differentiable in ``X``.
        ctx: the acquisition context (dimension, allowed fidelities, projection, seed).
        num_restarts: number of L-BFGS-B starts, chosen as the best raw points.
        raw_samples: number of Sobol configurations scored to pick the starts (each at every
            level when the fidelity is discrete).
        maxiter: L-BFGS-B iterations.
        fixed_s: optimise ``x`` only, with the fidelity fixed at this normalised value (the
            context's ``candidates`` and ``max_cost`` are then ignored: such searches find a
            point of the model, e.g. the posterior-mean maximiser, not a proposal, unless
            ``score_candidates`` or ``respect_budget``).
        extra_starts: ``(k, d + 1)`` points always scored as candidate starts (e.g. the last
            step's maximiser, or the incumbents), to warm-start the search.
        respect_budget: rank points over ``ctx.max_cost`` last (module docstring); default:
            for joint searches only (``fixed_s`` None).
        score_candidates: let ``ctx.candidates`` join the final scoring, as they are; with
            ``fixed_s``, their distinct configurations at that fidelity (BOCA's target search
            scores the runs it could continue this way). Default: for joint searches only.
    """
    if respect_budget is None:
        respect_budget = fixed_s is None
    if score_candidates is None:
        score_candidates = fixed_s is None
    d = ctx.dim
    sobol = torch.quasirandom.SobolEngine(d + 1, scramble=True, seed=ctx.seed)
    raw = sobol.draw(raw_samples, dtype=torch.double)
    if fixed_s is not None:
        levels = torch.tensor([float(fixed_s)], dtype=torch.double)
    elif ctx.fidelities is not None:
        levels = ctx.fidelities.to(torch.double)
    else:
        levels = None
    if levels is not None:  # every raw x at every level
        xs = raw[:, :d].repeat_interleave(len(levels), dim=0)
        raw = torch.cat([xs, levels.repeat(raw_samples).unsqueeze(-1)], dim=-1)
    if extra_starts is not None and extra_starts.numel():
        extra = extra_starts.to(torch.double).reshape(-1, d + 1)
        if levels is not None:
            extra = torch.cat([extra[:, :d].repeat_interleave(len(levels), 0), levels.repeat(extra.shape[0]).unsqueeze(-1)], -1)
        raw = torch.cat([raw, extra])
    raw = raw.unsqueeze(1)  # (n, 1, d + 1)
    per_config = 1 if levels is None else len(levels)  # chunks keep a configuration's levels together
    values = torch.nan_to_num(score_in_chunks(acqf, raw, chunk=per_config * (_CHUNK // per_config)), nan=-torch.inf)
    if respect_budget:
        values = within_budget(values, raw, ctx)
    starts = raw[torch.topk(values, min(num_restarts, len(values))).indices]
    free = torch.ones(d + 1, dtype=torch.bool)
    if levels is not None:
        free[d] = False
    polished = _lbfgsb(acqf, starts, free, maxiter)
    candidates = torch.cat([polished, starts])  # the optima, and the starts as a fallback
    candidates[..., :d] = ctx.project(candidates[..., :d])
    if score_candidates and ctx.candidates is not None and ctx.candidates.numel():
        offered = ctx.candidates.to(torch.double).reshape(-1, d + 1)
        if fixed_s is not None:
            configs = torch.unique(offered[:, :d], dim=0)
            offered = torch.cat([configs, torch.full((len(configs), 1), float(fixed_s), dtype=torch.double)], -1)
        candidates = torch.cat([candidates, offered.unsqueeze(1)])
    scores = torch.nan_to_num(score_in_chunks(acqf, candidates), nan=-torch.inf)
    if respect_budget:
        scores = within_budget(scores, candidates, ctx)
    best = int(torch.argmax(scores))
    return candidates[best].reshape(1, d + 1).detach(), scores[best]


def sequential_greedy(propose_one: Callable[[AcquisitionContext], Tensor], ctx: AcquisitionContext, q: int) -> Tensor:
    """Build a ``q x (d + 1)`` batch one point at a time, each added to ``X_pending`` before the
    next is chosen (the "sequential greedy" / Kriging-believer-free scheme BoTorch uses for
    ``optimize_acqf(..., sequential=True)``). ``propose_one(ctx) -> (1, d + 1)``."""
    from dataclasses import replace

    chosen: list[Tensor] = []
    for _ in range(q):
        pending = ctx.X_pending if not chosen else torch.cat([p for p in (ctx.X_pending, *chosen) if p is not None])
        chosen.append(propose_one(replace(ctx, X_pending=pending)))
    return torch.cat(chosen)

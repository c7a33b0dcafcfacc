r"""Multi-fidelity max-value entropy search (``mf-mes``) and its GIBBON lower bound (``mf-gibbon``).

Both acquisitions value an observation ``y = y(x, s)`` by the information it carries about
``f* = max_x f(x, 1)``, the best value of the **target**-fidelity objective (models are fitted to
``-value``, so the maximum is the best value), and divide it by the evaluation cost
``ctx.cost(x, s)``.

References
----------
- [WJ17] Z. Wang, S. Jegelka. *Max-value entropy search for efficient Bayesian optimization.*
  ICML 2017.
- [T20] S. Takeno, H. Fukuoka, Y. Tsukada, T. Koyama, M. Shiga, I. Takeuchi, M. Karasuyama.
  *Multi-fidelity Bayesian optimization with max-value entropy search and its parallelization.*
  ICML 2020.
- [M21] H. B. Moss, D. S. Leslie, J. González, P. Rayson. *GIBBON: General-purpose
  Information-Based Bayesian OptimisatioN.* JMLR 22, 2021.

The one Gaussian pair behind both
---------------------------------
Under the posterior, the noisy observation ``y`` at ``(x, s)`` and the noiseless target value
``f_M = f(x, 1)`` are jointly Gaussian with means ``(μ_y, μ_M)``, variances ``(v_y, σ_M²)``
(``v_y`` includes the observation noise) and covariance ``c``; ``ρ = c / sqrt(v_y σ_M²)``.
All four moments come from **one** ``model.posterior(..., observation_noise=True)`` call on the
three inputs ``[(x, s), (x, 1), (x, 1)]``: observation noise only sits on the diagonal, so the
off-diagonal entry between the two copies of ``(x, 1)`` is the noiseless ``σ_M²``, and the entry
between ``(x, s)`` and ``(x, 1)`` is ``c`` (also when ``s = 1``). Pending or batch inputs ``S``
are appended to the same call (see below).

MF-MES ([T20], the multi-fidelity form of [WJ17])
-------------------------------------------------
MES replaces the conditioning on ``f*`` by the truncation ``f_M <= f*`` and averages over
samples ``f*_j`` of the max-value:

.. math::

    \alpha_{\rm MES}(x, s) = \frac1J \sum_j \Big( H[y] - H[y \mid f_M \le f^*_j] \Big),
    \qquad \gamma_j = \frac{f^*_j - \mu_M}{\sigma_M}.

With ``u = (y - μ_y) / sqrt(v_y)`` the truncated density of ``u`` is the skew normal
``p(u) = φ(u) Φ((γ - ρu) / sqrt(1 - ρ²)) / Φ(γ)``, and the entropy difference splits into a
closed-form part and a Kullback-Leibler divergence (:func:`mes_information_gain`):

.. math::

    H[y] - H[y \mid f_M \le f^*] = \tfrac12 \rho^2 \gamma \lambda(\gamma)
        + \mathbb E_{p}\Big[\log \Phi\big(\tfrac{\gamma - \rho u}{\sqrt{1 - \rho^2}}\big)
        - \log \Phi(\gamma)\Big], \qquad \lambda = \varphi / \Phi,

because ``E_p[u²] = 1 - ρ² γ λ(γ)``. The KL term is ``>= 0`` and so is the sum (the skew
normal's variance ``1 - ρ² λ(γ)(γ + λ(γ))`` is below 1, so its entropy is below ``H[y]``); at
``ρ = 1`` it is [WJ17]'s ``γλ/2 - log Φ(γ)``, at ``ρ = 0`` it is 0. [T20] evaluate
the same one-dimensional integral numerically; here it is a composite Gauss-Legendre rule
(3 panels x 24 nodes, self-normalised) over the skew normal's bulk (its closed-form mean ± 8
standard deviations), the middle panel on the transition of ``Φ((γ - ρu) / sqrt(1 - ρ²))`` whose
width ``∝ sqrt(1 - ρ²) / ρ`` vanishes as ``ρ -> 1``. Against a 30-digit ``mpmath`` reference on
``γ ∈ [-12, 6]``, ``ρ ∈ [0.01, 1 - 1e-9]`` the relative error is below ``5e-5``; the value is
deterministic and smooth in ``x``, so L-BFGS-B sees no Monte Carlo noise. Where ``γ >= 8`` the
gain is below ``3e-14`` nats and the quadrature is skipped (GIBBON's bound, of the same order,
is used), which makes scoring a raw Sobol design about ten times cheaper.

MF-GIBBON ([M21])
-----------------
GIBBON bounds ``H[y | f_M <= f*]`` by the entropy of a Gaussian with the same variance
``v_y (1 - ρ² λ(γ)(γ + λ(γ)))``, which gives the *quality* term
(:func:`gibbon_information_gain`), a lower bound on the MES term above:

.. math::

    0 \le -\tfrac12 \log\big(1 - \rho^2 \lambda(\gamma)(\gamma + \lambda(\gamma))\big)
      \le H[y] - H[y \mid f_M \le f^*].

For a batch ``B`` of observations, with pending observations ``P`` already under way, the
GIBBON value is the sum of the quality terms plus the *repulsion* term, half the log-determinant
of the batch's predictive correlation matrix; conditioning on ``P`` turns it into

.. math::

    \alpha_G(B \mid P) = \tfrac12 \log \frac{|\Sigma_{B \mid P}|}{\prod_{i \in B} v_i}
        + \sum_{i \in B} \frac1J \sum_j -\tfrac12 \log\big(1 - \rho_i^2 \lambda(\gamma_{ij})
        (\gamma_{ij} + \lambda(\gamma_{ij}))\big),

``= ½ log|C_{P∪B}| - ½ log|C_P| + Σ quality`` with ``C`` the correlation matrices of the noisy
observations. Batches are built greedily as in [M21]: step ``k`` adds the ``z`` maximising the
whole batch's value per unit of the batch's cost,
``α_G(B_{k-1} ∪ {z} | P) / (c(B_{k-1}) + c(z))``. By the chain rule of determinants the
repulsion of ``z`` is ``½ log(Var(y_z | y_{P ∪ B_{k-1}}) / v_z)``, so each step only needs the
posterior of ``z`` jointly with ``P ∪ B_{k-1}``. With ``q = 1`` and no pending points this is the
quality term divided by the cost.

Max-value samples
-----------------
Drawn once per :meth:`propose` (shared by all restarts and all ``q`` greedy steps) on a finite
candidate set ``A`` at ``s = 1``: ``num_candidates`` scrambled-Sobol configurations (through
``ctx.project``), the evaluated configurations (at most ``num_candidates`` of them: those with the
highest posterior mean at the target) and the pending configurations.

- ``mv_sampler="gumbel"`` ([WJ17]): ``P(f* <= y) ≈ Π_{a ∈ A} Φ((y - μ(a)) / σ(a))`` from the
  marginals, its quartiles found by bisection, a Gumbel distribution matched to them, and
  ``num_mv_samples`` stratified (scrambled Sobol) quantiles of that Gumbel.
- ``mv_sampler="posterior"``: ``num_mv_samples`` joint posterior samples of ``f(A, 1)`` (dense
  Cholesky of the ``|A| x |A|`` covariance, seeded normal draws), their maxima.

The Gumbel treats the marginals as independent, and the maximum of independent variables is
stochastically larger than that of positively correlated ones (Slepian). Measured by
``experiments/bench_approximations.py`` (``experiments/results/bench_approximations.md``: the
strategies' GP on ``currin``, ``augmented-branin`` and ``hartmann3`` after 20 and 40
evaluations at mixed fidelities, 3 seeds) against the maxima of exact joint posterior samples
on 4096 Sobol configurations plus ``A``: the Gumbel's mean ``f*`` is too high by 0.2-3.2
posterior standard deviations of ``f(·, 1)`` (median over seeds, in the median standard
deviation over the grid, the unit of ``γ``; on ``augmented-branin`` at ``n = 40`` its median
best value is -54.6 against -38.1), while ``"posterior"`` is within 0.31 of the exact samples.
The acquisition moves less than ``f*``: over 64 random candidates, Spearman's ρ of MES (12
samples, as used) against MES with 256 exact samples is 0.78-0.98 with the Gumbel and
0.86-1.00 with ``"posterior"`` (medians over seeds; 0.69 and 0.78 at worst); the argmax among
them keeps at least 0.76 (Gumbel) and 1.00 (posterior) of the reference maximum.

Every sample is floored at ``max_{a ∈ A} μ(a)``, the best value the model already believes is
attained: a sample below it makes ``γ`` very negative at the incumbent and the information gain
explode there.

Pending points
--------------
- ``mf-mes``: the information gain is conditioned on the pending observations ``y_P``. Given
  ``y_P``, the covariances of ``(y, f_M)`` shrink by known Schur complements (the covariance
  half of the Kriging believer, :func:`mfbo.acquisition.posterior.conditioning_factor`), and the
  mean of ``f_M`` moves by a Gaussian shift of variance ``Var(f_M) - Var(f_M | y_P)`` (the only
  mean that enters ``γ``), so the average over fantasies ``y_P`` is a one-dimensional Gaussian
  expectation, done by 16-node Gauss-Hermite quadrature (within about 1% of an average over 2048
  BoTorch fantasy models next to the pending points, and far closer elsewhere). Where the
  shift's standard deviation is below 1% of ``sd(f_M | y_P)`` (most of the space, away from the
  pending points) the unshifted value is used: its relative error is about ``1e-4``. ``q > 1``:
  sequential greedy, each chosen point becoming pending.
- ``mf-gibbon``: pending points enter the repulsion term as shown above.

Deviations, and differences from BoTorch
----------------------------------------
- BoTorch's ``qMultiFidelityMaxValueEntropy`` has the same target (the noisy observation ``y``,
  its covariance with ``f(x, 1)`` from the noiseless joint posterior, ``f*`` on the candidate
  set projected to the target) but estimates ``H[y | f_M <= f*]`` by Monte Carlo over 128 ``y``
  samples with a control variate whose coefficient is a correlation rather than a regression
  coefficient; that estimate is noisy in ``x`` and can be negative. Here the integral is done by
  deterministic quadrature. [T20]'s main text values the noiseless ``f(x, s)``; the noisy ``y``
  follows their noisy-observation extension (their Appendix C, which BoTorch also follows).
- Pending points: BoTorch fantasises 16 Monte Carlo models; here the fantasy average is exact
  (see above). ``f*`` comes from the current model with the pending configurations added to the
  candidate set, as in BoTorch. [T20]'s parallel MF-MES is a different construction for
  asynchronous workers and is not reproduced.
- BoTorch's ``qMultiFidelityLowerBoundMaxValueEntropy`` divides the *incremental* gain of each new
  batch point by that point's own cost (``InverseCostWeightedUtility``); [M21]'s batch
  multi-fidelity construction, followed here, divides the whole batch's gain by the whole
  batch's cost. BoTorch's repulsion term also mixes the covariance of ``model(X)`` (standardised
  scale under an outcome transform) with ``posterior`` variances (original scale); here all
  moments come from one posterior call.
- The repulsion term is the exact log-determinant; Trieste's GIBBON down-weights it by
  ``1 / |batch|²`` by default (``rescaled_repulsion``); not done here.
- Max-value samples are drawn once per :meth:`propose` and shared by the ``q`` greedy steps
  (BoTorch re-draws them per step); the floor at the best posterior mean is described above.
- Costs come from ``ctx.cost`` (BoTorch defaults to an affine fidelity cost).
- Numerical shortcuts (both below ``1e-4`` relative, see above): no quadrature where ``γ >= 8``,
  and no fantasy average where the pending points barely move the mean of ``f(x, 1)``.

Known behaviour on learning-curve problems
------------------------------------------
On LCBench ``mf-mes`` can spend most of a run at the cheapest rung: lcbench/146212 seed 0
(``cost_overhead=0.1``) made 342 of its 559 evaluations at epoch 1, lcbench/3945 seed 2 (Gumbel
``f*``) 502 of 651, with 3 at the target. The fitted model believes epoch 1 informative: on
lcbench/146212 the autoregressive scale ``a(0) ~ 0.6`` gives a prior correlation of 0.5 between
epochs 1 and 52 at equal ``x``, 0.77-0.88 in the posterior at unexplored ``x``. The surrogate
disagrees: ``mfbo calibrate lcbench/<task> --configs 300 --levels 1 3 9 27 --seed 0`` gives
Spearman's rho between epoch 1 and epoch 52 of -0.27 on 146212, -0.05 on 7593 and 0.36 on 3945
(precision of the top 10 %: 0.00, 0.00, 0.70), and already 0.64, 0.68 and 0.86 at epoch 3. A
scale linear in ``s`` cannot turn from negative at epoch 1 to strongly positive at epoch 3
(``"autoregressive-shaped"`` can, and did not make ``mf-ucb`` better:
:mod:`mfbo.models.kernels`). A fresh configuration's gain at epoch 1 was a sixth to a seventh of
its gain at the target, and epoch 1 costs 0.098, 0.011 and 0.046 of a target evaluation on these
tasks. Both samplers' ``f*`` were far above the best observed value (Gumbel 0.14-0.35, posterior
-0.02 to 0.30, on ``-value``, best observed -0.04: the GP does not know that an error rate is
bounded). Replaying the first 150-171 trials of the first run (its own RNG path lost) valued the
run's epoch-1 choices 400 times below the target point then chosen: how strongly the acquisition
prefers epoch 1 also depends on the hyperparameter optimum a fit lands in.
The strategies' option ``level_screen`` (:mod:`mfbo.strategies.level_screen`) drops the levels
whose observed ranking disagrees with the levels above. At 0.5 it cut ``mf-mes``'s median trials
per LCBench run from 285 to 213, but the screen judges a level only once 10 configurations
reached a higher one, by which time a run has spent dozens of evaluations at epoch 1, and where
epoch 1 ranks passably (rho 0.52 against epoch 27 on lcbench/3945 seed 0) it stays: that run made
198 of 266 evaluations there. Its final regret was better in 10 and worse in 6 of 18 paired
development runs (at half the budget in 5 and 6), so it is not the default (the measurements are under ``level_screen`` in
:class:`~mfbo.strategies.mf_gp.MultiFidelityGPStrategy`).
A model that can tell epoch 1 apart, ``kernel="autoregressive-shaped"`` with
``fidelity_scale="log"``, moved the runs to the next rung instead: on the six LCBench
development tasks at seeds 0-2 the epoch-1 share fell (median 0.41 over the logs kept, against
0.70 for the default), and in 7 of the 11 finished runs whose logs were kept epoch 3 (the log
ladder is 1, 3, 7, 19, 52) took the most evaluations, up to 210 of 224 on lcbench/146212. On
lcbench/126025, where epoch 3 ranks the target with Spearman's rho 0.38 and a top-10 %
precision of 0.13 (random: 0.10; ``mfbo calibrate lcbench/126025 --configs 300 --levels 1 3 7
19 --seed 0``), all three seeds ended at regrets of 0.16-0.17 against the default's 0.05-0.08.
Ranked with the four opponents of ``experiments/bench_real.py`` on those 18 blocks: 4.36 / 3.28
/ 3.44 at 25 / 50 / 100 % of the budget, against the default's 3.33 / 3.06 / 2.67 (paired: better
in 2 / 9 / 10 blocks, worse in 11 / 9 / 8); ``mf-kg`` with the same options ranked 4.56 / 4.00 /
3.88 on 8 blocks (seed 0 and two tasks of seed 1; worse than its default in 6 of 8 at 50 % and
at 100 %). Neither is adopted.

Speed
-----
One objective call on ``b`` points is one batched posterior of ``b / k x (k + 2 + m)`` inputs
(``k`` levels scored per configuration, :func:`rows_per_configuration`; ``m`` pending or batch
points), then, for MF-MES, 72 normal CDF evaluations per (point, max-value
sample, fantasy node) with ``γ < 8``, in blocks that bound memory. Sampling the max-values is
one marginal posterior on ``|A|`` points (Gumbel) or one joint posterior with an ``|A| x |A|``
Cholesky (posterior).

Options are validated by :mod:`mfbo.acquisition.options`. Every moment here comes from
``model.posterior`` (no exact-GP fast path, unlike :mod:`mfbo.acquisition.posterior`'s for
``mf-kg``, ``mf-ei`` and ``mf-ucb``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import gpytorch
import numpy as np
import torch
from botorch.models.model import Model
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor

from .base import Acquisition, AcquisitionContext
from .optimize import optimize_joint, sequential_greedy
from .options import check_choice, check_int, check_q
from .posterior import conditioning_factor

__all__ = [
    "MultiFidelityMES",
    "MultiFidelityGIBBON",
    "mes_information_gain",
    "gibbon_information_gain",
    "sample_max_values",
    "candidate_set",
    "JointMoments",
    "joint_moments",
    "rows_per_configuration",
    "MESObjective",
    "GIBBONObjective",
]

DTYPE = torch.double
MV_SAMPLERS = ("gumbel", "posterior")

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_RHO2_MAX = 1.0 - 1e-12  # keeps sqrt(1 - ρ²) >= 1e-6, so the transition panel stays finite
_WINDOW_SD = 8.0  # half-width of the quadrature window, in skew-normal standard deviations
_TRANSITION = 8.0  # the transition panel covers |γ - ρu| / sqrt(1 - ρ²) <= 8
_GL_X, _GL_W = (torch.as_tensor(a, dtype=DTYPE) for a in np.polynomial.legendre.leggauss(24))
_GH_X, _GH_W = (torch.as_tensor(a, dtype=DTYPE) for a in np.polynomial.hermite_e.hermegauss(16))
_GH_W = _GH_W / _GH_W.sum()  # probabilists' Gauss-Hermite: E[g(Z)] ≈ Σ w_k g(z_k), Z ~ N(0, 1)
_GAMMA_NEGLIGIBLE = 8.0  # from γ = 8 on, the MES gain is below 3e-14 nats
_NEGLIGIBLE_SHIFT = 1e-2  # fantasy mean shifts below 1% of sd(f_M | y_P) are not averaged over
_BLOCK = 2**15  # rows of (point, max-value sample, fantasy node) per quadrature block


# ------------------------------------------------------------------------------------------------
# The two information gains, elementwise in (γ, ρ²)
# ------------------------------------------------------------------------------------------------
def _log_normal_pdf(z: Tensor) -> Tensor:
    return -0.5 * z * z - _LOG_SQRT_2PI


def _mills(gamma: Tensor) -> Tensor:
    """``λ(γ) = φ(γ) / Φ(γ)``, stable for very negative ``γ``."""
    return torch.exp(_log_normal_pdf(gamma) - torch.special.log_ndtr(gamma))


def mes_information_gain(gamma: Tensor, rho2: Tensor) -> Tensor:
    r"""``H[y] - H[y | f_M <= f*]`` for standardised ``γ = (f* - μ_M) / σ_M`` and the squared
    correlation ``ρ²`` of ``y`` and ``f_M`` (broadcast together, any shape; the result has the
    broadcast shape, is ``>= 0`` and differentiable in both).

    ``½ ρ² γ λ(γ)`` plus ``E_p[log Φ((γ - ρu)/sqrt(1 - ρ²)) - log Φ(γ)]`` under the skew normal
    ``p`` (see the module docstring), the expectation by a self-normalised composite
    Gauss-Legendre rule on three panels: ``[lo, t₁]``, ``[t₁, t₂]``, ``[t₂, hi]`` with
    ``[lo, hi]`` the skew normal's mean ``-ρλ`` ± 8 standard deviations
    ``sqrt(1 - ρ² λ (γ + λ))`` and ``[t₁, t₂] = (γ ∓ 8 sqrt(1 - ρ²)) / ρ`` (clipped to
    ``[lo, hi]``), where ``Φ((γ - ρu)/sqrt(1 - ρ²))`` falls from 1 to 0.

    Where ``γ >= 8`` the gain is below ``3e-14`` nats (it is at most [WJ17]'s ``ρ = 1`` value);
    there the quadrature is skipped and :func:`gibbon_information_gain`, a lower bound of the
    same order, is returned. Most points of a raw Sobol design are in that regime.
    """
    gamma, rho2 = torch.broadcast_tensors(gamma, rho2.clamp(0.0, _RHO2_MAX))
    gain = gibbon_information_gain(gamma, rho2)
    informative = gamma < _GAMMA_NEGLIGIBLE
    if bool(informative.all()):
        return _mes_quadrature(gamma, rho2)
    if bool(informative.any()):
        gain = gain.index_put((informative,), _mes_quadrature(gamma[informative], rho2[informative]))
    return gain


def _mes_quadrature(gamma: Tensor, rho2: Tensor) -> Tensor:
    """The quadrature of :func:`mes_information_gain`, for ``gamma`` and ``rho2`` of one shape
    (``rho2`` already clipped to ``[0, 1 - 1e-12]``)."""
    rho = rho2.clamp_min(1e-30).sqrt()
    r = (1.0 - rho2).sqrt()
    lam = _mills(gamma)
    log_cdf = torch.special.log_ndtr(gamma)
    mean = -rho * lam
    sd = (1.0 - rho2 * lam * (gamma + lam)).clamp_min(1e-12).sqrt()
    lo, hi = mean - _WINDOW_SD * sd, mean + _WINDOW_SD * sd
    t1 = torch.clamp((gamma - _TRANSITION * r) / rho, min=lo, max=hi)
    t2 = torch.clamp((gamma + _TRANSITION * r) / rho, min=lo, max=hi)
    edges = torch.stack([lo, t1, t2, hi], dim=-1)  # (..., 4)
    half = 0.5 * (edges[..., 1:] - edges[..., :-1])  # (..., 3)
    mid = 0.5 * (edges[..., 1:] + edges[..., :-1])
    u = mid.unsqueeze(-1) + half.unsqueeze(-1) * _GL_X  # (..., 3, n)
    log_ratio = torch.special.log_ndtr((gamma[..., None, None] - rho[..., None, None] * u) / r[..., None, None])
    log_ratio = log_ratio - log_cdf[..., None, None]  # log of the truncation's density ratio
    weights = half.unsqueeze(-1) * _GL_W * torch.exp(_log_normal_pdf(u) + log_ratio)  # ∝ p(u) du
    kl = (weights * log_ratio).sum((-2, -1)) / weights.sum((-2, -1))
    return (0.5 * rho2 * gamma * lam + kl).clamp_min(0.0)


def gibbon_information_gain(gamma: Tensor, rho2: Tensor) -> Tensor:
    r"""GIBBON's quality term ``-½ log(1 - ρ² λ(γ)(γ + λ(γ)))``, a lower bound on
    :func:`mes_information_gain` (same arguments and broadcasting)."""
    lam = _mills(gamma)
    inner = 1.0 - rho2.clamp(0.0, 1.0) * lam * (gamma + lam)
    return -0.5 * torch.log(inner.clamp_min(1e-12))


# ------------------------------------------------------------------------------------------------
# Max-value samples
# ------------------------------------------------------------------------------------------------
def candidate_set(ctx: AcquisitionContext, num_candidates: int) -> Tensor:
    """``(N, d + 1)`` configurations at the target fidelity on which ``f*`` is sampled:
    ``num_candidates`` scrambled-Sobol configurations (seeded with ``ctx.seed + 1``, projected
    with ``ctx.project``), the evaluated configurations (the ``num_candidates`` with the highest
    posterior mean at the target when there are more) and the pending ones."""
    d = ctx.dim
    sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=(ctx.seed + 1) % (2**31 - 1))
    parts = [ctx.at_target(ctx.project(sobol.draw(num_candidates, dtype=DTYPE)))]
    evaluated = torch.unique(ctx.at_target(ctx.train_X.to(DTYPE)), dim=0)
    if evaluated.shape[0] > num_candidates:
        with torch.no_grad(), gpytorch.settings.skip_posterior_variances(True):
            mean = ctx.model.posterior(evaluated).mean.reshape(-1)
        evaluated = evaluated[torch.topk(mean, num_candidates).indices]
    parts.append(evaluated)
    if ctx.X_pending is not None and ctx.X_pending.numel():
        parts.append(ctx.at_target(ctx.X_pending.to(DTYPE)))
    return torch.unique(torch.cat(parts), dim=0)


def _gumbel_samples(mu: Tensor, sd: Tensor, num_samples: int, seed: int) -> Tensor:
    """``num_samples`` draws of the Gumbel matched to the quartiles of
    ``F(y) = Π_i Φ((y - mu_i) / sd_i)`` ([WJ17]); the quantile levels are a scrambled 1-D Sobol
    sequence, so the draws are stratified."""
    levels = torch.tensor([0.25, 0.5, 0.75], dtype=DTYPE)
    lo = torch.full_like(levels, float(mu.max() - 5.0 * sd.max()))  # F(lo) <= Φ(-5)
    hi = torch.full_like(levels, float((mu + 5.0 * sd).max()))  # F(hi) >= Φ(5)^N
    for _ in range(64):  # bisection on log F(y) = log p, all three quartiles at once
        y = 0.5 * (lo + hi)
        below = torch.special.log_ndtr((y[:, None] - mu) / sd).sum(-1) < levels.log()
        lo, hi = torch.where(below, y, lo), torch.where(below, hi, y)
    q25, q50, q75 = 0.5 * (lo + hi)
    scale = (q25 - q75) / (math.log(math.log(4.0 / 3.0)) - math.log(math.log(4.0)))
    loc = q50 + scale * math.log(math.log(2.0))
    u = torch.quasirandom.SobolEngine(1, scramble=True, seed=seed).draw(num_samples, dtype=DTYPE).reshape(-1)
    u = u.clamp(1e-12, 1.0 - 1e-12)
    return loc - scale * torch.log(-torch.log(u))


def sample_max_values(model: Model, candidates: Tensor, num_samples: int, sampler: str, seed: int) -> Tensor:
    """``(num_samples,)`` samples of ``max_{a ∈ candidates} f(a)`` under ``model``'s posterior
    (``candidates`` of shape ``(N, d + 1)``, already at the target fidelity), by the Gumbel
    approximation or by exact joint posterior sampling (``sampler``), floored at the largest
    posterior mean on the candidates."""
    if sampler not in MV_SAMPLERS:
        raise ValueError(f"sample_max_values: sampler must be one of {', '.join(map(repr, MV_SAMPLERS))}, got {sampler!r}")
    with torch.no_grad():
        if sampler == "gumbel":
            posterior = model.posterior(candidates.unsqueeze(-2))  # N one-point batches: marginals only
            mu = posterior.mean.reshape(-1)
            sd = posterior.variance.reshape(-1).clamp_min(1e-30).sqrt()
            samples = _gumbel_samples(mu, sd, num_samples, seed)
        else:
            posterior = model.posterior(candidates)
            mu = posterior.mean.reshape(-1)
            L = psd_safe_cholesky(posterior.distribution.covariance_matrix)
            generator = torch.Generator().manual_seed(seed)
            eps = torch.randn(num_samples, mu.shape[0], generator=generator, dtype=DTYPE)
            samples = (mu + eps @ L.transpose(-2, -1)).max(dim=-1).values
    return samples.clamp_min(mu.max())


# ------------------------------------------------------------------------------------------------
# Posterior moments of (y(x, s), f(x, 1)), optionally given observations at S
# ------------------------------------------------------------------------------------------------
@dataclass
class JointMoments:
    """Moments of the observation ``y = y(x, s)`` and ``f_M = f(x, 1)`` for ``b`` points, all of
    shape ``(b,)``; the ``explained_*`` fields are the parts of the (co)variances explained by the
    observations ``y_S`` at the conditioning inputs (zeros without them)."""

    mean_M: Tensor
    var_M: Tensor
    var_y: Tensor
    cov_yM: Tensor
    explained_M: Tensor
    explained_y: Tensor
    explained_yM: Tensor


def rows_per_configuration(X: Tensor, dim: int) -> int:
    """``k`` when the rows of ``X (b, 1, d + 1)`` are ``b / k`` consecutive runs of ``k`` rows that
    share their configuration (the first ``dim`` columns), as :func:`optimize_joint`'s raw
    scoring lays out every configuration at every level; else 1."""
    x = X.reshape(-1, X.shape[-1])[:, :dim]
    b = x.shape[0]
    differs = torch.nonzero((x != x[:1]).any(-1)).reshape(-1)
    k = int(differs[0]) if len(differs) else b
    if k <= 1 or b % k:
        return 1
    runs = x.reshape(b // k, k, dim)
    return k if bool((runs == runs[:, :1]).all()) else 1


def joint_moments(ctx: AcquisitionContext, X: Tensor, S: Tensor | None, var_floor: float) -> JointMoments:
    """One ``ctx.model.posterior`` call on ``[(x, s_1), ..., (x, s_k), (x, 1), (x, 1), S]`` per
    configuration, with observation noise, for ``X (b, 1, d + 1)`` and conditioning inputs
    ``S (m, d + 1)`` or ``None``; variances are floored at ``var_floor``.

    ``k`` is :func:`rows_per_configuration`: where ``X`` scores each configuration at ``k``
    fidelities, their ``k`` observations share one batch with ``f_M`` (``u = b / k`` batches of
    ``k + 2 + m`` inputs instead of ``b`` batches of ``3 + m``; on LCBench's 7-D space with 400
    training points and 5 levels, scoring 2,560 raw points took 0.25 s instead of 1.2 s), and
    the moments are the same. With ``C`` the noisy covariance of one batch, ``L`` the Cholesky
    factor of ``C_SS`` and ``V = L^{-1} C_{S,(y_1..y_k, f_M)}``
    (:func:`~mfbo.acquisition.posterior.conditioning_factor`): ``explained_y = |V_y|²``,
    ``explained_M = |V_M|²``, ``explained_yM = V_y · V_M`` (Schur complements).
    """
    x = X.reshape(-1, X.shape[-1])
    k = rows_per_configuration(x, ctx.dim)
    rows = x.reshape(-1, k, x.shape[-1])  # (u, k, d + 1)
    target = ctx.at_target(rows[:, :1])
    Z = torch.cat([rows, target, target], dim=-2)  # (u, k + 2, d + 1)
    if S is not None:
        Z = torch.cat([Z, S.to(x).unsqueeze(0).expand(Z.shape[0], -1, -1)], dim=-2)
    posterior = ctx.model.posterior(Z, observation_noise=True)
    C = posterior.distribution.covariance_matrix  # (u, k + 2 + m, k + 2 + m)
    zeros = C.new_zeros(x.shape[0])
    explained = (zeros, zeros, zeros)
    if S is not None:
        V = conditioning_factor(C[:, k + 2 :, k + 2 :], C[:, k + 2 :, : k + 1])  # (u, m, k + 1)
        V_y, V_M = V[..., :k], V[..., k : k + 1]
        explained = (
            V_M.square().sum((-2, -1)).repeat_interleave(k),  # the same for a configuration's k rows
            V_y.square().sum(-2).reshape(-1),
            (V_y * V_M).sum(-2).reshape(-1),
        )
    return JointMoments(
        mean_M=posterior.mean[:, k, 0].repeat_interleave(k),
        var_M=C[:, k, k + 1].repeat_interleave(k).clamp_min(var_floor),
        var_y=torch.diagonal(C[:, :k, :k], dim1=-2, dim2=-1).reshape(-1).clamp_min(var_floor),
        cov_yM=C[:, :k, k].reshape(-1),
        explained_M=explained[0],
        explained_y=explained[1],
        explained_yM=explained[2],
    )


def _in_blocks(fn, X: Tensor, rows_per_point: int, dim: int) -> Tensor:
    """``fn(X)`` over blocks of ``X (b, 1, d + 1)`` so that a block holds at most ``_BLOCK``
    quadrature rows, never splitting the runs of :func:`rows_per_configuration`; ``(b,)``."""
    k = rows_per_configuration(X, dim)
    size = k * max(1, _BLOCK // max(1, rows_per_point * k))
    if X.shape[0] <= size:
        return fn(X)
    return torch.cat([fn(X[i : i + size]) for i in range(0, X.shape[0], size)])


# ------------------------------------------------------------------------------------------------
# The objectives optimize_joint maximises
# ------------------------------------------------------------------------------------------------
class MESObjective:
    """``X (b, 1, d + 1) -> α_MES(X | pending) / cost(X)`` of shape ``(b,)``;
    :meth:`information_gain` gives ``α_MES`` alone (nats, ``>= 0``)."""

    def __init__(self, ctx: AcquisitionContext, max_values: Tensor, var_floor: float) -> None:
        self.ctx, self.max_values, self.var_floor = ctx, max_values, var_floor
        pending = ctx.X_pending
        self.pending = pending.to(DTYPE) if pending is not None and pending.numel() else None

    def information_gain(self, X: Tensor) -> Tensor:
        nodes = 1 if self.pending is None else len(_GH_X)
        return _in_blocks(self._information_gain, X, self.max_values.numel() * nodes, self.ctx.dim)

    def _information_gain(self, X: Tensor) -> Tensor:
        m = joint_moments(self.ctx, X, self.pending, self.var_floor)
        var_M = (m.var_M - m.explained_M).clamp_min(self.var_floor)
        var_y = (m.var_y - m.explained_y).clamp_min(self.var_floor)
        rho2 = (m.cov_yM - m.explained_yM).square() / (var_y * var_M)  # (b,)
        sd_M = var_M.sqrt()
        gain = self._average_gain(m.mean_M, sd_M, rho2, torch.ones(1, dtype=DTYPE))
        if self.pending is None:
            return gain
        # fantasies of y_P move the mean of f_M by N(0, explained_M); where that shift is below
        # 1% of sd_M the one-node value above is within ~1e-4 relative of the average
        near = torch.nonzero(m.explained_M > _NEGLIGIBLE_SHIFT**2 * var_M).squeeze(-1)
        if len(near):  # (the square root is taken where it is positive only: finite gradients)
            mean = m.mean_M[near].unsqueeze(-1) + m.explained_M[near].sqrt().unsqueeze(-1) * _GH_X  # (b', K)
            gain = gain.index_put((near,), self._average_gain(mean, sd_M[near], rho2[near], _GH_W))
        return gain

    def _average_gain(self, mean: Tensor, sd_M: Tensor, rho2: Tensor, weights: Tensor) -> Tensor:
        """``Σ_k w_k mean_j gain(γ_jk)`` for fantasy means ``mean (b, K)`` (or ``(b,)``),
        ``sd_M`` and ``rho2`` of shape ``(b,)``, weights ``(K,)``: ``(b,)``."""
        mean = mean.reshape(sd_M.shape[0], -1)
        gamma = (self.max_values[:, None] - mean.unsqueeze(-2)) / sd_M[:, None, None]  # (b, J, K)
        gain = mes_information_gain(gamma, rho2[:, None, None])
        return (gain * weights).sum(-1).mean(-1)

    def __call__(self, X: Tensor) -> Tensor:
        return self.information_gain(X) / self.ctx.effort(X).reshape(-1)


class GIBBONObjective:
    """``X (b, 1, d + 1) -> (gain_so_far + α_G(X | S)) / (cost_so_far + cost(X))``, ``(b,)``:
    the greedy step's batch value per unit batch cost, with ``S`` the pending and already chosen
    inputs. :meth:`gain` is ``α_G(X | S)`` alone: quality plus repulsion (nats)."""

    def __init__(
        self,
        ctx: AcquisitionContext,
        max_values: Tensor,
        var_floor: float,
        conditioning: Tensor | None = None,
        gain_so_far: float = 0.0,
        cost_so_far: float = 0.0,
    ) -> None:
        self.ctx, self.max_values, self.var_floor = ctx, max_values, var_floor
        self.conditioning = conditioning if conditioning is not None and conditioning.numel() else None
        self.gain_so_far, self.cost_so_far = gain_so_far, cost_so_far

    def quality(self, X: Tensor) -> Tensor:
        """The quality term alone (``>= 0``), ``(b,)``."""
        return _in_blocks(lambda x: self._terms(x)[0], X, self.max_values.numel(), self.ctx.dim)

    def gain(self, X: Tensor) -> Tensor:
        """Quality plus repulsion, ``(b,)``."""
        return _in_blocks(lambda x: torch.stack(self._terms(x)).sum(0), X, self.max_values.numel(), self.ctx.dim)

    def _terms(self, X: Tensor) -> tuple[Tensor, Tensor]:
        m = joint_moments(self.ctx, X, self.conditioning, self.var_floor)
        rho2 = m.cov_yM.square() / (m.var_y * m.var_M)
        gamma = (self.max_values - m.mean_M.unsqueeze(-1)) / m.var_M.sqrt().unsqueeze(-1)  # (b, J)
        quality = gibbon_information_gain(gamma, rho2.unsqueeze(-1)).mean(-1)
        repulsion = 0.5 * torch.log((1.0 - m.explained_y / m.var_y).clamp_min(1e-12))
        return quality, repulsion

    def __call__(self, X: Tensor) -> Tensor:
        return (self.gain_so_far + self.gain(X)) / (self.cost_so_far + self.ctx.effort(X).reshape(-1))


# ------------------------------------------------------------------------------------------------
# The acquisitions
# ------------------------------------------------------------------------------------------------
class _MaxValueAcquisition(Acquisition):
    """Options, validation and max-value sampling shared by ``mf-mes`` and ``mf-gibbon``."""

    name: ClassVar[str] = "max-value"

    def __init__(
        self,
        *,
        num_mv_samples: int = 12,
        mv_sampler: str = "gumbel",
        num_candidates: int = 512,
        num_restarts: int = 6,
        raw_samples: int = 512,
        maxiter: int = 50,
    ) -> None:
        self.num_mv_samples = check_int(self.name, "num_mv_samples", num_mv_samples, 1)
        self.mv_sampler = check_choice(self.name, "mv_sampler", mv_sampler, MV_SAMPLERS)
        self.num_candidates = check_int(self.name, "num_candidates", num_candidates, 1)
        self.num_restarts = check_int(self.name, "num_restarts", num_restarts, 1)
        self.raw_samples = check_int(self.name, "raw_samples", raw_samples, 1)
        self.maxiter = check_int(self.name, "maxiter", maxiter, 1)

    def max_values(self, ctx: AcquisitionContext) -> Tensor:
        """``(num_mv_samples,)`` samples of ``f*`` (see the module docstring)."""
        seed = (ctx.seed + 2) % (2**31 - 1)
        return sample_max_values(ctx.model, candidate_set(ctx, self.num_candidates), self.num_mv_samples, self.mv_sampler, seed)

    @staticmethod
    def _var_floor(ctx: AcquisitionContext) -> float:
        """Smallest variance used in divisions: ``1e-12`` of the data's variance."""
        scale = float(ctx.train_Y.var()) if ctx.train_Y.numel() > 1 else 1.0
        return 1e-12 * (scale if math.isfinite(scale) and scale > 0 else 1.0)

    @staticmethod
    def _starts(ctx: AcquisitionContext, k: int = 4) -> Tensor:
        """The ``k`` evaluated configurations with the highest posterior mean, at the target:
        extra starts for the optimiser."""
        evaluated = torch.unique(ctx.at_target(ctx.train_X.to(DTYPE)), dim=0)
        if not len(evaluated):
            return evaluated
        with torch.no_grad(), gpytorch.settings.skip_posterior_variances(True):
            mean = ctx.model.posterior(evaluated).mean.reshape(-1)
        return evaluated[torch.topk(mean, min(k, len(mean))).indices]

    def _optimize(self, objective, ctx: AcquisitionContext, starts: Tensor) -> Tensor:
        candidate, _ = optimize_joint(
            objective,
            ctx,
            num_restarts=self.num_restarts,
            raw_samples=self.raw_samples,
            maxiter=self.maxiter,
            extra_starts=starts,
        )
        return candidate


class MultiFidelityMES(_MaxValueAcquisition):
    """Multi-fidelity max-value entropy search per unit cost ([T20]; module docstring).

    Options:
        num_mv_samples: samples of ``f*``. Default 12.
        mv_sampler: ``"gumbel"`` (default) or ``"posterior"`` (exact joint samples; the
            ``mf-mes`` strategy's default, :class:`mfbo.strategies.mf_gp.MFMESStrategy`).
        num_candidates: Sobol configurations of the max-value candidate set, and the cap on the
            evaluated configurations added to it. Default 512.
        num_restarts: L-BFGS-B starts. Default 6.
        raw_samples: Sobol points scored to choose the starts (each at every level when the
            fidelity is discrete). Default 512.
        maxiter: L-BFGS-B iterations. Default 50.
    """

    name: ClassVar[str] = "mf-mes"
    supports_batch: ClassVar[bool] = True

    def objective(self, ctx: AcquisitionContext, max_values: Tensor | None = None) -> MESObjective:
        """The ``α_MES / cost`` callable for ``ctx`` (its pending points included)."""
        max_values = self.max_values(ctx) if max_values is None else max_values
        return MESObjective(ctx, max_values, self._var_floor(ctx))

    def propose(self, ctx: AcquisitionContext, q: int = 1) -> Tensor:
        q = check_q(self.name, q)
        max_values, starts = self.max_values(ctx), self._starts(ctx)
        return sequential_greedy(lambda c: self._optimize(self.objective(c, max_values), c, starts), ctx, q)


class MultiFidelityGIBBON(_MaxValueAcquisition):
    """The GIBBON lower bound of multi-fidelity MES per unit cost, with native greedy batches
    ([M21]; module docstring). Options as :class:`MultiFidelityMES`."""

    name: ClassVar[str] = "mf-gibbon"
    supports_batch: ClassVar[bool] = True

    def objective(
        self,
        ctx: AcquisitionContext,
        max_values: Tensor | None = None,
        chosen: Tensor | None = None,
        gain_so_far: float = 0.0,
        cost_so_far: float = 0.0,
    ) -> GIBBONObjective:
        """The greedy step's callable: batch value per unit batch cost, given the pending points of
        ``ctx`` and the points ``chosen (k, d + 1)`` so far (worth ``gain_so_far`` nats for
        ``cost_so_far``)."""
        max_values = self.max_values(ctx) if max_values is None else max_values
        parts = [p.to(DTYPE) for p in (ctx.X_pending, chosen) if p is not None and p.numel()]
        conditioning = torch.cat(parts) if parts else None
        return GIBBONObjective(ctx, max_values, self._var_floor(ctx), conditioning, gain_so_far, cost_so_far)

    def propose(self, ctx: AcquisitionContext, q: int = 1) -> Tensor:
        q = check_q(self.name, q)
        max_values, starts = self.max_values(ctx), self._starts(ctx)
        chosen = torch.empty(0, ctx.dim + 1, dtype=DTYPE)
        gain, cost = 0.0, 0.0
        for _ in range(q):
            objective = self.objective(ctx, max_values, chosen, gain, cost)
            candidate = self._optimize(objective, ctx, starts)
            with torch.no_grad():
                gain += float(objective.gain(candidate.unsqueeze(0)))
                cost += float(ctx.effort(candidate.unsqueeze(0)).sum())
            chosen = torch.cat([chosen, candidate])
        return chosen

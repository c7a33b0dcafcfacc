r"""BOCA: GP-UCB at the target, then the cheapest fidelity that is still informative (``mf-ucb``).

Kandasamy, Dasarathy, Schneider & Póczos, *Multi-fidelity Bayesian optimisation with continuous
approximations* (ICML 2017; BOCA), which generalises MF-GP-UCB (Kandasamy et al., *Gaussian
process bandit optimisation with multi-fidelity evaluations*, NeurIPS 2016) from finitely many
fidelities to a continuous fidelity space ``Z``. Each step (targets are ``Y = -value``, so
everything is maximised; ``z• = 1`` is the target fidelity, ``λ`` the cost, ``ν, τ`` the
posterior mean and standard deviation of the latent ``g(z, x)``):

1. **Configuration** by GP-UCB on the target:
   ``x_t = argmax_x ν(z•, x) + β_t^{1/2} τ(z•, x)``.
2. **Fidelity**: ``z_t = argmin_{z ∈ Z_t} λ(z, x_t)`` over

   .. math::

       Z_t = \{z•\} ∪ \{z : λ(z) < λ(z•),\ τ(z, x_t) > γ(z),\ ξ(z) ≥ β_t^{-1/2} \|ξ\|_∞\},
       \qquad γ(z) = \sqrt{κ_0}\, ξ(z) \left(\frac{λ(z)}{λ(z•)}\right)^{q},\ q = \frac{1}{p + d + 2}.

   A cheaper fidelity is queried while the model is still uncertain about it at ``x_t``
   (``τ > γ``); the threshold grows with the **information gap** ``ξ(z)`` (how much ``g(z, ·)``
   can differ from the target) and with the cost, so a badly correlated fidelity must be very
   uncertain to be worth it, and a perfectly correlated cheap one is used until it is known. The
   last condition keeps fidelities too close to ``z•`` (small gap, little saving) out.
   ``p = 1`` (the fidelity dimension), ``d = ctx.dim``.

What is taken from where
------------------------
- **The rule** (Z_t, γ, q, the ``‖ξ‖_∞`` condition, ``z_t`` the cheapest element) is the paper's
  Algorithm 1. The public implementation (``dragonfly``, ``gpb_acquisitions.boca``) differs in
  several heuristics we do *not* follow: it normalises ``ξ`` as the distance ``‖z - z•‖`` over
  the fidelity-space diameter, uses ``q = 1/2``, scales the threshold by the observed ``y`` range,
  drops the ``‖ξ‖_∞`` condition, and queries ``z•`` when the cheapest qualifying cost ratio
  exceeds 0.9. We keep the paper's versions of those. One device of that code we do adopt,
  because the paper's rule fails without it (below): a coefficient on the threshold adapted so
  that 25-50 % of the queries are at ``z•``.
- **β_t**: ``β_t = 0.5 d log(2 d t + 1)``, ``t = n + m + 1`` (``n`` observations, ``m``
  pending): the schedule of the authors' implementation (dragonfly's ``_get_ucb_beta_th``),
  which has the ``d log t`` growth the paper's theorem asks for (its constants are for the
  analysis, not for use). The UCB step uses ``0.2 β_t``: scaled down by a factor of 5 as
  Srinivas et al. (2010, §6) do for GP-UCB in practice (option ``beta_scale``; ``1`` is
  dragonfly's); the fidelity rule's ``‖ξ‖_∞`` condition keeps the unscaled ``β_t`` (scaled, it
  would exclude every cheap fidelity whenever ``0.2 β_t < 1``). Unscaled, the UCB step is
  close to pure exploration in six dimensions at these budgets (``sqrt(β_t) ≈ 4.5`` at
  ``t = 80``): on ``mfhartmann6-terrible`` (30 target evaluations) it ended at regret 0.65 /
  2.14 (seeds 0 / 1) with the target-share controller, 0.33 / 0.59 with the factor as well
  (``gp-ei``: 0.52 / 0.05). Option ``beta`` fixes ``β`` instead.
- **ξ(z) from the model, generically.** The paper defines ``ξ(z) = sqrt(1 - φ_Z(z, z•)²)`` for
  a product kernel ``κ = κ_0 φ_Z φ_X``; ``φ_Z(z, z•)`` is the *prior* correlation of ``g(z, x)``
  and ``g(z•, x)``. We compute that correlation from the fitted model's prior covariance at the
  pair ``[(x_t, z), (x_t, z•)]``, so ``ξ`` is the paper's for product kernels and a sensible
  generalisation (the prior conditional standard deviation of the target given ``g(z, x_t)``, in
  units of its prior standard deviation) for any other kernel on ``(x, s)`` (additive,
  linear-truncated, auto-regressive, ...). ``‖ξ‖_∞`` is its maximum over the fidelity candidates.
- **√κ_0** is the prior standard deviation at ``(x_t, z)`` (``κ_0`` for a stationary product
  kernel). ``τ`` and the prior come from the same GP in the model's internal outcome scale, so
  the test ``τ > γ`` is unit-free.
- **Fidelity candidates**: continuous fidelity: ``grid_size`` equally spaced ``s`` in ``[0, 1]``
  (the paper leaves the search over ``Z`` open; dragonfly uses 100 points for a 1-D ``Z``);
  discrete: ``ctx.fidelities``. ``λ`` is ``ctx.cost`` at ``(x_t, z)``, so it may depend on ``x``.
- **The budget left** (not in the paper, whose budget is a horizon): with ``ctx.max_cost`` set,
  ``x_t`` is searched among points whose target cost fits it (all points when none does), and
  if the chosen ``z`` still costs more, the highest fidelity candidate within it replaces it.
- **Continuing runs** (freeze-thaw, not in the paper, whose evaluations are independent): on a
  resumable problem the strategy offers the configurations whose runs can be continued
  (``ctx.candidates``, :class:`~mfbo.models.ContinuationCost`). The UCB step scores each of them
  at ``z•`` as it is, beside the configuration its search found, and keeps the best
  (:meth:`MultiFidelityUCB.select_x`); a search from raw points would never land exactly on
  one. When an evaluated configuration wins, the fidelity rule runs unchanged with ``λ`` the
  increment over the fidelity its run reached (a fidelity at or below that is priced out), so
  the cheapest informative continuation is chosen, and the strategy continues the run.
- **Configuration-dependent cost** (option ``cost_cooling``, off in this class and on in the
  ``mf-ucb`` strategy; not in the paper, where ``λ`` depends on the fidelity only). On real
  benchmarks one configuration can cost ten times another at the same fidelity (LCBench:
  small batches and wide layers; rbv2_xgboost: many rounds), and the cost-blind UCB step pays
  whatever its maximiser costs: in 32 of 45 development runs of ``mf-ucb`` (log fidelity
  scale, ``experiments/bench_real.py``) at least one evaluation cost more than 10 % of the
  whole budget (twice the mean full-fidelity cost), one 71 %.
  With ``cost_cooling`` the UCB step maximises the optimistic improvement per unit cost, cooled
  over the budget as in CArBO's EI-cool (Lee, Perrone, Archambeau, Seeger, *Cost-aware Bayesian
  optimization*, 2020)::

      x_t = argmax_x  max(UCB(x, z•) − μ*, 0) / λ(x, z•)^α,   α = 1 − spent / budget,

  ``μ*`` the best posterior mean at ``z•`` among the evaluated configurations; a continuable
  run is priced at its increment, as everywhere. At the start a configuration must promise
  proportionally more to be worth its price; at the end (``α = 0``) the step is the UCB's
  argmax wherever that promises an improvement. When no point promises one (the UCB nowhere
  above ``μ*``), the run has no cost budget, or the target cost is the same for every
  evaluated configuration (a fidelity-only cost: cooling would not move the argmax), the plain
  UCB step runs. The fidelity rule is unchanged. Measured (``bench_real.py``,
  ``init_fraction=0.2``, ranked against ``gp-ei``, DEHB, SMAC and Optuna at 50 / 100 % of the
  budget):

  - with ``design="bracket"``, on 39 development blocks (six LCBench tasks and
    ``digits-mlp-table``, 5 seeds; rbv2_xgboost/16 seeds 0-1 and /1497 seeds 0-1): rank
    2.77 / 2.32, the cost-blind step 2.78 / 2.62 on the same blocks;
  - with the default design (the ladder on resumable problems), on 37 blocks (the LCBench
    tasks and ``digits-mlp-table``, 5 seeds; rbv2_xgboost/16 and /1497 seed 0): rank
    3.32 / 2.74, the cost-blind step 3.00 / 2.61. Cooling helps after a bracket's promotions,
    not after the ladder's nested design;
  - with the budget-share design on rbv2_xgboost (which cannot resume), 10 blocks (/16 and
    /1497, seeds 0-4): regret at 100 % 0.0196-0.029 on /16 and 0.0005-0.0014 on /1497,
    below the cost-blind step's in each of the 10 runs (at 50 %: in 8 of 10), for 465-841
    evaluations per run against 35-166 without cooling.

  The ``mf-ucb`` strategy therefore runs it with the bracket where runs continue
  (:class:`~mfbo.strategies.mf_gp.MFUCBStrategy`). Its price: on rbv2_xgboost, whose costs
  span two orders of magnitude, a run makes 465-841 mostly very cheap evaluations (about
  600-860 s of ask + tell, most of it the cooled search; the cost-blind step 35-166 trials;
  315-722 s of wall time per report-seed run on /16 and /1497 once L-BFGS-B ran with one BLAS
  thread, :mod:`mfbo.lbfgsb`). On the held-out rbv2_xgboost/40923, where YAHPO prices some
  configurations at 0.12 s at every fidelity against 1,228 s for a mean target evaluation, the
  cooled step keeps choosing those: both report-seed runs reached ``bench_real.py``'s cap of
  1,000 trials (33-39 min of wall time).
- **Option ``threshold``** multiplies ``γ`` (``1`` is the paper). **Option ``cost_exponent``**
  replaces ``q``.

**The authors' target-share controller (default on; ``target_share=None`` is the paper's fixed
threshold).** Algorithm 1 alone does not stop trusting a bad fidelity in more than a few
dimensions: with ``q = 1/(d + 3)`` the cost barely lowers ``γ`` (``0.05^{1/9} = 0.72`` for
``d = 6``), and at a configuration the UCB step picked *because* it is unexplored, ``τ`` is close
to the prior standard deviation, so ``τ > γ`` holds at every cheap level whatever ``ξ`` is. On
``mfhartmann6-terrible`` (30 target evaluations) the fixed rule kept sending 45 % of the budget
to ``s < 0.5`` and ended with a median regret of 1.82 over two seeds, six times ``gp-ei``'s 0.28;
with the smaller ``β`` below but no controller it spent only 10-37 % of the budget at ``z•`` and
ended at 0.60 / 3.22 / 1.37 (seeds 0-2), with both at 0.33 / 0.59 / 0.004.
The authors' implementation (dragonfly, ``GPBandit._main_loop_pre_boca``) guards against this
with a controller that we adopt: before each step the share of the last ``window = 20``
completed queries that were at ``z•`` is computed (over the window's full length, so a short
history counts as low); at most ``0.25`` multiplies the threshold coefficient by ``1.1``, at
least ``0.5`` divides it by ``1.1``. So a fidelity is used only while it keeps at least about a
quarter of the queries at the target, which on a cheap, badly correlated ladder still leaves most
of the *budget* at the target. The coefficient is not stored: :meth:`threshold_scale` replays the
controller over the completed observations after the initial design (``ctx.options
["design_size"]``), so a resumed run computes the same value. Differences from dragonfly: the
coefficient starts at ``1`` (the paper's ``γ``) rather than at dragonfly's ``0.01`` of its own
``y``-range-scaled threshold, and the replay counts one update per completed observation, which
is dragonfly's one update per step when the run is sequential (with ``q > 1`` or asynchronous
workers, observations and steps differ by the pending points). The observations replayed, and
the ``n`` of ``β_t``, are the evaluations (:attr:`~mfbo.acquisition.base.AcquisitionContext.evaluated_X`),
not the learning-curve points the strategy adds to the model: counted as cheap queries, they
raised the threshold at every step on LCBench (4.6-fold by the first step after a bracket
design) and kept BOCA off every fidelity below about epoch 40. The window still holds the
design's queries, most of them below the target by construction, so the coefficient climbs at
every step until a quarter of the window is at the target: on lcbench/146212 (``mf-ucb``, seed
0) it reached 5.05 twelve steps after the bracket design, while the autoregressive kernel's
fitted scale ``a(s) = 1 + ρ (1 - s)`` went from ``ρ = -0.7`` to ``-2.8``, so the model called
every epoch below about 33 an inverted copy of the target. Between them, fresh configurations
there start at epochs 34-44 (quartiles over the development runs, 20-50 % of the budget). With
the coefficient at 1 the test would have passed at epoch 1 (at 31 evaluations: ``τ = 0.65``,
``γ = 0.45``), whose values carry no ranking on LCBench; so the two would have to change
together.

Option ``design_in_window=False`` lets the window hold post-design queries only, and takes the
share over the queries it holds (no update before the first), so the controller answers the
rule's own choices, not the design's. With the kernel ``"autoregressive-damped"``
(:class:`~mfbo.models.kernels.DampedAutoregressiveKernel`, ``ρ > -1``) on the development set of
``experiments/bench_real.py`` (six LCBench tasks and ``digits-mlp-table``, seeds 0-4, 35 blocks,
ranked against ``gp-ei``, DEHB, SMAC and Optuna), ``mf-ucb`` ranked 2.89 / 2.64 / 2.24 at 25 /
50 / 100 % of the budget against 3.10 / 2.74 / 2.30 with the former defaults (at 50 %: 12
blocks better, 11 worse); the cost model's trend (:class:`~mfbo.models.LearnedCost`) alone did
more at 50 % (2.49), so neither is a default yet and the two have not been measured together.
Fresh configurations between 20 and 50 % of the budget moved only a little lower, to epochs
29 / 36 / 42 (quartiles; 12.1 per run), because of what the controller does after the design:
the threshold ``γ ∝ ξ`` vanishes towards ``z•``, so raising it moves the cheapest eligible
fidelity *up*, to the dearest one the ``‖ξ‖_∞`` condition still admits (about epoch 44 of 52
on LCBench), rather than to ``z•``; a query there costs nearly a target evaluation without
counting as one. Option ``max_cost_ratio`` (not in the paper; dragonfly sends a query to ``z•``
above a cost ratio of 0.9) removes such fidelities; at 0.5 every fresh configuration went to
the target and, on the first 15 development blocks, the regret at 50 % of the budget was worse
than with the former defaults in 6 and better in 1, so it stays at 1.

**Noise-discounted τ.** The test uses ``τ_eff = τ² / sqrt(τ² + σ²(z))`` instead of ``τ``
(``σ²(z)`` the observation-noise variance at ``(x_t, z)``): the posterior standard deviation a
query at ``z`` actually removes (the variance reduction is ``τ⁴ / (τ² + σ²)``). The paper's
analysis has one small noise level, where ``τ_eff ≈ τ`` while ``τ² ≫ σ²``; with the
fidelity-dependent likelihood (:mod:`mfbo.models.noise`) a cheap level whose noise swamps its
signal never passes the test, whereas the latent ``τ`` there stays large however often it is
queried. On ``mfhartmann6-terrible`` (seed 0, 30 target evaluations) the latent ``τ`` made BOCA
spend 403 of 491 queries at ``z <= 10`` and end at regret 2.38 (``gp-ei``: 0.52).

Other deviations: the paper is sequential; pending points (asynchronous workers, ``q > 1``) are
handled by conditioning the model on its own posterior mean there (Kriging believer, see
:mod:`mfbo.acquisition.posterior`), which shrinks ``τ`` around them, so both the UCB
step and the threshold rule see them as (about to be) known; ``q > 1`` is built by
:func:`~mfbo.acquisition.optimize.sequential_greedy`. The last condition of ``Z_t`` is tested
with ``≥`` instead of ``>``: when the model says every fidelity equals the target (``ξ ≡ 0``,
so ``γ ≡ 0``) the paper's strict form would leave only ``z•``, whereas ``≥`` lets the cheapest
fidelity be used, which is what the rest of the rule intends. ``x_t`` is found by multi-start
L-BFGS-B (:func:`~mfbo.acquisition.optimize.optimize_joint` with ``fixed_s = 1``).

Moments (posterior, prior, Kriging believer) come from
:func:`mfbo.acquisition.posterior.gp_moments`, as for ``mf-ei``: the fast exact path for BoTorch's
``SingleTaskGP`` family (checked against ``model.posterior``), else ``model.posterior``. The threshold
reads the GP *prior*, which BoTorch's ``Model`` API does not expose: on the generic path the model
must be an exact GPyTorch GP (``model.forward`` is the prior), otherwise ``propose`` raises.
Options are validated by :mod:`mfbo.acquisition.options`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .base import Acquisition, AcquisitionContext
from .optimize import optimize_joint, sequential_greedy
from .options import check_bool, check_float, check_int
from .posterior import MIN_VAR, GPMoments, gp_moments

__all__ = ["MultiFidelityUCB", "FidelityRule"]


@dataclass
class FidelityRule:
    """BOCA's fidelity test at one configuration ``x_t``, for ``G`` fidelity candidates.

    Attributes (each ``(G,)``): ``s`` the candidates (increasing, the last one the target),
    ``xi`` the information gap ``ξ(s)``, ``tau`` the noise-discounted posterior std
    ``τ²/sqrt(τ² + σ²(s))`` at ``(x_t, s)`` over the prior std, ``gamma`` the threshold ``γ(s)`` in the same units, ``cost`` ``λ(s, x_t)``,
    ``eligible`` (bool) membership of ``Z_t`` without ``z•``; ``chosen``: ``z_t`` (float).
    """

    s: Tensor
    xi: Tensor
    tau: Tensor
    gamma: Tensor
    cost: Tensor
    eligible: Tensor
    chosen: float


class MultiFidelityUCB(Acquisition):
    """BOCA (Kandasamy et al. 2017): GP-UCB over configurations at the target fidelity, then the
    cheapest fidelity passing the information-threshold test (see the module docstring).

    Options:
        beta: a fixed ``β``, both the UCB's exploration weight (the UCB is ``μ + sqrt(β) σ``) and
            the ``β`` of the fidelity rule's ``‖ξ‖_∞`` condition, ``> 0``; ``None`` (default)
            follows the schedule ``β_t = 0.5 d log(2 d t + 1)``.
        beta_scale: the factor on the scheduled ``β_t`` in the UCB step only (``> 0``; default
            ``0.2``, Srinivas et al.'s practical scaling; ``1`` is dragonfly's); unused with
            ``beta``.
        threshold: multiplier of the paper's threshold ``γ(z)`` (``> 0``; default ``1``, the
            paper; smaller values query low fidelities more often).
        cost_exponent: the exponent ``q`` of the cost ratio in ``γ`` (``> 0``); ``None`` (default)
            is the paper's ``1 / (p + d + 2)`` with ``p = 1``.
        target_share: ``(low, high)`` bounds, ``0 <= low < high <= 1``, on the share of recent
            queries at the target that the threshold controller maintains (default
            ``(0.25, 0.5)``, the authors' implementation); ``None`` keeps the paper's fixed
            threshold.
        window: the number of recent completed queries the controller looks at (``>= 1``;
            default 20).
        design_in_window: whether the window holds the initial design's queries too (default
            True, dragonfly's: the share is over the window's full length, so a short history
            counts as low); ``False``: post-design queries only, the share over those it holds
            (module docstring).
        threshold_step: the factor, ``> 1``, by which the controller raises or lowers the
            threshold per step (default 1.1).
        grid_size: number of equally spaced fidelity candidates in ``[0, 1]`` for a continuous
            fidelity (``>= 2``; default 101).
        max_cost_ratio: a fidelity is eligible only if it costs less than this share of the
            target (``(0, 1]``; default 1, the paper's ``λ(z) < λ(z•)``).
        cost_cooling: choose ``x_t`` by the optimistic improvement per unit cost, cooled over
            the budget (module docstring, "Configuration-dependent cost"; default False, the
            paper's cost-blind UCB step; the ``mf-ucb`` strategy turns it on,
            :class:`~mfbo.strategies.mf_gp.MFUCBStrategy`).
        num_restarts, raw_samples, maxiter: the UCB optimiser (see ``optimize_joint``; defaults
            10, 512, 200).
    """

    name = "mf-ucb"
    per_unit_cost = False  # the fidelity is the cheapest that passes BOCA's test

    def __init__(
        self,
        *,
        beta: float | None = None,
        beta_scale: float = 0.2,
        threshold: float = 1.0,
        cost_exponent: float | None = None,
        target_share: tuple[float, float] | None = (0.25, 0.5),
        window: int = 20,
        design_in_window: bool = True,
        threshold_step: float = 1.1,
        grid_size: int = 101,
        max_cost_ratio: float = 1.0,
        cost_cooling: bool = False,
        num_restarts: int = 10,
        raw_samples: int = 512,
        maxiter: int = 200,
    ) -> None:
        self.beta = None if beta is None else check_float(self.name, "beta", beta, minimum=0.0, strict=True)
        self.beta_scale = check_float(self.name, "beta_scale", beta_scale, minimum=0.0, strict=True)
        self.threshold = check_float(self.name, "threshold", threshold, minimum=0.0, strict=True)
        self.cost_exponent = (
            None if cost_exponent is None else check_float(self.name, "cost_exponent", cost_exponent, minimum=0.0, strict=True)
        )
        self.target_share = self._check_target_share(target_share)
        self.window = check_int(self.name, "window", window, 1)
        self.design_in_window = check_bool(self.name, "design_in_window", design_in_window)
        self.threshold_step = check_float(self.name, "threshold_step", threshold_step, minimum=1.0, strict=True)
        self.grid_size = check_int(self.name, "grid_size", grid_size, 2)
        ratio_ok = isinstance(max_cost_ratio, (int, float)) and not isinstance(max_cost_ratio, bool) and 0.0 < max_cost_ratio <= 1.0
        if not ratio_ok:  # also rejects NaN
            raise ValueError(f"acquisition {self.name!r}: option max_cost_ratio must be a number in (0, 1], got {max_cost_ratio!r}")
        self.max_cost_ratio = float(max_cost_ratio)
        self.cost_cooling = check_bool(self.name, "cost_cooling", cost_cooling)
        self.num_restarts = check_int(self.name, "num_restarts", num_restarts, 1)
        self.raw_samples = check_int(self.name, "raw_samples", raw_samples, 1)
        self.maxiter = check_int(self.name, "maxiter", maxiter, 1)

    def _check_target_share(self, value: Any) -> tuple[float, float] | None:
        if value is None:
            return None
        try:
            low, high = (float(v) for v in value)
            ok = 0.0 <= low < high <= 1.0 and not any(isinstance(v, bool) for v in value)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"acquisition {self.name!r}: option target_share must be None or a pair (low, high) "
                f"with 0 <= low < high <= 1, got {value!r}"
            )
        return (low, high)

    # -- the pieces of one step ------------------------------------------------------------------
    def threshold_scale(self, ctx: AcquisitionContext) -> float:
        """The target-share controller's coefficient on ``γ`` for this step (``1`` when off).

        Replays the controller over the completed observations in order: for every step
        ``k = k0, ..., n`` (``k`` evaluations completed, :attr:`AcquisitionContext.evaluated_X`,
        so learning-curve points the strategy added are not queries; ``k0 = ctx.options["design_size"]``,
        default 0) the share ``a_k`` of the observations ``k - window, ..., k - 1`` that are at
        the target, divided by ``window``, updates ``c ← c · step`` if ``a_k <= low``,
        ``c ← c / step`` if ``a_k >= high``, from ``c = 1``. With ``design_in_window=False``
        the window is ``max(k0, k - window), ..., k - 1`` and ``a_k`` the share of it at the
        target (no update at ``k = k0``, where it is empty).
        """
        if self.target_share is None:
            return 1.0
        low, high = self.target_share
        at_target = (ctx.evaluated_X[:, -1] >= ctx.target_s - 1e-9).tolist()  # queries, not curve points
        n = len(at_target)
        start = min(int((ctx.options or {}).get("design_size", 0)), n)
        scale = 1.0
        for k in range(start, n + 1):
            if self.design_in_window:
                share = sum(at_target[max(0, k - self.window) : k]) / self.window
            elif k > start:  # the post-design queries the window holds
                held = at_target[max(start, k - self.window) : k]
                share = sum(held) / len(held)
            else:
                continue
            if share <= low:
                scale *= self.threshold_step
            elif share >= high:
                scale /= self.threshold_step
        return scale

    def beta_t(self, ctx: AcquisitionContext) -> float:
        """``β_t`` for this step, as the fidelity rule uses it: the ``beta`` option, or
        ``0.5 d log(2 d t + 1)`` with ``t = n + m + 1`` (observations, pending points, this one)."""
        if self.beta is not None:
            return self.beta
        m = 0 if ctx.X_pending is None else ctx.X_pending.reshape(-1, ctx.dim + 1).shape[0]
        t = ctx.evaluated_X.shape[0] + m + 1
        return 0.5 * ctx.dim * math.log(2 * ctx.dim * t + 1)

    def exploration_weight(self, ctx: AcquisitionContext) -> float:
        """The ``β`` of the UCB step: the ``beta`` option, or ``beta_scale · β_t``."""
        return self.beta if self.beta is not None else self.beta_scale * self.beta_t(ctx)

    def moments(self, ctx: AcquisitionContext) -> GPMoments:
        """Posterior moments given the pending points (Kriging believer)."""
        return gp_moments(ctx.model, ctx.X_pending, ctx.train_X, name=self.name)

    def select_x(self, moments: GPMoments, ctx: AcquisitionContext, beta: float) -> Tensor:
        """``x_t = argmax_x μ(x, 1) + sqrt(β) σ(x, 1)``, as ``(1, d + 1)`` with ``s = 1``: the
        best of the multi-start search's point and the configurations of ``ctx.candidates``
        (runs that can be continued; module docstring), ties going to the search's point; all
        within ``ctx.max_cost`` at their cost to the target where any is."""
        root_beta = math.sqrt(beta)

        def ucb(X: Tensor) -> Tensor:  # (b, 1, d + 1), already at s = 1
            mean, cov = moments.joint(X)
            return mean[..., 0] + root_beta * cov[..., 0, 0].clamp_min(MIN_VAR).sqrt()

        search = dict(
            num_restarts=self.num_restarts, raw_samples=self.raw_samples, maxiter=self.maxiter, fixed_s=1.0,
            respect_budget=True,  # x is evaluated at s = 1 unless the fidelity rule finds a cheaper s
            score_candidates=True,  # the configurations whose runs can be continued (module docstring)
        )
        alpha = self.cooling_exponent(ctx)
        if alpha is not None:
            incumbent = float(moments.joint(ctx.at_target(ctx.evaluated_X[:, : ctx.dim]).unsqueeze(-2))[0].max())

            def cooled(X: Tensor) -> Tensor:  # optimistic improvement per unit cost^alpha
                gain = (ucb(X) - incumbent).clamp_min(0.0)
                return gain / ctx.effort(X).reshape(gain.shape).clamp_min(1e-12) ** alpha

            x, value = optimize_joint(cooled, ctx, **search)
            if float(value) > 0.0:
                return x
        x, _ = optimize_joint(ucb, ctx, **search)
        return x

    def cooling_exponent(self, ctx: AcquisitionContext) -> float | None:
        """``α = 1 - spent / budget`` for the cost-cooled UCB step, or ``None`` (the plain step):
        cooling off, no cost budget in ``ctx.options``, no evaluation at all yet, or a target
        cost that is the same for every evaluated configuration (a fidelity-only cost, as on the
        synthetic suite: the cooled step's argmax is then the plain one's, and skipping it keeps
        the run identical to ``cost_cooling=False`` instead of differing by optimiser round-off)."""
        options = ctx.options or {}
        budget, spent = options.get("budget"), options.get("spent")
        if not self.cost_cooling or budget is None or spent is None or ctx.evaluated_X.shape[0] == 0:
            return None
        with torch.no_grad():
            target_costs = ctx.cost(ctx.at_target(ctx.evaluated_X[:, : ctx.dim]).unsqueeze(-2)).reshape(-1)
        if float(target_costs.max()) <= float(target_costs.min()) * (1.0 + 1e-9):
            return None
        return min(max(1.0 - float(spent) / float(budget), 0.0), 1.0)

    def fidelity_candidates(self, ctx: AcquisitionContext) -> Tensor:
        """``(G,)`` increasing fidelity candidates ending at the target ``1``."""
        if ctx.fidelities is not None:
            return ctx.fidelities.to(torch.double).reshape(-1)
        return torch.linspace(0.0, 1.0, self.grid_size, dtype=torch.double)

    def fidelity_rule(
        self, moments: GPMoments, ctx: AcquisitionContext, x: Tensor, beta: float, scale: float = 1.0
    ) -> FidelityRule:
        """BOCA's ``Z_t`` and ``z_t`` at the configuration ``x`` (``(1, d + 1)`` or ``(d,)``),
        with ``γ`` multiplied by ``threshold · scale`` (``scale``: :meth:`threshold_scale`)."""
        d = ctx.dim
        s = self.fidelity_candidates(ctx)
        config = x.reshape(-1)[:d].to(torch.double)
        points = torch.cat([config.expand(len(s), d), s.unsqueeze(-1)], dim=-1)  # (G, d + 1)
        target = ctx.at_target(config).reshape(1, d + 1)
        prior, post_var = moments.prior_and_posterior(torch.cat([points, target]))  # the target last
        prior_var = prior.diagonal().clamp_min(MIN_VAR)
        corr = prior[:-1, -1] / (prior_var[:-1] * prior_var[-1]).sqrt()
        xi = (1.0 - corr.clamp(-1.0, 1.0) ** 2).sqrt()
        tau = (post_var[:-1].clamp_min(0.0) / prior_var[:-1]).sqrt()
        with torch.no_grad():
            # what a query at (x, s) can remove of τ: τ sqrt(τ² / (τ² + σ²(s))), output units
            _, cov = moments.joint(points.unsqueeze(-2))
            var = cov[..., 0, 0].clamp_min(MIN_VAR)
            tau = tau * (var / (var + moments.noise(points.unsqueeze(-2))[..., 0])).sqrt()
            cost = ctx.effort(points.unsqueeze(-2)).reshape(-1)
            target_cost = ctx.effort(target.unsqueeze(-2)).reshape(())
        q = self.cost_exponent if self.cost_exponent is not None else 1.0 / (1 + d + 2)
        gamma = self.threshold * scale * xi * (cost / target_cost) ** q
        eligible = (cost < target_cost * self.max_cost_ratio) & (tau > gamma) & (xi >= xi.max() / math.sqrt(beta))
        if eligible.any():
            index = torch.nonzero(eligible).reshape(-1)
            chosen = float(s[index[torch.argmin(cost[index])]])
        else:
            chosen = 1.0
        return FidelityRule(s=s, xi=xi, tau=tau, gamma=gamma, cost=cost, eligible=eligible, chosen=chosen)

    # -- propose ---------------------------------------------------------------------------------
    def _propose_one(self, ctx: AcquisitionContext) -> Tensor:
        moments = self.moments(ctx)
        beta = self.beta_t(ctx)
        x = self.select_x(moments, ctx, self.exploration_weight(ctx))
        rule = self.fidelity_rule(moments, ctx, x, beta, self.threshold_scale(ctx))
        x[0, -1] = rule.chosen
        if ctx.max_cost is not None:  # past what the budget has left: the highest fidelity within it
            fits = rule.cost <= ctx.max_cost
            if fits.any() and float(rule.cost[rule.s == rule.chosen].max()) > ctx.max_cost:
                x[0, -1] = float(rule.s[fits].max())
        return x

    def propose(self, ctx: AcquisitionContext, q: int = 1) -> Tensor:
        return sequential_greedy(self._propose_one, ctx, q)

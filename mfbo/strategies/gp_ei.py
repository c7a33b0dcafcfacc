"""Single-fidelity GP Bayesian optimisation at the target fidelity (the classic baseline).

Model: BoTorch ``SingleTaskGP`` (Matérn-5/2 ARD kernel with BoTorch's default priors) on the
unit-cube encoding of :class:`~mfbo.space.Space`, outcomes standardised, fitted by maximising
the marginal likelihood (``fit_gpytorch_mll``). Acquisition: ``qLogExpectedImprovement``
(Ament et al., 2023) with a seeded Sobol QMC sampler, maximised by ``optimize_acqf`` with
multi-start L-BFGS-B. The initial design is a scrambled Sobol sequence of ``n_init`` points;
a design point whose known target cost exceeds what the budget has left is skipped, with a
note (:meth:`~mfbo.strategies.base.Strategy.pop_affordable`).

mfbo minimises and BoTorch maximises: the sign is flipped once, when the training targets are
built (``Y = -value``). Integer and categorical parameters are optimised in their continuous
relaxation and rounded by :meth:`Space.decode`; pending trials enter as ``X_pending``, so
asynchronous workers get distinct suggestions. Where the problem knows its costs in advance,
a proposal is the best candidate whose target cost fits what the budget has left
(:meth:`GPEI._best_within_budget`), as for the multi-fidelity strategies.

Randomness: model fitting and acquisition optimisation run under
:func:`mfbo.rng.torch_seed_scope`, seeded from the strategy's generator, and the QMC sampler
and the raw-sample design get explicit seeds: the same seed gives the same suggestions, and the
caller's global RNG state is left untouched.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Standardize
from botorch.optim import optimize_acqf
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import ExactMarginalLogLikelihood

from ..rng import draw_seed, torch_seed_scope
from .base import Strategy, recommendation_rule

DTYPE = torch.double
#: ``gp-ei``'s recommendation rules (:class:`GPEI`).
RECOMMENDATION_RULES = ("auto", "observed", "evaluated")


class GPEI(Strategy):
    """GP + qLogEI at the target fidelity.

    Options:
        n_init: size of the initial Sobol design (default ``max(4, d + 1)`` with ``d`` the
            encoding dimension).
        num_restarts: L-BFGS-B restarts of the acquisition optimiser.
        raw_samples: random points scored to pick the restarts.
        mc_samples: QMC samples of qLogEI.
        recommendation: one of :data:`RECOMMENDATION_RULES`: ``"observed"`` (the best observed
            value), ``"evaluated"`` (the best posterior mean among the evaluated
            configurations) or ``"auto"`` (default; ``"observed"`` on a problem that declares
            :attr:`~mfbo.problems.base.Problem.noiseless_target`, else ``"evaluated"``: the
            rules and the default of the ``mf-*`` strategies, :mod:`mfbo.strategies.mf_gp`
            step 5). The other rule is logged beside it (:meth:`other_recommendations`).
    """

    name = "gp-ei"

    def __init__(
        self,
        space,
        fidelity=None,
        *,
        seed: int = 0,
        problem=None,
        n_init: int | None = None,
        num_restarts: int = 10,
        raw_samples: int = 512,
        mc_samples: int = 128,
        recommendation: str = "auto",
    ) -> None:
        super().__init__(space, fidelity, seed=seed, problem=problem)
        if recommendation not in RECOMMENDATION_RULES:
            raise ValueError(f"strategy 'gp-ei': option recommendation must be one of {list(RECOMMENDATION_RULES)}, got {recommendation!r}")
        self.recommendation, self.recommendation_rule = recommendation, recommendation_rule(recommendation, problem)
        for key, value, minimum in (("num_restarts", num_restarts, 1), ("raw_samples", raw_samples, 1), ("mc_samples", mc_samples, 1)):
            if int(value) < minimum:
                raise ValueError(f"strategy 'gp-ei': option {key} must be an integer >= {minimum}, got {value!r}")
        self.n_init = max(4, space.dim + 1) if n_init is None else int(n_init)
        if self.n_init < 1:
            raise ValueError(f"strategy 'gp-ei': option n_init must be an integer >= 1, got {n_init!r}")
        self.num_restarts, self.raw_samples, self.mc_samples = int(num_restarts), int(raw_samples), int(mc_samples)
        sobol = torch.quasirandom.SobolEngine(space.dim, scramble=True, seed=draw_seed(self.rng))
        self._design = space.decode_many(sobol.draw(self.n_init, dtype=DTYPE).numpy())  # popped by asks
        self._bounds = torch.stack([torch.zeros(space.dim, dtype=DTYPE), torch.ones(space.dim, dtype=DTYPE)])
        self._model_cache: tuple[int, SingleTaskGP, torch.Tensor, torch.Tensor] | None = None

    def options(self) -> dict[str, Any]:
        return {
            "n_init": self.n_init, "num_restarts": self.num_restarts, "raw_samples": self.raw_samples, "mc_samples": self.mc_samples,
            "recommendation": self.recommendation,
        }

    def _training_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        done = self.successes(at_target=True)
        X = torch.as_tensor(self.space.encode_many(t.config for t, _ in done), dtype=DTYPE)
        Y = -torch.tensor([[o.value] for _, o in done], dtype=DTYPE).reshape(-1, 1)  # BoTorch maximises
        return X, Y

    def _model(self) -> tuple[SingleTaskGP, torch.Tensor, torch.Tensor]:
        """``(gp, X, Y)``: the GP fitted on all successful target-fidelity data, ``X`` of shape
        ``n x d`` and ``Y = -value`` of shape ``n x 1`` (refitted only when the history grew)."""
        n = len(self.history)
        if self._model_cache is not None and self._model_cache[0] == n:
            return self._model_cache[1:]
        X, Y = self._training_data()
        model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with torch_seed_scope(self.rng), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BoTorch warns on every optimizer restart; failures surface below
            try:
                fit_gpytorch_mll(mll)
            except Exception as err:  # the fit must not end the run: keep the prior hyperparameters
                warnings.warn(f"gp-ei: GP fit failed ({err}); using the initial hyperparameters", RuntimeWarning, stacklevel=2)
        model.eval()
        self._model_cache = (n, model, X, Y)
        return model, X, Y

    def _suggest(self) -> tuple[dict[str, Any], float | None]:
        if self._design and len(self.successes(at_target=True)) < self.n_init:
            config = self.pop_affordable(self._design, self._target_cost)
            if config is not None:
                return config, self.target_fidelity
        if not self._ready():  # too little data for a GP: keep exploring
            return self.space.sample(self.rng), self.target_fidelity
        model, _, Y = self._model()
        pending = [t.config for t in self.pending.values()]
        with torch_seed_scope(self.rng) as seed, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. BoTorch's OptimizationWarning on early stops
            acq = qLogExpectedImprovement(
                model,
                best_f=Y.max(),
                sampler=SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=seed),
                X_pending=torch.as_tensor(self.space.encode_many(pending), dtype=DTYPE) if pending else None,
            )
            candidates, values = optimize_acqf(
                acq, bounds=self._bounds, q=1, num_restarts=self.num_restarts, raw_samples=self.raw_samples,
                return_best_only=False,
            )
            return self._best_within_budget(acq, candidates.reshape(-1, self.space.dim), values.reshape(-1), seed), self.target_fidelity

    def _target_cost(self, config: dict[str, Any]) -> float | None:
        """The problem's known cost of ``config`` at the target (None: not known in advance)."""
        return None if self.problem is None else self.problem.increment_cost(config, self.target_fidelity)

    def _best_within_budget(self, acq, candidates: torch.Tensor, values: torch.Tensor, seed: int) -> dict[str, Any]:
        """The best of the optimiser's ``candidates (r, d)`` (acquisition ``values (r,)``) whose
        known target cost fits :meth:`budget_left`; if none does, the best that fits of
        ``raw_samples`` Sobol points; if none does either (or costs are unknown), the best.

        The loop ends a run at the first trial that would exceed the budget, so proposing one
        near the end would leave the rest unspent; mfbo's multi-fidelity strategies apply the
        same rule (:func:`mfbo.acquisition.optimize.within_budget`)."""
        left = self.budget_left()
        configs = [self.space.decode(row.numpy()) for row in candidates]
        best = configs[int(torch.argmax(values))]
        if left is None or self.problem is None:
            return best
        costs = self.problem.cost_many(configs, self.target_fidelity)
        if any(c is None for c in costs):
            return best
        fits = torch.tensor([c <= left for c in costs])
        if not fits.any():  # score a wider pool
            raw = torch.quasirandom.SobolEngine(self.space.dim, scramble=True, seed=seed).draw(self.raw_samples, dtype=DTYPE)
            configs = [self.space.decode(row.numpy()) for row in raw]
            with torch.no_grad():
                values = acq(torch.as_tensor(self.space.encode_many(configs), dtype=DTYPE).unsqueeze(1))
            fits = torch.tensor([c <= left for c in self.problem.cost_many(configs, self.target_fidelity)])
        if not fits.any():
            return best
        return configs[int(torch.argmax(values.masked_fill(~fits, -torch.inf)))]

    def _ready(self) -> bool:
        """Whether the GP phase has begun: the design is issued (or enough data was added with
        :meth:`add_observation` to skip it) and two points succeeded."""
        return (not self._design or len(self.successes(at_target=True)) >= self.n_init) and len(self.successes(at_target=True)) >= 2

    def _observe(self, trial, observation) -> None:
        if self._ready():  # refit on new data here, so that the loop times it as the tell's overhead
            self._model()

    def recommend(self) -> dict[str, Any] | None:
        """The configuration the ``recommendation`` rule names (the best observed value during
        the initial design, whatever the rule)."""
        if not self._ready() or self.recommendation_rule == "observed":
            return super().recommend()
        return self._best_posterior_mean()

    def other_recommendations(self) -> dict[str, dict[str, Any]]:
        """The rule not chosen, by name, with its configuration (``{}`` during the design)."""
        if not self._ready():
            return {}
        if self.recommendation_rule == "observed":
            return {"evaluated": self._best_posterior_mean()}
        return {"observed": super().recommend()}

    def _best_posterior_mean(self) -> dict[str, Any]:
        """Argmin of the posterior mean over the evaluated target-fidelity configurations."""
        done = self.successes(at_target=True)
        model, X, _ = self._model()
        with torch.no_grad():
            mean = model.posterior(X).mean.squeeze(-1)  # of -value
        return dict(done[int(torch.argmax(mean))][0].config)

"""Strategy overhead and regret against BoTorch's multi-fidelity KG tutorial, side by side.

Part 1 reproduces the reference: the setting of BoTorch's tutorials *Continuous Multi-Fidelity
BO with Knowledge Gradient* and *Multi-Fidelity BO with Discrete Fidelities using KG*:

- AugmentedHartmann (6-D + fidelity ``s``), cost ``5 + s``;
- ``SingleTaskMultiFidelityGP(data_fidelities=[6])``, 16 initial points at ``s in {0.5, 0.75, 1}``;
- ``qMultiFidelityKnowledgeGradient`` with 128 fantasies, ``InverseCostWeightedUtility``,
  ``project_to_target_fidelity``, ``optimize_acqf`` with 10 restarts, 512 raw samples, q = 4
  (one-shot KG initial conditions), or ``optimize_acqf_mixed`` over ``{0.5, 0.75, 1.0}``.

Each tutorial iteration and each of our strategies start from the *same* 16 initial points and
spend the *same* cost (the tutorial's), so the seconds per suggested point and the final
inference regret (the target value of the recommendation at the end, minus the optimum) are
comparable. Our strategies run at their defaults.

Part 2 times steady-state steps (tell one new observation, which conditions the GP on it, then
ask) of every strategy at ``n`` observations of AugmentedHartmann (continuous fidelity), and
``--refit-steps`` steps (median and max; default 3: one warm-started L-BFGS-B fit varies in its
iterations) that also re-optimise the hyperparameters (the strategies do this after every 5 % of
data growth), each followed by the step where a learned cost model re-optimises its own.
``--problem`` times another problem instead, with the ``n`` observations at random rungs of the strategies' fidelity ladder
(:func:`mfbo.strategies.mf_gp.geometric_ladder`); on LCBench (``--problem lcbench/3945``,
7-D, learned cost, learning curves) each observation carries its curve, so the GP also gets
the curve points and the acquisition the continuations of the runs, as in a real run.

``--fabolas [N ...]`` times FABOLAS instead (issue #15, :func:`fabolas_overhead`): tell + ask at
``n`` = 50, 100, 200 observations of ``digits-svm`` (cost model; random configurations at
log-uniform random subsets), median and max over ``--fabolas-steps`` steps after the first ask
(which runs the MCMC burn-in and is reported apart), wall and CPU seconds; Emukit's FABOLAS
(``emukit.examples.fabolas.FabolasLoop``, needs ``emukit`` and ``GPy``) times its loop iterations
on the same data in the same process (``--no-emukit`` skips it).

    python experiments/bench_overhead.py                       # everything (long: the reference is slow)
    python experiments/bench_overhead.py --part 1 --seeds 2 --variants continuous
    python experiments/bench_overhead.py --part 2 --sizes 200 2000
    python experiments/bench_overhead.py --part 2 --sizes 200 --problem lcbench/3945 --threads 1
    python experiments/bench_overhead.py --threads 1 --fabolas 50 100 200 --fabolas-steps 3
    python experiments/bench_overhead.py --threads 1 --boil 50 100 200       # BOIL (issue #15), boil_overhead
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

import mfbo
from mfbo.strategies import make
from mfbo.strategies.mf_gp import geometric_ladder

TUTORIAL_FIDELITIES = (0.5, 0.75, 1.0)
MF_STRATEGIES = ("mf-kg", "mf-mes", "mf-gibbon", "mf-ei", "mf-ucb")


# --- the reference: BoTorch's tutorial, verbatim in its settings --------------------------------
def tutorial_run(train_x: torch.Tensor, train_obj: torch.Tensor, iterations: int, discrete: bool, seed: int):
    """Run the tutorial loop; returns (seconds per step list, n per step, spent cost, recommendation x)."""
    from botorch import fit_gpytorch_mll
    from botorch.acquisition import PosteriorMean
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility
    from botorch.acquisition.fixed_feature import FixedFeatureAcquisitionFunction
    from botorch.acquisition.knowledge_gradient import qMultiFidelityKnowledgeGradient
    from botorch.acquisition.utils import project_to_target_fidelity
    from botorch.models.cost import AffineFidelityCostModel
    from botorch.models.gp_regression_fidelity import SingleTaskMultiFidelityGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim.initializers import gen_one_shot_kg_initial_conditions
    from botorch.optim.optimize import optimize_acqf, optimize_acqf_mixed
    from botorch.test_functions.multi_fidelity import AugmentedHartmann
    from gpytorch.mlls.exact_marginal_log_likelihood import ExactMarginalLogLikelihood

    torch.manual_seed(seed)  # a benchmark script, not library code: the tutorial seeds globally
    problem = AugmentedHartmann(negate=True).to(dtype=torch.double)
    bounds = torch.tensor([[0.0] * 7, [1.0] * 7], dtype=torch.double)
    cost_model = AffineFidelityCostModel(fidelity_weights={6: 1.0}, fixed_cost=5.0)
    utility = InverseCostWeightedUtility(cost_model=cost_model)

    def project(X):
        return project_to_target_fidelity(X=X, d=7, target_fidelities={6: 1.0})

    def fit(x, y):
        model = SingleTaskMultiFidelityGP(x, y, outcome_transform=Standardize(m=1), data_fidelities=[6])
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        return model

    x, y, spent, times, sizes = train_x.clone(), train_obj.clone(), 0.0, [], []
    for _ in range(iterations):
        start = time.perf_counter()
        model = fit(x, y)
        current = FixedFeatureAcquisitionFunction(PosteriorMean(model), d=7, columns=[6], values=[1])
        _, current_value = optimize_acqf(current, bounds[:, :-1], q=1, num_restarts=10, raw_samples=1024, options={"batch_limit": 10, "maxiter": 200})
        acqf = qMultiFidelityKnowledgeGradient(model=model, num_fantasies=128, current_value=current_value, cost_aware_utility=utility, project=project)
        if discrete:
            candidates, _ = optimize_acqf_mixed(acqf, bounds=bounds, q=4, num_restarts=10, raw_samples=512,
                                                fixed_features_list=[{6: f} for f in TUTORIAL_FIDELITIES], options={"batch_limit": 5, "maxiter": 200})
        else:
            init = gen_one_shot_kg_initial_conditions(acqf, bounds=bounds, q=4, num_restarts=10, raw_samples=512)
            candidates, _ = optimize_acqf(acqf, bounds=bounds, q=4, num_restarts=10, raw_samples=512, batch_initial_conditions=init, options={"batch_limit": 5, "maxiter": 200})
        times.append(time.perf_counter() - start)
        sizes.append(len(x))
        spent += float(cost_model(candidates).sum())
        x = torch.cat([x, candidates.detach()])
        y = torch.cat([y, problem(candidates.detach()).unsqueeze(-1)])
    model = fit(x, y)
    rec = FixedFeatureAcquisitionFunction(PosteriorMean(model), d=7, columns=[6], values=[1])
    best, _ = optimize_acqf(rec, bounds[:, :-1], q=1, num_restarts=10, raw_samples=512, options={"batch_limit": 5, "maxiter": 200})
    return times, sizes, spent, best.reshape(-1)


def initial_data(seed: int, discrete: bool):
    """The tutorial's generate_initial_data(n=16): uniform x, fidelity uniform on the three levels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 6, generator=g, dtype=torch.double)
    s = torch.tensor(TUTORIAL_FIDELITIES, dtype=torch.double)[torch.randint(3, (16, 1), generator=g)]
    from botorch.test_functions.multi_fidelity import AugmentedHartmann

    full = torch.cat([x, s], dim=1)
    return full, AugmentedHartmann(negate=True)(full).unsqueeze(-1)


def ours_run(strategy_name: str, full: torch.Tensor, budget: float, discrete: bool, seed: int):
    """Our strategy from the same initial data until it has spent ``budget`` beyond it."""
    levels = list(TUTORIAL_FIDELITIES) if discrete else None
    problem = mfbo.problems.get("augmented-hartmann", levels=levels)
    strategy = make(strategy_name, problem, seed=seed)
    names = list(problem.space)
    for row in full.tolist():
        config = dict(zip(names, row[:6]))
        strategy.add_observation(config, row[6], problem.evaluate(config, row[6]))
    spent, times, sizes = 0.0, [], []
    while spent < budget:
        start = time.perf_counter()
        trial = strategy.ask()
        times.append(time.perf_counter() - start)
        sizes.append(len(strategy.history))
        obs = problem.evaluate(trial.config, trial.fidelity)
        start = time.perf_counter()
        strategy.tell(trial, obs)
        times[-1] += time.perf_counter() - start
        spent += obs.cost
    rec = strategy.recommend()
    return times, sizes, spent, problem.target_value(rec) - problem.optimum


def part1(seeds: int, iterations: int, variants: list[str], strategies: list[str]) -> None:
    optimum = 3.32237  # max of the negated AugmentedHartmann at s = 1
    for variant in variants:
        discrete = variant == "discrete"
        print(f"\n## Part 1 ({variant} fidelity): BoTorch tutorial qMFKG (q=4) vs ours, {seeds} seeds, {iterations} tutorial iterations\n")
        rows = {}
        for seed in range(seeds):
            full, obj = initial_data(seed, discrete)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times, sizes, spent, rec = tutorial_run(full, obj, iterations, discrete, seed)
            from botorch.test_functions.multi_fidelity import AugmentedHartmann

            value = float(AugmentedHartmann(negate=True)(torch.cat([rec, torch.ones(1, dtype=torch.double)]).unsqueeze(0)))
            rows.setdefault("tutorial", []).append((np.sum(times) / (4 * len(times)), np.mean(times), optimum - value, spent, sizes))
            for name in strategies:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t, n, s, regret = ours_run(name, full, spent, discrete, seed)
                rows.setdefault(name, []).append((np.sum(t) / len(t), np.mean(t), regret, s, n))
        ref = np.mean([r[0] for r in rows["tutorial"]])
        print("| method | s per suggested point | s per step | ratio to tutorial (per point) | final inference regret (median) | cost spent |")
        print("|---|---|---|---|---|---|")
        for name, rs in rows.items():
            per_point = np.mean([r[0] for r in rs])
            print(f"| {name} | {per_point:.2f} | {np.mean([r[1] for r in rs]):.2f} | {per_point / ref:.3f} | "
                  f"{np.median([r[2] for r in rs]):.4f} ({', '.join(f'{r[2]:.3g}' for r in rs)}) | {np.mean([r[3] for r in rs]):.1f} |")


def part2(sizes: list[int], strategies: list[str], seed: int = 0, steps_per_size: int = 5, problem_name: str = "augmented-hartmann",
          refit_steps: int = 3) -> None:
    print(f"\n## Part 2: seconds per step (tell + ask) at n observations, {problem_name}: "
          f"mean (max) of {steps_per_size} steady steps, then median (max) of {refit_steps} steps that re-optimise the GP's hyperparameters "
          f"(warm-started, as every refit_growth = 5% of data growth), each followed by a step where a learned "
          f"cost model re-optimises its own (it waits a step so that no step pays for both fits); "
          f"then the mean (max) seconds of what the run loop asks after each tell, recommend() and "
          f"other_recommendations() (every recommendation rule, logged beside the chosen one), over {steps_per_size} more steps\n")
    print("| strategy | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    problem = mfbo.problems.get(problem_name)
    if problem_name == "augmented-hartmann":
        levels = TUTORIAL_FIDELITIES
    else:
        levels = tuple(problem.fidelity.denormalize(s) for s in geometric_ladder(problem.fidelity))
    rng = np.random.default_rng(seed)
    for name in strategies:
        cells = []
        for n in sizes:
            strategy = make(name, problem, seed=seed)
            configs = problem.space.sample(rng, n + 1)
            fidelities = [levels[i] for i in rng.integers(len(levels), size=n + 1)]
            for config, s in zip(configs[:n], fidelities[:n]):
                strategy.add_observation(config, s, problem.evaluate(config, s))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pending = [strategy.ask()]  # warm-up: the first fit from scratch

                def step() -> float:
                    start = time.perf_counter()
                    trial = pending.pop()
                    strategy.tell(trial, problem.evaluate(trial.config, trial.fidelity))
                    pending.append(strategy.ask())
                    return time.perf_counter() - start

                def recommend_step() -> float:  # what the run loop asks after each tell: every rule
                    step()
                    start = time.perf_counter()
                    strategy.recommend()
                    strategy.other_recommendations()
                    return time.perf_counter() - start

                steps = [step() for _ in range(steps_per_size)]
                recommend = [recommend_step() for _ in range(steps_per_size)]
                refits, cost_refits = [], []
                strategy.refit_growth = 0.0
                for _ in range(refit_steps):
                    strategy._fitted_at = 0  # the next tell re-optimises the GP's hyperparameters, warm-started
                    refits.append(step())
                    strategy._fitted_at = math.inf  # the step after: the GP only conditions; a learned cost model refits
                    cost_refits.append(step())
                cells.append(f"{np.mean(steps):.2f} (max {np.max(steps):.2f}); refit steps {np.median(refits):.2f} (max {np.max(refits):.2f}) (GP), "
                             f"{np.median(cost_refits):.2f} (max {np.max(cost_refits):.2f}) (cost model); "
                             f"recommend {np.mean(recommend):.2f} (max {np.max(recommend):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def timed_steps(strategy, problem, trial, steps: int) -> tuple[object, list[float], list[float]]:
    """Evaluate ``trial``, tell it and ask the next, ``steps`` times: ``(next trial, wall seconds,
    CPU seconds)`` of each tell + ask (the evaluation is not timed)."""
    wall, cpu = [], []
    for _ in range(steps):
        obs = problem.evaluate(trial.config, trial.fidelity)
        start, cpu_start = time.perf_counter(), time.process_time()
        strategy.tell(trial, obs)
        trial = strategy.ask()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return trial, wall, cpu


# --- BOIL (issue #15): seconds per step at n observations ---------------------------------------------------
def boil_overhead(sizes: list[int], steps: int, seed: int = 0, problem_name: str = "lcbench/3945") -> None:
    """Median and max seconds per BOIL step (tell, with its selective augmentation, + ask) at ``n``
    real observations (random configurations at random rungs of the geometric ladder, each with
    its learning curve and augmented as in a run), over ``steps`` steady steps and one step that
    runs the full random-start search of ``(m0, g0)`` and the GP's hyperparameters (every
    ``2 (d + 1)`` observations in a run); wall and CPU seconds."""
    print(f"\n## BOIL: seconds per step (tell + ask) at n observations of {problem_name}, {steps} steady steps and one full hyperparameter search\n")
    print("| n | GP rows (with augmented) | median s (wall) | max s (wall) | full-search step s (wall) | median s (CPU) |\n|---|---|---|---|---|---|")
    problem = mfbo.problems.get(problem_name)
    levels = [problem.fidelity.denormalize(s) for s in geometric_ladder(problem.fidelity)]
    rng = np.random.default_rng(seed)
    for n in sizes:
        strategy = make("boil", problem, seed=seed)
        configs = problem.space.sample(rng, n)
        for config, s in zip(configs, rng.choice(levels, size=n)):
            strategy.add_observation(config, s, problem.evaluate(config, s))
        trial, wall, cpu = timed_steps(strategy, problem, strategy.ask(), steps)  # the first fit (a full search) is not timed
        strategy._searched_at = -math.inf  # the last step runs the full search
        trial, full_wall, full_cpu = timed_steps(strategy, problem, trial, 1)
        wall, cpu = wall + full_wall, cpu + full_cpu
        print(f"| {n} | {len(strategy._rows)} | {np.median(wall[:-1]):.2f} | {np.max(wall):.2f} | {wall[-1]:.2f} | {np.median(cpu[:-1]):.2f} |", flush=True)


# --- FABOLAS (issue #15): seconds per step at n observations, and Emukit's FABOLAS on the same data -----------
def fabolas_data(n: int, seed: int) -> tuple[mfbo.problems.base.Problem, list[tuple[dict, float, object]]]:
    """``n`` evaluations of ``digits-svm`` (cost model) at random configurations and log-uniform
    random subsets, the same for every size (prefixes)."""
    problem = mfbo.problems.get("digits-svm", cost="model")
    rng = np.random.default_rng(seed)
    configs = problem.space.sample(rng, n)
    subsets = problem.fidelity.low * (problem.fidelity.high / problem.fidelity.low) ** rng.uniform(size=n)
    return problem, [(c, float(s), problem.evaluate(c, float(s))) for c, s in zip(configs, subsets)]


def emukit_steps(problem, data, steps: int, eval_points: int = 2000) -> list[float]:
    """Seconds of Emukit's FABOLAS loop per iteration (model updates + acquisition optimisation,
    the evaluation's time subtracted) on ``data``, subsets as dataset sizes. ``eval_points``:
    the random candidates its acquisition optimiser scores (Emukit's default 2000; ours 500)."""
    from emukit.core import ContinuousParameter, ParameterSpace
    from emukit.core.loop import FixedIterationsStoppingCondition, UserFunctionWrapper
    from emukit.examples.fabolas.fabolas_loop import FabolasLoop

    n_train = problem.subset_size(1.0)
    s_min, s_max = problem.subset_size(problem.fidelity.low), n_train
    X = np.array([np.append(problem.space.encode(c), problem.subset_size(s)) for c, s, _ in data])
    Y, cost = np.array([[o.value] for _, _, o in data]), np.array([o.cost for _, _, o in data])
    eval_time = []

    def evaluate(x: np.ndarray):
        start = time.perf_counter()
        obs = problem.evaluate(problem.space.decode(x[0, :-1]), float(np.clip(x[0, -1] / n_train, problem.fidelity.low, 1.0)))
        eval_time.append(time.perf_counter() - start)
        return np.array([[obs.value]]), np.array([[obs.cost]])

    space = ParameterSpace([ContinuousParameter(f"x{i}", 0.0, 1.0) for i in range(problem.space.dim)])
    loop = FabolasLoop(space, X, Y, cost, s_min=s_min, s_max=s_max, num_eval_points=eval_points)
    times = []
    for _ in range(steps):
        start, before = time.perf_counter(), sum(eval_time)
        loop.run_loop(UserFunctionWrapper(evaluate, extra_output_names=["cost"]), FixedIterationsStoppingCondition(loop.loop_state.iteration + 1))
        times.append(time.perf_counter() - start - (sum(eval_time) - before))
    return times


def fabolas_overhead(sizes: list[int], steps: int, seed: int = 0, emukit: bool = True, emukit_points: int = 2000) -> None:
    """Median and max seconds per FABOLAS step (tell + ask; wall and CPU) at ``n`` observations,
    after a first ask that runs the MCMC burn-in (reported apart); Emukit's FABOLAS on the same data."""
    print(f"\n## FABOLAS: seconds per step (tell + ask) at n observations of digits-svm (cost model), {steps} steps after the first ask (burn-in)\n")
    print("| n | first ask s | median s (wall) | max s (wall) | median s (CPU) | Emukit FABOLAS median s | Emukit / ours (median wall) |\n|---|---|---|---|---|---|---|")
    problem, data = fabolas_data(max(sizes) + steps, seed)
    for n in sizes:
        strategy = make("fabolas", problem, seed=seed)
        for config, s, obs in data[:n]:
            strategy.add_observation(config, s, obs)
        start = time.perf_counter()
        trial = strategy.ask()
        first = time.perf_counter() - start
        trial, wall, cpu = timed_steps(strategy, problem, trial, steps)
        ref = emukit_steps(problem, data[:n], steps, emukit_points) if emukit else []
        ratio = f"{np.median(ref) / np.median(wall):.2f}" if ref else "not run"
        print(f"| {n} | {first:.1f} | {np.median(wall):.2f} | {np.max(wall):.2f} | {np.median(cpu):.2f} | {np.median(ref) if ref else float('nan'):.2f} | {ratio} |", flush=True)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", type=int, choices=[1, 2], action="append", help="which part(s) to run (default both)")
    parser.add_argument("--fabolas", nargs="*", type=int, metavar="N", help="only time FABOLAS at these n (default 50 100 200)")
    parser.add_argument("--fabolas-steps", type=int, default=3, help="FABOLAS steps timed per n")
    parser.add_argument("--no-emukit", action="store_true", help="skip Emukit's FABOLAS (the reference timing)")
    parser.add_argument("--emukit-points", type=int, default=2000,
                        help="random candidates Emukit's acquisition optimiser scores (its default 2000; ours scores 500)")
    parser.add_argument("--boil", nargs="*", type=int, metavar="N", help="only time BOIL at these n (default 50 100 200), on --problem if given, else lcbench/3945")
    parser.add_argument("--boil-steps", type=int, default=5, help="BOIL steady steps timed per n")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3, help="tutorial iterations (q=4 each): n = 16, 20, 24")
    parser.add_argument("--variants", nargs="+", default=["continuous", "discrete"], choices=["continuous", "discrete"])
    parser.add_argument("--strategies", nargs="+", default=list(MF_STRATEGIES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[200, 2000])
    parser.add_argument("--threads", type=int, default=None, help="torch threads for everything (reference and ours alike)")
    parser.add_argument("--problem", default="augmented-hartmann", help="part 2's problem (default augmented-hartmann)")
    parser.add_argument("--refit-steps", type=int, default=3, help="part 2: hyperparameter refit steps timed per strategy and n")
    args = parser.parse_args()
    torch.set_default_dtype(torch.double)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    if args.boil is not None:
        boil_overhead(args.boil or [50, 100, 200], args.boil_steps, problem_name=args.problem if args.problem != "augmented-hartmann" else "lcbench/3945")
        return
    if args.fabolas is not None:
        fabolas_overhead(args.fabolas or [50, 100, 200], args.fabolas_steps, emukit=not args.no_emukit, emukit_points=args.emukit_points)
        return
    parts = args.part or [1, 2]
    if 1 in parts:
        part1(args.seeds, args.iterations, args.variants, args.strategies)
    if 2 in parts:
        part2(args.sizes, args.strategies, problem_name=args.problem, refit_steps=args.refit_steps)


if __name__ == "__main__":
    main()

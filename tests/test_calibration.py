"""Fidelity calibration: the metrics on cases with known answers, the evaluation paths
(independent, resumed with cumulative cost, failures), the report's files, the CLI and the errors."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo.calibration import CalibrationReport, calibrate, calibration_metrics, default_levels
from mfbo.cli import main


def _two_levels(level: np.ndarray, target: np.ndarray, level_cost: float = 0.1, target_cost: float = 1.0):
    values = np.column_stack([level, target])
    costs = np.column_stack([np.full(len(level), level_cost), np.full(len(target), target_cost)])
    return values, costs


# Metrics on known answers ---------------------------------------------------------------------
def test_a_constant_offset_is_pure_bias_with_perfect_ranks():
    target = np.random.default_rng(0).normal(size=40)
    level, at_target = calibration_metrics(*_two_levels(target + 3.0, target), target_column=1)
    assert level.bias_mean == pytest.approx(3.0) and level.bias_max == pytest.approx(3.0)
    assert level.bias_signed_mean == pytest.approx(3.0)
    assert level.spearman == pytest.approx(1.0) and level.kendall == pytest.approx(1.0)
    assert level.precision == {"10%": 1.0, "25%": 1.0} and level.top_k == {"10%": 4, "25%": 10}
    assert at_target.bias_max == 0.0 and at_target.spearman == pytest.approx(1.0)
    assert at_target.precision == {"10%": 1.0, "25%": 1.0} and at_target.cost_fraction == 1.0


def test_a_decreasing_function_of_the_target_inverts_every_rank():
    target = np.linspace(-1.0, 2.0, 20)
    level = calibration_metrics(*_two_levels(np.exp(-target), target), target_column=-1)[0]
    assert level.spearman == pytest.approx(-1.0) and level.kendall == pytest.approx(-1.0)
    assert level.precision == {"10%": 0.0, "25%": 0.0}  # k = 2 and 5, both < N / 2
    assert level.bias_max == pytest.approx(max(abs(np.exp(-target) - target)))


def test_a_known_permutation_gives_the_hand_computed_overlap_and_correlations():
    # target ranks 0..19; the level swaps ranks 0<->5 and 1<->19, all else in place.
    target = np.arange(20, dtype=float)
    perm = np.arange(20)
    perm[[0, 5]] = perm[[5, 0]]
    perm[[1, 19]] = perm[[19, 1]]
    level_values = target[perm] + 0.25  # a constant offset leaves ranks alone
    m = calibration_metrics(*_two_levels(level_values, target), target_column=1, top_fractions=(0.1, 0.25))[0]
    # top 2 at the level: configs 5 and 19; at the target: 0 and 1 -> no overlap.
    # top 5 at the level: {5, 19, 2, 3, 4}; at the target {0, 1, 2, 3, 4} -> 3 of 5.
    assert m.precision == {"10%": 0.0, "25%": pytest.approx(0.6)}
    # Spearman without ties: 1 - 6 sum d^2 / (n (n^2 - 1)), d = 5, 5, 18, 18.
    assert m.spearman == pytest.approx(1 - 6 * (25 + 25 + 324 + 324) / (20 * 399))
    # Kendall from its definition: (concordant - discordant) / (n choose 2).
    signs = [np.sign(level_values[i] - level_values[j]) * np.sign(target[i] - target[j]) for i, j in itertools.combinations(range(20), 2)]
    assert m.kendall == pytest.approx(sum(signs) / 190)


def test_ties_at_the_top_k_boundary_count_in_expectation():
    target = np.arange(10, dtype=float)
    constant = calibration_metrics(*_two_levels(np.zeros(10), target), target_column=1, top_fractions=(0.2, 0.5))[0]
    # a constant level cannot rank: every config is in its top k with probability k / N
    assert constant.precision == {"20%": pytest.approx(0.2), "50%": pytest.approx(0.5)}
    assert math.isnan(constant.spearman) and math.isnan(constant.kendall)
    # level ties configs 1 and 2 for second place: top 2 = {0} plus one of {1, 2} at random;
    # the target's top 2 is {0, 1}, so the expected overlap is 1 + 1/2.
    tied = calibration_metrics(*_two_levels(np.array([0, 1, 1, 3, 4, 5, 6, 7, 8, 9.0]), target), target_column=1, top_fractions=(0.2,))[0]
    assert tied.precision == {"20%": pytest.approx(0.75)}


def test_the_target_scores_precision_one_even_when_its_values_tie():
    # an error rate on a small validation set: three configs tie at the top-2 boundary
    target = np.array([0.0, 0.1, 0.1, 0.1, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    levels = calibration_metrics(*_two_levels(target.copy(), target), target_column=1, top_fractions=(0.2, 0.5))
    assert levels[0].precision == levels[1].precision == {"20%": 1.0, "50%": 1.0}
    # a constant level picks 2 of 10 at random; 4 configs are as good as the target's top 2
    constant = calibration_metrics(*_two_levels(np.zeros(10), target), target_column=1, top_fractions=(0.2,))[0]
    assert constant.precision == {"20%": pytest.approx(0.4)}
    # a level that ranks config 3 first and 4 second: 3 is tied for 2nd at the target (a hit), 4 is not
    level = np.array([5.0, 6, 7, 0, 1, 8, 9, 10, 11, 12])
    assert calibration_metrics(*_two_levels(level, target), target_column=1, top_fractions=(0.2,))[0].precision == {"20%": 0.5}


def test_cost_statistics_and_fractions():
    costs = np.array([[1.0, 4.0, 10.0], [2.0, 4.0, 10.0], [3.0, 4.0, 10.0], [6.0, 4.0, 10.0]])
    values = np.tile(np.arange(4.0)[:, None], (1, 3))
    low, mid, target = calibration_metrics(values, costs, target_column=2, top_fractions=(0.25,))
    assert low.cost_mean == 3.0 and low.cost_min == 1.0 and low.cost_max == 6.0 and low.cost_median == 2.5
    assert low.cost_std == pytest.approx(np.std([1, 2, 3, 6], ddof=1))
    assert (low.cost_fraction, mid.cost_fraction, target.cost_fraction) == (pytest.approx(0.3), pytest.approx(0.4), 1.0)
    assert mid.cost_std == 0.0


def test_failed_evaluations_are_left_out_and_counted():
    target = np.arange(12, dtype=float)
    level = target + 1.0
    level[3] = np.nan  # failed at the level: out of that level's pairs
    target_with_failure = target.copy()
    target_with_failure[7] = np.nan  # failed at the target: out of every level's pairs
    values, costs = _two_levels(level, target_with_failure)
    costs[3, 0] = 1e9  # the cost of a failed evaluation is ignored
    m, t = calibration_metrics(values, costs, target_column=1, top_fractions=(0.25,))
    assert (m.n_ok, m.n_failed, m.n_pairs) == (11, 1, 10)
    assert (t.n_ok, t.n_failed, t.n_pairs) == (11, 1, 11)
    assert m.cost_max == pytest.approx(0.1) and m.bias_max == pytest.approx(1.0)
    assert m.top_k == {"25%": 2} and m.precision == {"25%": 1.0}
    assert m.spearman == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(values=np.zeros((3, 2)), costs=np.ones((3, 2)), target_column=1), "must be >= 4, got 3"),
        (dict(values=np.zeros((8, 2)), costs=np.ones((8, 2)), target_column=1), "must be >= 10 so that the top 10% holds at least one configuration, got 8"),
        (dict(values=np.zeros((10, 2)), costs=np.ones((10, 3)), target_column=1), "costs must have the shape of values"),
        (dict(values=np.zeros((10, 2)), costs=np.ones((10, 2)), target_column=2), "target_column must index one of the 2 columns"),
        (dict(values=np.zeros((10, 2)), costs=np.ones((10, 2)), target_column=1, top_fractions=(0.0,)), "each fraction must be in (0, 1]"),
    ],
)
def test_metric_input_errors(kwargs, message):
    with pytest.raises(ValueError) as err:
        calibration_metrics(**kwargs)
    assert message in str(err.value)


# Evaluating a problem ---------------------------------------------------------------------------
class EpochProblem(Problem):
    """value = x + 1/epochs; cost = epochs (increment when resumed); fails for x > 0.9 at epochs 4."""

    def __init__(self, resumable: bool):
        super().__init__("epoch-test", Space(x=Float(0.0, 1.0)), Fidelity("epochs", 1, 16, integer=True))
        self.resumable = resumable
        self.calls: list[tuple[int, int | None]] = []

    def _observe(self, config, fidelity, cost):
        if fidelity == 4 and config["x"] > 0.9:
            raise RuntimeError("diverged")
        return Observation(value=config["x"] + 1.0 / fidelity, cost=cost)

    def _evaluate(self, config, fidelity):
        self.calls.append((fidelity, None))
        return self._observe(config, fidelity, float(fidelity))

    def _resume(self, config, fidelity, resume_from):
        self.calls.append((fidelity, resume_from))
        return self._observe(config, fidelity, float(fidelity - resume_from))


@pytest.mark.parametrize("resumable", [True, False])
def test_levels_are_climbed_in_order_and_resumable_costs_are_cumulative(resumable):
    problem = EpochProblem(resumable)
    report = calibrate(problem, 40, levels=[1, 4, 2], seed=3)
    assert report.levels == (1, 2, 4, 16) and report.target_column == 3
    assert report.cumulative_cost is resumable
    failing = [i for i, c in enumerate(report.configs) if c["x"] > 0.9]
    assert failing, "the seed must sample at least one failing configuration"
    if resumable:
        # each level continues from the last one that succeeded, and the cost is the
        # cost of reaching that level from scratch: the epochs, also after a failure at 4
        fine = next(i for i, c in enumerate(report.configs) if c["x"] <= 0.9)
        assert problem.calls[4 * fine: 4 * fine + 4] == [(1, None), (2, 1), (4, 2), (16, 4)]
        i = failing[0]
        assert problem.calls[4 * i: 4 * i + 4] == [(1, None), (2, 1), (4, 2), (16, 2)]
    else:
        assert all(start is None for _, start in problem.calls)
    ok = np.isfinite(report.values)
    assert np.array_equal(report.costs[ok], np.broadcast_to(np.array([1.0, 2.0, 4.0, 16.0]), report.costs.shape)[ok])
    assert report.n_failed == len(failing) and report.metrics[2].n_failed == len(failing)
    assert report.failures[0]["error"] == "RuntimeError: diverged" and report.failures[0]["fidelity"] == 4
    assert [m.cost_fraction for m in report.metrics] == pytest.approx([1 / 16, 2 / 16, 4 / 16, 1.0])
    # value = x + 1/epochs: every level ranks exactly like the target, with bias 1/e - 1/16
    for m, epochs in zip(report.metrics, report.levels):
        assert m.spearman == pytest.approx(1.0) and m.bias_max == pytest.approx(1 / epochs - 1 / 16)


def test_the_same_seed_gives_the_same_report_and_another_seed_another():
    a = calibrate("mfhartmann3-moderate", 20, levels=[3, 30], seed=7).to_dict()
    b = calibrate("mfhartmann3-moderate", 20, levels=[3, 30], seed=7).to_dict()
    c = calibrate("mfhartmann3-moderate", 20, levels=[3, 30], seed=8).to_dict()
    assert json.dumps(a) == json.dumps(b) and a["configs"] != c["configs"]


def test_good_fidelities_rank_like_the_target_more_than_terrible_ones():
    rho = {corr: calibrate(f"mfhartmann6-{corr}", 40, levels=[50], seed=1).metrics[0].spearman
           for corr in ("good", "moderate", "bad", "terrible")}
    assert rho["good"] > rho["moderate"] > rho["bad"] > rho["terrible"]
    assert rho["good"] - rho["terrible"] > 0.3


def test_default_ladders():
    assert default_levels(Fidelity("z", 1, 100, integer=True, log=True)) == (1, 2, 5, 10, 22, 46, 100)
    assert default_levels(Fidelity("epochs", 1, 52, integer=True)) == (1, 2, 4, 7, 14, 27, 52)
    assert default_levels(Fidelity("s", 0.0, 1.0), n_levels=5) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert default_levels(Fidelity("level", levels=[1, 2, 3, 4, 5])) == (1, 2, 3, 4, 5)
    assert default_levels(Fidelity("level", levels=list(range(1, 21))), n_levels=4) == (1, 7, 14, 20)
    assert default_levels(Fidelity("epochs", 1, 200, integer=True, target=50), n_levels=3) == (1, 7, 50)


@pytest.mark.parametrize(
    "problem, kwargs, message",
    [
        ("mfhartmann6-good", dict(n_configs=3), "n_configs must be >= 4, got 3"),
        ("mfhartmann6-good", dict(n_configs=6), "n_configs must be >= 10 so that the top 10% holds at least one configuration, got 6"),
        ("mfhartmann6-good", dict(n_configs=20, levels=[0, 50]), "levels: fidelity 'z': level 0 is outside the allowed range [1, 100]"),
        ("quadratic-ladder", dict(n_configs=20, levels=[2.5]), "levels: fidelity 'level': level 2.5 is not a level; allowed levels are [1, 2, 3, 4, 5]"),
        ("mfhartmann6-good", dict(n_configs=20, levels=[100]), "levels must include at least one fidelity other than the target 100"),
        ("mfhartmann6-gud", dict(n_configs=20), "unknown problem 'mfhartmann6-gud' (did you mean 'mfhartmann6-good'"),
    ],
)
def test_calibrate_input_errors(problem, kwargs, message):
    with pytest.raises(ValueError) as err:
        calibrate(problem, **kwargs)
    assert message in str(err.value)


def test_a_problem_without_fidelity_is_refused():
    problem = Problem.from_function(lambda c: c["x"], Space(x=Float(0, 1)), name="flat")
    with pytest.raises(ValueError, match="problem 'flat' has no fidelity; calibrate needs a multi-fidelity problem"):
        calibrate(problem, 20)


# Report files and the command line --------------------------------------------------------------
def test_report_json_markdown_and_figure(tmp_path):
    report = calibrate("quadratic-ladder", 12, seed=0)
    assert isinstance(report, CalibrationReport) and report.levels == (1, 2, 3, 4, 5)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["levels"] == [1, 2, 3, 4, 5] and len(data["values"]) == 12 and len(data["metrics"]) == 5
    # level 1 = target + 2 exactly: bias 2, perfect ranks
    assert data["metrics"][0]["bias"]["mean_abs"] == pytest.approx(2.0) and data["metrics"][0]["spearman"] == pytest.approx(1.0)
    table = report.to_markdown()
    assert "| level | cost frac |" in table and table.count("\n| ") == 6  # header + 5 levels
    pdf, png = report.plot(tmp_path / "fig.png")
    assert pdf.name == "fig.pdf" and png.name == "fig.png"
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_calibrate_writes_json_and_figures(tmp_path, capsys):
    code = main(["calibrate", "mfhartmann3-good", "--configs", "20", "--levels", "3", "30", "--seed", "2",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "**mfhartmann3-good**: 20 configurations (seed 2)" in out and "prec@10%" in out
    stem = tmp_path / "mfhartmann3-good__calibration__n20__seed2"
    data = json.loads(stem.with_name(stem.name + ".json").read_text())
    assert data["levels"] == [3, 30, 100] and data["seed"] == 2
    assert stem.with_name(stem.name + ".pdf").is_file() and stem.with_name(stem.name + ".png").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["calibrate", "nope", "--configs", "20"], "unknown problem 'nope'"),
        (["calibrate", "mfhartmann6-good", "--configs", "2"], "n_configs must be >= 4"),
        (["calibrate", "mfhartmann6-good", "--configs", "20", "--levels", "500"], "outside the allowed range [1, 100]"),
        (["calibrate", "mfhartmann6-good", "--configs", "20", "--top", "1.5"], "each fraction must be in (0, 1]"),
    ],
)
def test_cli_calibrate_mistakes_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mfbo: error: ") and message in err and err.count("\n") == 1


def test_spearman_matches_scipy_on_a_random_problem_row():
    report = calibrate("mfhartmann3-bad", 30, levels=[10], seed=4)
    expected = stats.spearmanr(report.values[:, 0], report.values[:, 1]).statistic
    assert report.metrics[0].spearman == pytest.approx(expected)

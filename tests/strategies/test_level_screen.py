"""The level screen of the multi-fidelity GP strategies (option ``level_screen``): a minimum
fidelity learned from the rank correlation the run observed between levels."""

import math

import numpy as np
import pytest
from test_mf_continuation import EPOCHS, CurveProblem  # tests/strategies/ is on the path (no __init__.py)

from mfbo.strategies import make
from mfbo.strategies.level_screen import MIN_PAIRS, screen_levels

LEVELS = [0.0, 0.25, 0.5, 1.0]


def observations(n: int, by_level) -> dict[int, dict[float, float]]:
    """``n`` configurations, configuration ``i`` observed at each level ``s`` of ``by_level`` with
    the value ``by_level[s](quality_i)``; qualities are a fixed permutation of ``0..n-1``."""
    quality = np.random.default_rng(0).permutation(n).astype(float)
    return {i: {s: float(f(quality[i])) for s, f in by_level.items()} for i in range(n)}


def test_a_level_that_ranks_backwards_goes_with_every_level_below_it():
    agree, backwards = (lambda q: q), (lambda q: -q)
    values = observations(12, {0.0: agree, 0.25: backwards, 0.5: agree, 1.0: agree})
    screen = screen_levels(values, LEVELS, threshold=0.5)
    assert screen.kept == (0.5, 1.0)  # 0.0 ranks well, but lies below a level that failed
    assert screen.correlations == {0.5: (pytest.approx(1.0), 1.0), 0.25: (pytest.approx(-1.0), 1.0)}
    assert screen_levels(values, LEVELS, threshold=-1.0).kept == tuple(LEVELS)


def test_a_level_is_judged_only_once_enough_configurations_were_seen_at_it_and_above():
    backwards = {0.0: lambda q: -q, 1.0: lambda q: q}
    few = screen_levels(observations(MIN_PAIRS - 1, backwards), [0.0, 1.0], threshold=0.5)
    assert few.kept == (0.0, 1.0) and few.correlations == {}
    enough = screen_levels(observations(MIN_PAIRS, backwards), [0.0, 1.0], threshold=0.5)
    assert enough.kept == (1.0,) and enough.correlations[0.0][0] == pytest.approx(-1.0)


def test_the_reference_is_the_highest_level_with_enough_pairs():
    values = observations(12, {0.0: lambda q: -q, 0.5: lambda q: q})
    for i in range(3):  # three configurations reached the target: too few to judge against
        values[i][1.0] = float(i)
    screen = screen_levels(values, [0.0, 0.5, 1.0], threshold=0.5)
    assert screen.correlations == {0.0: (pytest.approx(-1.0), 0.5)}  # 0.5 itself is untested
    assert screen.kept == (0.5, 1.0)


def test_a_level_whose_values_are_all_equal_ranks_nothing_and_fails():
    values = observations(12, {0.0: lambda q: 0.7, 1.0: lambda q: q})
    screen = screen_levels(values, [0.0, 1.0], threshold=-1.0)
    assert screen.kept == (1.0,) and math.isnan(screen.correlations[0.0][0])
    assert screen.describe() == "kept 1.000; rho 0.000 vs 1.000: +nan"


def test_the_strategy_drops_the_epochs_its_learning_curves_show_ranking_backwards():
    """On the curve problem the loss at epoch e is final(x) + (1 - x) / e: twelve runs to epoch
    9 (whose curves hold epochs 1 and 3) rank epoch 1 against epoch 9 at rho = -0.64 and epoch 3
    at +0.73, so epoch 1 leaves the acquisition's levels and its continuation candidates."""
    problem = CurveProblem()
    strategy = make("mf-ei", problem, seed=0, level_screen=0.5, verify=False)
    strategy.set_budget(30 * EPOCHS)
    for x in np.linspace(0.0, 1.0, 12):
        strategy.add_observation({"x": float(x)}, 9, problem.evaluate({"x": float(x)}, 9))
    strategy._design = []  # as if the design were done
    kept = strategy._acquisition_levels()
    assert [problem.fidelity.denormalize(s) for s in kept.tolist()] == [3, 9, EPOCHS]
    assert strategy.drain_notes() == ["level screen: kept 3, 9, 27; rho 1 vs 9: -0.64, 3 vs 9: +0.73"]
    trial = strategy.ask()
    assert trial.fidelity in (3, 9, EPOCHS)
    assert strategy.drain_notes() == []  # noted once, when the kept levels change
    unscreened = make("mf-ei", problem, seed=0)
    assert unscreened.options()["level_screen"] is None
    assert [problem.fidelity.denormalize(s) for s in unscreened._acquisition_levels().tolist()] == [1, 3, 9, EPOCHS]


@pytest.mark.parametrize(
    "value, message",
    [
        (2, r"option level_screen must be null \(off\) or a number in \[-1, 1\], got 2"),
        (-1.5, r"option level_screen must be null \(off\) or a number in \[-1, 1\], got -1.5"),
        (math.nan, r"option level_screen must be null \(off\) or a number in \[-1, 1\], got nan"),
        (True, "option level_screen must be float or None, got True"),
        ("high", "option level_screen must be float or None, got 'high'"),
    ],
)
def test_a_bad_threshold_names_the_option_and_its_range(value, message):
    with pytest.raises(ValueError, match=message):
        make("mf-kg", CurveProblem(), level_screen=value)


def test_the_screen_needs_levels_the_acquisition_enumerates():
    with pytest.raises(ValueError, match="option level_screen needs levels the acquisition enumerates"):
        make("mf-ucb", CurveProblem(), level_screen=0.5)  # BOCA searches every epoch as a continuous s
    assert make("mf-ucb", CurveProblem(), level_screen=0.5, fidelity_levels="ladder").level_screen == 0.5

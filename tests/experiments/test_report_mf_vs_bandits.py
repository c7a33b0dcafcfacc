"""experiments/report_mf_vs_bandits.py: the study report's regret, ranks and Friedman test, and
the separate table of the strategies that ran on some problems only."""

import pytest
import report_mf_vs_bandits as report

import mfbo
import mfbo.cli
from mfbo.analysis import stats

PROBLEMS = ("mfhartmann3-good", "mfhartmann3-bad")
pytestmark = pytest.mark.filterwarnings("ignore:load_study. left out 1 incomplete run")


def run_study(tmp_path, runs):
    """Complete runs of ``(problem, strategy, seed)`` in ``tmp_path``, named as a study names them;
    plus one interrupted run (a log without a footer), which the report must leave out."""
    for problem, strategy, seed in runs:
        mfbo.minimize(problem, strategy, 5.0, seed=seed, log_path=tmp_path / mfbo.cli.run_file_name(problem, strategy, seed))
    interrupted = tmp_path / mfbo.cli.run_file_name(PROBLEMS[0], "gp-ei", 0)
    mfbo.minimize(PROBLEMS[0], "random", 5.0, seed=3, log_path=interrupted)
    lines = interrupted.read_text().splitlines()
    interrupted.write_text("\n".join(lines[:-1]) + "\n")


def table(out: str, first_cell: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with ``first_cell``, by their first cell."""
    block = out.split(f"| {first_cell} |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return {line.split(" | ")[0].strip("| "): [c.strip(" |") for c in line.split(" | ")[1:]] for line in block}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    path = tmp_path_factory.mktemp("study")
    everywhere = [(p, s, seed) for p in PROBLEMS for s in ("random", "hyperband", "sh") for seed in (0, 1)]
    run_study(path, everywhere + [(PROBLEMS[1], "asha", 0), (PROBLEMS[1], "asha", 1)])
    return path


def test_strategies_on_every_problem_get_regret_at_three_fractions_ranks_and_friedman(study):
    out = report.report(study)
    assert "4 strategies, 2 problems" in out
    rows = table(out, "strategy")
    assert set(rows) == {"random", "hyperband", "sh"}, "asha ran on one problem only, gp-ei's run is incomplete"
    assert all(len(cells) == 8 and cells[0] == "0, 1" for cells in rows.values())
    for column in (4, 5, 6):  # ranks 1, 2, 3 (ties averaged) at 25, 50 and 100 %, averaged over problems
        assert sum(float(rows[s][column].split(" / ")[0]) for s in rows) == pytest.approx(6.0)
    curves = report.regret_curves(report.load(study))
    expected = stats.rank_curves(curves[curves["label"] != "asha"], by="problem")
    for column, fraction in zip((4, 5, 6), report.FRACTIONS):
        rank = expected.loc[(expected["label"] == "random") & (expected["frac"] == fraction), "rank"].iloc[0]
        assert float(rows["random"][column].split(" / ")[0]) == pytest.approx(rank, abs=0.005)
    assert "Friedman chi2" in out and "over 4 (problem, seed) blocks" in out


def test_a_strategy_on_some_problems_is_ranked_among_all_on_its_problems_only(study):
    rows = table(report.report(study), "strategy | seeds | problems")
    assert list(rows) == ["asha"] and rows["asha"][:2] == ["0, 1", PROBLEMS[1]]
    curves = report.regret_curves(report.load(study))
    theirs = stats.rank_curves(curves[curves["problem"] == PROBLEMS[1]], by="seed")
    for column, fraction in zip((5, 6, 7), report.FRACTIONS):
        rank = theirs.loc[(theirs["label"] == "asha") & (theirs["frac"] == fraction), "rank"].iloc[0]
        assert float(rows["asha"][column].split(" / ")[1]) == pytest.approx(rank, abs=0.005)
        assert 1.0 <= rank <= 4.0


def test_seed_lists_read_as_ranges_when_contiguous():
    import pandas as pd

    curves = pd.DataFrame({"label": ["a"] * 5 + ["b"] * 2 + ["c"] * 2, "seed": [0, 1, 2, 3, 4, 0, 1, 0, 2]})
    assert report.seeds_per_label(curves) == {"a": "0-4", "b": "0, 1", "c": "0, 2"}


def test_seconds_per_trial_is_total_strategy_seconds_over_trials(study):
    trials = report.load(study)
    mine = trials[trials["label"] == "sh"]
    expected = (mine["overhead"].sum() + mine["recommend_time"].sum()) / len(mine)
    assert report.seconds_per_trial(trials)["sh"] == pytest.approx(expected)
    rows = table(report.report(study), "strategy")
    assert float(rows["sh"][7]) == pytest.approx(expected, rel=0.01)


def test_a_problem_without_evaluated_recommendations_is_scored_on_its_simple_regret(study, tmp_path):
    """Real training (digits-svm): the loop does not evaluate the recommendation, so only the
    best value observed at the target scores the run."""
    import json
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    for log in copy.glob(f"{PROBLEMS[1]}__*.jsonl"):
        records = [json.loads(line) for line in log.read_text().splitlines()]
        for record in records:
            if record.get("type") == "trial":
                record["rec_value"] = record["regret"] = None
        log.write_text("".join(json.dumps(r) + "\n" for r in records))
    curves = report.regret_curves(report.load(copy))
    assert set(curves.loc[curves["problem"] == PROBLEMS[1], "metric"]) == {"norm_simple_regret"}
    assert set(curves.loc[curves["problem"] == PROBLEMS[0], "metric"]) == {"norm_regret"}
    assert curves["value"].notna().all() and (curves.loc[curves["problem"] == PROBLEMS[1], "value"] < float("inf")).any()
    assert f"on {PROBLEMS[1]}, where no recommendation was evaluated" in report.report(copy)

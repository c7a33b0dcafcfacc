"""Tabulated problems: recording, exact replay, lookups, the shipped digits-mlp table and the
``mfbo record`` command."""

import numpy as np
import pytest

import mfbo
from mfbo import problems
from mfbo.cli import main
from mfbo.problems.tabular import TabularProblem, record_table, shipped_table
from mfbo.problems.training import DigitsMLP


@pytest.fixture(scope="module")
def mlp_table(tmp_path_factory):
    """Three digits-mlp configurations at epochs 1..3, recorded under the cost model."""
    path = tmp_path_factory.mktemp("tables") / "mlp.npz"
    record_table("digits-mlp", path, 3, seed=4, problem_options={"cost": "model", "max_epochs": 3})
    return TabularProblem(path, lookup="exact")


def test_a_recorded_training_table_replays_exactly(mlp_table):
    fresh = DigitsMLP(cost="model", max_epochs=3, cache_size=0)
    assert mlp_table.resumable and mlp_table.grid == [1, 2, 3] and mlp_table.fidelity == fresh.fidelity
    assert mlp_table.meta["problem_options"] == {"cost": "model", "max_epochs": 3}
    for i, config in enumerate(mlp_table.configs()):
        for epochs in (1, 3):
            replay, original = mlp_table.evaluate(config, epochs), fresh.evaluate(config, epochs)
            assert replay.error == original.error and replay.curve_list() == original.curve_list()
            assert replay.cost == pytest.approx(original.cost, rel=1e-12)
            if original.ok:
                assert replay.value == original.value
                assert replay.info == {**original.info, "config_id": i, "distance": 0.0}
        resumed = mlp_table.evaluate(config, 3, resume_from=1)
        assert resumed.cost == pytest.approx(fresh.increment_cost(config, 3, 1), rel=1e-12)
        assert resumed.cost == mlp_table.increment_cost(config, 3, 1)
        assert resumed.curve_list() == mlp_table.evaluate(config, 3).curve_list()
    target = [mlp_table.target_value(c) for c in mlp_table.configs()]
    assert mlp_table.optimum == min(v for v in target if v is not None)


def test_a_non_resumable_synthetic_table_replays_values_costs_and_the_optimum(tmp_path):
    problem = problems.get("quadratic-ladder")
    table = TabularProblem(record_table(problem, tmp_path / "q", 12, [1, 3, 5], seed=0))
    assert table.path.suffix == ".npz" and not table.resumable
    assert table.fidelity.levels == (1, 3, 5) and table.fidelity.target == 5
    for config in table.configs():
        for level in (1, 3, 5):
            replay, original = table.evaluate(config, level), problem.evaluate(config, level)
            assert (replay.value, replay.cost, replay.curve) == (original.value, original.cost, None)
        assert table.evaluate(config, 5, resume_from=1).cost == problem.cost(config, 5)  # not resumable: full price
    assert table.optimum == min(problem.target_value(c) for c in table.configs())
    with pytest.raises(ValueError, match=r"is not a level; allowed levels are \[1, 3, 5\]"):
        table.evaluate(table.configs()[0], 2)


def test_a_write_that_fails_leaves_neither_a_table_nor_a_partial_file_and_an_old_table_intact(tmp_path, monkeypatch):
    problem = problems.get("quadratic-ladder")
    path = record_table(problem, tmp_path / "q", 4, [1, 5], seed=0)
    before = path.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"half a table")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space left"):
        record_table(problem, tmp_path / "q", 6, [1, 5], seed=1)
    assert path.read_bytes() == before  # the earlier table is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.npz"]  # no partial file left behind
    with pytest.raises(OSError):
        record_table(problem, tmp_path / "new", 2, [1, 5])
    assert not (tmp_path / "new.npz").exists()


def test_nearest_lookup_answers_any_configuration_and_exact_lookup_refuses_unknown_ones(mlp_table):
    nearest = TabularProblem(mlp_table.path)
    config = {**mlp_table.configs()[1], "dropout": 0.333}
    encoded = nearest.space.encode_many(nearest.configs())
    expected = int(np.argmin(np.linalg.norm(encoded - nearest.space.encode(config), axis=1)))
    obs = nearest.evaluate(config, 2)
    assert obs.info["config_id"] == expected and obs.info["distance"] > 0
    assert nearest.target_value(config) == nearest.target_value(nearest.configs()[expected])
    with pytest.raises(ValueError, match=r"is not in the table \(3 recorded configurations; pick one of problem.configs\(\)"):
        mlp_table.evaluate(config, 2)


def test_table_errors_name_the_problem(tmp_path, mlp_table):
    with pytest.raises(ValueError, match=r"lookup must be one of \['nearest', 'exact'\]"):
        TabularProblem(mlp_table.path, lookup="closest")
    with pytest.raises(FileNotFoundError, match="no such table"):
        TabularProblem(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"outside the allowed range \[1, 3\]"):
        mlp_table.evaluate(mlp_table.configs()[0], 4)
    with pytest.raises(ValueError, match="is continuous in"):
        record_table("hartmann3", tmp_path / "h.npz", 2)
    with pytest.raises(ValueError, match="must contain the target fidelity 1.0"):
        record_table("hartmann3", tmp_path / "h.npz", 2, [0.2, 0.5])
    with pytest.raises(ValueError, match="n_configs must be a positive integer"):
        record_table("hartmann3", tmp_path / "h.npz", 0, [1.0])


def test_the_shipped_table_loads_is_small_and_replays_the_cost_model():
    path = shipped_table("digits-mlp-table")
    assert path.stat().st_size < 2_000_000
    table = problems.get("digits-mlp-table")
    assert table.n_configs == 300 and table.grid == list(range(1, 51)) and table.resumable
    assert table.meta["problem"] == "digits-mlp" and table.meta["problem_options"]["cost"] == "model"
    model = DigitsMLP(cost="model")
    for config in table.configs()[:20]:
        if table.evaluate(config, 50).ok:
            assert table.cost(config, 50) == pytest.approx(model.cost(config, 50), rel=1e-9)
    target = [table.target_value(c) for c in table.configs()]
    assert table.optimum == min(v for v in target if v is not None)
    assert 0.0 < table.optimum < 0.05  # the best of 300 MLPs misclassifies a few percent of digits


def test_the_shipped_table_matches_training_its_cheapest_configuration():
    table = problems.get("digits-mlp-table")
    configs = table.configs()
    cheapest = min(range(len(configs)), key=lambda i: table.cost(configs[i], 1))
    replay = table.evaluate(configs[cheapest], 3).curve_list()
    retrained = DigitsMLP(cost="model", max_epochs=3).evaluate(configs[cheapest], 3).curve_list()
    # identical on the machine that recorded it; other CPUs may round float32 sums differently
    assert np.allclose(replay, retrained, atol=3 / 359)


def test_a_random_run_on_the_shipped_table_is_fast_exact_and_reproducible():
    def run():
        return mfbo.minimize("digits-mlp-table", "random", budget=60.0, seed=3)

    first, second = run(), run()
    assert len(first.trials) > 5 and first.stop_reason.startswith("budget")
    assert [(t.value, t.cost) for t in first.trials] == [(t.value, t.cost) for t in second.trials]
    ok = [t for t in first.trials if t.status == "ok"]
    assert all(len(t.curve) == 50 for t in ok) and first.regret >= 0
    assert first.best_value == min(t.value for t in ok)


def test_mfbo_record_writes_a_table_that_mfbo_run_replays(tmp_path, capsys):
    out = tmp_path / "ladder.npz"
    assert main(["record", "quadratic-ladder", "--configs", "6", "--out", str(out), "--seed", "2", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "recorded 6 configurations x 5 fidelities of quadratic-ladder (0 failed)" in text and str(out) in text
    table = TabularProblem(out)
    assert table.meta["seed"] == 2 and table.grid == [1, 2, 3, 4, 5]
    assert main(["run", "--problem", "table", "--problem-option", f"path={out}", "--strategy", "random",
                 "--budget", "2", "--out", str(tmp_path), "--quiet"]) == 0
    assert "4 trials" in capsys.readouterr().out  # 0.5 per target evaluation


@pytest.mark.parametrize(
    "argv, message",
    [
        (["record", "hartmann3", "--configs", "3"], "is continuous in [0.0, 1.0]; give the grid"),
        (["record", "quadratic-ladder", "--configs", "3", "--fidelities", "1", "2"], "must contain the target fidelity 5"),
        (["record", "nope", "--configs", "3"], "unknown problem 'nope'"),
    ],
)
def test_mfbo_record_mistakes_are_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "t.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mfbo: error: ") and message in err and err.count("\n") == 1


def test_spaces_and_fidelities_round_trip_through_their_descriptions():
    from mfbo import Categorical, Fidelity, Float, Int, Space
    from mfbo.problems.tabular import fidelity_from_dict, space_from_dict

    space = Space(lr=Float(1e-4, 1.0, log=True), width=Int(8, 64, log=True), act=Categorical(("relu", "tanh", True)), k=Int(1, 3))
    assert space_from_dict(space.to_dict()) == space
    for fidelity in (Fidelity("epochs", 1, 50, integer=True), Fidelity("s", 1 / 64, 1.0, log=True), Fidelity("level", levels=[1, 3, 9], target=3)):
        assert fidelity_from_dict(fidelity.to_dict()) == fidelity
    with pytest.raises(ValueError, match="unknown type 'bool'"):
        space_from_dict({"x": {"type": "bool"}})

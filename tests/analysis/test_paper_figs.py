"""paper_figs/make_figures.py: store a reference study's run logs, rebuild its figures from the archive."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "paper_figs" / "make_figures.py"


@pytest.fixture
def make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stored_study_rebuilds_without_its_results_directory(make_figures, make_log, tmp_path, capsys):
    results = tmp_path / "repo" / make_figures.REFERENCE_STUDIES["compare_acquisitions"][1]
    for strategy in ("a", "b", "c"):
        for seed in (0, 1):
            make_log(results / f"toy__{strategy}__seed{seed}.jsonl", [{"cost": 5.0, "rec_value": 1.0 + seed}, {"cost": 5.0, "rec_value": 0.5}],
                     strategy=strategy, seed=seed)
    (results / "toy__a__seed0.evals.ndjson").write_text("{}\n")  # an evaluation cache is not stored
    make_log(results / "toy__d__seed0.jsonl", [{"cost": 5.0, "rec_value": 1.0}], strategy="d", complete=False)  # nor a stopped run
    archives = tmp_path / "archives"
    assert make_figures.main(["--results-root", str(tmp_path / "repo"), "--archives", str(archives), "--store", "compare_acquisitions"]) == 0
    archive = archives / "compare_acquisitions.tar.xz"
    first = archive.read_bytes()
    make_figures.store("compare_acquisitions", tmp_path / "repo", archives)
    assert archive.read_bytes() == first  # the same logs give the same archive
    assert "left out 1 unfinished run(s) (no footer): toy__d__seed0.jsonl" in capsys.readouterr().out

    import tarfile

    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(f"toy__{s}__seed{k}.jsonl" for s in "abc" for k in (0, 1))
    out = tmp_path / "figs"
    code = make_figures.main(["--results-root", str(tmp_path / "elsewhere"), "--archives", str(archives), "--out", str(out),
                              "--study", "compare_acquisitions"])
    assert code == 0
    assert "from the stored logs" in capsys.readouterr().out
    assert (out / "compare_acquisitions" / "regret_vs_cost.png").is_file()
    assert "| toy |" in (out / "compare_acquisitions" / "final_regret.md").read_text()


def test_a_study_with_neither_results_nor_archive_names_the_command(make_figures, tmp_path, capsys):
    code = make_figures.main(["--results-root", str(tmp_path), "--archives", str(tmp_path / "none"), "--study", "mf_vs_bandits"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no stored archive; produce it with `mfbo study run experiments/mf_vs_bandits.toml`" in err
    with pytest.raises(SystemExit, match="--store compare_acquisitions: no run logs under"):
        make_figures.main(["--results-root", str(tmp_path), "--archives", str(tmp_path / "a"), "--store", "compare_acquisitions"])


def test_a_fresh_clone_skips_the_unbuildable_study_and_exits_0(make_figures, tmp_path, capsys):
    """Issue 18: with no results and no archive for any study, the default run reports and skips each."""
    code = make_figures.main(["--results-root", str(tmp_path), "--archives", str(tmp_path / "none")])
    assert code == 0
    err = capsys.readouterr().err
    assert "mf_vs_bandits: skipped: " in err and "produce it with `mfbo study run experiments/mf_vs_bandits.toml`" in err
    assert "not rebuilt: compare_acquisitions, mf_vs_bandits (no results yet; built: nothing)" in err


def test_stored_logs_leave_out_curves_and_extra_outputs_and_keep_everything_else(make_figures, make_log, tmp_path):
    import json
    import tarfile

    results = tmp_path / "repo" / make_figures.REFERENCE_STUDIES["mf_vs_bandits"][1]
    log = make_log(results / "toy__a__seed0.jsonl", [{"cost": 5.0, "rec_value": 1.0}, {"cost": 5.0, "rec_value": 0.5}])
    lines = log.read_text().splitlines()
    with_extras = [json.loads(line) for line in lines]
    with_extras[1].update(curve=[0.9, 0.7, 0.5], info={"time": 3.0})
    with_extras[2]["info"] = {"time": 4.0}
    log.write_text("\n".join([lines[0]] + [json.dumps(r) for r in with_extras[1:]]) + "\n")
    archive = make_figures.store("mf_vs_bandits", tmp_path / "repo", tmp_path / "archives")
    with tarfile.open(archive) as tar:
        stored = tar.extractfile("toy__a__seed0.jsonl").read().decode().splitlines()
    assert stored[0] == lines[0] and stored[3:] == lines[3:]  # the header and footer byte for byte
    for original, kept in zip(with_extras[1:3], map(json.loads, stored[1:3])):
        assert "curve" not in kept and "info" not in kept
        assert kept == {k: v for k, v in original.items() if k not in ("curve", "info")}

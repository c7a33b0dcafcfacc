"""``mfbo dashboard`` (issue #17, part 1): reading logs as they grow, the numbers it shows (those
of mfbo.analysis), its bad-input messages, and the page itself in a real headless Chromium
(skipped, with the reason, where Chromium, chromedriver or selenium is missing)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("bokeh", reason="the dashboard extra is not installed: pip install 'mfbo[dashboard]'")

import mfbo
from mfbo import Fidelity, Float, Observation, Problem, Space
from mfbo.analysis import load_study
from mfbo.analysis.metrics import budget_grid, metric_curves
from mfbo.analysis.stats import summarise_curves
from mfbo.cli import main
from mfbo.dashboard import open_source, serve_in_background
from mfbo.dashboard.data import LiveStudy, learning_curves, trajectory
from mfbo.dashboard.source import LogTail


class Epochs(Problem):
    """``(x - 0.3)^2 + 1/epochs``, epochs 1..9, cost epochs/9, resumable, with its learning curve."""

    resumable = True

    def __init__(self):
        super().__init__("epochs-toy", Space(x=Float(0, 1)), Fidelity("epochs", 1, 9, integer=True), optimum=1 / 9)

    def _evaluate(self, config, fidelity):
        curve = [(config["x"] - 0.3) ** 2 + 1 / e for e in range(1, int(fidelity) + 1)]
        return Observation(value=curve[-1], cost=fidelity / 9, curve=curve)

    def _resume(self, config, fidelity, resume_from):
        full = self._evaluate(config, fidelity)
        return Observation(value=full.value, cost=(fidelity - resume_from) / 9, curve=full.curve)

    def cost(self, config, fidelity=None):
        return (9 if fidelity is None else fidelity) / 9

    def target_value(self, config):
        return (config["x"] - 0.3) ** 2 + 1 / 9


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    """4 complete runs: random and successive halving (promotions: continuations), seeds 0 and 1."""
    root = tmp_path_factory.mktemp("dash") / "study"
    for strategy in ("random", "sh"):
        for seed in (0, 1):
            mfbo.minimize(Epochs(), strategy, budget=4, seed=seed, log_path=root / f"epochs-toy__{strategy}__seed{seed}.jsonl")
    return root


@pytest.fixture
def live_dir(study_dir, tmp_path) -> Path:
    """A copy of the study whose first run is still running: its last 3 trials and its footer
    are not written yet (kept in ``tmp_path / "rest.txt"``)."""
    root = tmp_path / "live"
    shutil.copytree(study_dir, root)
    first = min(root.glob("*.jsonl"))
    lines = first.read_text().splitlines(keepends=True)
    first.write_text("".join(lines[:-4]))
    (tmp_path / "rest.txt").write_text("".join(lines[-4:]))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- reading and numbers


def test_the_regret_shown_is_mfbo_plots(study_dir):
    study = LiveStudy(open_source(study_dir))
    assert study.problems() == ["epochs-toy"] and len(study.runs()) == 4
    expected = summarise_curves(metric_curves(load_study(study_dir), "regret", budget_grid()))
    for axis in ("budget", "wall_clock"):
        summary, column = study.regret_summary("epochs-toy", "regret", axis)
        assert column == "regret"
        if axis == "budget":  # one worker: the simulated clock is the spent cost, same curves
            assert summary[["label", "frac", "median", "q25", "q75"]].equals(expected[["label", "frac", "median", "q25", "q75"]])
    assert math.isclose(study.allocation("epochs-toy").groupby("label")["share"].sum().max(), 1.0)


def test_a_running_run_counts_only_up_to_what_it_has_spent(live_dir):
    study = LiveStudy(open_source(live_dir))
    first = study.runs()[0]
    assert first.footer is None
    frame = study.frame("epochs-toy")
    progress = frame.loc[frame["run"] == first.path.stem, "budget_frac"].max()
    summary, _ = study.regret_summary("epochs-toy")
    label = first.key()[1]
    n = summary[summary["label"] == label].set_index("frac")["n"]
    assert n[n.index > progress].eq(1).all() and n[(n.index <= progress) & (n.index > 0.5)].eq(2).all()


def test_after_a_log_grows_only_its_rows_are_rebuilt_and_the_frame_is_load_studys(live_dir, study_dir, tmp_path):
    study = LiveStudy(open_source(live_dir), clock=lambda: 0.0)  # computations take no time: none is kept stale
    study.frame("epochs-toy")
    before = dict(study._run_frames)
    first = min(live_dir.glob("*.jsonl"))
    with open(first, "a") as f:
        f.write((tmp_path / "rest.txt").read_text())
    assert study.refresh()
    frame = study.frame("epochs-toy")
    for (path, axis), (_, rows) in study._run_frames.items():
        assert (rows is before[(path, axis)][1]) == (path != first)
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(frame, load_study(study_dir))


def test_a_slow_table_is_kept_for_four_times_its_computing_time(live_dir, tmp_path, monkeypatch):
    from mfbo.dashboard import data

    now, calls = [0.0], []

    def slow_frame_runs(*args, **kwargs):  # takes 10 s on the study's clock
        calls.append(1)
        now[0] += 10.0
        return frame_runs(*args, **kwargs)

    frame_runs = data.frame_runs
    monkeypatch.setattr(data, "frame_runs", slow_frame_runs)
    study = LiveStudy(open_source(live_dir), clock=lambda: now[0])
    first = study.frame("epochs-toy")
    with open(min(live_dir.glob("*.jsonl")), "a") as f:
        f.write((tmp_path / "rest.txt").read_text().splitlines(keepends=True)[0])
    assert study.refresh()
    now[0] += 39.0
    assert study.frame("epochs-toy") is first and len(calls) == 1  # 39 s < 4 x 10 s: kept
    now[0] += 1.0
    assert len(study.frame("epochs-toy")) == len(first) + 1 and len(calls) == 2


def test_a_log_is_read_as_it_grows_and_a_damaged_line_is_skipped_and_named(live_dir, tmp_path):
    path = min(live_dir.glob("*.jsonl"))
    tail = LogTail(path)
    tail.read()
    n = len(tail.trials)
    rest = (tmp_path / "rest.txt").read_text().splitlines(keepends=True)
    with open(path, "a") as f:
        f.write('{"type": "trial", "id": \n')  # damaged
        f.write(rest[0])
        f.write(rest[1][:20])  # a write in progress: no line end yet
    assert tail.read() == 1 and len(tail.trials) == n + 1
    lineno = n + 2  # header + n trials, then the damaged line
    assert len(tail.problems) == 1 and tail.problems[0].startswith(f"{path}:{lineno}: damaged record skipped")
    assert tail.problems[0] in LiveStudy(open_source(live_dir)).notes()  # listed on the page and at start
    assert tail.pending_bytes
    with open(path, "a") as f:
        f.write(rest[1][20:])
    assert tail.read() == 1 and len(tail.trials) == n + 2 and not tail.pending_bytes
    path.write_text(path.read_text().splitlines(keepends=True)[0])  # rewritten (a study restarting the run)
    tail.read()
    assert tail.reset and tail.trials == [] and tail.header is not None


def test_the_trajectory_joins_the_rungs_a_configuration_climbed(study_dir):
    tail = LogTail(study_dir / "epochs-toy__sh__seed0.jsonl")
    tail.read()
    points, segments = trajectory(tail)
    continued = [t for t in tail.trials if t["continues"] is not None]
    assert len(points["id"]) == len(tail.trials) and len(continued) > 0
    assert len(segments["x0"]) == len(continued)
    by_id = {t["id"]: t for t in tail.trials}
    for t, x0, y0, y1 in zip(continued, segments["x0"], segments["y0"], segments["y1"]):
        assert (x0, y0, y1) == (by_id[t["continues"]]["cum_cost"], by_id[t["continues"]]["fidelity"], t["fidelity"])
    assert trajectory(tail, start=3)[0]["id"] == points["id"][3:]
    curves = learning_curves(tail)
    ends = [t for t in tail.trials if t["id"] not in {c["continues"] for c in continued}]
    assert curves["id"] == [t["id"] for t in ends]
    assert [len(ys) for ys in curves["ys"]] == [t["fidelity"] for t in ends]
    assert curves["s"] == [(t["fidelity"] - 1) / 8 for t in ends]


def test_a_stored_archive_is_read_and_removed_afterwards(study_dir, tmp_path):
    archive = tmp_path / "study.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for log in sorted(study_dir.glob("*.jsonl")):
            tar.add(log, arcname=log.name)
    source = open_source(archive)
    assert not source.live and len(LiveStudy(source).runs()) == 4
    source.close()
    assert not source.root.exists()


def test_the_command_serves_an_archive_and_stops_cleanly_on_kill(study_dir, tmp_path):
    archive = tmp_path / "study.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for log in sorted(study_dir.glob("*.jsonl")):
            tar.add(log, arcname=log.name)
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the archive's copy goes
    proc = subprocess.Popen([sys.executable, "-m", "mfbo.cli", "dashboard", str(archive), "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(120, proc.kill)  # a server that never says it serves fails the test, not the suite
    watchdog.start()
    try:
        lines = [proc.stderr.readline() for _ in range(2)]
        assert lines == [f"mfbo dashboard: 4 run(s) from {archive} (stored archive) (a stored archive: not re-read)\n",
                         f"mfbo dashboard: serving http://127.0.0.1:{port}/  (Ctrl-C to stop)\n"]
        assert list(tmp_path.glob("mfbo-dashboard-*/*.jsonl"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200 and b"bokeh" in page.read().lower()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        watchdog.cancel()
    assert proc.returncode == 0 and err == "mfbo dashboard: stopped\n"
    assert not list(tmp_path.glob("mfbo-dashboard-*"))


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_one_clear_message(tmp_path, study_dir, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["dashboard", str(empty)]) == 2
    assert f"no run logs (*.jsonl) under {empty}" in capsys.readouterr().err
    assert main(["dashboard", str(tmp_path / "nowhere")]) == 2
    assert "no such study directory, run log or archive" in capsys.readouterr().err
    (empty / "x.jsonl").write_text("not json\n")
    assert main(["dashboard", str(empty)]) == 2
    assert "not an mfbo run log" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", str(study_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use; choose another with --port" in err


# ---------------------------------------------------------------- the page in a headless browser

_DEEP_TEXT = """
const cls = arguments[0];
function find(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.classList && el.classList.contains(cls)) return el.textContent;
    if (el.shadowRoot) { const r = find(el.shadowRoot); if (r !== null) return r; }
  }
  return null;
}
return find(document);
"""
_TABLE = """
function rows(root, out) {
  for (const el of root.querySelectorAll('*')) {
    if (el.classList && el.classList.contains('slick-row')) out.push(Array.from(el.querySelectorAll('.slick-cell'), c => c.textContent));
    if (el.shadowRoot) rows(el.shadowRoot, out);
  }
  return out;
}
return rows(document, []);
"""
_MODEL = "const d = window.Bokeh && Bokeh.documents && Bokeh.documents[0]; const m = d && d.get_model_by_name(arguments[0]); return m ? m.data[arguments[1]].length : null;"


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1300,1800"):
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as err:  # a browser that cannot start here (missing libraries, no /dev/shm)
        pytest.skip(f"headless Chromium does not start: {str(err).splitlines()[0]}")


def _wait(condition, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_the_page_shows_the_runs_and_follows_a_growing_log(live_dir, tmp_path):
    browser = _browser()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dashboard = serve_in_background(live_dir, port=free_port(), refresh=0.2)
    try:
        browser.get(dashboard.url)
        assert _wait(lambda: browser.execute_script(_DEEP_TEXT, "n-runs")) == "4"  # rendered in the page
        assert browser.execute_script(_MODEL, "runs", "run") == 4
        shown = _wait(lambda: browser.execute_script(_MODEL, "trajectory", "id"))
        first = min(live_dir.glob("*.jsonl"))  # the selected run: first problem, first run
        tail = LogTail(first)
        tail.read()
        assert shown == len(tail.trials)
        trials = int(browser.execute_script(_DEEP_TEXT, "n-trials"))
        rest = (tmp_path / "rest.txt").read_text().splitlines(keepends=True)
        with open(first, "a") as f:
            f.write(rest[0])
        assert _wait(lambda: int(browser.execute_script(_DEEP_TEXT, "n-trials")) == trials + 1)
        assert _wait(lambda: browser.execute_script(_MODEL, "trajectory", "id") == shown + 1)
        table = {cells[0]: cells for cells in browser.execute_script(_TABLE)}  # the runs table as drawn
        assert len(table) == 4 and table[first.stem][4] == str(len(tail.trials) + 1)
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()
        dashboard.stop()

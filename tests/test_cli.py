"""The command line: list, run, show, and one-line errors for user mistakes."""

import subprocess
import sys

import pytest

from mfbo.cli import main
from mfbo.runlog import read_run


def test_list(capsys):
    assert main(["list", "problems"]) == 0
    out = capsys.readouterr().out.split()
    assert "hartmann6" in out and "forrester" in out
    assert main(["list", "strategies"]) == 0
    out = capsys.readouterr().out
    assert "gp-ei  - GP + qLogEI at the target fidelity\n    options: n_init: int | None = None, num_restarts: int = 10," in out
    assert "\nrandom" in out


def test_run_and_show(tmp_path, capsys):
    code = main(["run", "--problem", "forrester", "--strategy", "gp-ei", "--budget", "6", "--seed", "2",
                 "--out", str(tmp_path), "--option", "n_init=4", "--option", "raw_samples=32", "--option", "num_restarts=2"])
    assert code == 0
    captured = capsys.readouterr()
    assert "regret" in captured.out and "log:" in captured.out
    path = tmp_path / "forrester__gp-ei__seed2.jsonl"
    run = read_run(path)
    assert run.complete and run.header["spec"]["options"]["n_init"] == 4
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "forrester" in out and "complete" in out and "regret" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--problem", "nope", "--strategy", "random", "--budget", "3"], "unknown problem 'nope'"),
        (["run", "--problem", "forrester", "--strategy", "nope", "--budget", "3"], "unknown strategy 'nope'"),
        (["run", "--problem", "forrester", "--strategy", "random", "--budget", "-3"], "budget must be a finite number > 0"),
        (["run", "--problem", "forrester", "--strategy", "gp-ei", "--budget", "3", "--option", "n_init"], "--option expects key=value"),
        (["run", "--problem", "forrester", "--strategy", "gp-ei", "--budget", "3", "--option", "bogus=1"], "unknown option(s) ['bogus']; allowed options: n_init"),
        (["run", "--problem", "forrester", "--strategy", "gp-ei", "--budget", "3", "--option", "n_init=many"], "option n_init must be"),
        (["show", "/nonexistent.jsonl"], "no such run file"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path, capsys, argv, message):
    if argv[0] == "run":
        argv = [*argv, "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mfbo: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mfbo.cli", "run", "--problem", "forrester", "--strategy", "random",
                          "--budget", "3", "--out", str(tmp_path)], capture_output=True, text=True, check=True)
    assert "3 trials" in out.stdout
    assert "cost" in out.stderr  # the progress bar

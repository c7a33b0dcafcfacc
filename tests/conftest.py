"""Test-session settings.

The suite runs many tiny GP fits; on a 2-core machine one torch thread is several times faster
for them than the default (thread start-up dominates small matrices). This is a setting of the
test process only: the library never changes torch's thread count.

Tests that need downloaded data (YAHPO Gym) are skipped without it; the summary at the end says
which and how to enable them (:func:`pytest_terminal_summary`).
"""

import os
from collections import Counter
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

#: Where the tests look for downloaded data: ``$MFBO_DATA_DIR``, else ``../shared/data`` beside the
#: repository (where CI puts it).
DATA_ROOT = Path(os.environ.get("MFBO_DATA_DIR") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture
def yahpo_data_dir() -> Path:
    """:data:`DATA_ROOT`, to pass as ``data_dir=`` to a YAHPO problem; the test is skipped (naming
    ``MFBO_DATA_DIR``, so the summary lists it) when ``DATA_ROOT/yahpo`` is missing."""
    if not (DATA_ROOT / "yahpo").is_dir():
        pytest.skip(f"YAHPO Gym data not found at {DATA_ROOT / 'yahpo'} (set MFBO_DATA_DIR)")
    return DATA_ROOT


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line naming the tests skipped for missing data (their skip reason names
    ``MFBO_DATA_DIR``) and how to run them, so a plain ``pytest`` does not hide them."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "MFBO_DATA_DIR" in _skip_reason(r)]
    if not skipped:
        return
    files = Counter(r.nodeid.split("::")[0] for r in skipped)
    where = ", ".join(f"{path}: {n}" for path, n in sorted(files.items()))
    terminalreporter.write_line(
        f"{len(skipped)} tests skipped for missing data ({where}); to run them, download the data named in the "
        "README (\"Real benchmarks: YAHPO Gym\") and set MFBO_DATA_DIR=/path/to/data (holding yahpo/<scenario>/)",
        yellow=True,
    )


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)

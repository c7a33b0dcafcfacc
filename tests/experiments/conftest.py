"""Tests of the experiments scripts. The scripts import each other as top-level modules (as they
do when run from ``experiments/``), so that directory goes on ``sys.path`` for these tests."""

import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
if str(EXPERIMENTS) not in sys.path:
    sys.path.insert(0, str(EXPERIMENTS))

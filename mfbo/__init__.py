"""mfbo: multi-fidelity Bayesian optimisation with Gaussian processes.

The pieces, in the order data flows through them::

    Problem --ask--> Strategy --Trial(config, fidelity)--> Problem.evaluate --Observation--> tell

- :mod:`mfbo.space`: typed hyperparameters, :class:`Space`, :class:`Fidelity` and their encoding.
- :mod:`mfbo.problems`: the :class:`~mfbo.problems.Problem` interface, the synthetic suite, the
  YAHPO Gym surrogates, real training problems and recorded tables.
- :mod:`mfbo.strategies`: the ask/tell :class:`~mfbo.strategies.Strategy` interface and methods.
- :mod:`mfbo.loop`: :func:`minimize`, one run with cost accounting and failure handling, on the
  simulated clock of :mod:`mfbo.simulator` when several workers run asynchronously.
- :mod:`mfbo.runlog`: the JSON Lines trial log and :func:`load_runs`.
- :mod:`mfbo.calibration`: what each fidelity costs and how far it can be trusted.
- :mod:`mfbo.study`: grids of runs from a TOML file, parallel or on Dask, resumable.
- :mod:`mfbo.analysis`: tidy results, metrics, statistics, figures and tables (``analysis`` extra).
"""

from importlib.metadata import PackageNotFoundError, version

from .loop import Result, TrialRecord, minimize
from .problems import Problem
from .runlog import load_runs
from .space import Categorical, Fidelity, Float, Int, Space
from .trial import Observation, Trial

try:
    __version__ = version("mfbo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "Space", "Float", "Int", "Categorical", "Fidelity",
    "Observation", "Trial", "Problem",
    "minimize", "Result", "TrialRecord", "load_runs",
    "__version__",
]

"""Studies: grids of runs (problems x strategies x seeds) from a TOML file, executed serially, in
local processes or on a Dask cluster, resumable and reproducible.

>>> from mfbo import study
>>> s = study.load_study("experiments/smoke.toml")     # validated before anything runs
>>> report = study.run_study(s, workers=2)              # skips complete runs, resumes partial ones
>>> [st.state for st in study.study_states(s)]          # "done" / "failed" / "partial" / "missing"

or ``mfbo study run experiments/smoke.toml`` and ``mfbo study status experiments/smoke.toml``.

- :mod:`mfbo.study.config`: the file format, validation, budgets in target evaluations, the run
  grid and each run's spec hash.
- :mod:`mfbo.study.execute`: executors (in-process, processes, Dask) and the progress display.
- :mod:`mfbo.study.resume`: run states, the refusal to mix specs, and the evaluation cache that
  makes a restarted run reproduce the uninterrupted one without paying twice.
- :mod:`mfbo.study.lock`: the per-run lock that lets several processes (or machines sharing the
  output directory) run one study together, each taking the runs nobody holds.

Every run writes ``<output>/<problem>__<label>__seed<k>.jsonl``, the trial log of
:func:`mfbo.minimize` (read it with :func:`mfbo.load_runs`), whose header adds a ``study`` block
(``name``, ``label``, ``problem_label``, ``run_spec``, ``spec_hash``). Asynchronous workers
within a run (``workers`` in the file) run on the simulated clock of :mod:`mfbo.simulator`.
"""

from .config import RunSpec, Study, StudyConfigError, load_study, parse_study, target_cost
from .execute import RunOutcome, StudyReport, execute_run, run_study
from .resume import DamagedRunError, EvaluationCache, RunState, SpecMismatchError, check_specs, study_states

__all__ = [
    "load_study", "parse_study", "Study", "RunSpec", "StudyConfigError", "target_cost",
    "run_study", "execute_run", "RunOutcome", "StudyReport",
    "study_states", "check_specs", "RunState", "SpecMismatchError", "DamagedRunError", "EvaluationCache",
]

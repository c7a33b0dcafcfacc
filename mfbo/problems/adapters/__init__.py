"""Adapters that turn users' own training code into mfbo problems.

- :class:`LoopProblem` (:mod:`.loop`): ``init(config) -> state`` and ``step(state, epoch) ->
  (state, value)``, with optional ``save``/``load`` checkpoints on disk: an epoch-fidelity,
  resumable problem charged the measured time of the epochs it runs.
- :class:`OptunaStyleProblem` (:mod:`.optuna_style`): an Optuna-style ``objective(trial)`` that
  calls ``trial.suggest_*`` and ``trial.report(value, step)``, unchanged (Optuna itself is not
  needed); the fidelity is the number of steps reported, and continuations resume the paused
  objective.

>>> from mfbo.problems.adapters import LoopProblem, OptunaStyleProblem, TrialPruned
"""

from __future__ import annotations

from .loop import LoopProblem
from .optuna_style import OptunaStyleProblem, OptunaStyleTrial, StopTrial, TrialPruned

__all__ = ["LoopProblem", "OptunaStyleProblem", "OptunaStyleTrial", "StopTrial", "TrialPruned"]

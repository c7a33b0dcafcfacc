"""Fixtures of the analysis tests: hand-made run logs written as JSON Lines, so that every
expected number can be computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pandas")


def write_log(
    path: Path,
    trials: list[dict[str, Any]],
    *,
    problem: str = "toy",
    strategy: str = "s",
    seed: int = 0,
    budget: float = 10.0,
    optimum: float | None = 0.0,
    fidelity: dict[str, Any] | None = None,
    complete: bool = True,
    spec_extra: dict[str, Any] | None = None,
    header_extra: dict[str, Any] | None = None,
    problem_extra: dict[str, Any] | None = None,
) -> Path:
    """Write a run log; each trial dict needs ``cost`` and may set ``fidelity``, ``value``,
    ``rec_value``, ``best_value``, ``overhead`` (``cum_cost``, ``regret``, ids are derived)."""
    spec = {"problem": problem, "problem_options": {}, "strategy": strategy, "options": {}, "seed": seed, "budget": budget,
            **(spec_extra or {})}
    prob = {"name": problem, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0, "log": False}},
            "fidelity": fidelity, "optimum": optimum, **(problem_extra or {})}
    records = [{"type": "header", "format": 1, "spec": spec, "problem": prob, "versions": {}, "started": "t0", **(header_extra or {})}]
    cum = 0.0
    for i, t in enumerate(trials):
        cum += t["cost"]
        rec = t.get("rec_value")
        records.append({
            "type": "trial", "id": i, "continues": None, "config": {"x": 0.5}, "fidelity": t.get("fidelity"),
            "value": t.get("value", 1.0), "cost": t["cost"], "cum_cost": t.get("cum_cost", cum), "status": "ok", "error": None,
            "eval_time": 0.0, "overhead": t.get("overhead", 0.01), "recommend_time": 0.0, "recommendation": None,
            "rec_value": rec, "regret": None if rec is None or optimum is None else rec - optimum,
            "best_value": t.get("best_value"), "curve": None, "info": {}, "notes": [],
            **{k: t[k] for k in ("worker", "start", "end") if k in t},
        })
    if complete:
        records.append({"type": "footer", "n_trials": len(trials), "total_cost": cum, "stop_reason": "budget"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def make_log():
    """The :func:`write_log` helper."""
    return write_log


@pytest.fixture
def small_study(tmp_path):
    """3 strategies x 2 problems x 2 seeds with known final regrets.

    Problem ``p1`` (optimum 0, budget 10): strategy ``a`` ends at regret 0.1 (seed 0) / 0.2
    (seed 1), ``b`` at 1 / 2, ``c`` at 10 / 20; problem ``p2`` the same divided by 10. Each run
    has 3 trials of cost 2, 3, 5 (budget fractions 0.2, 0.5, 1.0) with regrets 100x, 10x, 1x
    the final one.
    """
    finals = {"a": (0.1, 0.2), "b": (1.0, 2.0), "c": (10.0, 20.0)}
    root = tmp_path / "study"
    for problem, scale in (("p1", 1.0), ("p2", 0.1)):
        for strategy, values in finals.items():
            for seed, final in enumerate(values):
                r = final * scale
                trials = [{"cost": 2.0, "rec_value": 100 * r, "best_value": 100 * r},
                          {"cost": 3.0, "rec_value": 10 * r, "best_value": 10 * r},
                          {"cost": 5.0, "rec_value": r, "best_value": r}]
                write_log(root / f"{problem}__{strategy}__seed{seed}.jsonl", trials, problem=problem, strategy=strategy, seed=seed)
    return root

"""Ablations of a strategy's options: final regret and cost to a target against each swept value.

A study entry with ``sweep`` (:mod:`mfbo.study.config`, "Sweeps") runs one strategy per option
set, labelled ``"<base>:<key>=<value>,..."`` (:func:`mfbo.study.config.sweep_label`).
:func:`ablation_members` reads those labels back; a label counts only when every value it names
equals the option its runs logged (``spec.options``), so a label that merely contains a colon
is not taken for a sweep. For each base label and each option with at least two swept values:

- :func:`ablation_table`: per problem, value, and setting of the other swept options
  (``rest``, e.g. ``"r_min=3"``; ``""`` when one option is swept): the number of runs, the median
  and interquartile range of the final regret, the median budget fraction needed to reach the
  target regret and how many runs reached it;
- :func:`plot_ablation`: one column of panels per problem, the final regret (log scale) on top
  and the cost to the target below, against the option's value (a numeric axis when every value
  is a number, else one position per value in sweep order), one line per ``rest``, the median
  with IQR error bars.

The target regret is ``target`` when given (``mfbo plot --target``), else, per problem, the
upper quartile of the final regrets of all the ablation's runs there, so that about three
quarters of the runs reach it and the median cost is finite; the table says which. A run that never reaches it has cost ``inf``: the median is then ``inf``
when more than half did not, and the figure leaves the point out.
:func:`write_ablations` writes ``ablation__<base>__<option>`` (PDF, PNG and a Markdown table) for
:func:`mfbo.analysis.write_report`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import METRICS, run_summaries
from .stats import quantile
from .style import SINGLE_COLUMN, DOUBLE_COLUMN, new_figure, paper_style, save_figure

__all__ = ["parse_sweep_label", "ablation_members", "swept_options", "ablation_table", "plot_ablation", "write_ablations"]

_ITEM = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_]*=)")  # a comma that starts the next key=value
_SUFFIX = re.compile(r":(?=[A-Za-z_][A-Za-z0-9_]*=)")  # a colon that starts the first key=value


def parse_sweep_label(label: str) -> tuple[str, dict[str, Any]] | None:
    """``("hyperband", {"eta": 2, "r_min": 3})`` from ``"hyperband:eta=2,r_min=3"`` (values read
    as JSON, else kept as strings); ``None`` when ``label`` has no ``:key=value`` suffix. The
    suffix starts at the last colon followed by ``key=``, so a base label may hold colons and a
    value JSON ones."""
    starts = [m.start() for m in _SUFFIX.finditer(label)]
    if not starts or starts[-1] == 0:
        return None
    base, suffix = label[:starts[-1]], label[starts[-1] + 1:]
    values: dict[str, Any] = {}
    for item in _ITEM.split(suffix):
        key, eq, text = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            return None
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return base, values


def _same(logged: Any, value: Any) -> bool:
    numbers = (int, float)
    if isinstance(logged, numbers) and isinstance(value, numbers) and not isinstance(logged, bool) and not isinstance(value, bool):
        return math.isclose(float(logged), float(value), rel_tol=1e-12, abs_tol=0.0)
    if isinstance(logged, dict) and isinstance(value, dict):  # a guard: the logged one has every key
        return all(_same(logged.get(k), v) for k, v in value.items())
    return logged == value


def ablation_members(df) -> dict[str, dict[str, dict[str, Any]]]:
    """``{base: {label: values}}`` of the sweep labels in ``df`` (a :func:`load_study` frame)
    whose values match the runs' logged options (module docstring)."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for label, sub in df.groupby("label", sort=False):
        parsed = parse_sweep_label(str(label))
        if parsed is None:
            continue
        base, values = parsed
        logged = [json.loads(o) for o in sub["options"].unique()] if "options" in sub else [{}]
        if all(_same(opts[k], v) for opts in logged for k, v in values.items() if k in opts):
            groups.setdefault(base, {})[str(label)] = values
    return groups


def swept_options(members: dict[str, dict[str, Any]]) -> list[str]:
    """The options that take at least two values among one base's labels, in label order."""
    keys = list(dict.fromkeys(k for values in members.values() for k in values))
    return [k for k in keys if len({json.dumps(v.get(k), sort_keys=True) for v in members.values()}) > 1]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def ablation_table(df, members: dict[str, dict[str, Any]], option: str, *, metric: str = "regret", target: float | None = None):
    """The table of the module docstring for ``option`` among ``members`` (``{label: values}``
    of one base, :func:`ablation_members`); a DataFrame with columns ``problem, metric, value,
    rest, n, median, q25, q75, target, target_rule, cost_median, reached``, in sweep order
    (``metric``: the regret column used, normalised where the problem has no exact optimum,
    :func:`mfbo.analysis.metrics.resolve_metric`)."""
    import pandas as pd

    sub = df[df["label"].isin(list(members))]
    order = list(dict.fromkeys(_text(v[option]) for v in members.values() if option in v))
    rows = []
    for problem, runs in sub.groupby("problem", sort=False):
        finals = run_summaries(runs, metric)
        level = target if target is not None else quantile(finals["final"].to_numpy(dtype=float), 0.75)
        summaries = run_summaries(runs, metric, target=level)
        for label, values in members.items():
            if option not in values:
                continue
            mine = summaries[summaries["label"] == label]
            final, cost = mine["final"].to_numpy(dtype=float), mine["cost_to_target"].to_numpy(dtype=float)
            rest = ",".join(f"{k}={_text(v)}" for k, v in values.items() if k != option)
            rows.append({"problem": problem, "metric": summaries["metric"].iloc[0], "value": values[option], "rest": rest, "n": len(mine),
                         "median": quantile(final, 0.5), "q25": quantile(final, 0.25), "q75": quantile(final, 0.75),
                         "target": level, "target_rule": "given" if target is not None else "upper quartile of the final regrets",
                         "cost_median": quantile(cost, 0.5), "reached": int(np.isfinite(cost).sum())})
    table = pd.DataFrame(rows)
    if len(table):
        table["_order"] = table["value"].map(lambda v: order.index(_text(v)))
        table = table.sort_values(["problem", "rest", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    return table


def _positions(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    """x positions of the values: the values themselves when all are numbers, else 0, 1, ..."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float), None
    texts = list(dict.fromkeys(_text(v) for v in values))
    return np.asarray([texts.index(_text(v)) for v in values], dtype=float), texts


def plot_ablation(table, option: str, *, base: str = "", metric: str = "regret"):
    """The figure of the module docstring from an :func:`ablation_table`."""
    problems = list(dict.fromkeys(table["problem"]))
    x_all, ticks = _positions(list(table["value"]))
    table = table.assign(_x=x_all)
    width = SINGLE_COLUMN if len(problems) <= 2 else DOUBLE_COLUMN
    with paper_style():
        fig = new_figure(width, 3.2)
        axes = fig.subplots(2, len(problems), squeeze=False, sharex="col")
        for col, problem in enumerate(problems):
            rows = table[table["problem"] == problem]
            for rest, line in rows.groupby("rest", sort=False):
                label = rest or base or option
                top, bottom = axes[0][col], axes[1][col]
                err = np.vstack([line["median"] - line["q25"], line["q75"] - line["median"]]).clip(min=0)
                top.errorbar(line["_x"], np.maximum(line["median"], 1e-12), yerr=err, marker="o", markersize=3, capsize=2, label=label)
                cost = line["cost_median"].where(np.isfinite(line["cost_median"]))
                bottom.plot(line["_x"], cost, marker="o", markersize=3, label=label)
            axes[0][col].set_yscale("log")
            normalised = str(rows["metric"].iloc[0]).startswith("norm_")
            axes[0][col].set_title(f"{problem}{' (normalised)' if normalised else ''}", fontsize="small")
            axes[1][col].set_ylim(0, 1.05)
            axes[1][col].set_xlabel(option)
            if ticks is not None:
                axes[1][col].set_xticks(range(len(ticks)), ticks, rotation=30)
        axes[0][0].set_ylabel(f"final {METRICS.get(metric, metric)}")
        axes[1][0].set_ylabel("budget to target")
        handles, names = axes[0][0].get_legend_handles_labels()
        if len(names) > 1:
            fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 4), frameon=False)
        fig.suptitle(f"{base}: {option}" if base else option, fontsize="small")
    return fig


def _markdown(table, base: str, option: str, metric: str) -> str:
    rule = table["target_rule"].iloc[0]
    lines = [f"# Ablation of {base}: {option}", "",
             f"Final {METRICS.get(metric, metric)} (median [q25, q75] over seeds; the metric column says where it is "
             f"normalised because the problem has no exact optimum) and budget fraction to reach the target "
             f"regret ({rule}; runs that reached it / runs).", "",
             f"| problem | metric | {option} | other options | runs | final (median) | [q25, q75] | target | budget to target | reached |",
             "|---|---|---|---|---:|---:|---|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.problem} | {r.metric} | {_text(r.value)} | {r.rest or '-'} | {r.n} | {r.median:.4g} | [{r.q25:.4g}, {r.q75:.4g}] "
                     f"| {r.target:.4g} | {r.cost_median:.3g} | {r.reached}/{r.n} |")
    return "\n".join(lines) + "\n"


def write_ablations(df, out: str | os.PathLike, *, metric: str = "regret", target: float | None = None) -> list[Path]:
    """Write the figure and table of every swept option of every sweep in ``df`` into ``out``
    (``ablation__<base>__<option>.pdf/.png/.md``); ``[]`` when the study has no sweep."""
    from ..cli import safe_name

    out = Path(out)
    written: list[Path] = []
    for base, members in ablation_members(df).items():
        for option in swept_options(members):
            table = ablation_table(df, members, option, metric=metric, target=target)
            if not len(table):
                continue
            stem = out / f"ablation__{safe_name(base)}__{safe_name(option)}"
            written += save_figure(plot_ablation(table, option, base=base, metric=metric), stem)
            md = stem.with_suffix(".md")
            md.write_text(_markdown(table, base, option, metric))
            written.append(md)
    return written

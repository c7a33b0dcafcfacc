"""The dashboard page: one Bokeh document per browser tab, over one shared :class:`LiveStudy`.

Layout, top to bottom: a summary line (runs, how many are running, problems, trials, last
update), the problem / regret / run selectors, regret against the budget fraction and against
the simulated wall-clock fraction (median and IQR over seeds per strategy, log scale, as
``mfbo plot``), the selected run's cross-fidelity trajectory and its learning curves, the budget
share per fidelity of every strategy on the problem, the calibration results found under the
source, the runs table, and the notes (damaged lines skipped, files ignored).

Updating: the server reads the logs every ``refresh`` seconds (:meth:`LiveStudy.refresh`, shared
by all tabs); each tab checks the versions it has drawn and redraws only what changed: the
regret and allocation figures of the selected problem when one of its logs grew, and the
selected run's trajectory by *streaming* its new trials (``ColumnDataSource.stream``) rather
than sending it again.

Regret values are drawn as ``mfbo plot`` draws them: step functions; ``+inf`` (nothing yet) is
not drawn; a regret of exactly 0 is drawn at a floor, half the smallest positive value shown.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    DataTable,
    Div,
    FactorRange,
    HoverTool,
    LinearColorMapper,
    NumberFormatter,
    Select,
    TableColumn,
)
from bokeh.palettes import Cividis256, Viridis256
from bokeh.plotting import figure

from ..analysis.load import AXES
from ..analysis.metrics import METRICS
from ..analysis.plots import XLABELS
from ..analysis.style import order_labels, strategy_styles
from .data import LiveStudy, learning_curves, run_rows, trajectory

__all__ = ["build_document"]

_WIDTH, _HEIGHT = 560, 320
_METRIC_OPTIONS = [("regret", METRICS["regret"]), ("simple_regret", METRICS["simple_regret"])]


def _steps(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """Step-post coordinates through ``(x_i, y_i)`` (``NaN`` kept: a gap)."""
    xs = np.repeat(x, 2)[1:]
    ys = np.repeat(y, 2)[:-1]
    return xs.tolist(), ys.tolist()


def regret_lines(summary) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Medians (``xs, ys, label, colour``) and IQR bands (``xs, ys`` polygons) of a summary
    from :meth:`LiveStudy.regret_summary`, ready for a log axis (see the module docstring)."""
    lines: dict[str, list[Any]] = {"xs": [], "ys": [], "label": [], "colour": []}
    bands: dict[str, list[Any]] = {"xs": [], "ys": [], "colour": []}
    if summary is None or not len(summary):
        return lines, bands
    shown = summary[["median", "q25", "q75"]].to_numpy(dtype=float)
    positive = shown[np.isfinite(shown) & (shown > 0)]
    floor = positive.min() / 2 if positive.size else 1e-12
    styles = strategy_styles(summary["label"])
    for label in order_labels(summary["label"]):
        sub = summary[summary["label"] == label]
        x = sub["frac"].to_numpy(dtype=float)
        centre = sub["median"].to_numpy(dtype=float)
        ok = np.isfinite(centre)

        def clip(v, ok=ok):
            return np.where(ok & np.isfinite(v), np.maximum(v, floor), np.nan)

        xs, ys = _steps(x, clip(centre))
        lines["xs"].append(xs), lines["ys"].append(ys), lines["label"].append(label), lines["colour"].append(styles[label].colour)
        _, low = _steps(x, clip(sub["q25"].to_numpy(dtype=float)))
        _, high = _steps(x, clip(sub["q75"].to_numpy(dtype=float)))
        keep = [i for i in range(len(xs)) if math.isfinite(low[i]) and math.isfinite(high[i])]
        if keep:
            bands["xs"].append([xs[i] for i in keep] + [xs[i] for i in reversed(keep)])
            bands["ys"].append([low[i] for i in keep] + [high[i] for i in reversed(keep)])
            bands["colour"].append(styles[label].colour)
    return lines, bands


def _regret_figure(title: str, xlabel: str):
    fig = figure(width=_WIDTH, height=_HEIGHT, y_axis_type="log", title=title, x_range=(0, 1),
                 x_axis_label=xlabel, y_axis_label="regret (median, IQR)", tools="pan,wheel_zoom,box_zoom,reset,save")
    bands = ColumnDataSource({"xs": [], "ys": [], "colour": []})
    lines = ColumnDataSource({"xs": [], "ys": [], "label": [], "colour": []})
    fig.patches("xs", "ys", source=bands, fill_color="colour", fill_alpha=0.15, line_alpha=0)
    fig.multi_line("xs", "ys", source=lines, line_color="colour", line_width=2, legend_field="label")
    fig.add_layout(fig.legend[0], "right")  # beside the panel, not over the curves
    fig.add_tools(HoverTool(tooltips=[("strategy", "@label")], line_policy="nearest"))
    return fig, lines, bands


class Page:
    """One browser tab's document (see the module docstring)."""

    def __init__(self, doc, study: LiveStudy, refresh_ms: int) -> None:
        self.doc, self.study = doc, study
        self.drawn: dict[str, Any] = {}
        self.summary = Div(name="summary", text="")
        self.notes = Div(name="notes", text="")
        self.problem = Select(title="problem", name="problem", options=[])
        self.metric = Select(title="regret", value="regret", options=_METRIC_OPTIONS)
        self.run = Select(title="run (trajectory, learning curves)", name="run", options=[])
        self.regret_cost = _regret_figure("regret against cost", XLABELS["budget"])
        self.regret_clock = _regret_figure("regret against the simulated wall clock", XLABELS["wall_clock"])
        self._build_run_figures()
        self._build_allocation()
        self._build_calibration()
        self.runs = ColumnDataSource(run_rows(study), name="runs")
        self.table = DataTable(source=self.runs, name="runs_table", width=2 * _WIDTH, height=260, index_position=None, reorderable=False,
                               columns=_table_columns())
        for widget in (self.problem, self.metric, self.run):
            widget.on_change("value", lambda attr, old, new: self.update(force=True))
        doc.title = "mfbo dashboard"
        doc.add_root(column(
            Div(text=f"<h2>mfbo dashboard</h2><p>{_escape(study.source.label)}</p>"), self.summary,
            row(self.problem, self.metric, self.run),
            row(self.regret_cost[0], self.regret_clock[0]), row(*self.traj_figs.values(), self.curve_fig),
            row(self.alloc_fig, column(self.calib_select, self.calib_fig, self.calib_note)),
            Div(text="<b>runs</b>"), self.table, self.notes))
        self._draw_calibration()
        self.update(force=True)
        doc.add_periodic_callback(self.update, refresh_ms)

    def _build_run_figures(self) -> None:
        self.traj_points = ColumnDataSource({k: [] for k in ("cost", "fidelity", "value", "id", "status", "config")}, name="trajectory")
        self.traj_segments = ColumnDataSource({k: [] for k in ("x0", "y0", "x1", "y1")}, name="continuations")
        self.value_mapper = LinearColorMapper(palette=Viridis256, nan_color="#d62728")
        # one figure per fidelity scale (Bokeh cannot change an axis' type): the run's decides which is shown
        self.traj_figs = {scale: self._trajectory_figure(scale) for scale in ("linear", "log")}
        self.traj_figs["log"].visible = False
        self.curves = ColumnDataSource({k: [] for k in ("xs", "ys", "fidelity", "s", "id")}, name="curves")
        self.curve_fig = figure(width=_WIDTH, height=_HEIGHT, title="learning curves", x_axis_label="step (epoch)",
                                y_axis_label="value", tools="pan,wheel_zoom,box_zoom,reset,save")
        fid_mapper = LinearColorMapper(palette=Cividis256, low=0, high=1)
        self.curve_fig.multi_line("xs", "ys", source=self.curves, line_width=1.3, line_alpha=0.8,
                                  line_color={"field": "s", "transform": fid_mapper})
        self.curve_fig.add_layout(ColorBar(color_mapper=fid_mapper, title="fidelity where it stopped (1 = target)", width=8), "right")

    def _trajectory_figure(self, scale: str):
        fig = figure(width=_WIDTH, height=_HEIGHT, title="cross-fidelity trajectory", x_axis_label="cost spent", y_axis_type=scale,
                     y_axis_label="fidelity" + (" (log scale)" if scale == "log" else ""), tools="pan,wheel_zoom,box_zoom,reset,save")
        fig.segment("x0", "y0", "x1", "y1", source=self.traj_segments, line_color="#777777", line_width=1.2)
        points = fig.scatter("cost", "fidelity", source=self.traj_points, size=7, line_color="black", line_width=0.3,
                             fill_color={"field": "value", "transform": self.value_mapper})
        fig.add_tools(HoverTool(renderers=[points], tooltips=[("trial", "@id"), ("fidelity", "@fidelity"), ("value", "@value"),
                                                              ("status", "@status"), ("config", "@config")]))
        fig.add_layout(ColorBar(color_mapper=self.value_mapper, title="value (red: failed)", width=8), "right")
        return fig

    def _build_allocation(self) -> None:
        self.alloc = ColumnDataSource({k: [] for k in ("label", "left", "right", "category", "share", "s")}, name="allocation")
        self.alloc_fig = figure(width=_WIDTH, height=_HEIGHT, title="budget share per fidelity", y_range=FactorRange(),
                                x_range=(0, 1), x_axis_label="share of the budget (mean over seeds)", tools="save")
        mapper = LinearColorMapper(palette=Cividis256, low=0, high=1)
        bars = self.alloc_fig.hbar(y="label", left="left", right="right", height=0.7, source=self.alloc, line_color="white",
                                   fill_color={"field": "s", "transform": mapper})
        self.alloc_fig.add_tools(HoverTool(renderers=[bars], tooltips=[("strategy", "@label"), ("fidelity", "@category"), ("share", "@share{0.0%}")]))
        self.alloc_fig.add_layout(ColorBar(color_mapper=mapper, title="normalised fidelity", width=8), "right")

    def _build_calibration(self) -> None:
        self.calib_select = Select(title="calibration (mfbo calibrate)", options=[], name="calibration")
        self.calib_select.on_change("value", lambda attr, old, new: self._draw_calibration())
        self.calib = ColumnDataSource({"xs": [], "ys": [], "series": [], "colour": []}, name="calibration_lines")
        self.calib_fig = figure(width=_WIDTH, height=_HEIGHT - 60, x_axis_type="log", y_range=(-1.05, 1.05), x_range=(1e-3, 1.2),
                                x_axis_label="fraction of the target's cost", y_axis_label="precision, Spearman", tools="save")
        self.calib_fig.multi_line("xs", "ys", source=self.calib, line_color="colour", line_width=2, legend_field="series")
        self.calib_fig.add_layout(self.calib_fig.legend[0], "right")
        self.calib_note = Div(text="")

    def update(self, force: bool = False) -> None:
        """Redraw what changed since this tab last drew (see the module docstring)."""
        study = self.study
        if force or self.drawn.get("version") != study.version:
            self.drawn["version"] = study.version
            problems = study.problems()
            if self.problem.options != problems:
                self.problem.options = problems
            if self.problem.value not in problems and problems:
                self.problem.value = problems[0]  # triggers update(force=True) through on_change
                return
            self._draw_summary()
            self._draw_runs_table()
            self._draw_calibration_choices()
            notes = study.notes()
            self.notes.text = ("<b>notes</b><ul>" + "".join(f"<li>{_escape(n)}</li>" for n in notes) + "</ul>") if notes else ""
        problem = self.problem.value
        if problem:
            self._draw_problem(problem, force)
            self._draw_run(problem, force)

    def _draw_runs_table(self) -> None:
        """Replace the runs table's rows. BokehJS 3.9's DataTable redraws its cells only when the
        number of rows changes, so the rows are emptied first (one message, no flicker)."""
        rows = run_rows(self.study)
        if rows != self.runs.data:
            self.runs.data = {k: [] for k in rows}
            self.runs.data = rows

    def _draw_summary(self) -> None:
        runs = self.study.runs()
        running = sum(t.footer is None for t in runs)
        state = "running" if self.study.source.live else "incomplete"
        self.summary.text = (f"<b><span class='n-runs'>{len(runs)}</span> runs</b> ({running} {state}, {len(runs) - running} finished) "
                             f"on {len(self.study.problems())} problem(s), <span class='n-trials'>{sum(len(t.trials) for t in runs)}</span> trials; "
                             f"read at {time.strftime('%H:%M:%S')}")

    def _summaries(self, problem: str) -> list[Any]:
        out: list[Any] = []
        for axis in AXES:
            try:
                out.append(self.study.regret_summary(problem, self.metric.value, axis))
            except ValueError as err:  # logs without simulated times
                out.append(err)
        return out + [self.study.allocation(problem)]

    def _draw_problem(self, problem: str, force: bool) -> None:
        """Redraw the problem's figures if what they show was recomputed (cached otherwise)."""
        shown = self._summaries(problem)
        if not force and self.drawn.get("problem") == (problem, self.metric.value) and all(
                a is b for a, b in zip(shown, self.drawn.get("objects", []))):
            return
        self.drawn["problem"], self.drawn["objects"] = (problem, self.metric.value), shown
        for (fig, lines, bands), axis, result in zip((self.regret_cost, self.regret_clock), AXES, shown):
            summary = None
            if isinstance(result, ValueError):
                fig.title.text = f"no simulated wall clock: {result}"[:120]
            else:
                summary, column_ = result
                where = "cost" if axis == "budget" else "the simulated wall clock"
                fig.title.text = f"{problem}: {METRICS.get(column_, self.metric.value)} against {where}"
            lines.data, bands.data = (dict(d) for d in regret_lines(summary))
        allocation = shown[-1]
        data: dict[str, list[Any]] = {k: [] for k in ("label", "left", "right", "category", "share", "s")}
        labels: list[str] = []
        if allocation is not None and len(allocation):
            labels = order_labels(allocation["label"])
            for label in labels:
                left = 0.0
                for _, r in allocation[allocation["label"] == label].sort_values("order").iterrows():
                    for k, v in (("label", label), ("left", left), ("right", left + r["share"]), ("category", r["category"]),
                                 ("share", r["share"]), ("s", min(r["s_mid"], 1.0))):
                        data[k].append(v)
                    left += r["share"]
        self.alloc_fig.y_range.factors = labels[::-1]
        self.alloc.data = data

    def _draw_run(self, problem: str, force: bool) -> None:
        tails = {str(t.path.relative_to(self.study.source.root) if self.study.source.root.is_dir() else t.path.name): t
                 for t in self.study.runs() if t.key()[0] == problem}
        names = list(tails)
        self.run.options = names
        if self.run.value not in tails:
            if names:  # a run still running if there is one, else the first; triggers update(force=True)
                self.run.value = next((n for n in names if tails[n].footer is None), names[0])
                return
            self.traj_points.data = {k: [] for k in self.traj_points.data}
            self.traj_segments.data = {k: [] for k in self.traj_segments.data}
            self.curves.data = {k: [] for k in self.curves.data}
            return
        tail = tails[self.run.value]
        drawn = self.drawn.get("run")
        if not force and drawn == (tail.path, tail.version):
            return
        shown = len(self.traj_points.data["id"])
        if force or tail.reset or drawn is None or drawn[0] != tail.path or shown > len(tail.trials):
            points, segments = trajectory(tail)
            self.traj_points.data, self.traj_segments.data = points, segments
        else:  # the same run grew: send only its new trials
            points, segments = trajectory(tail, start=shown)
            self.traj_points.stream(points)
            if segments["x0"]:
                self.traj_segments.stream(segments)
        values = [v for v in self.traj_points.data["value"] if isinstance(v, (int, float)) and math.isfinite(v)]
        if values:
            self.value_mapper.low, self.value_mapper.high = min(values), max(values)
        fidelity = ((tail.header or {}).get("problem") or {}).get("fidelity") or {}
        scale_shown = "log" if fidelity.get("log") and float(fidelity.get("low") or 0) > 0 else "linear"
        for scale, fig in self.traj_figs.items():
            fig.visible = scale == scale_shown
            fig.title.text = f"cross-fidelity trajectory: {self.run.value} ({len(tail.trials)} trials)"
        self.curves.data = learning_curves(tail)
        self.curve_fig.title.text = "learning curves" if self.curves.data["id"] else "learning curves: none in this run's log"
        self.drawn["run"] = (tail.path, tail.version)

    def _draw_calibration_choices(self) -> None:
        tables = self.study.calibrations()
        names = [str(p.name) for p, _ in tables]
        if names != self.calib_select.options:
            self.calib_select.options = names
            if self.calib_select.value not in names:
                self.calib_select.value = names[0] if names else ""
            self._draw_calibration()

    def _draw_calibration(self) -> None:
        tables = {p.name: t for p, t in self.study.calibrations()}
        table = tables.get(self.calib_select.value)
        data: dict[str, list[Any]] = {"xs": [], "ys": [], "series": [], "colour": []}
        self.calib_fig.visible = self.calib_select.visible = bool(tables)
        if not tables:
            self.calib_note.text = "No calibration results (<code>*calibration*.json</code> from <code>mfbo calibrate</code>) under the source."
        elif isinstance(table, str):
            self.calib_note.text = _escape(table)
        elif table is not None:
            self.calib_note.text = f"{_escape(table['title'])}"
            palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00"]
            series = [k for k in table if k not in ("title", "cost_fraction")]
            for i, name in enumerate(series):
                pairs = [(x, y) for x, y in zip(table["cost_fraction"], table[name]) if math.isfinite(x) and x > 0]
                data["xs"].append([x for x, _ in pairs]), data["ys"].append([y for _, y in pairs])
                data["series"].append(name), data["colour"].append(palette[i % len(palette)])
        finite = [x for xs in data["xs"] for x in xs]
        if finite:
            self.calib_fig.x_range.start, self.calib_fig.x_range.end = min(finite) / 1.25, max(finite) * 1.25
        self.calib.data = data


def _table_columns() -> list[TableColumn]:
    formats = {"spent": "0.[000]", "budget": "0.[000]", "regret": "0.000e+0"}
    return [TableColumn(field=f, title=f, **({"formatter": NumberFormatter(format=formats[f])} if f in formats else {}))
            for f in ("run", "problem", "label", "seed", "trials", "spent", "budget", "status", "regret")]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_document(doc, study: LiveStudy, refresh_ms: int) -> Page:
    """Fill a Bokeh ``doc`` with the dashboard of ``study``; it redraws every ``refresh_ms``."""
    return Page(doc, study, refresh_ms)

"""A live dashboard of a study: ``mfbo dashboard RESULTS_DIR`` (issue #17, part 1).

A local web page on ``http://127.0.0.1:PORT/`` for a study directory, one run log, or a stored
archive (``paper_figs/results/*.tar.xz``), which refreshes while the study runs:

- regret against the budget fraction and against the simulated wall-clock fraction, per problem
  and strategy (median and IQR over seeds), computed by :mod:`mfbo.analysis` exactly as
  ``mfbo plot`` does (:mod:`mfbo.dashboard.data` names the one difference, for runs still
  running);
- the **cross-fidelity trajectory** of a run: every trial a point (cost spent, fidelity),
  continuations drawn as segments joining the rungs a configuration climbed, points coloured by
  value; and its learning curves, each coloured by the fidelity at which that configuration
  stopped;
- the share of the budget spent per fidelity (:func:`mfbo.analysis.metrics.fidelity_allocation`);
- the ``mfbo calibrate`` results (``*calibration*.json``) found under the source;
- a runs table (trials, cost spent, budget, running or stopped, last regret) and the notes of
  the reader (damaged lines skipped, files that are not run logs).

Modules: :mod:`~mfbo.dashboard.source` (where the logs are; reading them as they grow),
:mod:`~mfbo.dashboard.data` (what is shown, from :mod:`mfbo.analysis`),
:mod:`~mfbo.dashboard.app` (the page), :mod:`~mfbo.dashboard.server` (serving it).

Why Bokeh (the ``dashboard`` extra)
-----------------------------------
The page is a **Bokeh server** application (Bokeh >= 3.4, NumFOCUS-sponsored, released
regularly). The alternatives considered: Plotly Dash re-sends a whole figure from each callback
(or needs client-side ``extendData`` plumbing) and pulls Flask, Werkzeug and Plotly; Panel is
built on Bokeh and adds a large layer this page does not need. Bokeh gives, in one package
whose dependencies (Tornado, Jinja2, NumPy, Pillow, PyYAML, contourpy, narwhals, xyzservices)
are mostly here already: a server bound to one address and port, a document per browser tab
kept in sync over a websocket, ``ColumnDataSource.stream`` to send only a run's new trials, and
BokehJS served by the server itself, so the page works without any internet access.
"""

from __future__ import annotations

from .server import DEFAULT_PORT, make_server, serve, serve_in_background
from .source import open_source

__all__ = ["DEFAULT_PORT", "make_server", "open_source", "serve", "serve_in_background"]

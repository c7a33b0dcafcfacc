"""Serving the dashboard on 127.0.0.1: :func:`serve` (the ``mfbo dashboard`` command, blocks)
and :func:`serve_in_background` (a thread, for a notebook or a test).

The Bokeh server binds ``127.0.0.1:PORT`` only (never other interfaces) and accepts page
connections from ``127.0.0.1:PORT`` and ``localhost:PORT``. A port that is taken is refused with
one message that names it and suggests ``--port``. The logs are read again every ``refresh``
seconds while the source can grow (a directory or a log, not an archive).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .source import open_source

__all__ = ["DEFAULT_PORT", "make_server", "serve", "serve_in_background"]

DEFAULT_PORT = 5006


def _bokeh():
    try:
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import Server
    except ImportError:
        raise ImportError("mfbo dashboard needs Bokeh: pip install 'mfbo[dashboard]'") from None
    return Application, FunctionHandler, Server


def make_server(path: str | Path, *, port: int = DEFAULT_PORT, refresh: float = 2.0, io_loop: Any = None):
    """``(server, study)``: a Bokeh server (bound, not started) of the dashboard of ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no run logs under ``path``, none readable, a bad ``port`` or ``refresh``, or
            the port is in use (the message names it and suggests ``--port``).
        ImportError: Bokeh is not installed (the message gives the pip command).
    """
    from tornado.ioloop import PeriodicCallback

    from .app import build_document
    from .data import LiveStudy

    if not (isinstance(port, int) and 1 <= port <= 65535):
        raise ValueError(f"--port must be an integer in 1..65535, got {port!r}")
    if not refresh > 0:
        raise ValueError(f"--refresh must be a number of seconds > 0, got {refresh!r}")
    Application, FunctionHandler, Server = _bokeh()
    source = open_source(path)
    study = LiveStudy(source)
    if not study.runs():
        source.close()
        why = "; ".join(study.notes()) or "their header lines are not complete yet"
        raise ValueError(f"none of the {len(study.tails)} log(s) under {path} is a readable mfbo run log: {why}")
    refresh_ms = max(int(refresh * 1000), 50)
    app = Application(FunctionHandler(lambda doc: build_document(doc, study, refresh_ms)))
    logging.getLogger("bokeh").setLevel(logging.WARNING)
    try:
        server = Server({"/": app}, port=port, address="127.0.0.1", io_loop=io_loop,
                        allow_websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"])
    except OSError as err:
        source.close()
        if err.errno in (errno.EADDRINUSE, errno.EACCES):
            what = "is already in use" if err.errno == errno.EADDRINUSE else "may not be used by this user"
            raise ValueError(f"port {port} on 127.0.0.1 {what}; choose another with --port (e.g. --port {port + 1 if port < 65535 else 5006})") from None
        raise
    if source.live:
        poll = PeriodicCallback(study.refresh, refresh_ms)
        server.io_loop.add_callback(poll.start)  # started on the server's loop, whichever thread runs it
    return server, study


def serve(path: str | Path, *, port: int = DEFAULT_PORT, refresh: float = 2.0, notes=print) -> None:
    """Serve the dashboard of ``path`` on ``http://127.0.0.1:PORT/`` until interrupted (Ctrl-C).

    ``notes`` receives one line per problem found at start (damaged lines skipped, files that are
    not run logs) and the URL.
    """
    server, study = make_server(path, port=port, refresh=refresh)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        for note in study.notes():
            notes(f"note: {note}")
        runs = study.runs()
        live = f", re-read every {refresh:g} s" if study.source.live else " (a stored archive: not re-read)"
        notes(f"{len(runs)} run(s) from {study.source.label}{live}")
        notes(f"serving http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        if threading.current_thread() is threading.main_thread():  # `kill` stops it as Ctrl-C does: an archive's copy is removed
            signal.signal(signal.SIGTERM, _interrupt)
        server.start()
        server.io_loop.start()
    finally:
        server.stop()
        study.source.close()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@dataclass
class BackgroundDashboard:
    """A dashboard served from a thread: ``url``; :meth:`stop` ends it."""

    url: str
    thread: threading.Thread
    _loop: Any
    _server: Any
    _study: Any

    def stop(self) -> None:
        def halt():
            self._server.stop()
            self._loop.stop()

        self._loop.add_callback(halt)
        self.thread.join(timeout=10)
        self._study.source.close()


def serve_in_background(path: str | Path, *, port: int = DEFAULT_PORT, refresh: float = 2.0) -> BackgroundDashboard:
    """Serve the dashboard of ``path`` from a daemon thread; returns once it accepts connections.
    The errors of :func:`make_server` are raised here, in the caller's thread."""
    from tornado.ioloop import IOLoop

    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        try:
            server, study = make_server(path, port=port, refresh=refresh, io_loop=loop)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread, raised there
            started["error"] = err
            ready.set()
            return
        server.start()
        started.update(loop=loop, server=server, study=study)
        ready.set()
        loop.start()
        loop.close(all_fds=True)

    thread = threading.Thread(target=run, name=f"mfbo-dashboard-{port}", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        raise started["error"]
    return BackgroundDashboard(f"http://127.0.0.1:{port}/", thread, started["loop"], started["server"], started["study"])

"""One figure style for every plot of mfbo: sizes, fonts, colours, and how files are written.

Sizes are those of a two-column paper: :data:`SINGLE_COLUMN` = 3.3 in and :data:`DOUBLE_COLUMN`
= 6.9 in wide, with 7-8 pt fonts (:data:`PAPER_RC`), so a figure is included at 100 % and its
text matches the caption's size. TrueType fonts are embedded in PDFs (``pdf.fonttype 42``), as
publishers ask.

Colours are the Okabe & Ito (2008) colour-blind-safe palette. A strategy *label* keeps one
colour and one line style across all figures of a study (:func:`strategy_styles`): the
strategies mfbo ships have fixed colours (:data:`KNOWN_COLOURS`), and any other label takes,
in alphabetical order, the palette colours that the known labels of the same study leave free,
so up to eight labels always get eight distinct colours. Line styles (and markers, where a plot
uses them) vary as well, so the figures also read in greyscale. Fidelity levels are coloured
with ``cividis``, a sequential colour map designed to be readable with colour-vision
deficiencies, dark for the cheapest fidelities and light at the target.

Nothing here changes matplotlib's global state: figures are :class:`matplotlib.figure.Figure`
objects built inside :func:`paper_style` (an ``rc_context``), never through ``pyplot``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SINGLE_COLUMN", "DOUBLE_COLUMN", "PAPER_RC", "OKABE_ITO", "KNOWN_COLOURS", "FIDELITY_CMAP",
    "LineStyle", "paper_style", "strategy_styles", "order_labels", "new_figure", "save_figure",
]

#: Width of one column of a two-column paper, in inches.
SINGLE_COLUMN = 3.3
#: Width of the full text (both columns), in inches.
DOUBLE_COLUMN = 6.9

#: Matplotlib settings of every mfbo figure (applied with :func:`paper_style`).
PAPER_RC: dict[str, Any] = {
    "font.size": 7.5,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "legend.handlelength": 2.2,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.color": "0.9",
    "grid.linewidth": 0.5,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "savefig.dpi": 300,
}

#: Okabe & Ito (2008), "Color universal design": eight colours distinguishable with any common
#: colour-vision deficiency. Yellow is last: it is the weakest on white.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "vermillion": "#D55E00",
    "blue": "#0072B2",
    "bluish green": "#009E73",
    "orange": "#E69F00",
    "reddish purple": "#CC79A7",
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
}

#: The fixed colours of the strategies mfbo ships (by label).
KNOWN_COLOURS: dict[str, str] = {
    "random": OKABE_ITO["black"],
    "gp-ei": OKABE_ITO["sky blue"],
    "mf-kg": OKABE_ITO["vermillion"],
    "mf-mes": OKABE_ITO["blue"],
    "mf-gibbon": OKABE_ITO["bluish green"],
    "mf-ei": OKABE_ITO["orange"],
    "mf-ucb": OKABE_ITO["reddish purple"],
}

#: Sequential colour map of fidelity levels (normalised fidelity 0 -> dark, target 1 -> light).
FIDELITY_CMAP = "cividis"

_LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))
_KNOWN_LINESTYLES = {"random": ":", "gp-ei": "--"}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class LineStyle:
    """How one strategy label is drawn: ``colour``, ``linestyle`` and ``marker``."""

    colour: str
    linestyle: Any
    marker: str

    def line_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Axes.plot`` for a line without markers."""
        return {"color": self.colour, "linestyle": self.linestyle}


def order_labels(labels: Iterable[str]) -> list[str]:
    """The order of labels in legends and tables: mfbo's known strategies first (in the order of
    :data:`KNOWN_COLOURS`: baselines, then the multi-fidelity GP strategies), then the rest
    alphabetically."""
    unique = sorted(set(labels))
    known = [name for name in KNOWN_COLOURS if name in unique]
    return known + [name for name in unique if name not in KNOWN_COLOURS]


def strategy_styles(labels: Iterable[str]) -> dict[str, LineStyle]:
    """A fixed :class:`LineStyle` per label (see the module docstring for the rule).

    Labels beyond the eight palette colours reuse colours with a different line style, so every
    label stays distinguishable.
    """
    ordered = order_labels(labels)
    taken = {KNOWN_COLOURS[name] for name in ordered if name in KNOWN_COLOURS}
    free = [c for c in OKABE_ITO.values() if c not in taken] or list(OKABE_ITO.values())
    styles: dict[str, LineStyle] = {}
    n_other = 0
    known = list(KNOWN_COLOURS)
    for name in ordered:
        if name in KNOWN_COLOURS:
            colour = KNOWN_COLOURS[name]
            linestyle = _KNOWN_LINESTYLES.get(name, "-")
            marker = _MARKERS[known.index(name) % len(_MARKERS)]
        else:
            colour = free[n_other % len(free)]
            linestyle = _LINESTYLES[(n_other // len(free)) % len(_LINESTYLES)]
            marker = _MARKERS[(len(known) + n_other) % len(_MARKERS)]
            n_other += 1
        styles[name] = LineStyle(colour=colour, linestyle=linestyle, marker=marker)
    return styles


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Apply :data:`PAPER_RC` for the figures built inside the block (nothing global changes)."""
    from matplotlib import rc_context

    with rc_context(PAPER_RC):
        yield


def new_figure(width: float, height: float):
    """A ``constrained``-layout :class:`~matplotlib.figure.Figure` of ``width x height`` inches
    (call inside :func:`paper_style`)."""
    from matplotlib.figure import Figure

    if not (width > 0 and height > 0):
        raise ValueError(f"new_figure: width and height must be > 0 inches, got {width!r} x {height!r}")
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path: str | Path) -> tuple[Path, Path]:
    """Write ``fig`` as ``<path>.pdf`` and ``<path>.png`` (300 dpi); a ``.pdf``/``.png`` suffix
    on ``path`` is dropped first. Returns the two paths."""
    base = Path(path)
    if base.suffix.lower() in (".pdf", ".png"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    pdf, png = Path(f"{base}.pdf"), Path(f"{base}.png")
    with paper_style():
        fig.savefig(pdf)
        fig.savefig(png, dpi=PAPER_RC["savefig.dpi"])
    return pdf, png

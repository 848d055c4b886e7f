"""How an algorithm is drawn: a colour, a marker and a dash, the same in every plot and page.

Entries of algorithms.yaml take their style from their place in the file. Colour, marker and
dash cycle with pairwise coprime periods (11, 9, 5), so two entries fewer than 45 places apart
differ in at least two of the three: in colour and marker up to 99 entries, and in marker and
dash (what is left in a greyscale print) up to 45. Any other name (from another definitions
file) hashes into the same cycles. matplotlib and Plotly spell markers and dashes differently;
both spellings are here so the site and plot.py agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UserError
from ..run.definitions import load_algorithms

# Dark enough to read as thin lines on white paper; none is a lighter twin of another.
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#000000",
           "#00838f", "#9e9d24", "#7f7f7f")
# (matplotlib, Plotly) spellings of the same marker.
MARKERS = (("o", "circle"), ("s", "square"), ("^", "triangle-up"), ("v", "triangle-down"), ("D", "diamond"),
           ("P", "cross"), ("X", "x"), ("*", "star"), ("h", "hexagon"))
# (matplotlib dash pattern in points, Plotly dash): solid, dashed, dotted, dash-dot, long dash.
DASHES = (((0, ()), "solid"), ((0, (5, 2)), "dash"), ((0, (1, 1.5)), "dot"), ((0, (5, 2, 1, 2)), "dashdot"),
          ((0, (10, 3)), "longdash"))


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str  # matplotlib
    dash: tuple  # matplotlib linestyle
    plotly_marker: str
    plotly_dash: str


def algorithm_style(algorithm: str) -> Style:
    registry = _registered_names()
    if algorithm in registry:
        index = registry.index(algorithm)
    else:
        index = int.from_bytes(hashlib.sha256(algorithm.encode()).digest()[:4], "big")
    marker, plotly_marker = MARKERS[index % len(MARKERS)]
    dash, plotly_dash = DASHES[index % len(DASHES)]
    return Style(COLOURS[index % len(COLOURS)], marker, dash, plotly_marker, plotly_dash)


@lru_cache(maxsize=1)
def _registered_names() -> list[str]:
    try:
        return list(load_algorithms())
    except UserError:
        return []  # a broken algorithms.yaml must not stop a plot of finished results

"""The Pareto frontier of a set of (x, y) points: the ones no other point beats on both axes."""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np

Better = Literal["higher", "lower"]


def _sign(better: str) -> float:
    if better == "higher":
        return 1.0
    if better == "lower":
        return -1.0
    raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")


def pareto_frontier(points: Iterable[tuple[float, float]], x_better: Better = "higher",
                    y_better: Better = "higher") -> list[int]:
    """Indices of the non-dominated points, sorted by x ascending.

    A point is dominated when another is at least as good on both axes and better on one.
    Of several identical points only the first is kept; points with a NaN coordinate are
    ignored.
    """
    pts = np.asarray(list(points), dtype=np.float64).reshape(-1, 2)
    sx, sy = _sign(x_better), _sign(y_better)
    valid = np.flatnonzero(~np.isnan(pts).any(axis=1))
    if len(valid) == 0:
        return []
    x, y = pts[valid, 0] * sx, pts[valid, 1] * sy  # now higher is better on both axes
    # Best x first, then best y, then lowest index: a point is on the frontier exactly when
    # its y beats every point seen before it.
    order = np.lexsort((valid, -y, -x))
    frontier: list[int] = []
    best_y = -np.inf
    for i in order:
        if y[i] > best_y or (not frontier and y[i] == best_y):
            frontier.append(int(valid[i]))
            best_y = y[i]
    return sorted(frontier, key=lambda i: (pts[i, 0], i))

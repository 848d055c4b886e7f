"""Effort-ordered query sets: run the cheap ones first, skip what cannot gain.

An entry of algorithms.yaml may name one query argument as its effort (`effort: ef`): more of
it is slower and at least as accurate (ef, search_k, n_probe, ...). A definition's query sets
then run from least to most effort, and once a set reaches recall 1.0 the sets that differ from
it only by more effort have nothing left to gain: the sweep skips them and records why
(`run.py --exhaustive` runs them all). Which sets those are is decided here; measuring recall
is the host's (the worker never sees the ground truth).
"""

from __future__ import annotations

from typing import Any

# Recall at which a set has nothing left to gain (a float sum of 1.0s can miss 1.0 by an ulp).
SATURATED = 1.0 - 1e-9


def effort_of(query_set: Any, effort: str) -> float:
    return float(query_set[effort])


def _others(query_set: dict, effort: str) -> list:
    return sorted((name, repr(value)) for name, value in query_set.items() if name != effort)


def in_effort_order(query_sets: tuple, effort: str | None) -> tuple:
    """The sets from least to most effort (stable: equal efforts keep the grid's order)."""
    if effort is None:
        return query_sets
    return tuple(sorted(query_sets, key=lambda q: effort_of(q, effort)))


def costlier(query_sets: list, reached: Any, effort: str | None) -> list:
    """The sets that differ from `reached` only by more effort: nothing to gain once `reached`
    is at recall 1.0."""
    if effort is None:
        return []
    others = _others(reached, effort)
    level = effort_of(reached, effort)
    return [q for q in query_sets if _others(q, effort) == others and effort_of(q, effort) > level]


def check_effort(where: str, effort: str, query_grids: list[Any]) -> str | None:
    """Why `effort` cannot order these query grids (None when it can): it must name a keyword
    query argument with numeric values in every grid."""
    for grid in query_grids:
        if not isinstance(grid, dict) or effort not in grid:
            return f"{where}: key 'effort': '{effort}' is not a query argument of every run group"
        values = grid[effort] if isinstance(grid[effort], list) else [grid[effort]]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return f"{where}: key 'effort': the values of '{effort}' must be numbers"
    return None

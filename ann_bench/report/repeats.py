"""The spread of a result across the builds of `run.py --repeat R`.

A first build's result file has builds 2..R beside it (results/files.py, `repeat_paths`). For
build time, recall and QPS this gives the mean, minimum, maximum and coefficient of variation
(sample standard deviation / mean) over the builds that succeeded, and flags a figure whose
spread, (max - min) / mean, exceeds 10 %: the export has them as columns, the site beside each
run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..results.files import read_result, repeat_paths
from .metrics import compute_metrics

SPREAD_METRICS = ("build", "k-nn", "qps")
TITLES = {"build": "build time (s)", "k-nn": "recall", "qps": "QPS"}
STATISTICS = ("mean", "min", "max", "cv")
FLAG_SPREAD = 0.10
FLAGS = "repeat-over-10pct"
COLUMNS = ["repeats"] + [f"repeat-{m}-{s}" for m in SPREAD_METRICS for s in STATISTICS] + [FLAGS]


def statistics(values: list[float]) -> dict[str, float]:
    """mean, min, max and cv of the values (cv nan for fewer than two or a mean of 0)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    cv = float(array.std(ddof=1) / mean) if len(array) > 1 and mean != 0 else math.nan
    return {"mean": mean, "min": float(array.min()), "max": float(array.max()), "cv": cv}


def flagged(stats: dict[str, float]) -> bool:
    """Whether the figure's spread across builds, (max - min) / mean, exceeds FLAG_SPREAD."""
    if not math.isfinite(stats["mean"]) or stats["mean"] == 0:
        return stats["max"] != stats["min"]
    return (stats["max"] - stats["min"]) / abs(stats["mean"]) > FLAG_SPREAD


def spread(row: dict, truth: Callable[[], np.ndarray], count: int) -> dict:
    """The COLUMNS of one table row (a first build's metrics): empty where it has no repeats."""
    values = {m: [row[m]] for m in SPREAD_METRICS}
    for path in repeat_paths(Path(row["path"])):
        result = read_result(path)
        if result.ok:
            for name, value in compute_metrics(truth(), result, count, SPREAD_METRICS).items():
                values[name].append(value)
    builds = len(values["build"])
    if builds == 1:
        return {column: "" for column in COLUMNS}
    out: dict = {"repeats": builds}
    over = []
    for name, series in values.items():
        stats = statistics(series)
        out.update({f"repeat-{name}-{s}": stats[s] for s in STATISTICS})
        if flagged(stats):
            over.append(name)
    out[FLAGS] = " ".join(over)
    return out


def with_spread(rows: Iterable[dict], truth: Callable[[], np.ndarray], count: int) -> list[dict]:
    """The rows with their spread columns; `truth` (the dataset's true distances) is called once,
    and only where some row has repeats."""
    loaded: list[np.ndarray] = []

    def once() -> np.ndarray:
        if not loaded:
            loaded.append(np.asarray(truth()))
        return loaded[0]

    return [dict(row, **spread(row, once, count)) for row in rows]

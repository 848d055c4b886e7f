"""Tables derived from metric rows (metrics_for_results): QPS at recall targets, and how far a
run's timed passes disagree.

A run's QPS is its fastest pass's (as in ann-benchmarks); every pass is kept (`run_times`), so
the spread is known: `qps-slowest` is the QPS of its slowest pass and `qps-cv` the coefficient of
variation of the pass times. A run whose slowest pass is more than SPREAD_FLAG slower than its
fastest is flagged: its QPS is not a settled figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RECALL_TARGETS = (0.5, 0.8, 0.9, 0.95, 0.99)
SPREAD_FLAG = 0.10
# A recall is a mean of fractions: 9 hits of 10 in every query can come out as 0.8999999999999998,
# which reaches 0.9 all the same.
RECALL_TOLERANCE = 1e-9


def pass_spread(row: dict) -> float:
    """How much slower the slowest pass was than the fastest (0.25: 25 %); nan where unknown."""
    qps, slowest = row.get("qps", math.nan), row.get("qps-slowest", math.nan)
    if not (math.isfinite(qps) and math.isfinite(slowest)) or slowest <= 0:
        return math.nan
    return qps / slowest - 1.0


def unsettled(row: dict) -> bool:
    """True when the run's passes disagree by more than SPREAD_FLAG."""
    return pass_spread(row) > SPREAD_FLAG


@dataclass(frozen=True)
class Best:
    """An algorithm's best run at or above one recall target."""

    qps: float
    row: dict


def qps_at_recall(rows: list[dict], targets: tuple[float, ...] = RECALL_TARGETS,
                  recall: str = "k-nn") -> dict[str, dict[float, Best | None]]:
    """For each algorithm and target, its highest-QPS run whose recall is at least the target
    (None where no run reaches it). Runs without a recall or QPS value take no part."""
    table: dict[str, dict[float, Best | None]] = {}
    for row in rows:
        cells = table.setdefault(row["algorithm"], {target: None for target in targets})
        value, qps = row.get(recall, math.nan), row.get("qps", math.nan)
        if not (math.isfinite(value) and math.isfinite(qps)):
            continue
        for target in targets:
            best = cells[target]
            if value >= target - RECALL_TOLERANCE and (best is None or qps > best.qps):
                cells[target] = Best(qps, row)
    return dict(sorted(table.items()))

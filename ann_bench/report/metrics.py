"""The metric table: one row per metric, and everything else (plots, export) is driven by it.

A metric is a `Metric(name, description, function, better)`; `function(true_distances,
result, count)` gets the dataset's exact distances (nq, >= k), one `RunResult` and k, and
returns a float (nan where the result lacks what the metric needs).

The recall definitions follow ann-benchmarks (ann_benchmarks/plotting/metrics.py):

- k-nn recall is tie-tolerant: a returned neighbour counts when its distance is at most the
  k-th true distance + 1e-3, so any of several points tied at the k-th distance is a hit.
- epsilon recall uses the threshold k-th true distance * (1 + eps).

Where we differ, on purpose:

- Missing answers are padded with id -1 and distance +inf by the worker and never count
  (ann-benchmarks pads with zeros, which would count as hits).
- When the truth holds fewer than k finite distances for a query, recall for that query is
  measured at the number that exists (hits capped there) instead of raising IndexError.
- The epsilon threshold is d + eps * |d|, identical to d * (1 + eps) for the usual
  non-negative distances and still looser than d when d is negative (dot-product distances).
- rel pairs the j-th returned distance with the j-th true distance only where an answer was
  returned (recall already charges for missing ones), and is inf (not an error) when the
  true distances sum to zero but the returned ones do not.
- distcomps is the `dist_comps` attribute, which wrappers report per query (ann-benchmarks'
  wrappers report a total that its plotting divides by runs and queries), and nan (not 0)
  when the wrapper does not report it.

Metrics are cached outside the result files (which are never written after they are made):
see `cache.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

import numpy as np

from ..errors import UserError
from ..results.files import RunResult

# Bump whenever any metric's definition changes: every cached value is then recomputed.
METRICS_VERSION = 4

KNN_EPSILON = 1e-3
NAN = float("nan")


@dataclass(frozen=True)
class Metric:
    name: str
    description: str  # the axis label
    function: Callable[[np.ndarray, RunResult, int], float]
    better: Literal["higher", "lower"]


# --- recall ---------------------------------------------------------------------------------

def _truth(true_distances: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-th true distance per query and the k actually available per query.

    k per query is count, clamped to the number of finite true distances given.
    """
    true = np.asarray(true_distances, dtype=np.float64)
    if true.ndim != 2:
        raise ValueError(f"true distances must be 2-d (queries, neighbours), got shape {true.shape}")
    true = true[:, :count]
    k_row = np.isfinite(true).sum(axis=1)
    kth = np.full(len(true), np.nan)
    have = k_row > 0
    kth[have] = true[have, k_row[have] - 1]
    return kth, k_row


def _run_distances(result: RunResult, n_queries: int) -> np.ndarray | None:
    if result.distances is None:
        return None
    found = np.asarray(result.distances, dtype=np.float64)
    if found.ndim == 1:
        found = found[:, None]
    if len(found) != n_queries:
        where = f" ({result.path})" if result.path else ""
        raise UserError(
            f"result{where} answers {len(found)} queries but the dataset has {n_queries}; "
            "was it made from another version of the dataset?"
        )
    return found


def recall(true_distances: np.ndarray, result: RunResult, count: int,
           threshold: Callable[[np.ndarray], np.ndarray]) -> float:
    """Mean over queries of (returned distances <= threshold(k-th true distance)) / k."""
    kth, k_row = _truth(true_distances, count)
    found = _run_distances(result, len(kth))
    if found is None:
        return NAN
    found = found[:, :count]
    limit = threshold(kth)
    hits = ((found <= limit[:, None]) & np.isfinite(found)).sum(axis=1)
    usable = k_row > 0
    if not usable.any():
        return NAN
    per_query = np.minimum(hits[usable], k_row[usable]) / k_row[usable]
    return float(per_query.mean())


def knn_recall(true_distances, result, count, epsilon: float = KNN_EPSILON) -> float:
    return recall(true_distances, result, count, lambda d: d + epsilon)


def epsilon_recall(true_distances, result, count, epsilon: float) -> float:
    return recall(true_distances, result, count, lambda d: d + epsilon * np.abs(d))


def relative_error(true_distances, result: RunResult, count: int) -> float:
    """Sum of returned distances / sum of the true distances at the same positions."""
    true = np.asarray(true_distances, dtype=np.float64)[:, :count]
    found = _run_distances(result, len(true))
    if found is None:
        return NAN
    width = min(true.shape[1], found.shape[1], count)
    true, found = true[:, :width], found[:, :width]
    pairs = np.isfinite(found) & np.isfinite(true)
    if not pairs.any():
        return NAN
    total_true, total_found = true[pairs].sum(), found[pairs].sum()
    if total_true == 0:
        return 1.0 if total_found == 0 else math.inf
    return float(total_found / total_true)


# --- attributes -----------------------------------------------------------------------------

def _attr(result: RunResult, key: str) -> float:
    try:
        return float(result.attrs[key])
    except (KeyError, TypeError, ValueError):
        return NAN


def queries_per_second(true_distances, result: RunResult, count: int) -> float:
    t = _attr(result, "best_search_time")
    return 1.0 / t if t > 0 else NAN


def _pass_times(result: RunResult) -> np.ndarray | None:
    """Every timed pass's total seconds, or None where the file has none (ann-benchmarks')."""
    if result.run_times is None or len(result.run_times) == 0:
        return None
    return np.asarray(result.run_times, dtype=np.float64)


def slowest_pass_qps(true_distances, result: RunResult, count: int) -> float:
    """QPS had the slowest pass been the one kept: the low end of the spread (qps is the best)."""
    qps = queries_per_second(true_distances, result, count)
    passes = _pass_times(result)
    if passes is None or not math.isfinite(qps) or passes.max() <= 0:
        return NAN
    return qps * float(passes.min() / passes.max())


def pass_time_cv(true_distances, result: RunResult, count: int) -> float:
    """Coefficient of variation of the passes' times (sample standard deviation / mean)."""
    passes = _pass_times(result)
    if passes is None or len(passes) < 2 or passes.mean() <= 0:
        return NAN
    return float(passes.std(ddof=1) / passes.mean())


def latency_percentile(q: float) -> Callable[[Any, RunResult, int], float]:
    def percentile(true_distances, result: RunResult, count: int) -> float:
        if result.times is None or len(result.times) == 0:
            return NAN
        return float(np.percentile(np.asarray(result.times, dtype=np.float64), q) * 1000.0)

    percentile.__name__ = f"latency_p{q:g}"
    return percentile


def build_time(true_distances, result, count) -> float:
    return _attr(result, "build_time")


def index_size(true_distances, result, count) -> float:
    return _attr(result, "index_size")


def queries_size(true_distances, result, count) -> float:
    qps = queries_per_second(true_distances, result, count)
    return index_size(true_distances, result, count) / qps if qps > 0 else NAN


def peak_build(true_distances, result, count) -> float:
    """MB: the peak resident memory of the build (run/memory.py says what was measured)."""
    return _attr(result, "peak_build_mb")


def peak_query(true_distances, result, count) -> float:
    """MB: the peak resident memory of the query phase."""
    return _attr(result, "peak_query_mb")


def ondisk(true_distances, result, count) -> float:
    """MB: the index's files, for engines that keep it on disk (nan for the others)."""
    return _attr(result, "ondisk_mb")


def candidates(true_distances, result, count) -> float:
    return _attr(result, "candidates")


def dist_computations(true_distances, result: RunResult, count: int) -> float:
    """Distance computations per query, as the wrapper reports them (BaseANN.get_additional)."""
    return _attr(result, "dist_comps")


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("k-nn", "Recall", knn_recall, "higher"),
        Metric("epsilon-0.01", "Epsilon 0.01 Recall", lambda t, r, c: epsilon_recall(t, r, c, 0.01), "higher"),
        Metric("epsilon-0.1", "Epsilon 0.1 Recall", lambda t, r, c: epsilon_recall(t, r, c, 0.1), "higher"),
        Metric("rel", "Relative Error", relative_error, "lower"),
        Metric("qps", "Queries per second (1/s)", queries_per_second, "higher"),
        Metric("qps-slowest", "Queries per second, slowest pass (1/s)", slowest_pass_qps, "higher"),
        Metric("qps-cv", "Coefficient of variation of pass times", pass_time_cv, "lower"),
        Metric("p50", "Latency p50 (ms)", latency_percentile(50), "lower"),
        Metric("p95", "Latency p95 (ms)", latency_percentile(95), "lower"),
        Metric("p99", "Latency p99 (ms)", latency_percentile(99), "lower"),
        Metric("p999", "Latency p99.9 (ms)", latency_percentile(99.9), "lower"),
        Metric("build", "Build time (s)", build_time, "lower"),
        Metric("indexsize", "Index size (kB)", index_size, "lower"),
        Metric("queriessize", "Index size (kB)/Queries per second (s)", queries_size, "lower"),
        Metric("peak_build_mb", "Peak memory of the build (MB)", peak_build, "lower"),
        Metric("peak_query_mb", "Peak memory of the queries (MB)", peak_query, "lower"),
        Metric("ondisk_mb", "Index on disk (MB)", ondisk, "lower"),
        Metric("candidates", "Candidates generated", candidates, "lower"),
        Metric("distcomps", "Distance computations", dist_computations, "lower"),
    ]
}


def compute_metrics(true_distances: np.ndarray, result: RunResult, count: int,
                    names: Iterable[str] | None = None) -> dict[str, float]:
    """Every metric (or those named), in METRICS order."""
    if names is None:
        wanted = list(METRICS)
    else:
        wanted = list(names)
        unknown = [n for n in wanted if n not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return {name: float(METRICS[name].function(true_distances, result, count)) for name in wanted}



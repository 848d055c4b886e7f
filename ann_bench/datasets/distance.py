"""Distance metrics, defined once for ground truth and for the runner.

Every metric is "smaller is better". Dense data are 2-D numpy arrays (one point per row).
Jaccard data are sparse sets: a list of sorted int arrays of distinct items, one per point
(or an equivalent binary `scipy.sparse.csr_matrix`, which ground truth builds once and reuses).

- euclidean: L2 distance (not squared).
- angular: 1 - cosine similarity, as ann-benchmarks; a zero vector has similarity 0 to
  everything, so its distance is 1. Clipped to [0, 2] like scipy's cosine.
- dot: negative inner product.
- hamming: the fraction of differing positions of bool or 0/1 uint8 vectors (the mean of
  their XOR), as ann-benchmarks stores it, so that its files and ours score alike.
- jaccard: 1 - |a & b| / |a | b|; two empty sets are at distance 1, as in ann-benchmarks.

Exact distances are computed in float64 and returned as float32 by `distances_to`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.sparse

METRICS = ("euclidean", "angular", "dot", "hamming", "jaccard")

# Pairs are processed in chunks of about this many scalars, so a gather of
# (pairs x dimension) float64 values stays around 32 MB whatever the dataset.
_CHUNK_SCALARS = 1 << 22


def normalize(X: Any) -> np.ndarray:
    """A float32 copy of X with unit-L2 rows; zero rows stay zero. X is not modified."""
    X = np.asarray(X)
    out = np.empty(X.shape, dtype=np.float32)
    step = max(1, _CHUNK_SCALARS // max(1, X.shape[1]))
    for lo in range(0, len(out), step):
        # Work in float64 so the final rounding to float32 is the only error.
        chunk = X[lo:lo + step].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        norms[norms == 0] = 1.0
        out[lo:lo + step] = chunk / norms[:, None]
    return out


def sets_to_csr(sets: Any, n_columns: int) -> scipy.sparse.csr_matrix:
    """Binary CSR matrix (len(sets) x n_columns) whose row i holds the items of sets[i]."""
    if scipy.sparse.issparse(sets):
        return scipy.sparse.csr_matrix(sets, shape=(sets.shape[0], n_columns))
    sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    items = np.concatenate([np.asarray(s, dtype=np.int32) for s in sets]) if len(sets) else \
        np.empty(0, np.int32)
    data = np.ones(len(items), dtype=np.int32)
    return scipy.sparse.csr_matrix((data, items, indptr), shape=(len(sets), n_columns))


def n_items(sets: Any) -> int:
    """Smallest matrix width that holds every item of `sets` (a list of arrays or a CSR)."""
    if scipy.sparse.issparse(sets):
        return sets.shape[1]
    return max((int(np.max(s)) + 1 for s in sets if len(s)), default=0)


def pair_distances(metric: str, queries: Any, train: Any, rows: Any, cols: Any) -> np.ndarray:
    """float64 distances from queries[rows[i]] to train[cols[i]], for every i."""
    _check_metric(metric)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if metric == "jaccard":
        return _jaccard_pairs(queries, train, rows, cols)
    dense = _DENSE_PAIRS[metric]
    step = max(1, _CHUNK_SCALARS // max(1, train.shape[1]))
    out = np.empty(len(rows), dtype=np.float64)
    for lo in range(0, len(rows), step):
        out[lo:lo + step] = dense(queries[rows[lo:lo + step]], train[cols[lo:lo + step]])
    return out


def distances_to(metric: str, queries: Any, train: Any, ids: Any) -> np.ndarray:
    """float32 (nq, k): distance from query i to train[ids[i, j]]; an id of -1 gives +inf."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or len(ids) != len(queries):
        raise ValueError(f"ids must have shape (n_queries={len(queries)}, k), got {ids.shape}")
    if ids.size and (ids.max() >= len(train) or ids.min() < -1):
        raise ValueError(f"ids must lie in [-1, {len(train)}), got [{ids.min()}, {ids.max()}]")
    out = np.full(ids.shape, np.inf, dtype=np.float32)
    rows, slots = np.nonzero(ids >= 0)
    out[rows, slots] = pair_distances(metric, queries, train, rows, ids[rows, slots])
    return out


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def _euclidean(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    diff = q.astype(np.float64) - x.astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def _angular(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    q = q.astype(np.float64)
    x = x.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", q, q) * np.einsum("ij,ij->i", x, x))
    dots = np.einsum("ij,ij->i", q, x)
    cosine = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return np.clip(1.0 - cosine, 0.0, 2.0)


def _dot(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    return -np.einsum("ij,ij->i", q.astype(np.float64), x.astype(np.float64))


def _hamming(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.count_nonzero(q.astype(bool) != x.astype(bool), axis=1) / np.float64(q.shape[1])


_DENSE_PAIRS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "euclidean": _euclidean, "angular": _angular, "dot": _dot, "hamming": _hamming}


def _jaccard_pairs(queries: Any, train: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    width = max(n_items(queries), n_items(train))
    Q = sets_to_csr(queries, width)
    X = sets_to_csr(train, width)
    # Row-wise product of the two binary selections counts the shared items of each pair.
    inter = np.asarray(Q[rows].multiply(X[cols]).sum(axis=1), dtype=np.float64).ravel()
    union = np.diff(Q.indptr)[rows] + np.diff(X.indptr)[cols] - inter
    similarity = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return 1.0 - similarity

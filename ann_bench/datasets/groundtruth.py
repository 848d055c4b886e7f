"""Exact k nearest neighbours (the ground truth of a dataset), fast and memory-bounded.

For a tile of queries x training points, one float32 matrix product (BLAS) gives scores that
are monotone in the true distance of each query. Instead of an argpartition over every row,
a threshold keeps about kp > k candidates per query: the kp-th smallest of the minima of
kp-plus strided groups of columns (at least kp scores lie below it, and rarely many more).
The candidates are re-ranked with exact float64 distances (`distance.pair_distances`), and a
bound on the float32 error proves that no point left out can belong to the top k: the k-th
exact score plus the bound must not exceed the threshold. A query where the proof fails (near
ties at the cut) is redone against all points. Results are sorted by exact distance, ties
broken by the smaller id, so they do not depend on BLAS, block sizes or thread timing.

Query blocks run on one thread per core with single-threaded BLAS, because the selection
steps are single-threaded numpy calls that release the GIL.
"""

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..errors import UserError
from .distance import METRICS, n_items, normalize, pair_distances, sets_to_csr

DEFAULT_BLOCK_BYTES = 64 << 20
# float32 unit roundoff: a dot product of length d is off by at most about d * U * |q| |x|.
_U = 2.0 ** -24
# On random-s-100, blocks of more than ~128 queries were no faster and only cost memory.
_MAX_BLOCK_QUERIES = 128
_MAX_GROUP = 64
_CHUNK_ROWS = 1 << 16


def exact_knn(train, queries, k, metric, block_bytes=DEFAULT_BLOCK_BYTES, progress=True, *,
              timings=None):
    """Exact top-k of every query: (ids int32 (nq, k), distances float32 (nq, k)).

    Sorted ascending by distance, ties broken by the smaller id. k larger than the number of
    training points raises UserError (a short answer would break the (nq, k) layout).
    block_bytes bounds the float32 score tile of each worker thread. If `timings` is a dict it
    receives the seconds spent in "product", "select" and "rerank", summed over threads.
    """
    if metric != "jaccard":
        train, queries = np.asarray(train), np.asarray(queries)
    _check_inputs(train, queries, k, metric)
    scorer = _SCORERS[metric](train, queries)
    search = _Search(scorer, metric, len(train), len(queries), k, block_bytes)
    ids = np.empty((len(queries), k), dtype=np.int32)
    dists = np.empty((len(queries), k), dtype=np.float32)
    blocks = [(lo, min(lo + search.block_queries, len(queries)))
              for lo in range(0, len(queries), search.block_queries)]
    workers = max(1, min(len(os.sched_getaffinity(0)), len(blocks)))
    with tqdm(total=len(queries), desc=f"ground truth ({metric}, k={k})", unit="query",
              file=sys.stderr, disable=not progress) as bar, \
            threadpool_limits(1 if workers > 1 else None, user_api="blas"), \
            ThreadPoolExecutor(workers) as pool:
        for (lo, hi), (block_ids, block_dists) in zip(blocks, pool.map(search.run, blocks)):
            ids[lo:hi], dists[lo:hi] = block_ids, block_dists
            bar.update(hi - lo)
    if timings is not None:
        timings.update(search.timings)
    return ids, dists


def _check_inputs(train, queries, k, metric):
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if k < 1:
        raise UserError(f"k must be at least 1, got {k}")
    if k > len(train):
        raise UserError(f"cannot return {k} neighbours from {len(train)} training points; "
                        f"use k <= {len(train)}")
    if metric == "jaccard":
        return
    for name, X in (("train", train), ("queries", queries)):
        if X.ndim != 2:
            raise UserError(f"{name} must be a 2-D array, got shape {X.shape}")
    if train.shape[1] != queries.shape[1]:
        raise UserError(f"train has {train.shape[1]} dimensions but queries have "
                        f"{queries.shape[1]}")


class _Search:
    """Per-query-block search over tiles of the training set; safe to run from many threads."""

    def __init__(self, scorer, metric, n_train, n_queries, k, block_bytes):
        self.scorer, self.metric, self.n, self.k = scorer, metric, n_train, k
        # A few candidates beyond k so that small float32 errors seldom force a redo.
        self.kp = min(n_train, k + max(16, k // 4))
        # Groups must be many more than kp for the threshold to be tight.
        self.group = max(1, min(_MAX_GROUP, n_train // (8 * self.kp)))
        # Fewer queries per block rather than tiles narrower than 1024 points.
        self.block_queries = max(1, min(n_queries, _MAX_BLOCK_QUERIES, block_bytes // 4096))
        width = max(self.group, block_bytes // (4 * self.block_queries))
        width = min(width, -(-n_train // self.group) * self.group)
        self.width = width // self.group * self.group
        self.timings = {"product": 0.0, "select": 0.0, "rerank": 0.0}
        self._lock = threading.Lock()
        self._local = threading.local()

    def run(self, block):
        lo, hi = block
        clock = {"product": 0.0, "select": 0.0, "rerank": 0.0}
        rows, cols, thresholds = self._candidates(lo, hi, clock)
        start = time.perf_counter()
        ids, dists = self._rerank(lo, rows, cols, thresholds)
        clock["rerank"] += time.perf_counter() - start
        with self._lock:
            for phase, seconds in clock.items():
                self.timings[phase] += seconds
        return ids, dists

    def _tile_buffer(self, size):
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.size < size:
            buf = self._local.buf = np.empty(size, dtype=np.float32)
        return buf

    def _candidates(self, lo, hi, clock):
        """(row, column) of every score at or below its row's final threshold, and those."""
        nq = hi - lo
        buf = self._tile_buffer(nq * self.width)
        kept_minima = np.empty((nq, 0), dtype=np.float32)
        thresholds = np.full(nq, np.inf, dtype=np.float32)
        found = []
        for t_lo in range(0, self.n, self.width):
            t_hi = min(t_lo + self.width, self.n)
            groups = -(-(t_hi - t_lo) // self.group)
            tile = buf[:nq * groups * self.group].reshape(nq, groups * self.group)
            start = time.perf_counter()
            self.scorer.fill(lo, hi, t_lo, t_hi, tile[:, :t_hi - t_lo])
            tile[:, t_hi - t_lo:] = np.inf
            clock["product"] += time.perf_counter() - start

            start = time.perf_counter()
            kept_minima, thresholds = self._threshold(tile, groups, kept_minima, thresholds)
            flat = np.flatnonzero(tile <= thresholds[:, None])
            rows, cols = np.divmod(flat, groups * self.group)
            real = cols < t_hi - t_lo  # padding scores are +inf, which <= an inf threshold
            found.append((rows[real], cols[real] + t_lo, tile.ravel()[flat[real]]))
            clock["select"] += time.perf_counter() - start
        rows, cols, scores = (np.concatenate(parts) for parts in zip(*found))
        # Thresholds only fall, so candidates of early tiles may now lie above them.
        keep = scores <= thresholds[rows]
        return rows[keep], cols[keep], thresholds

    def _threshold(self, tile, groups, kept_minima, thresholds):
        """Fold this tile's strided-group minima into the kp smallest seen, and the kp-th."""
        minima = tile.reshape(len(tile), self.group, groups).min(axis=1)
        pool = np.concatenate([kept_minima, minima], axis=1)
        if pool.shape[1] < self.kp:
            return pool, thresholds
        kept = np.partition(pool, self.kp - 1, axis=1)[:, :self.kp]
        # Each kept minimum is a distinct point, so at least kp scores are <= the largest.
        return kept, kept.max(axis=1)

    def _rerank(self, lo, rows, cols, thresholds):
        scorer, k = self.scorer, self.k
        exact = pair_distances(self.metric, scorer.exact_queries, scorer.exact_train,
                               rows + lo, cols)
        order = np.lexsort((cols, exact, rows))
        counts = np.bincount(rows, minlength=len(thresholds))
        starts = np.cumsum(counts) - counts
        pick = order[starts[:, None] + np.arange(k)]
        ids, dists = cols[pick], exact[pick]
        queries = np.arange(lo, lo + len(thresholds))
        kth = scorer.score(dists[:, -1], queries)
        for row in np.flatnonzero(kth + scorer.bounds[queries] > thresholds):
            ids[row], dists[row] = self._redo(lo + row, kth[row])
        return ids.astype(np.int32), dists.astype(np.float32)

    def _redo(self, query, kth_score):
        """Top k of one query among every point whose score could beat the k-th found."""
        scores = np.empty((1, self.n), dtype=np.float32)
        self.scorer.fill(query, query + 1, 0, self.n, scores)
        cols = np.flatnonzero(scores[0] <= kth_score + self.scorer.bounds[query])
        exact = pair_distances(self.metric, self.scorer.exact_queries, self.scorer.exact_train,
                               np.full(len(cols), query), cols)
        best = np.lexsort((cols, exact))[:self.k]
        return cols[best], exact[best]


# Scorers. Each gives float32 approximate scores for a tile with `fill`, a per-query bound
# on their error (`bounds`), and `score`, which maps an exact distance onto the score scale.
# A score is monotone (non-decreasing) in the true distance of its query.


class _GemmScorer:
    """Dense metrics: scores = left[queries] @ right[points].T."""

    def __init__(self, left, right, bounds, score, exact_queries, exact_train):
        self.left, self.right, self.bounds, self.score = left, right, bounds, score
        self.exact_queries, self.exact_train = exact_queries, exact_train

    def fill(self, q_lo, q_hi, t_lo, t_hi, out):
        np.matmul(self.left[q_lo:q_hi], self.right[t_lo:t_hi].T, out=out)


def _chunked(X, fn, width):
    """float32 (len(X), width) made from fn(float64 rows), a chunk at a time."""
    out = np.empty((len(X), width), dtype=np.float32)
    for lo in range(0, len(X), _CHUNK_ROWS):
        out[lo:lo + _CHUNK_ROWS] = fn(X[lo:lo + _CHUNK_ROWS].astype(np.float64))
    return out


def _norms(X, shift=None):
    norms = np.empty(len(X), dtype=np.float64)
    for lo in range(0, len(X), _CHUNK_ROWS):
        chunk = X[lo:lo + _CHUNK_ROWS].astype(np.float64)
        if shift is not None:
            chunk -= shift
        norms[lo:lo + _CHUNK_ROWS] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
    return norms


def _check_finite(name, X):
    for lo in range(0, len(X), _CHUNK_ROWS):
        if not np.isfinite(X[lo:lo + _CHUNK_ROWS]).all():
            raise UserError(f"{name} contains NaN or infinite values")


def _euclidean(train, queries):
    # Score = |x|^2/2 - q.x, which is |q - x|^2/2 less a per-query constant, from one product
    # of [q, 1] with [-x, |x|^2/2]. Centring on the mean first makes the norms, and so the
    # cancellation error, as small as the data allow.
    _check_finite("train", train)
    _check_finite("queries", queries)
    d = train.shape[1]
    mean = np.zeros(d)
    for lo in range(0, len(train), _CHUNK_ROWS):
        mean += train[lo:lo + _CHUNK_ROWS].sum(axis=0, dtype=np.float64)
    mean /= max(1, len(train))
    x_norms, q_norms = _norms(train, mean), _norms(queries, mean)
    right = _chunked(train, lambda x: np.hstack([mean - x, 0.5 * _sq_norms(x - mean)]), d + 1)
    left = _chunked(queries, lambda q: np.hstack([q - mean, np.ones((len(q), 1))]), d + 1)
    x_max = x_norms.max(initial=0.0)
    bounds = 2 * (d + 5) * _U * (q_norms * x_max + 0.5 * x_max ** 2)
    return _GemmScorer(left, right, bounds,
                       lambda dist, q: 0.5 * (dist ** 2 - q_norms[q] ** 2), queries, train)


def _sq_norms(X):
    return np.einsum("ij,ij->i", X, X)[:, None]


def _angular(train, queries):
    # Score = -cos = distance - 1, from unit rows (a zero row scores 0, as its distance is 1).
    _check_finite("train", train)
    _check_finite("queries", queries)
    left = normalize(queries)
    left *= -1
    bounds = np.full(len(queries), 2 * (train.shape[1] + 6) * _U)
    return _GemmScorer(left, normalize(train), bounds, lambda dist, q: dist - 1.0,
                       queries, train)


def _dot(train, queries):
    _check_finite("train", train)
    _check_finite("queries", queries)
    d = train.shape[1]
    right = np.asarray(train, dtype=np.float32)
    left = _chunked(queries, np.negative, d)
    bounds = 2 * (d + 3) * _U * _norms(queries) * _norms(train).max(initial=0.0)
    return _GemmScorer(left, right, bounds, lambda dist, q: dist, queries, train)


def _hamming(train, queries):
    # With x in {0, 1}: hamming = |q| + sum_i x_i (1 - 2 q_i); the product is exact in float32
    # (integers below 2^24), so the bound is zero.
    right = np.asarray(train, dtype=bool).astype(np.float32)
    left = 1.0 - 2.0 * np.asarray(queries, dtype=bool).astype(np.float32)
    q_ones = np.count_nonzero(np.asarray(queries, dtype=bool), axis=1).astype(np.float64)
    return _GemmScorer(left, right, np.zeros(len(queries)), lambda dist, q: dist - q_ones[q],
                       queries, train)


class _JaccardScorer:
    """Sets: intersections of a tile from one sparse matrix product."""

    def __init__(self, train, queries):
        width = max(n_items(train), n_items(queries))
        self.exact_train = sets_to_csr(train, width)
        self.exact_queries = sets_to_csr(queries, width)
        self._columns = self.exact_train.T.tocsc()
        self._train_sizes = np.diff(self.exact_train.indptr)
        self._query_sizes = np.diff(self.exact_queries.indptr)
        # Scores are the distances rounded to float32, and distances are at most 1.
        self.bounds = np.full(len(queries), 4 * _U)

    def fill(self, q_lo, q_hi, t_lo, t_hi, out):
        inter = (self.exact_queries[q_lo:q_hi] @ self._columns[:, t_lo:t_hi]).toarray()
        union = self._query_sizes[q_lo:q_hi, None] + self._train_sizes[None, t_lo:t_hi] - inter
        out[...] = 0.0
        np.divide(inter, union, out=out, where=union > 0)
        np.subtract(1.0, out, out=out)

    @staticmethod
    def score(dist, q):
        return dist


_SCORERS = {"euclidean": _euclidean, "angular": _angular, "dot": _dot, "hamming": _hamming,
            "jaccard": _JaccardScorer}

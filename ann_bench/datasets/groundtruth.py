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

The training points are read in chunks (from an array, or from an HDF5 dataset without
loading it whole), so memory stays within `memory_bytes` whatever the size of the set: each
chunk is scored against every query, and only each query's candidates survive it (thresholds
only fall, so a candidate above its query's threshold can be dropped for good, once its exact
distance has been taken while its chunk is in memory).

Query blocks run on one thread per core with single-threaded BLAS, because the selection
steps are single-threaded numpy calls that release the GIL.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse
from threadpoolctl import threadpool_limits

from ..errors import UserError
from ..progress import bar as progress_bar
from .distance import METRICS, n_items, normalize, pair_distances, sets_to_csr

DEFAULT_BLOCK_BYTES = 64 << 20
DEFAULT_MEMORY_BYTES = 2 << 30
_BASELINE_BYTES = 512 << 20
# float32 unit roundoff: a dot product of length d is off by at most about d * U * |q| |x|.
_U = 2.0 ** -24
# On random-s-100, blocks of more than ~128 queries were no faster and only cost memory.
_MAX_BLOCK_QUERIES = 128
_MAX_GROUP = 64
_CHUNK_ROWS = 1 << 16

Points = Any  # a 2-D array, an h5py dataset, a list of int arrays (sets) or a CSR matrix


def exact_knn(train: Points, queries: Points, k: int, metric: str,
              block_bytes: int = DEFAULT_BLOCK_BYTES, progress: bool = True, *,
              memory_bytes: int = DEFAULT_MEMORY_BYTES,
              timings: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of every query: (ids int32 (nq, k), distances float32 (nq, k)).

    Sorted ascending by distance, ties broken by the smaller id. k larger than the number of
    training points raises UserError (a short answer would break the (nq, k) layout).
    `train` may be an h5py dataset: it is read in chunks so that the training rows held in
    memory, with their float32 copy for the products, stay within about `memory_bytes`.
    block_bytes bounds the float32 score tile of each worker thread. If `timings` is a dict
    it receives the seconds spent in "product", "select" and "rerank", summed over threads.
    """
    if metric == "jaccard":
        # One binary CSR matrix each, of one width, made once for every product and re-rank.
        width = max(n_items(train), n_items(queries))
        train, queries = sets_to_csr(train, width), sets_to_csr(queries, width)
    else:
        queries = np.asarray(queries)
        if not hasattr(train, "shape") or not hasattr(train, "dtype"):
            train = np.asarray(train)
    _check_inputs(train, queries, k, metric)
    scorer = _SCORERS[metric](train, queries)
    n_train, n_queries = _length(train), _length(queries)
    search = _Search(scorer, metric, n_train, n_queries, k, block_bytes)
    workers = max(1, min(len(os.sched_getaffinity(0)), -(-n_queries // search.block_queries)))
    # What is not training rows: the interpreter and libraries, the float64 scratch of each
    # step, the score tiles, and the queries with their float32 copy and candidates.
    others = _BASELINE_BYTES + workers * block_bytes + 4 * getattr(queries, "nbytes", 0)
    chunk_rows = _chunk_rows(train, metric, memory_bytes - others)
    blocks = [(lo, min(lo + search.block_queries, n_queries))
              for lo in range(0, n_queries, search.block_queries)]
    states = {block: _BlockState(block[1] - block[0]) for block in blocks}
    with progress_bar(progress, total=n_train * n_queries, desc=f"ground truth ({metric}, k={k})",
                      unit="pair", unit_scale=True) as bar, \
            threadpool_limits(1 if workers > 1 else None, user_api="blas"), \
            ThreadPoolExecutor(workers) as pool:
        for c_lo, chunk in _chunks(train, chunk_rows):
            scorer.load(chunk, c_lo)
            c_rows = _length(chunk)
            for lo, hi in pool.map(lambda b: search.scan(b, states[b], c_lo, chunk), blocks):
                bar.update((hi - lo) * c_rows)
        ids = np.empty((n_queries, k), dtype=np.int32)
        dists = np.empty((n_queries, k), dtype=np.float32)
        redo: dict[int, float] = {}
        for block in blocks:
            block_ids, block_dists, failed = search.finish(block, states.pop(block))
            ids[block[0]:block[1]], dists[block[0]:block[1]] = block_ids, block_dists
            redo.update(failed)
    if redo:
        for query, (query_ids, query_dists) in search.redo(redo, train, chunk_rows).items():
            ids[query], dists[query] = query_ids, query_dists
    if timings is not None:
        timings.update(search.timings)
    return ids, dists


def filtered_knn(train: Points, queries: Points, labels: np.ndarray, filters: np.ndarray, k: int,
                 metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of every query among the training points whose label is in the query's
    range [lo, hi) (filters: one (lo, hi) row per query), as exact_knn returns it, with the
    ids of `train`. Queries that share a range are searched together, against those points
    alone; ties still go to the smaller id, as the points keep their order."""
    n_queries = _length(queries)
    ids = np.empty((n_queries, k), dtype=np.int32)
    dists = np.empty((n_queries, k), dtype=np.float32)
    ranges, which = np.unique(np.asarray(filters).reshape(n_queries, 2), axis=0, return_inverse=True)
    for i, (lo, hi) in enumerate(ranges):
        rows = np.flatnonzero((labels >= lo) & (labels < hi))
        chosen = np.flatnonzero(which.reshape(-1) == i)
        subset = train[rows] if hasattr(train, "shape") else [train[j] for j in rows]
        asked = queries[chosen] if hasattr(queries, "shape") else [queries[j] for j in chosen]
        found, dists[chosen] = exact_knn(subset, asked, k, metric, progress=False)
        ids[chosen] = rows[found]
    return ids, dists


def _length(points: Points) -> int:
    return points.shape[0] if hasattr(points, "shape") else len(points)


def _chunk_rows(train: Points, metric: str, memory_bytes: int) -> int:
    """Training rows per chunk: each costs its own bytes (when read from a file) plus its
    float32 copy for the products; at least 1024 rows, whatever the budget."""
    if metric == "jaccard":
        return max(1, _length(train))
    d = train.shape[1]
    in_memory = isinstance(train, np.ndarray)
    row_bytes = 4 * (d + 1) + (0 if in_memory else train.dtype.itemsize * d)
    return max(1024, memory_bytes // max(1, row_bytes))


def _chunks(train: Points, rows: int) -> Iterator[tuple[int, Points]]:
    """(first row, rows) of the training set, `rows` at a time (sets: all at once)."""
    if scipy.sparse.issparse(train):
        yield 0, train
        return
    for lo in range(0, train.shape[0], rows):
        yield lo, np.asarray(train[lo:lo + rows])


def _check_inputs(train: Points, queries: Points, k: int, metric: str) -> None:
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if k < 1:
        raise UserError(f"k must be at least 1, got {k}")
    if k > _length(train):
        raise UserError(f"cannot return {k} neighbours from {_length(train)} training points; "
                        f"use k <= {_length(train)}")
    if metric == "jaccard":
        return
    for name, X in (("train", train), ("queries", queries)):
        if len(X.shape) != 2:
            raise UserError(f"{name} must be a 2-D array, got shape {X.shape}")
    if train.shape[1] != queries.shape[1]:
        raise UserError(f"train has {train.shape[1]} dimensions but queries have "
                        f"{queries.shape[1]}")


class _BlockState:
    """What a block of queries keeps between chunks: the kp smallest group minima seen, the
    thresholds they give, and every surviving candidate (row, id, exact distance, score)."""

    def __init__(self, n_queries: int):
        self.kept_minima = np.empty((n_queries, 0), dtype=np.float32)
        self.thresholds = np.full(n_queries, np.inf, dtype=np.float32)
        self.rows = np.empty(0, dtype=np.int64)
        self.ids = np.empty(0, dtype=np.int64)
        self.exact = np.empty(0, dtype=np.float64)
        self.scores = np.empty(0, dtype=np.float32)


class _Search:
    """Per-query-block search over tiles of each chunk; safe to run from many threads."""

    def __init__(self, scorer: _Scorer, metric: str, n_train: int, n_queries: int, k: int,
                 block_bytes: int):
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

    def _add_times(self, clock: dict[str, float]) -> None:
        with self._lock:
            for phase, seconds in clock.items():
                self.timings[phase] += seconds

    def _tile_buffer(self, size: int) -> np.ndarray:
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.size < size:
            buf = self._local.buf = np.empty(size, dtype=np.float32)
        return buf

    def scan(self, block: tuple[int, int], state: _BlockState, c_lo: int,
             chunk: Points) -> tuple[int, int]:
        """Fold one chunk of training points (starting at row c_lo) into the block's state."""
        lo, hi = block
        nq, n_chunk = hi - lo, _length(chunk)
        clock = {"product": 0.0, "select": 0.0, "rerank": 0.0}
        buf = self._tile_buffer(nq * self.width)
        found = []
        for t_lo in range(0, n_chunk, self.width):
            t_hi = min(t_lo + self.width, n_chunk)
            groups = -(-(t_hi - t_lo) // self.group)
            tile = buf[:nq * groups * self.group].reshape(nq, groups * self.group)
            start = time.perf_counter()
            self.scorer.fill(lo, hi, t_lo, t_hi, tile[:, :t_hi - t_lo])
            tile[:, t_hi - t_lo:] = np.inf
            clock["product"] += time.perf_counter() - start

            start = time.perf_counter()
            state.kept_minima, state.thresholds = self._threshold(
                tile, groups, state.kept_minima, state.thresholds)
            flat = np.flatnonzero(tile <= state.thresholds[:, None])
            rows, cols = np.divmod(flat, groups * self.group)
            real = cols < t_hi - t_lo  # padding scores are +inf, which <= an inf threshold
            found.append((rows[real], cols[real] + t_lo, tile.ravel()[flat[real]]))
            clock["select"] += time.perf_counter() - start
        start = time.perf_counter()
        rows, cols, scores = (np.concatenate(parts) for parts in zip(*found))
        # Thresholds only fall: what lies above one now never comes back.
        keep = scores <= state.thresholds[rows]
        rows, cols, scores = rows[keep], cols[keep], scores[keep]
        exact = pair_distances(self.metric, self.scorer.exact_queries, chunk, rows + lo, cols)
        old = state.scores <= state.thresholds[state.rows]
        state.rows = np.concatenate([state.rows[old], rows])
        state.ids = np.concatenate([state.ids[old], cols + c_lo])
        state.exact = np.concatenate([state.exact[old], exact])
        state.scores = np.concatenate([state.scores[old], scores])
        clock["rerank"] += time.perf_counter() - start
        self._add_times(clock)
        return block

    def _threshold(self, tile: np.ndarray, groups: int, kept_minima: np.ndarray,
                   thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold this tile's strided-group minima into the kp smallest seen, and the kp-th."""
        minima = tile.reshape(len(tile), self.group, groups).min(axis=1)
        pool = np.concatenate([kept_minima, minima], axis=1)
        if pool.shape[1] < self.kp:
            return pool, thresholds
        kept = np.partition(pool, self.kp - 1, axis=1)[:, :self.kp]
        # Each kept minimum is a distinct point, so at least kp scores are <= the largest.
        return kept, kept.max(axis=1)

    def finish(self, block: tuple[int, int], state: _BlockState
               ) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
        """The block's top k, and {query: k-th score} of the queries whose proof failed."""
        lo, hi = block
        start = time.perf_counter()
        rows, ids, exact = state.rows, state.ids, state.exact
        order = np.lexsort((ids, exact, rows))
        counts = np.bincount(rows, minlength=hi - lo)
        starts = np.cumsum(counts) - counts
        pick = order[starts[:, None] + np.arange(self.k)]
        top_ids, top_dists = ids[pick], exact[pick]
        queries = np.arange(lo, hi)
        kth = self.scorer.score(top_dists[:, -1], queries)
        failed = np.flatnonzero(kth + self.scorer.bounds()[queries] > state.thresholds)
        self._add_times({"rerank": time.perf_counter() - start})
        return (top_ids.astype(np.int32), top_dists.astype(np.float32),
                {int(lo + row): float(kth[row]) for row in failed})

    def redo(self, kth_scores: dict[int, float], train: Points, chunk_rows: int
             ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Top k of each query given, among every point whose score could beat the k-th
        found (one more pass over the training points, for these queries only)."""
        queries = sorted(kth_scores)
        found: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {q: [] for q in queries}
        for c_lo, chunk in _chunks(train, chunk_rows):
            self.scorer.load(chunk, c_lo)
            n_chunk = _length(chunk)
            scores = np.empty((1, n_chunk), dtype=np.float32)
            for query in queries:
                self.scorer.fill(query, query + 1, 0, n_chunk, scores)
                cols = np.flatnonzero(scores[0] <= kth_scores[query] + self.scorer.bounds()[query])
                exact = pair_distances(self.metric, self.scorer.exact_queries, chunk,
                                       np.full(len(cols), query), cols)
                found[query].append((cols + c_lo, exact))
        out = {}
        for query, parts in found.items():
            cols, exact = (np.concatenate(p) for p in zip(*parts))
            best = np.lexsort((cols, exact))[:self.k]
            out[query] = (cols[best].astype(np.int32), exact[best].astype(np.float32))
        return out


# Scorers. Each gives float32 approximate scores for a tile of the loaded chunk with `fill`,
# a per-query bound on their error (`bounds`, final once every chunk has been loaded), and
# `score`, which maps an exact distance onto the score scale. A score is monotone
# (non-decreasing) in the true distance of its query.


class _Scorer:
    exact_queries: Points

    def load(self, chunk: Points, first_row: int) -> None:
        raise NotImplementedError

    def bounds(self) -> np.ndarray:
        raise NotImplementedError

    def fill(self, q_lo: int, q_hi: int, t_lo: int, t_hi: int, out: np.ndarray) -> None:
        raise NotImplementedError

    def score(self, dist: np.ndarray, q: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _GemmScorer(_Scorer):
    """Dense metrics: scores = left[queries] @ right(chunk).T, with `right` made per chunk."""

    def __init__(self, queries: np.ndarray, left: np.ndarray,
                 right: Callable[[np.ndarray], np.ndarray],
                 score: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 bounds: Callable[[], np.ndarray]):
        self.exact_queries, self.left, self._right, self._score = queries, left, right, score
        self._bounds = bounds
        self.right = np.empty((0, left.shape[1]), dtype=np.float32)

    def load(self, chunk: np.ndarray, first_row: int) -> None:
        _check_finite("train", chunk, first_row)
        self.right = self._right(chunk)

    def fill(self, q_lo: int, q_hi: int, t_lo: int, t_hi: int, out: np.ndarray) -> None:
        np.matmul(self.left[q_lo:q_hi], self.right[t_lo:t_hi].T, out=out)

    def score(self, dist: np.ndarray, q: np.ndarray) -> np.ndarray:
        return self._score(dist, q)

    def bounds(self) -> np.ndarray:
        return self._bounds()


def _chunked(X: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], width: int) -> np.ndarray:
    """float32 (len(X), width) made from fn(float64 rows), a chunk at a time."""
    out = np.empty((len(X), width), dtype=np.float32)
    for lo in range(0, len(X), _CHUNK_ROWS):
        out[lo:lo + _CHUNK_ROWS] = fn(X[lo:lo + _CHUNK_ROWS].astype(np.float64))
    return out


def _norms(X: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    norms = np.empty(len(X), dtype=np.float64)
    for lo in range(0, len(X), _CHUNK_ROWS):
        chunk = X[lo:lo + _CHUNK_ROWS].astype(np.float64)
        if shift is not None:
            chunk -= shift
        norms[lo:lo + _CHUNK_ROWS] = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
    return norms


def _check_finite(name: str, X: np.ndarray, first_row: int = 0) -> None:
    for lo in range(0, len(X), _CHUNK_ROWS):
        bad = ~np.isfinite(X[lo:lo + _CHUNK_ROWS]).all(axis=1)
        if bad.any():
            raise UserError(f"{name} contains NaN or infinite values (row "
                            f"{first_row + lo + int(np.flatnonzero(bad)[0])})")


class _Maximum:
    """The largest value seen over every chunk (a norm for the error bounds)."""

    def __init__(self) -> None:
        self.value = 0.0

    def add(self, values: np.ndarray) -> None:
        self.value = max(self.value, float(values.max(initial=0.0)))


def _mean(train: Points) -> np.ndarray:
    """Column means in float64, read a chunk at a time."""
    total = np.zeros(train.shape[1])
    for lo in range(0, train.shape[0], _CHUNK_ROWS):
        chunk = np.asarray(train[lo:lo + _CHUNK_ROWS])
        _check_finite("train", chunk, lo)
        total += chunk.sum(axis=0, dtype=np.float64)
    return total / max(1, train.shape[0])


def _euclidean(train: Points, queries: np.ndarray) -> _GemmScorer:
    # Score = |x|^2/2 - q.x, which is |q - x|^2/2 less a per-query constant, from one product
    # of [q, 1] with [-x, |x|^2/2]. Centring on the mean first makes the norms, and so the
    # cancellation error, as small as the data allow.
    _check_finite("queries", queries)
    d = train.shape[1]
    mean = _mean(train)
    q_norms = _norms(queries, mean)
    x_max = _Maximum()

    def right(chunk: np.ndarray) -> np.ndarray:
        out = np.empty((len(chunk), d + 1), dtype=np.float32)
        for lo in range(0, len(chunk), _CHUNK_ROWS):
            x = chunk[lo:lo + _CHUNK_ROWS].astype(np.float64)
            x -= mean
            squares = np.einsum("ij,ij->i", x, x)
            x_max.add(np.sqrt(squares))
            np.negative(x, out=out[lo:lo + _CHUNK_ROWS, :d], casting="same_kind")
            out[lo:lo + _CHUNK_ROWS, d] = 0.5 * squares
        return out

    left = _chunked(queries, lambda q: np.hstack([q - mean, np.ones((len(q), 1))]), d + 1)
    return _GemmScorer(queries, left, right,
                       lambda dist, q: 0.5 * (dist ** 2 - q_norms[q] ** 2),
                       lambda: 2 * (d + 5) * _U * (q_norms * x_max.value + 0.5 * x_max.value ** 2))


def _angular(train: Points, queries: np.ndarray) -> _GemmScorer:
    # Score = -cos = distance - 1, from unit rows (a zero row scores 0, as its distance is 1).
    _check_finite("queries", queries)
    left = normalize(queries)
    left *= -1
    bounds = np.full(len(queries), 2 * (train.shape[1] + 6) * _U)
    return _GemmScorer(queries, left, normalize, lambda dist, q: dist - 1.0, lambda: bounds)


def _dot(train: Points, queries: np.ndarray) -> _GemmScorer:
    _check_finite("queries", queries)
    d = train.shape[1]
    x_max = _Maximum()
    q_norms = _norms(queries)

    def right(chunk: np.ndarray) -> np.ndarray:
        x_max.add(_norms(chunk))
        return np.asarray(chunk, dtype=np.float32)

    return _GemmScorer(queries, _chunked(queries, np.negative, d), right,
                       lambda dist, q: dist, lambda: 2 * (d + 3) * _U * q_norms * x_max.value)


def _hamming(train: Points, queries: np.ndarray) -> _GemmScorer:
    # With x in {0, 1}: differing bits = |q| + sum_i x_i (1 - 2 q_i); the product is exact in
    # float32 (integers below 2^24), so the bound is zero. Distances are that count / d.
    d = train.shape[1]
    queries = np.asarray(queries, dtype=bool)
    left = 1.0 - 2.0 * queries.astype(np.float32)
    q_ones = np.count_nonzero(queries, axis=1).astype(np.float64)
    bounds = np.zeros(len(queries))
    return _GemmScorer(queries, left, lambda x: np.asarray(x, dtype=bool).astype(np.float32),
                       lambda dist, q: np.rint(dist * d) - q_ones[q], lambda: bounds)


class _JaccardScorer(_Scorer):
    """Sets: intersections of a tile from one sparse matrix product."""

    def __init__(self, train: scipy.sparse.csr_matrix, queries: scipy.sparse.csr_matrix):
        self.exact_queries = queries
        self._query_sizes = np.diff(queries.indptr)
        # Scores are the distances rounded to float32, and distances are at most 1.
        self._bounds = np.full(queries.shape[0], 4 * _U)

    def load(self, chunk: scipy.sparse.csr_matrix, first_row: int) -> None:
        self._columns = chunk.T.tocsc()
        self._train_sizes = np.diff(chunk.indptr)

    def bounds(self) -> np.ndarray:
        return self._bounds

    def fill(self, q_lo: int, q_hi: int, t_lo: int, t_hi: int, out: np.ndarray) -> None:
        inter = (self.exact_queries[q_lo:q_hi] @ self._columns[:, t_lo:t_hi]).toarray()
        union = self._query_sizes[q_lo:q_hi, None] + self._train_sizes[None, t_lo:t_hi] - inter
        out[...] = 0.0
        np.divide(inter, union, out=out, where=union > 0)
        np.subtract(1.0, out, out=out)

    def score(self, dist: np.ndarray, q: np.ndarray) -> np.ndarray:
        return dist


_SCORERS: dict[str, Callable[[Points, Points], _Scorer]] = {
    "euclidean": _euclidean, "angular": _angular, "dot": _dot, "hamming": _hamming,
    "jaccard": _JaccardScorer}

"""Exact search by brute force on numpy's BLAS: the reference every other entry is held to.

Scores are float32 matrix products; the k smallest are found with argpartition and then sorted.
- euclidean: ||x||^2 - 2 q.x with the norms precomputed (||q||^2 is the same for every x, so it
  does not change the order and is left out);
- angular: -(x/||x||).q on a normalised copy of the data (the query's norm does not change the
  order either, so the query is not normalised);
- dot: -q.x, as the dataset's "dot" distance is the negative inner product;
- hamming (bit vectors, bool or 0/1): the points packed into uint64 words, distances the
  popcount of q XOR x (numpy's bitwise_count), exact integers;
- filtered queries (supports_filter): every point scored, the k smallest among those whose label
  passes taken;
- jaccard (sets: lists of item-id arrays): the points as a binary CSR matrix, intersections
  from one sparse product (a matrix-vector product per query, a sparse matrix product per
  block of a batch), distances 1 - |q & x| / |q | x| in float64 (sets.SetMatrix);
- streaming (supports_insert, supports_delete): it has no index to update, so an insert or a
  delete keeps the live points and their ids and prepares them again as fit does; answers are
  the ids of the positions found.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads
from ..bits import hamming_to_all, pack_words
from ..filtering import LabelRange
from ..sets import SetMatrix

# A batch is answered in blocks of queries whose score matrix holds about this many floats
# (4 Mi floats: 16 MB of scores and 32 MB of argpartition indices). Small enough for the
# allocator to reuse the memory from block to block instead of faulting fresh pages in (one
# 1000 x 9000 block measured slower than blocks of a few hundred queries), and large enough
# to amortise reading the data.
BLOCK_FLOATS = 1 << 22
MAX_BLOCK_QUERIES = 1024
# hamming: blocks whose (queries x points) uint64 XOR temporary is about 1 MB, which stays in
# cache (16 queries x 9,000 points measured 3x faster than 500 queries).
HAMMING_BLOCK_WORDS = 1 << 17
# jaccard: blocks of (queries x points) float64 distances of about 4 MB (a few temporaries of
# that size each; larger blocks measured no faster).
JACCARD_BLOCK_SCORES = 1 << 19
PER_BLOCK = {"hamming": HAMMING_BLOCK_WORDS, "jaccard": JACCARD_BLOCK_SCORES}


def _smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Column ids of the k smallest scores of each row of a 2-D array, smallest first."""
    n = scores.shape[1]
    if k < n:
        part = np.argpartition(scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    order = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64, copy=False)


class BruteForce(BaseANN):
    metrics = ("euclidean", "angular", "dot", "hamming", "jaccard")
    point_types = ("float", "bit")
    supports_batch = True
    supports_filter = True
    supports_insert = True
    supports_delete = True
    package = "numpy"

    def __init__(self, metric: str):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self._X: np.ndarray | None = None
        self._norms: np.ndarray | None = None
        self._words: np.ndarray | None = None  # hamming: the points packed in uint64 words
        self._sets: SetMatrix | None = None  # jaccard
        self.threads = allowed_threads()
        self._pool: ThreadPoolExecutor | None = None
        self._blas: ThreadpoolController | None = None  # BLAS's threads, held to one in parallel batches
        self._labels: np.ndarray | None = None  # a filtered set's
        # A streaming run's live points (an array, or a list of sets) and the id of each.
        self._live: Any = None
        self._ids: np.ndarray | None = None

    def fit(self, X) -> None:
        if self.metric == "hamming":
            self._words = pack_words(X)  # a new array
            self._n = len(self._words)
        elif self.metric == "jaccard":
            self._sets = SetMatrix(X)  # copies the items into its own matrix
            self._n = len(self._sets)
        else:
            if self.metric == "angular":
                self._X = normalize(X)  # a new float32 array
            else:
                # A copy even when X is already float32: the index must not alias the caller's data.
                self._X = np.array(X, dtype=np.float32, order="C", copy=True)
            if self.metric == "euclidean":
                self._norms = np.einsum("ij,ij->i", self._X, self._X)
            self._n = len(self._X)
        if self.threads > 1:
            self._blas = ThreadpoolController()

    def insert(self, X, ids: np.ndarray) -> None:
        if self._live is None:
            self._live, self._ids = X[:0], np.empty(0, dtype=np.int64)
        assert self._ids is not None
        self._live = list(self._live) + list(X) if self.metric == "jaccard" else np.concatenate([self._live, X])
        self._ids = np.concatenate([self._ids, ids])
        self.fit(self._live)

    def delete(self, ids: np.ndarray) -> None:
        assert self._ids is not None
        kept = ~np.isin(self._ids, ids)
        self._live = [s for s, keep in zip(self._live, kept) if keep] if self.metric == "jaccard" else self._live[kept]
        self._ids = self._ids[kept]
        self.fit(self._live)

    def _named(self, positions: np.ndarray) -> np.ndarray:
        """Positions among the points as ids: a streaming run's own, else the positions."""
        return positions if self._ids is None else self._ids[positions]

    def _scores(self, Q) -> np.ndarray:
        """Scores (smaller is nearer) of each query of Q against every point, shape (len(Q), n)."""
        if self.metric == "hamming":
            assert self._words is not None
            return hamming_to_all(self._words, pack_words(Q))
        if self.metric == "jaccard":
            assert self._sets is not None
            return self._sets.distances_many(Q)
        assert self._X is not None
        S = np.asarray(Q, dtype=np.float32) @ self._X.T
        if self.metric == "euclidean":
            assert self._norms is not None
            S *= -2.0
            S += self._norms
        else:
            np.negative(S, out=S)
        return S

    def _score_one(self, q) -> np.ndarray:
        if self.metric == "hamming":
            assert self._words is not None
            return hamming_to_all(self._words, pack_words(q))[0]
        if self.metric == "jaccard":
            assert self._sets is not None
            return self._sets.distances(q)
        assert self._X is not None
        # One matrix-vector product (gemv) rather than a 1-row matrix product.
        s = self._X @ np.asarray(q, dtype=np.float32)
        if self.metric == "euclidean":
            assert self._norms is not None
            s *= -2.0
            s += self._norms
        else:
            np.negative(s, out=s)
        return s

    def query(self, q, k: int) -> np.ndarray:
        s = self._score_one(q)
        if k < len(s):
            part = np.argpartition(s, k - 1)[:k]
        else:
            part = np.arange(len(s))
        return self._named(part[np.argsort(s[part], kind="stable")].astype(np.int64, copy=False))

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels

    def filtered_query(self, q, k: int, allowed: LabelRange) -> np.ndarray:
        """The exact top-k among the passing points: every point scored, the passing ones ranked."""
        assert self._labels is not None
        rows = np.flatnonzero(allowed.mask(self._labels))
        s = self._score_one(q)[rows]
        part = np.argpartition(s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        return rows[part[np.argsort(s[part], kind="stable")]]

    def batch_query(self, Q, k: int) -> None:
        """Blocks of queries, each one matrix product and one selection. With several cores
        the blocks run in a thread pool (BLAS, popcounts, sparse products and argpartition
        release the GIL) with BLAS held to one thread, so that BLAS's own threads do not
        compete with the pool's. Q is a 2-D array, or a list of sets for jaccard."""
        if self.metric != "jaccard":
            Q = np.asarray(Q)
        n_queries = len(Q)
        per_block = PER_BLOCK.get(self.metric, BLOCK_FLOATS)
        block = max(1, min(MAX_BLOCK_QUERIES, per_block // max(1, self._n)))
        blas = self._blas if n_queries > 1 else None  # set by fit when there are several threads
        if blas is not None:
            block = min(block, -(-n_queries // self.threads))

        def answer(start: int) -> np.ndarray:
            return self._named(_smallest(self._scores(Q[start:start + block]), k))

        starts = range(0, n_queries, block)
        if blas is not None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bruteforce")
            with blas.limit(limits=1, user_api="blas"):
                blocks = list(self._pool.map(answer, starts))
        else:
            blocks = [answer(start) for start in starts]
        self._batch_results = [ids for ids_block in blocks for ids in ids_block]

    def done(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._X = None
        self._norms = None
        self._words = None
        self._sets = None
        self._live = self._ids = None

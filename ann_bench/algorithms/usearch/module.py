"""usearch (Unum): a compact single-header HNSW with SIMD distance kernels.

Build arguments: connectivity (HNSW's M) and expansion_add (efConstruction); query argument:
expansion_search (ef). Vectors are stored as float32 (dtype="f32", set explicitly: left to
itself usearch may pick f16 where the CPU has f16 arithmetic). usearch's quantized storage
(f16, i8) is not offered: it ranks the k answers by the quantized distance, so they are not
nearest first by the true distance.

Metrics: euclidean is usearch's l2sq (squared L2, the same order), angular its cos (usearch
normalises its own copies), dot its ip (1 - q.x, the same order as -q.x).

Single queries run on one thread (threads=1, not usearch's default of every core); a batch is
one search() over the whole matrix on the threads this worker was given. get_additional reports
dist_comps, usearch's count of computed distances per query, averaged over the queries since
the last set_query_arguments.
"""

from __future__ import annotations

import numpy as np
from usearch.index import Index, Matches

from ..base import BaseANN, allowed_threads

# Our metric name -> usearch metric kind.
METRICS = {"euclidean": "l2sq", "angular": "cos", "dot": "ip"}


class USearch(BaseANN):
    metrics = tuple(METRICS)
    point_types = ("float",)
    supports_batch = True
    supports_insert = True
    supports_delete = True
    package = "usearch"

    def __init__(self, metric: str, connectivity: int, expansion_add: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.connectivity = int(connectivity)
        self.expansion_add = int(expansion_add)
        self.threads = allowed_threads()
        self._index: Index | None = None
        self._queries = 0
        self._dist_comps = 0

    def fit(self, X: np.ndarray) -> None:
        # usearch copies the vectors into its own storage.
        X = np.ascontiguousarray(X, dtype=np.float32)
        index = Index(ndim=X.shape[1], metric=METRICS[self.metric], dtype="f32",
                      connectivity=self.connectivity, expansion_add=self.expansion_add)
        index.add(np.arange(len(X), dtype=np.uint64), X, threads=self.threads)
        self._index = index

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """usearch's add under the ids (the first call makes the empty index, as fit does)."""
        if self._index is None:
            self.fit(X[:0])
        assert self._index is not None
        self._index.add(ids.astype(np.uint64), np.ascontiguousarray(X, dtype=np.float32), threads=self.threads)

    def delete(self, ids: np.ndarray) -> None:
        """usearch's remove: the points leave the graph's answers at once."""
        assert self._index is not None
        self._index.remove(ids.astype(np.uint64))

    def set_query_arguments(self, expansion_search: int) -> None:
        assert self._index is not None
        # usearch has this setter; mypy misses it, written apart from its getter.
        self._index.expansion_search = int(expansion_search)  # type: ignore[misc]
        self._queries = 0
        self._dist_comps = 0

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        matches = self._index.search(np.ascontiguousarray(q, dtype=np.float32), k, threads=1)
        self._queries += 1
        self._dist_comps += matches.computed_distances
        return matches.keys.astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        matches = self._index.search(Q, k, threads=self.threads)
        self._queries += len(Q)
        self._dist_comps += matches.computed_distances
        if isinstance(matches, Matches):  # usearch answers a one-row matrix as a single query
            self._batch_results = [matches.keys.astype(np.int64)]
            return
        keys = matches.keys.astype(np.int64)
        # A row holds counts[i] answers; the rest are sentinels.
        self._batch_results = [row[:n] for row, n in zip(keys, matches.counts)]

    def get_additional(self) -> dict:
        if self._queries == 0:
            return {}
        return {"dist_comps": self._dist_comps / self._queries}

    def done(self) -> None:
        if self._index is not None:
            self._index.reset()
            self._index = None

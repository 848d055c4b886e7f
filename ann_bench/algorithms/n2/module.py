"""n2 (Kakao): an HNSW graph.

Build arguments: M (links per node above level 0; level 0 keeps n2's default of 2 * M) and
efConstruction; query argument: ef (n2's ef_search). Metrics: euclidean is n2's "L2" (squared,
the same order), angular its "angular" (n2 normalises its own copies of the points and each
query), dot its "dot" (-q.x). n2 copies every point it is given.

n2's Python binding takes vectors as lists of floats (its Cython converts a list four times
faster than a numpy row), so queries are handed over with tolist(). The graph is built on the
threads this worker was given; a single query runs on the calling thread, a batch is
batch_search_by_vectors with num_threads set to this worker's threads. n2 exposes no count of
distance computations.
"""

from __future__ import annotations

import n2
import numpy as np

from ..base import BaseANN, allowed_threads

# Our metric name -> n2's.
METRICS = {"euclidean": "L2", "angular": "angular", "dot": "dot"}


class N2(BaseANN):
    metrics = tuple(METRICS)
    point_types = ("float",)
    supports_batch = True
    package = "n2"

    def __init__(self, metric: str, M: int, efConstruction: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.M = int(M)
        self.ef_construction = int(efConstruction)
        self.ef = 10
        self.threads = allowed_threads()
        self._index = None
        self._n = 0

    def fit(self, X: np.ndarray) -> None:
        X = np.asarray(X, dtype=np.float32)
        index = n2.HnswIndex(X.shape[1], METRICS[self.metric])
        for x in X:
            index.add_data(x.tolist())
        index.build(m=self.M, ef_construction=self.ef_construction, n_threads=self.threads)
        self._index = index
        self._n = len(X)

    def set_query_arguments(self, ef: int) -> None:
        self.ef = int(ef)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        return np.asarray(self._index.search_by_vector(q.tolist(), min(k, self._n), self.ef), dtype=np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        answers = self._index.batch_search_by_vectors(np.asarray(Q).tolist(), min(k, self._n), self.ef,
                                                      self.threads)
        self._batch_results = [np.asarray(ids, dtype=np.int64) for ids in answers]

    def done(self) -> None:
        if self._index is not None:
            self._index.unload()
            self._index = None

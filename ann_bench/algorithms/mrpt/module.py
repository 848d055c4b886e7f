"""MRPT (multiple random projection trees, Hyvönen et al.), autotuned.

Build argument: k, the number of neighbours the index is tuned for (the dataset's count,
"@count" in algorithms.yaml). fit grows an autotuned index without a target recall
(build_autotune_sample: 1,000 training points as tuning queries), as ann-benchmarks does.
Query argument: target_recall; set_query_arguments takes the subset of trees, the depth and
the vote threshold that MRPT's own model predicts reach that recall at the lowest query time.

MRPT searches by euclidean distance; angular searches a normalised copy of the data with
normalised copies of the queries (a projection tree routes a query by its length too, so the
query must be unit length as well). OpenMP threads are set explicitly with threadpoolctl: the
worker's threads to build and for a batch (one ann() call over the whole matrix, which MRPT
answers in parallel), one thread for single queries. MRPT exposes no count of distance
computations.
"""

from __future__ import annotations

import mrpt
import numpy as np

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads, set_openmp_threads

METRICS = ("euclidean", "angular")
TUNING_QUERIES = 1000


class MRPT(BaseANN):
    metrics = METRICS
    point_types = ("float",)
    supports_batch = True
    package = "mrpt"

    def __init__(self, metric: str, k: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.k = int(k)
        self.threads = allowed_threads()
        self._data: np.ndarray | None = None
        self._autotuned: mrpt.MRPTIndex | None = None
        self._index: mrpt.MRPTIndex | None = None

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        """float32 C-contiguous rows for MRPT; a normalised copy for angular."""
        if self.metric == "angular":
            return normalize(X)
        return np.ascontiguousarray(X, dtype=np.float32)

    def fit(self, X: np.ndarray) -> None:
        set_openmp_threads(self.threads)
        # MRPT keeps a reference to the matrix, not a copy: hold our own.
        data = self._prepare(X)
        self._data = X.copy() if data is X else data
        index = mrpt.MRPTIndex(self._data)
        index.build_autotune_sample(target_recall=None, k=self.k,
                                    n_test=min(TUNING_QUERIES, len(self._data)))
        self._autotuned = index
        set_openmp_threads(1)

    def set_query_arguments(self, target_recall: float) -> None:
        self.target_recall = float(target_recall)
        assert self._autotuned is not None
        self._index = self._autotuned.subset(self.target_recall)

    @staticmethod
    def _ids(row: np.ndarray) -> np.ndarray:
        """MRPT pads an answer with fewer than k candidates with -1; drop them."""
        return row[row >= 0].astype(np.int64, copy=False)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        q = self._prepare(q.reshape(1, -1))[0]
        return self._ids(self._index.ann(q, k=k))

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        Q = self._prepare(Q)
        set_openmp_threads(self.threads)
        try:
            ids = self._index.ann(Q, k=k)
        finally:
            set_openmp_threads(1)
        self._batch_results = [self._ids(row) for row in np.atleast_2d(ids)]

    def done(self) -> None:
        self._index = None
        self._autotuned = None
        self._data = None

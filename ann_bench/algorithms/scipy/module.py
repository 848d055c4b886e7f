"""scipy's cKDTree: an exact k-d tree, a baseline for recall 1.0.

Build argument: leafsize (points per leaf). No query arguments: the search is exact.
euclidean is the tree's own metric (p=2); angular searches euclidean distance over a
normalised copy of the data (on unit vectors euclidean order is angular order, and the query's
norm does not change the order, so queries are used as given). A single query runs with
workers=1; a batch is one cKDTree.query over all queries with workers = the worker's threads.
cKDTree counts no distance computations.
"""

from __future__ import annotations

import numpy as np
from scipy import spatial

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads

METRICS = ("euclidean", "angular")


class CKDTree(BaseANN):
    metrics = METRICS
    point_types = ("float",)
    supports_batch = True
    package = "scipy"

    def __init__(self, metric: str, leafsize: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.leafsize = int(leafsize)
        self.threads = allowed_threads()
        self._tree: spatial.cKDTree | None = None

    def fit(self, X: np.ndarray) -> None:
        # cKDTree keeps a float64 copy of the data (copy_data: never a view of the caller's array).
        X = normalize(X) if self.metric == "angular" else np.asarray(X)
        self._tree = spatial.cKDTree(X, leafsize=self.leafsize, copy_data=True)

    def _answer(self, Q: np.ndarray, k: int, workers: int) -> np.ndarray:
        assert self._tree is not None
        k = min(k, self._tree.n)
        # With k=1 scipy drops the neighbour axis; ask for a list of k to keep it.
        _, ids = self._tree.query(Q, k=list(range(1, k + 1)), workers=workers)
        return ids

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return self._answer(q, k, workers=1).astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        ids = self._answer(np.asarray(Q), k, workers=self.threads)
        self._batch_results = list(ids.astype(np.int64))

    def done(self) -> None:
        self._tree = None

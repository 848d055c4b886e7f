"""scikit-learn's BallTree and KDTree: exact space-partitioning trees, baselines for recall 1.0.

Build argument: leaf_size (points per leaf; below it the tree stops splitting and scans).
No query arguments: the search is exact. euclidean is the trees' own metric; angular searches
euclidean distance over a normalised copy of the data (on unit vectors euclidean order is
angular order, and the query's norm does not change the order, so queries are used as given).

A single query runs tree.query on the calling thread. A batch runs tree.query over blocks of
the queries on the worker's threads (the tree releases the GIL while it searches; this is how
scikit-learn's own NearestNeighbors.kneighbors(n_jobs=...) runs it). get_additional reports
dist_comps, the tree's own count of distance computations per query (get_n_calls).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn import neighbors

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads

METRICS = ("euclidean", "angular")


class _SklearnTree(BaseANN):
    metrics = METRICS
    point_types = ("float",)
    supports_batch = True
    package = "scikit-learn"
    tree_class: type = neighbors.BallTree

    def __init__(self, metric: str, leaf_size: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.leaf_size = int(leaf_size)
        self.threads = allowed_threads()
        self._tree: neighbors.BallTree | neighbors.KDTree | None = None
        self._queries = 0

    def fit(self, X: np.ndarray) -> None:
        # The tree keeps its own float64 copy of the data.
        X = normalize(X) if self.metric == "angular" else np.asarray(X)
        self._tree = self.tree_class(X, leaf_size=self.leaf_size, metric="euclidean")

    def set_query_arguments(self) -> None:
        assert self._tree is not None
        self._tree.reset_n_calls()
        self._queries = 0

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._tree is not None
        self._queries += 1
        ids = self._tree.query(q.reshape(1, -1), k=min(k, self._tree.data.shape[0]), return_distance=False)
        return ids[0].astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        tree = self._tree
        assert tree is not None
        k = min(k, tree.data.shape[0])
        blocks = np.array_split(np.asarray(Q), max(1, min(self.threads, len(Q))))
        with ThreadPoolExecutor(max_workers=len(blocks)) as pool:
            answers = list(pool.map(lambda block: tree.query(block, k=k, return_distance=False), blocks))
        self._queries += len(Q)
        self._batch_results = [row.astype(np.int64) for block in answers for row in block]

    def get_additional(self) -> dict:
        if self._tree is None or self._queries == 0:
            return {}
        return {"dist_comps": self._tree.get_n_calls() / self._queries}

    def done(self) -> None:
        self._tree = None


class BallTree(_SklearnTree):
    tree_class = neighbors.BallTree


class KDTree(_SklearnTree):
    tree_class = neighbors.KDTree

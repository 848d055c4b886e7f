"""hnswlib: the reference implementation of HNSW graphs (Malkov & Yashunin).

Build arguments: M (links per node) and efConstruction; query argument: ef (the search's
candidate list size; hnswlib uses max(ef, k)). Single queries run on one thread; a batch runs
knn_query over the whole matrix on the threads this worker was given. Filtered queries pass
hnswlib a filter function (a Python call per point the search visits, which it pays for).
Streaming: insert makes the index on its first call and grows it (resize_index, to twice the
points it must hold, so that growing is rare) before add_items; delete is mark_deleted, which
keeps the point in the graph as a waypoint but never returns it.
"""

from __future__ import annotations

import hnswlib
import numpy as np

from ..base import BaseANN, allowed_threads
from ..filtering import LabelRange

# Our metric name -> hnswlib space. "ip" is 1 - q.x, which orders points as "dot" (-q.x) does;
# "cosine" normalises copies of the vectors inside hnswlib.
SPACES = {"euclidean": "l2", "angular": "cosine", "dot": "ip"}
DEFAULT_SEED = 100  # init_index's own default, kept for a first build


class HnswLib(BaseANN):
    metrics = tuple(SPACES)
    point_types = ("float",)
    supports_batch = True
    supports_filter = True
    supports_insert = True
    supports_delete = True
    package = "hnswlib"
    clients = "threads"  # its search releases the GIL; concurrent searches of a built index are safe
    seeded = True

    def __init__(self, metric: str, M: int, efConstruction: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.M = int(M)
        self.ef_construction = int(efConstruction)
        self.threads = allowed_threads()
        self._index: hnswlib.Index | None = None
        self._labels: list[int] = []  # a filtered set's, as a list: the filter reads one per visited node

    def fit(self, X: np.ndarray) -> None:
        self.insert(X, np.arange(len(X)))

    def _new_index(self, dimension: int, capacity: int) -> hnswlib.Index:
        index = hnswlib.Index(space=SPACES[self.metric], dim=dimension)
        index.init_index(max_elements=capacity, ef_construction=self.ef_construction, M=self.M,
                         random_seed=DEFAULT_SEED if self.seed is None else self.seed)
        index.set_num_threads(1)  # single queries use one thread; batch_query asks for more
        return index

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        # hnswlib copies the vectors into its own storage (normalising them for "cosine").
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self._index is None:
            self._index = self._new_index(X.shape[1], len(X))
        needed = self._index.get_current_count() + len(X)
        if needed > self._index.get_max_elements():
            self._index.resize_index(2 * needed)
        self._index.add_items(X, ids, num_threads=self.threads)

    def delete(self, ids: np.ndarray) -> None:
        assert self._index is not None
        for i in ids.tolist():
            self._index.mark_deleted(i)

    def set_query_arguments(self, ef: int) -> None:
        assert self._index is not None
        self._index.set_ef(int(ef))

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        labels, _ = self._index.knn_query(q, k=min(k, self._index.get_current_count()), num_threads=1)
        return labels[0].astype(np.int64)

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels.tolist()

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange) -> np.ndarray:
        """hnswlib's filter function: the search admits only points it returns True for."""
        assert self._index is not None
        labels, (lo, hi) = self._labels, allowed
        found, _ = self._index.knn_query(q, k=min(k, self._index.get_current_count()), num_threads=1,
                                         filter=lambda i: lo <= labels[i] < hi)
        return found[0].astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        labels, _ = self._index.knn_query(Q, k=min(k, self._index.get_current_count()),
                                          num_threads=self.threads)
        self._batch_results = list(labels.astype(np.int64))

    def done(self) -> None:
        self._index = None

"""voyager (Spotify): an HNSW graph (derived from hnswlib) with Python and Java bindings.

Build arguments: M (links per node) and ef_construction; query argument: ef (the search's
candidate list size). Spaces: Euclidean (squared L2, the same order as L2), Cosine (voyager
normalises its own copies of the vectors and of each query), InnerProduct. Vectors are stored
as float32.

Single queries pass num_threads=1 (voyager searches one vector on one thread anyway); a batch
is one query() call over the whole matrix on the threads this worker was given.
voyager exposes no count of distance computations.
"""

from __future__ import annotations

import numpy as np
import voyager

from ..base import BaseANN, allowed_threads

# Our metric name -> voyager space.
SPACES = {
    "euclidean": voyager.Space.Euclidean,
    "angular": voyager.Space.Cosine,
    "dot": voyager.Space.InnerProduct,
}


class Voyager(BaseANN):
    metrics = tuple(SPACES)
    point_types = ("float",)
    supports_batch = True
    supports_insert = True
    supports_delete = True
    package = "voyager"
    clients = "threads"  # its search releases the GIL; concurrent searches of a built index are safe
    seeded = True

    def __init__(self, metric: str, M: int, ef_construction: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef = 10
        self.threads = allowed_threads()
        self._index: voyager.Index | None = None

    def fit(self, X: np.ndarray) -> None:
        self.insert(X, np.arange(len(X)))

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """add_items under the ids (voyager grows its index as needed); the first call (fit's)
        makes the index, sized for these points."""
        # voyager copies the vectors into its own storage (normalising them for Cosine); its
        # binding takes writable matrices only, and X is read-only: a copy.
        X = np.array(X, dtype=np.float32)
        if self._index is None:
            self._index = voyager.Index(
                SPACES[self.metric], num_dimensions=X.shape[1], M=self.M,
                ef_construction=self.ef_construction, max_elements=len(X),
                storage_data_type=voyager.StorageDataType.Float32,
                **({} if self.seed is None else {"random_seed": self.seed}),
            )
        self._index.add_items(X, ids=ids, num_threads=self.threads)

    def delete(self, ids: np.ndarray) -> None:
        """voyager's mark_deleted: the points stay in the graph as waypoints, never answered."""
        assert self._index is not None
        for i in ids.tolist():
            self._index.mark_deleted(i)

    def set_query_arguments(self, ef: int) -> None:
        assert self._index is not None
        self.ef = int(ef)
        self._index.ef = self.ef

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        ids, _ = self._index.query(np.ascontiguousarray(q, dtype=np.float32),
                                   k=min(k, len(self._index)), num_threads=1, query_ef=self.ef)
        return ids.astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        ids, _ = self._index.query(np.array(Q, dtype=np.float32),  # a writable copy, as in fit
                                   k=min(k, len(self._index)), num_threads=self.threads,
                                   query_ef=self.ef)
        self._batch_results = list(ids.astype(np.int64))

    def done(self) -> None:
        self._index = None

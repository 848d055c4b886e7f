"""annoy (Spotify): a forest of random-projection trees.

Build argument: n_trees (more trees, better recall, bigger index). Query argument: search_k,
the number of tree nodes inspected per query (annoy's default, -1, is n_trees * k).

hamming: annoy's "hamming" index takes each point as `f` numbers, one per bit (0 or 1), and
packs them into 64-bit words itself (an item reads back as 0.0/1.0 values; its distances are
popcounts). Bit points (bool or 0/1 arrays) are given to it as 0/1 lists.
"""

from __future__ import annotations

from typing import Literal

import annoy
import numpy as np

from ..base import BaseANN, allowed_threads

# Our metric name -> annoy's.
METRIC_MAP: dict[str, Literal["angular", "euclidean", "hamming"]] = {
    "angular": "angular", "euclidean": "euclidean", "hamming": "hamming"}


class Annoy(BaseANN):
    metrics = tuple(METRIC_MAP)
    point_types = ("float", "bit")
    supports_batch = False
    package = "annoy"
    seeded = True

    def __init__(self, metric: str, n_trees: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.n_trees = int(n_trees)
        self.search_k = -1
        self._index: annoy.AnnoyIndex | None = None

    def fit(self, X: np.ndarray) -> None:
        X = np.asarray(X)
        if self.metric == "hamming":
            X = (X != 0).astype(np.uint8)  # a 0/1 copy; bool rows would also do, as 1.0/0.0
        index = annoy.AnnoyIndex(X.shape[1], METRIC_MAP[self.metric])
        if self.seed is not None:
            index.set_seed(self.seed)
        for i, x in enumerate(X):
            index.add_item(i, x.tolist())
        # n_jobs=-1 would start one thread per core of the machine, not per core we were given.
        index.build(self.n_trees, n_jobs=allowed_threads())
        self._index = index

    def set_query_arguments(self, search_k: int) -> None:
        self.search_k = int(search_k)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        # annoy reads any sequence of numbers (numpy bools read as 1.0/0.0, and a bit is set
        # when its number is above 0.5); ids come back nearest first and distinct.
        assert self._index is not None
        return np.asarray(self._index.get_nns_by_vector(q, k, self.search_k), dtype=np.int64)

    def done(self) -> None:
        if self._index is not None:
            self._index.unload()
            self._index = None

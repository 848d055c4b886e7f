"""DiskANN (Microsoft) in memory, through diskannpy: a Vamana graph, StaticMemoryIndex.

Build arguments (build_memory_index): complexity (L, the candidate list of the build's
searches), graph_degree (R, the most edges per node) and alpha (the pruning's slack: above 1
it keeps longer edges, so fewer hops). Query argument: search_complexity (the `complexity` of
diskannpy's searches, their candidate list; at least k).

euclidean is DiskANN's l2; angular is l2 over a normalised copy of the data (on unit vectors
l2 order is angular order; the graph search only compares distances to one query, so the
query's norm changes nothing and queries are used as given); dot is DiskANN's mips.
The build uses the worker's threads; a single query runs search() on the calling thread; a
batch runs batch_search() with num_threads = the worker's threads. diskannpy reports no
distance counts.

diskannpy 0.7.0 requires numpy 1.25: its compiled module reads numpy 1.x's array layout, and
under numpy 2 single searches return garbage (the first id k times). It therefore runs in its
own environment: its Docker image pins numpy 1.25, and `--local` runs it in `.venvs/diskann`
(`local: own` in algorithms.yaml; `scripts/setup-env` makes it), never in the shared .venv.
"""

from __future__ import annotations

import diskannpy
import numpy as np

from ...datasets.distance import normalize
from ..base import allowed_threads
from ..ondisk import IndexDirectory

METRICS = {"euclidean": "l2", "angular": "l2", "dot": "mips"}
INITIAL_SEARCH_COMPLEXITY = 100  # scratch space per thread; diskannpy grows it when a query asks more


class DiskANN(IndexDirectory):
    metrics = tuple(METRICS)
    point_types = ("float",)
    supports_batch = True
    package = "diskannpy"

    def __init__(self, metric: str, complexity: int, graph_degree: int, alpha: float):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.build_complexity = int(complexity)
        self.graph_degree = int(graph_degree)
        self.alpha = float(alpha)
        self.threads = allowed_threads()
        self.complexity = INITIAL_SEARCH_COMPLEXITY
        self._index: diskannpy.StaticMemoryIndex | None = None

    def fit(self, X: np.ndarray) -> None:
        X = normalize(X) if self.metric == "angular" else np.ascontiguousarray(X, dtype=np.float32)
        directory = str(self.make_directory())
        diskannpy.build_memory_index(
            X, distance_metric=METRICS[self.metric], index_directory=directory,
            complexity=self.build_complexity, graph_degree=self.graph_degree, alpha=self.alpha,
            num_threads=self.threads, use_pq_build=False, index_prefix="ann",
        )
        self._index = diskannpy.StaticMemoryIndex(
            directory, num_threads=self.threads, initial_search_complexity=INITIAL_SEARCH_COMPLEXITY,
            index_prefix="ann",
        )

    def set_query_arguments(self, search_complexity: int) -> None:
        self.complexity = int(search_complexity)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        response = self._index.search(np.asarray(q, dtype=np.float32), k, max(k, self.complexity))
        return response.identifiers.astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        response = self._index.batch_search(np.ascontiguousarray(Q, dtype=np.float32), k,
                                            max(k, self.complexity), self.threads)
        self._batch_results = list(response.identifiers.astype(np.int64))

    def close(self) -> None:
        self._index = None

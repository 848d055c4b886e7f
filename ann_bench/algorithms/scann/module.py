"""ScaNN (Google): a k-means tree over the points, anisotropic vector quantization (asymmetric
hashing, AH) to score the points of the leaves searched, and an exact re-ordering of the best.

Build arguments:
- num_leaves: k-means partitions of the tree (ScaNN suggests about sqrt(n));
- avq_threshold: the anisotropic quantization threshold of score_ah (ScaNN recommends 0.2 for
  dot-product search); None for plain (isotropic) quantization, ann-benchmarks' choice for L2;
- dims_per_block: dimensions per AH sub-space (1-4; fewer means more codes, more accurate).
Query argument: leaves_reorder = [leaves_to_search, reorder], the leaves visited per query and
how many AH candidates are re-scored exactly (ann-benchmarks tunes them as pairs).

euclidean searches squared L2; dot searches the inner product; angular searches the inner
product over a normalised copy of the data with spherical partitioning (the query's norm does
not change the order, so queries are used as given). Training and batches use the threads this
worker was given (set explicitly on the builder and the searcher); a single query runs on the
calling thread. ScaNN does not expose distance counts.
"""

from __future__ import annotations

import math

import numpy as np
import scann

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads

# Our metric name -> ScaNN's distance measure.
DISTANCES = {"euclidean": "squared_l2", "angular": "dot_product", "dot": "dot_product"}


class Scann(BaseANN):
    metrics = tuple(DISTANCES)
    point_types = ("float",)
    supports_batch = True
    package = "scann"

    def __init__(self, metric: str, num_leaves: int, avq_threshold: float | None, dims_per_block: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.num_leaves = int(num_leaves)
        self.avq_threshold = None if avq_threshold is None else float(avq_threshold)
        self.dims_per_block = int(dims_per_block)
        self.threads = allowed_threads()
        self.leaves_to_search = 1
        self.reorder = 100
        self._searcher = None

    def fit(self, X: np.ndarray) -> None:
        if self.metric == "angular":
            X = normalize(X)  # a new float32 array
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
        num_leaves = max(1, min(self.num_leaves, len(X)))
        if num_leaves != self.num_leaves:
            print(f"scann: num_leaves={self.num_leaves} is more than the {len(X)} points; "
                  f"using num_leaves={num_leaves}", flush=True)
            self.num_leaves = num_leaves
        avq = math.nan if self.avq_threshold is None else self.avq_threshold
        builder = scann.scann_ops_pybind.builder(X, 10, DISTANCES[self.metric])
        builder.set_n_training_threads(self.threads)
        searcher = (
            builder.tree(self.num_leaves, 1, training_sample_size=len(X),
                         spherical=self.metric == "angular", quantize_centroids=True)
            .score_ah(self.dims_per_block, anisotropic_quantization_threshold=avq)
            .reorder(1)  # every query passes its own re-order count
            .build()
        )
        searcher.set_num_threads(self.threads)  # the pool of search_batched_parallel
        self._searcher = searcher

    def set_query_arguments(self, leaves_reorder) -> None:
        leaves, reorder = (int(v) for v in leaves_reorder)
        self.leaves_to_search = max(1, min(leaves, self.num_leaves))
        self.reorder = reorder

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._searcher is not None
        ids, _ = self._searcher.search(q, k, max(k, self.reorder), self.leaves_to_search)
        return ids.astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._searcher is not None
        ids, _ = self._searcher.search_batched_parallel(
            np.ascontiguousarray(Q, dtype=np.float32), k, max(k, self.reorder), self.leaves_to_search)
        self._batch_results = list(np.asarray(ids).astype(np.int64))

    def done(self) -> None:
        self._searcher = None

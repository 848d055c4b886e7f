"""PyNNDescent on sets: jaccard with pynndescent's sparse "jaccard" metric.

The same index as ann_bench.algorithms.pynndescent (a k-NN graph built by nearest-neighbour
descent, searched from a random-projection tree's leaf), with the same build arguments
(n_neighbors, diversify_prob, pruning_degree_multiplier, leaf_size) and query argument
(epsilon), on sparse data: the sets become a binary scipy CSR matrix (points x items), which
pynndescent indexes with its sparse jaccard distance (computed from the sorted item ids, so
the answers are ranked by the exact jaccard distance). A query set becomes a one-row CSR
matrix, a batch one matrix of all of them; a query's items that no point has are kept (the
matrix is as wide as they need), so they count in the query's size as they should.

numba compiles pynndescent's sparse functions on first use, and some of them (those taking
other compiled functions as arguments) cannot be cached on disk: the constructor builds,
prepares and queries a small throwaway sparse index with the same settings, so that
compiling (some 15 to 50 seconds) happens before the runner starts timing fit. fit runs on
the threads this worker was given; queries, batches too, on one thread: the pinned
pynndescent's parallel sparse search does not compile (numba rejects a heappush in it), so
batches stay serial here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from ..datasets.distance import n_items, sets_to_csr
from .pynndescent import PyNNDescent
from .sets import as_items

# The throwaway index that makes numba compile: 1,000 sets of ~300 of 1,000 items. pynndescent's
# trees split nodes whose rows take more than 1 MiB breadth-first with sparse hyperplanes and
# finish smaller ones depth-first; a throwaway too small for the first (400 sets of 6 items,
# say) leaves those functions to be compiled inside fit's timer (15 s of a 20 s build).
COMPILE_POINTS = 1000
COMPILE_ITEMS = 1000
COMPILE_DENSITY = 0.3
COMPILE_NEIGHBORS = 10


def _csr(sets, width: int) -> scipy.sparse.csr_matrix:
    """Binary float32 CSR (len(sets) x width) of the sets, indices sorted (a new matrix)."""
    matrix = sets_to_csr(sets, width).astype(np.float32)
    matrix.sort_indices()
    return matrix


class PyNNDescentJaccard(PyNNDescent):
    metric_names = {"jaccard": "jaccard"}
    metrics = ("jaccard",)
    point_types = ("bit",)
    label = "pynndescent-jaccard"
    parallel_batches = False  # pynndescent 0.7.0's parallel sparse search fails to compile

    def __init__(self, *args, **kwargs):
        self._width = 0
        super().__init__(*args, **kwargs)

    def _compile_data(self):
        """What numba compiles depends on the argument types, not on the data."""
        rng = np.random.default_rng(0)
        members = rng.random((COMPILE_POINTS, COMPILE_ITEMS)) < COMPILE_DENSITY
        return _csr([np.flatnonzero(row) for row in members], COMPILE_ITEMS), COMPILE_NEIGHBORS

    def _points(self, X):
        self._width = max(1, n_items(X))
        return _csr(X, self._width)

    def _queries(self, sets: list) -> scipy.sparse.csr_matrix:
        items = [as_items(q) for q in sets]
        width = max([self._width] + [int(s[-1]) + 1 for s in items if len(s)])
        return _csr(items, width)

    def _one_query(self, q):
        return self._queries([q])

    def _many_queries(self, Q):
        return self._queries(list(Q))

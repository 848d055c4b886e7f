"""PyNNDescent (McInnes): a k-NN graph built by nearest-neighbour descent, searched from a
random-projection tree's leaf.

Build arguments: n_neighbors (degree of the k-NN graph), diversify_prob (how much of the graph
is pruned by the diversification heuristic), pruning_degree_multiplier (the search graph keeps
up to n_neighbors times this many edges per node) and leaf_size. Query argument: epsilon (how
far past the current k-th distance the search keeps expanding; 0.0 to about 0.4).

Metrics: euclidean, and angular as pynndescent's "cosine", which on dense data normalises a copy
of the points and each query itself and searches by dot product (what ann-benchmarks gets from
"dot" on normalised data).

PyNNDescent is compiled by numba. fit builds the graph and then prepare()s the index (search
tree, search graph, search function), so all of the preparation counts as build time and none
of it lands in the first query; the search function comes from numba's on-disk cache when it is
there (the Docker image fills the cache when it is built, so build time is not numba compiling
itself). The build runs on the threads this worker was given (n_jobs). A single query runs
on one thread; a batch is one query() call over the whole matrix, searched in parallel on the
worker's threads. pynndescent compiles that choice (parallel_batch_queries) into the search
function prepare() makes, and says the parallel one slows single queries, so the index is
re-prepared for the kind of call it gets. A worker answers only single queries or only
batches, so that happens once at most, in the runner's warm-up pass (whose time is in no
result), and compiles nothing: with more than one thread the constructor compiles both.

PyNNDescentJaccard is the same index on sets (jaccard), with the same build and query
arguments, on sparse data: the sets become a binary scipy CSR matrix (points x items), which
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

import numba
import numpy as np
import pynndescent
import scipy.sparse

from ...datasets.distance import n_items, sets_to_csr
from ..base import BaseANN, allowed_threads
from ..sets import as_items

# Our metric name -> pynndescent's.
METRICS = {"euclidean": "euclidean", "angular": "cosine"}
COMPILE_POINTS = 400  # size of the throwaway index that makes numba compile
# The throwaway index that makes numba compile sparse code: 1,000 sets of ~300 of 1,000 items. pynndescent's
# trees split nodes whose rows take more than 1 MiB breadth-first with sparse hyperplanes and
# finish smaller ones depth-first; a throwaway too small for the first (400 sets of 6 items,
# say) leaves those functions to be compiled inside fit's timer (15 s of a 20 s build).
COMPILE_SETS = 1000
COMPILE_ITEMS = 1000
COMPILE_DENSITY = 0.3
COMPILE_NEIGHBORS = 10


class PyNNDescent(BaseANN):
    # Our metric name -> pynndescent's; a subclass for other data changes this and the hooks
    # below (_compile_data, _points, _one_query, _many_queries), and keeps the rest.
    metric_names = METRICS
    metrics = tuple(METRICS)
    point_types = ("float",)
    supports_batch = True
    package = "pynndescent"
    parallel_batches = True  # a subclass whose parallel search does not work sets False

    def __init__(self, metric: str, n_neighbors: int, diversify_prob: float = 1.0,
                 pruning_degree_multiplier: float = 1.5, leaf_size: int | None = None):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.n_neighbors = int(n_neighbors)
        self.diversify_prob = float(diversify_prob)
        self.pruning_degree_multiplier = float(pruning_degree_multiplier)
        self.leaf_size = None if leaf_size is None else int(leaf_size)
        self.epsilon = 0.1
        self.threads = allowed_threads()
        self._parallel_batches = self.parallel_batches and self.threads > 1
        self._index: pynndescent.NNDescent | None = None
        self._compile()

    def _new_index(self, X, n_neighbors: int) -> pynndescent.NNDescent:
        index = pynndescent.NNDescent(
            X, metric=self.metric_names[self.metric], n_neighbors=n_neighbors,
            diversify_prob=self.diversify_prob, pruning_degree_multiplier=self.pruning_degree_multiplier,
            leaf_size=self.leaf_size, n_jobs=self.threads, low_memory=True, compressed=True,
            random_state=None, verbose=False,
        )
        index.prepare()
        return index

    def _compile(self) -> None:
        """Build, prepare and query a small throwaway index with the same settings.

        Several of pynndescent's numba functions take other compiled functions as arguments,
        which numba cannot cache on disk: every new process compiles them on the first build
        (some 20 to 40 seconds here, more than building the index of a 100,000-point set). The
        compiled code depends only on the argument types (float32 matrices, this metric), not
        on the data or its dimension, so compiling here, before the runner starts timing fit,
        leaves fit with the build itself.
        """
        X, n_neighbors = self._compile_data()
        index = self._new_index(X, min(self.n_neighbors, n_neighbors))
        index.query(X[:2], k=10, epsilon=0.1, return_distances=False)
        index.query(X[:1], k=10, epsilon=0.1, return_distances=False)
        if self._parallel_batches:
            self._use_search(index, parallel=True)
            index.query(X[:2], k=10, epsilon=0.1, return_distances=False)
        del index

    def _compile_data(self):
        """The throwaway index's points, and the most neighbours its graph should have."""
        X = np.random.default_rng(0).normal(size=(COMPILE_POINTS, 8)).astype(np.float32)
        return X, COMPILE_POINTS // 4

    def _points(self, X):
        # pynndescent works on float32 C-contiguous data and normalises a copy for cosine;
        # euclidean data it keeps as given, so give it its own copy.
        return np.array(X, dtype=np.float32, order="C", copy=True)

    def _one_query(self, q):
        return q.reshape(1, -1)

    def _many_queries(self, Q):
        return Q

    def _use_search(self, index: pynndescent.NNDescent, parallel: bool) -> None:
        """Prepare `index` for batches searched in parallel or for serial single queries."""
        if index.parallel_batch_queries != parallel:
            index.parallel_batch_queries = parallel
            del index._search_function  # prepare() makes a search function only where there is none
            index.prepare()
        numba.set_num_threads(self.threads if parallel else 1)

    def fit(self, X) -> None:
        self._index = self._new_index(self._points(X), self.n_neighbors)
        self._use_search(self._index, parallel=False)

    def set_query_arguments(self, epsilon: float) -> None:
        self.epsilon = float(epsilon)

    def query(self, q, k: int) -> np.ndarray:
        assert self._index is not None
        if self._index.parallel_batch_queries:
            self._use_search(self._index, parallel=False)
        ids = self._index.query(self._one_query(q), k=k, epsilon=self.epsilon, return_distances=False)
        return self._ids(ids[0])

    def batch_query(self, Q, k: int) -> None:
        assert self._index is not None
        if self._index.parallel_batch_queries != self._parallel_batches:
            self._use_search(self._index, parallel=self._parallel_batches)
        ids = self._index.query(self._many_queries(Q), k=k, epsilon=self.epsilon, return_distances=False)
        self._batch_results = [self._ids(row) for row in ids]

    @staticmethod
    def _ids(row: np.ndarray) -> np.ndarray:
        """pynndescent pads an answer with fewer than k points found with -1; drop them."""
        return row[row >= 0].astype(np.int64, copy=False)

    def done(self) -> None:
        self._index = None


def _csr(sets, width: int) -> scipy.sparse.csr_matrix:
    """Binary float32 CSR (len(sets) x width) of the sets, indices sorted (a new matrix)."""
    matrix = sets_to_csr(sets, width).astype(np.float32)
    matrix.sort_indices()
    return matrix


class PyNNDescentJaccard(PyNNDescent):
    metric_names = {"jaccard": "jaccard"}
    metrics = ("jaccard",)
    point_types = ("bit",)
    parallel_batches = False  # pynndescent 0.7.0's parallel sparse search fails to compile

    def __init__(self, *args, **kwargs):
        self._width = 0
        super().__init__(*args, **kwargs)

    def _compile_data(self):
        """What numba compiles depends on the argument types, not on the data."""
        rng = np.random.default_rng(0)
        members = rng.random((COMPILE_SETS, COMPILE_ITEMS)) < COMPILE_DENSITY
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

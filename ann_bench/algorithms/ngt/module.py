"""NGT (Yahoo Japan): neighbourhood graphs searched from tree-chosen seeds, through ngtpy.

- NgtANNG: the ANNG, built by inserting the points one by one, each linked to the
  edge_size_for_creation nearest it finds; edge_size_for_search caps the edges followed per
  node when a query passes edge_size -1.
- NgtONNG: an ANNG (usually with many edges, e.g. 100) whose degrees are then adjusted into an
  ONNG by ngtpy.Optimizer: outdegree edges kept per node and indegree reversed edges added, with
  shortcut reduction (the graph reconstruction of `ngt reconstruct-graph -m S`, as ann-benchmarks
  runs it; the optimizer's own search-parameter tuning, which runs thousands of sample queries,
  is off). refine=True first refines the ANNG (refine_anng); tree=False seeds searches from
  the graph instead of the tree.

Query arguments: epsilon, NGT's search-range coefficient (the search explores up to
(1 + epsilon) times the current k-th distance: -0.4 is fast and rough, 0.1-0.2 near exact),
and edge_size: edges followed per node (-1: the index's edge_size_for_search; -2: a number
that grows with epsilon; 0: all).

euclidean uses NGT's L2; angular uses L2 over a normalised copy of the data, queries normalised
too (on unit vectors L2 order is angular order). The quantized graph (QG) is not here: ngtpy
can only open a QG that NGT's `qbg` command built, and the PyPI wheel ships no such command.
Building uses the worker's threads; a single query runs on the calling thread; a batch runs
ngtpy's batch_search on an OpenMP pool sized explicitly to the worker's threads.

fit saves the graph and searches it reopened from its files (the handle that built an ANNG
searched up to 14% slower). ngtpy counts distance
computations (get_num_of_distance_computations) only for single queries on an index opened
read-write; get_additional reports them as dist_comps, per query since the last
set_query_arguments. Measured here (CPU time per 1,000 queries, random 9,000 x 20 and
30,000 x 32 points, same answers either way): an ANNG searches as fast read-write as
read_only, so it is opened read-write and reports dist_comps; an ONNG is up to 16% slower
read-write at epsilon 0.1, so it is opened read_only (as ann-benchmarks does) and reports none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import ngtpy
import numpy as np

from ...datasets.distance import normalize
from ..base import allowed_threads, set_openmp_threads
from ..ondisk import IndexDirectory

METRICS = ("euclidean", "angular")


class _Ngt(IndexDirectory):
    metrics = METRICS
    point_types = ("float",)
    supports_batch = True
    package = "ngt"

    def __init__(self, metric: str, edge_size_for_creation: int, edge_size_for_search: int):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.edge_size_for_creation = int(edge_size_for_creation)
        self.edge_size_for_search = int(edge_size_for_search)
        self.threads = allowed_threads()
        self.tree = True
        self.epsilon = 0.1
        self.edge_size = -1
        self._index: ngtpy.Index | None = None
        self._counts_distances = False  # read-write indexes count them; see the module doc
        self._distances_before = 0
        self._queries = 0

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "angular":
            return normalize(X)  # a new float32 array
        return np.ascontiguousarray(X, dtype=np.float32)

    def _build_anng(self, X: np.ndarray, path: str) -> ngtpy.Index:
        ngtpy.create(path, X.shape[1], edge_size_for_creation=self.edge_size_for_creation,
                     edge_size_for_search=self.edge_size_for_search, distance_type="L2", object_type="Float")
        index = ngtpy.Index(path, log_disabled=True)
        index.batch_insert(X, num_threads=self.threads)
        return index

    def fit(self, X: np.ndarray) -> None:
        X = self._prepare(X)
        directory = str(self.make_directory())
        set_openmp_threads(self.threads)
        self._index = self._build(X, directory)

    def _build(self, X: np.ndarray, directory: str) -> ngtpy.Index:
        """Build and save the graph under `directory`; return it reopened with _open."""
        raise NotImplementedError

    def _open(self, path: str, read_only: bool) -> ngtpy.Index:
        self._counts_distances = not read_only
        return ngtpy.Index(path, read_only=read_only, tree_disabled=not self.tree, log_disabled=True)

    def set_query_arguments(self, epsilon: float, edge_size: int = -1) -> None:
        assert self._index is not None
        self.epsilon = float(epsilon)
        self.edge_size = int(edge_size)
        # batch_search reads the index's defaults; query passes them itself.
        self._index.set(epsilon=self.epsilon, edge_size=self.edge_size)
        self._distances_before = self._index.get_num_of_distance_computations()
        self._queries = 0

    def _query_vector(self, q: np.ndarray) -> np.ndarray:
        if self.metric == "angular":
            return normalize(q.reshape(1, -1))[0]
        return q

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        self._queries += 1
        ids = self._index.search(self._query_vector(q), k, self.epsilon, self.edge_size, with_distance=False)
        return np.asarray(ids, dtype=np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        Q = normalize(Q) if self.metric == "angular" else np.ascontiguousarray(Q, dtype=np.float32)
        results = ngtpy.BatchResults()
        set_openmp_threads(self.threads)
        self._index.batch_search(Q, results, k, with_distance=False)
        # Flat ids and per-query offsets (get_ids would assume every answer has the same length).
        ids = np.asarray(results.get_indexed_ids(), dtype=np.int64)
        offsets = np.asarray(results.get_index(), dtype=np.int64)
        self._batch_results = [ids[offsets[i]:offsets[i + 1]] for i in range(len(Q))]

    def get_additional(self) -> dict:
        # batch_search counts nothing, so a batch-mode result has no dist_comps.
        assert self._index is not None
        if not (self._counts_distances and self._queries):
            return {}
        distances = self._index.get_num_of_distance_computations() - self._distances_before
        return {"dist_comps": distances / self._queries}

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None


class NgtANNG(_Ngt):
    def _build(self, X: np.ndarray, directory: str) -> ngtpy.Index:
        path = str(Path(directory) / "anng")
        index = self._build_anng(X, path)
        index.save()
        index.close()
        return self._open(path, read_only=False)


class NgtONNG(_Ngt):
    def __init__(self, metric: str, edge_size_for_creation: int, edge_size_for_search: int,
                 outdegree: int, indegree: int, refine: bool = False, tree: bool = True):
        super().__init__(metric, edge_size_for_creation, edge_size_for_search)
        self.outdegree = int(outdegree)
        self.indegree = int(indegree)
        self.refine = bool(refine)
        self.tree = bool(tree)

    def _build(self, X: np.ndarray, directory: str) -> ngtpy.Index:
        anng, onng = str(Path(directory) / "anng"), str(Path(directory) / "onng")
        index = self._build_anng(X, anng)
        if self.refine:
            index.refine_anng(epsilon=0.1, num_of_edges=self.edge_size_for_creation,
                              num_of_explored_edges=self.edge_size_for_search)
        index.save()
        index.close()
        optimizer = ngtpy.Optimizer(num_of_outgoings=self.outdegree, num_of_incomings=self.indegree,
                                    log_disabled=True)
        optimizer.set_processing_modes(shortcut_reduction=True, search_parameter_optimization=False,
                                       prefetch_parameter_optimization=False, accuracy_table_generation=False)
        optimizer.execute(anng, onng)
        shutil.rmtree(anng, ignore_errors=True)
        return self._open(onng, read_only=True)

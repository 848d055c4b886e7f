"""nmslib (Non-Metric Space Library): its HNSW and SW-graph (small-world graph) indexes.

- NmslibHNSW: build arguments M, efConstruction and post (0, 1 or 2: how much the graph is
  post-processed after construction); query argument ef (nmslib's efSearch).
- NmslibSWGraph: build arguments NN (neighbours per node) and efConstruction; query argument
  efSearch.

Spaces: euclidean is nmslib's l2, angular its cosinesimil (1 - cosine; nmslib's HNSW
normalises its own copies), dot its negdotprod (-q.x). nmslib copies the vectors it is given.
Index construction uses the threads this worker was given (indexThreadQty); a single query runs
on the calling thread (knnQuery), a batch is knnQueryBatch over the whole matrix with
num_threads set to this worker's threads. nmslib exposes no count of distance computations.

The wheel on PyPI is compiled without SSE/AVX (nmslib says so on import); the Docker image
compiles nmslib from its source distribution with -march=native, as ann-benchmarks does.
"""

from __future__ import annotations

import nmslib
import numpy as np

from ..base import BaseANN, allowed_threads

# Our metric name -> nmslib space.
SPACES = {"euclidean": "l2", "angular": "cosinesimil", "dot": "negdotprod"}


class _Nmslib(BaseANN):
    metrics = tuple(SPACES)
    point_types = ("float",)
    supports_batch = True
    package = "nmslib"
    method = ""

    def __init__(self, metric: str):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.threads = allowed_threads()
        self._index = None

    def _index_params(self) -> dict:
        raise NotImplementedError

    def fit(self, X: np.ndarray) -> None:
        X = np.ascontiguousarray(X, dtype=np.float32)
        index = nmslib.init(method=self.method, space=SPACES[self.metric],
                            data_type=nmslib.DataType.DENSE_VECTOR, dtype=nmslib.DistType.FLOAT)
        index.addDataPointBatch(X, np.arange(len(X), dtype=np.int32))
        index.createIndex({**self._index_params(), "indexThreadQty": self.threads}, print_progress=False)
        self._index = index
        self._n = len(X)

    def _set_ef(self, ef: int) -> None:
        assert self._index is not None
        self._index.setQueryTimeParams({"efSearch": int(ef)})

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        assert self._index is not None
        ids, _ = self._index.knnQuery(np.ascontiguousarray(q, dtype=np.float32), k=min(k, self._n))
        return ids.astype(np.int64)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        assert self._index is not None
        answers = self._index.knnQueryBatch(np.ascontiguousarray(Q, dtype=np.float32),
                                            k=min(k, self._n), num_threads=self.threads)
        self._batch_results = [ids.astype(np.int64) for ids, _ in answers]

    def done(self) -> None:
        self._index = None


class NmslibHNSW(_Nmslib):
    method = "hnsw"

    def __init__(self, metric: str, M: int, efConstruction: int, post: int = 0):
        super().__init__(metric)
        self.M = int(M)
        self.ef_construction = int(efConstruction)
        self.post = int(post)

    def _index_params(self) -> dict:
        return {"M": self.M, "efConstruction": self.ef_construction, "post": self.post}

    def set_query_arguments(self, ef: int) -> None:
        self._set_ef(ef)


class NmslibSWGraph(_Nmslib):
    method = "sw-graph"

    def __init__(self, metric: str, NN: int, efConstruction: int):
        super().__init__(metric)
        self.NN = int(NN)
        self.ef_construction = int(efConstruction)

    def _index_params(self) -> dict:
        return {"NN": self.NN, "efConstruction": self.ef_construction}

    def set_query_arguments(self, efSearch: int) -> None:
        self._set_ef(efSearch)

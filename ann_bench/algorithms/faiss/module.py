"""faiss (Meta): IVF-Flat, HNSW-Flat, IVF-PQ and fast-scan IVF-PQ with re-ranking, and the
binary indexes for hamming.

- FaissIVF: build argument n_list (cells), query argument n_probe (cells visited per query).
  The index has the n_list cells asked for (faiss's k-means only warns below 39 training
  points per cell); fewer training points than cells is a ValueError, as faiss cannot train.
- FaissHNSW: build arguments M and efConstruction, query argument efSearch.
- FaissIVFPQ: IndexIVFPQ (build arguments n_list, M sub-quantizers of nbits bits each) inside
  an IndexRefineFlat that re-ranks k * k_factor candidates by exact distance (query arguments
  n_probe and k_factor). FaissIVFPQFastScan: the same with IndexIVFPQFastScan (4-bit codes
  scanned with SIMD lookups; build argument by_residual: encode the residual to the cell's
  centroid, or the vector itself). Product quantization cuts the vector into M equal pieces:
  when M does not divide the dimension (or exceeds it), the data and queries get zero columns
  up to the next multiple of M (which changes no L2 distance and no inner product), with a
  printed note, so the index has the M codes its label says.
- FaissBinaryFlat (exact), FaissBinaryIVF (n_list / n_probe) and FaissBinaryHNSW
  (M, efConstruction / efSearch): hamming on bit vectors, packed 8 bits to a byte for faiss
  (np.packbits; the last byte is padded with zero bits, which changes no hamming distance).

angular searches a normalised copy of the data with the inner product (the query's norm does
not change the order, so queries are used as given); dot uses the inner product; euclidean L2.
Single queries run on one OpenMP thread; a batch uses the threads this worker was given.
FaissIVF and FaissHNSW search filtered queries with an IDSelectorBitmap of the passing points
(made per query from their labels) in SearchParametersIVF / SearchParametersHNSW.
FaissIVF streams: its first insert trains the cells' centroids (k-means) on the points it is
given, which stay the centroids for every later point (add_with_ids); delete is remove_ids,
which takes the points out of their cells' lists.
get_additional reports dist_comps, the average number of distance computations per query
since the last set_query_arguments (faiss counts them in global statistics).
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads, set_openmp_threads
from ..bits import pack_bits
from ..filtering import LabelRange

METRIC_TYPES = {
    "euclidean": faiss.METRIC_L2,
    "angular": faiss.METRIC_INNER_PRODUCT,
    "dot": faiss.METRIC_INNER_PRODUCT,
}


def _prepare(X: np.ndarray, metric: str) -> np.ndarray:
    """float32 C-contiguous rows for faiss; a normalised copy for angular (X is never changed)."""
    if metric == "angular":
        return normalize(X)  # a new float32 array
    return np.ascontiguousarray(X, dtype=np.float32)


def _ids(row: np.ndarray) -> np.ndarray:
    """faiss pads missing answers with -1; drop them."""
    return row[row >= 0].astype(np.int64, copy=False)


def _check_n_list(label: str, n_list: int, n_points: int) -> None:
    """k-means cannot make more cells than it has points; say so on one line, not faiss's three.

    Fewer cells than asked would build the same index under several n_list labels, so there is
    no clamping: the index has n_list cells or is not built.
    """
    if n_points < n_list:
        raise ValueError(f"{label}: n_list={n_list} needs at least {n_list} training points, the dataset "
                         f"has {n_points}; use n_list <= {n_points}")


def _stats(name: str) -> Any:
    """One of faiss's global search statistics (indexIVF_stats, hnsw_stats), which its type
    stubs leave out."""
    return getattr(faiss.cvar, name)


class _Faiss(BaseANN):
    metrics = tuple(METRIC_TYPES)
    point_types = ("float",)
    supports_batch = True
    package = "faiss-cpu"
    clients = "threads"  # its search releases the GIL; concurrent searches of a built index are safe

    def __init__(self, metric: str):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.threads = allowed_threads()
        self.index: Any = None  # made by fit (faiss's stubs type its indexes only in part)
        self._labels: Any = None  # a filtered set's

    def fit(self, X: np.ndarray) -> None:
        set_openmp_threads(self.threads)
        self._build(self._points(X))
        set_openmp_threads(1)

    def _points(self, X: np.ndarray) -> np.ndarray:
        """The points as the index takes them (a new array; X is never changed)."""
        return _prepare(X, self.metric)

    def _build(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _queries(self, Q: np.ndarray) -> np.ndarray:
        """Queries (rows) as faiss takes them: float32 C-contiguous rows."""
        return np.ascontiguousarray(Q, dtype=np.float32)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        set_openmp_threads(1)
        _, labels = self.index.search(self._queries(np.reshape(q, (1, -1))), k)
        return _ids(labels[0])

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        set_openmp_threads(self.threads)
        _, labels = self.index.search(self._queries(Q), k)
        self._batch_results = [_ids(row) for row in labels]

    def set_labels(self, labels: np.ndarray) -> None:
        self._labels = labels

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange) -> np.ndarray:
        """The search with an IDSelectorBitmap of the passing points in its parameters."""
        set_openmp_threads(1)
        bitmap = np.packbits(allowed.mask(self._labels), bitorder="little")  # alive until the search ends
        selector = faiss.IDSelectorBitmap(len(self._labels), faiss.swig_ptr(bitmap))
        _, labels = self.index.search(self._queries(np.reshape(q, (1, -1))), k, params=self._params(selector))
        return _ids(labels[0])

    def _params(self, selector: Any) -> Any:
        """The index's search parameters, with `selector` (the classes with supports_filter)."""
        raise NotImplementedError

    def done(self) -> None:
        self.index = None


class FaissIVF(_Faiss):
    supports_filter = True
    supports_insert = True
    supports_delete = True
    seeded = True

    def __init__(self, metric: str, n_list: int):
        super().__init__(metric)
        self.n_list = int(n_list)
        self.n_probe = 1
        self._quantizer: Any = None

    def _build(self, X: np.ndarray) -> None:
        self._train(X)
        self.index.add(X)

    def _train(self, X: np.ndarray) -> None:
        """An empty index whose cells' centroids are k-means' of X."""
        _check_n_list(self.name, self.n_list, len(X))
        metric_type = METRIC_TYPES[self.metric]
        if metric_type == faiss.METRIC_L2:
            self._quantizer = faiss.IndexFlatL2(X.shape[1])
        else:
            self._quantizer = faiss.IndexFlatIP(X.shape[1])
        index = faiss.IndexIVFFlat(self._quantizer, X.shape[1], self.n_list, metric_type)
        if self.seed is not None:
            index.cp.seed = self.seed  # k-means' initial centroids
        index.train(X)
        self.index = index

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        set_openmp_threads(self.threads)
        points = self._points(X)
        if self.index is None:
            self._train(points)
        self.index.add_with_ids(points, ids)
        set_openmp_threads(1)

    def delete(self, ids: np.ndarray) -> None:
        self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def set_query_arguments(self, n_probe: int) -> None:
        self.n_probe = int(n_probe)
        self.index.nprobe = min(self.n_probe, self.n_list)
        _stats("indexIVF_stats").reset()

    def _params(self, selector: Any) -> Any:
        return faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)  # type: ignore[call-arg]

    def get_additional(self) -> dict:
        stats = _stats("indexIVF_stats")
        if stats.nq == 0:
            return {}
        # Distances to the points in the visited cells, plus the n_list coarse-quantizer
        # distances every query computes to pick its cells.
        return {"dist_comps": stats.ndis / stats.nq + self.n_list}

    def done(self) -> None:
        super().done()
        self._quantizer = None


class FaissHNSW(_Faiss):
    supports_filter = True

    def __init__(self, metric: str, M: int, efConstruction: int):
        super().__init__(metric)
        self.M = int(M)
        self.ef_construction = int(efConstruction)

    def _build(self, X: np.ndarray) -> None:
        index = faiss.IndexHNSWFlat(X.shape[1], self.M, METRIC_TYPES[self.metric])
        index.hnsw.efConstruction = self.ef_construction
        index.add(X)
        self.index = index

    def set_query_arguments(self, efSearch: int) -> None:
        self.index.hnsw.efSearch = int(efSearch)
        _stats("hnsw_stats").reset()

    def _params(self, selector: Any) -> Any:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=self.index.hnsw.efSearch)  # type: ignore[attr-defined]

    def get_additional(self) -> dict:
        stats = _stats("hnsw_stats")
        if stats.n1 == 0:  # n1: queries searched since the reset
            return {}
        return {"dist_comps": stats.ndis / stats.n1}


class _FaissIVFPQRefine(_Faiss):
    """An IVF-PQ index inside IndexRefineFlat: the PQ search proposes k * k_factor candidates,
    exact distances (from the refine index's own float copy of the data) pick the k."""

    nbits = 8

    def __init__(self, metric: str, n_list: int, M: int):
        super().__init__(metric)
        self.n_list = int(n_list)
        self.M = int(M)
        if self.n_list < 1 or self.M < 1:
            raise ValueError(f"{self.name}: n_list and M must be positive (n_list={n_list}, M={M})")
        self.n_probe = 1
        self.k_factor = 1.0
        self._pad = 0  # zero columns added so that M divides the dimension
        self._ivf: Any = None
        self._quantizer: Any = None
        self._last_k = 0

    def _make_ivf(self, quantizer, d: int, n_list: int, metric_type: int):
        raise NotImplementedError

    def _build(self, X: np.ndarray) -> None:
        d = X.shape[1]
        _check_n_list(self.name, self.n_list, len(X))
        self._pad = -d % self.M
        if self._pad:
            print(f"{self.name}: M={self.M} does not divide the dimension {d}; padding the data "
                  f"and queries with {self._pad} zero dimensions (distances unchanged)", flush=True)
            X = np.hstack([X, np.zeros((len(X), self._pad), dtype=np.float32)])
        d += self._pad
        metric_type = METRIC_TYPES[self.metric]
        self._quantizer = faiss.IndexFlat(d, metric_type)
        self._ivf = self._make_ivf(self._quantizer, d, self.n_list, metric_type)
        index = faiss.IndexRefineFlat(self._ivf)  # adds to both: codes and the exact copy
        index.train(X)
        index.add(X)
        self.index = index

    def _queries(self, Q: np.ndarray) -> np.ndarray:
        Q = np.asarray(Q, dtype=np.float32)
        if self._pad:
            return np.hstack([Q, np.zeros((len(Q), self._pad), dtype=np.float32)])
        return np.ascontiguousarray(Q)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        self._last_k = k
        return super().query(q, k)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        self._last_k = k
        super().batch_query(Q, k)

    def set_query_arguments(self, n_probe: int, k_factor: float) -> None:
        if float(k_factor) < 1:
            raise ValueError(f"{self.name}: k_factor={k_factor} must be at least 1")
        self.n_probe = int(n_probe)
        self.k_factor = float(k_factor)
        self._ivf.nprobe = min(self.n_probe, self.n_list)
        self.index.k_factor = self.k_factor
        _stats("indexIVF_stats").reset()

    def get_additional(self) -> dict:
        stats = _stats("indexIVF_stats")
        if stats.nq == 0:
            return {}
        # Coarse-quantizer distances (n_list), PQ code distances in the visited cells, and the
        # exact distances of the re-ranking (at most k * k_factor candidates).
        refined = min(stats.ndis / stats.nq, self._last_k * self.k_factor)
        return {"dist_comps": stats.ndis / stats.nq + self.n_list + refined}

    def done(self) -> None:
        super().done()
        self._ivf = None
        self._quantizer = None


class FaissIVFPQ(_FaissIVFPQRefine):
    def __init__(self, metric: str, n_list: int, M: int, nbits: int = 8):
        self.nbits = int(nbits)
        super().__init__(metric, n_list, M)

    def _make_ivf(self, quantizer, d: int, n_list: int, metric_type: int):
        return faiss.IndexIVFPQ(quantizer, d, n_list, self.M, self.nbits, metric_type)


class FaissIVFPQFastScan(_FaissIVFPQRefine):
    nbits = 4  # fast scan works on 4-bit codes

    def __init__(self, metric: str, n_list: int, M: int, by_residual: bool = True):
        self.by_residual = bool(by_residual)
        super().__init__(metric, n_list, M)

    def _make_ivf(self, quantizer, d: int, n_list: int, metric_type: int):
        index = faiss.IndexIVFPQFastScan(quantizer, d, n_list, self.M, self.nbits, metric_type)
        index.by_residual = self.by_residual
        return index


class _FaissBinary(_Faiss):
    """faiss's binary indexes: hamming distances on packed bit codes (bool or 0/1 rows, 8 bits a
    byte, zero-padded: pack_bits), built and searched as the float indexes are."""

    metrics = ("hamming",)
    point_types = ("bit",)
    supports_filter = False

    def _points(self, X: np.ndarray) -> np.ndarray:
        return pack_bits(X)

    def _queries(self, Q: np.ndarray) -> np.ndarray:
        return pack_bits(Q)


class FaissBinaryFlat(_FaissBinary):
    def _build(self, codes: np.ndarray) -> None:
        self.index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
        self.index.add(codes)


class FaissBinaryIVF(_FaissBinary, FaissIVF):
    seeded = False  # its _train (binary k-means) is not given the seed

    def _train(self, codes: np.ndarray) -> None:
        """An empty index whose cells are k-means' of the codes (FaissIVF's build and streaming
        add to it)."""
        _check_n_list(self.name, self.n_list, len(codes))
        bits = codes.shape[1] * 8
        self._quantizer = faiss.IndexBinaryFlat(bits)
        index = faiss.IndexBinaryIVF(self._quantizer, bits, self.n_list)
        index.train(codes)
        self.index = index


class FaissBinaryHNSW(_FaissBinary, FaissHNSW):
    def _build(self, codes: np.ndarray) -> None:
        index = faiss.IndexBinaryHNSW(codes.shape[1] * 8, self.M)
        index.hnsw.efConstruction = self.ef_construction
        index.add(codes)
        self.index = index

"""nanopq: product quantization (Jegou et al.) in numpy, a baseline for compressed search.

Build arguments: M (sub-spaces; each point is stored as M codes, M bytes for Ks <= 256) and
Ks (codewords per sub-space, at most 256 here so codes are bytes). Query argument: rerank,
how many of the best candidates by asymmetric distance (ADC: query sub-vectors against every
code, through a per-query M x Ks table) are re-scored with exact distances (0: ADC order only).
Re-ranking keeps the original vectors in memory, so the index size counts them.

The data are zero-padded to a multiple of M dimensions when M does not divide the dimension
(zeros change neither L2 distances nor inner products); M is clamped to the dimension. The
codewords are trained on at most TRAIN_SAMPLE points (a fixed random sample), then every point
is encoded. euclidean uses PQ's squared L2; angular uses L2 over normalised copies of data and
query; dot uses PQ's inner-product tables (largest first). nanopq has no batch search of its
own, so batches are answered one query at a time. Queries are numpy table look-ups; BLAS (used
by the exact re-scoring) is held to one thread explicitly. get_additional reports dist_comps:
the asymmetric distances (every code) plus the exact ones per query.
"""

from __future__ import annotations

import nanopq
import numpy as np
from threadpoolctl import threadpool_limits

from ...datasets.distance import normalize
from ..base import BaseANN, allowed_threads

METRICS = {"euclidean": "l2", "angular": "l2", "dot": "dot"}
TRAIN_SAMPLE = 100_000
TRAIN_SEED = 123


class NanoPQ(BaseANN):
    metrics = tuple(METRICS)
    point_types = ("float",)
    supports_batch = False
    package = "nanopq"

    def __init__(self, metric: str, M: int, Ks: int = 256):
        super().__init__()
        self.checked_metric(metric)
        if not 2 <= int(Ks) <= 256:
            raise ValueError(f"nanopq: Ks={Ks} must be between 2 and 256 (one byte per code)")
        self.metric = metric
        self.M = int(M)
        self.Ks = int(Ks)
        self.rerank = 0
        self.threads = allowed_threads()
        self._pq: nanopq.PQ | None = None
        self._codes: np.ndarray | None = None
        self._data: np.ndarray | None = None
        self._pad = 0
        self._limits = None

    def _padded(self, X: np.ndarray) -> np.ndarray:
        """float32 rows padded with zeros to M * Ds dimensions (a new array when padding)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self._pad == 0:
            return X
        return np.pad(X, [(0, 0)] * (X.ndim - 1) + [(0, self._pad)])

    def fit(self, X: np.ndarray) -> None:
        X = normalize(X) if self.metric == "angular" else np.ascontiguousarray(X, dtype=np.float32)
        n, dimension = X.shape
        if self.M > dimension:
            print(f"nanopq: M={self.M} is more than the {dimension} dimensions; using M={dimension}", flush=True)
            self.M = dimension
        if self.Ks >= n:
            raise ValueError(f"nanopq: Ks={self.Ks} needs more than {self.Ks} training points, got {n}")
        self._pad = -dimension % self.M
        padded = self._padded(X)
        rng = np.random.default_rng(TRAIN_SEED)
        sample = padded if n <= TRAIN_SAMPLE else padded[np.sort(rng.choice(n, TRAIN_SAMPLE, replace=False))]
        with threadpool_limits(limits=self.threads):
            pq = nanopq.PQ(M=self.M, Ks=self.Ks, metric=METRICS[self.metric], verbose=False)
            pq.fit(sample, seed=TRAIN_SEED)
            self._codes = pq.encode(padded)
        self._pq = pq
        self._data = X  # the (normalised) vectors, for exact re-ranking
        # Queries: table look-ups and at most a matrix-vector product, on one thread.
        self._limits = threadpool_limits(limits=1)

    def set_query_arguments(self, rerank: int) -> None:
        self.rerank = max(0, int(rerank))

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        q = normalize(q.reshape(1, -1)) if self.metric == "angular" else np.asarray(q, dtype=np.float32)
        q = q.reshape(-1)
        assert self._pq is not None and self._data is not None
        scores = self._pq.dtable(self._padded(q)).adist(self._codes)
        if self.metric == "dot":
            scores = -scores  # adist gives inner products; smaller must be nearer
        n = len(scores)
        keep = min(n, max(k, self.rerank))
        candidates = np.argpartition(scores, keep - 1)[:keep] if keep < n else np.arange(n)
        if self.rerank > 0:
            vectors = self._data[candidates]
            if self.metric == "dot":
                scores = -(vectors @ q)
            else:
                diff = vectors - q
                scores = np.einsum("ij,ij->i", diff, diff)
        else:
            scores = scores[candidates]
        order = np.argsort(scores, kind="stable")[:k]
        return candidates[order].astype(np.int64)

    def get_additional(self) -> dict:
        if self._codes is None:
            return {}
        return {"dist_comps": len(self._codes) + min(self.rerank, len(self._codes))}

    def done(self) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
        self._pq = None
        self._codes = None
        self._data = None

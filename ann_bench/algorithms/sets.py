"""Sets (jaccard data) for the wrappers: an exact jaccard index over a sparse 0/1 matrix.

The runner hands a jaccard dataset over as sets: `fit` gets a list of sorted int arrays of
item ids (one per point) and each query is one such array; a batch is a list of them.
`SetMatrix` keeps the points as a binary CSR matrix (points x items) and their sizes, and
gives exact jaccard distances, 1 - |q & x| / |q | x|, from the intersections that one sparse
product counts. Two empty sets are at distance 1, as in ann_bench.distance. Items of a query
that no point has (ids beyond the matrix's width) count in |q| and meet nothing.
"""

from __future__ import annotations

import numpy as np

from ..datasets.distance import n_items, sets_to_csr

# A block of queries is made dense (items x queries float32) up to this many entries.
DENSE_QUERY_FLOATS = 1 << 21


def as_items(q) -> np.ndarray:
    """A query set as an int64 array of distinct item ids (a new array; q is not changed)."""
    return np.unique(np.asarray(q, dtype=np.int64))


class SetMatrix:
    """Exact jaccard distances from query sets to a fixed collection of sets."""

    def __init__(self, sets) -> None:
        self.width = max(1, n_items(sets))
        # float32 holds the intersection counts exactly (sets far smaller than 2^24 items).
        self.csr = sets_to_csr(sets, self.width).astype(np.float32)
        self.csr.sum_duplicates()
        self.csr.data[:] = 1.0
        self.sizes = np.diff(self.csr.indptr).astype(np.float64)
        self._mask = np.zeros(self.width, dtype=np.float32)

    def __len__(self) -> int:
        return self.csr.shape[0]

    def _indicator(self, items: np.ndarray) -> np.ndarray:
        """The query as a dense 0/1 vector over the matrix's items (a reused buffer)."""
        mask = self._mask
        mask[:] = 0.0
        mask[items[items < self.width]] = 1.0
        return mask

    def distances(self, q, rows: np.ndarray | None = None) -> np.ndarray:
        """float64 jaccard distances from the set q to every point, or to the points `rows`."""
        items = as_items(q)
        indicator = self._indicator(items)
        if rows is None:
            inter = (self.csr @ indicator).astype(np.float64)
            sizes = self.sizes
        else:
            inter = (self.csr[rows] @ indicator).astype(np.float64)
            sizes = self.sizes[rows]
        return _jaccard(inter, float(len(items)), sizes)

    def distances_many(self, queries) -> np.ndarray:
        """float64 (len(queries), n) jaccard distances of a block of query sets.

        The intersections come from the CSR points times a dense 0/1 matrix of the queries
        (sub-blocks of at most DENSE_QUERY_FLOATS entries), which is several times faster
        than a sparse-sparse product whose result is nearly dense anyway."""
        items = [as_items(q) for q in queries]
        q_sizes = np.array([len(s) for s in items], dtype=np.float64)
        inter = np.empty((len(items), len(self)), dtype=np.float64)
        step = max(1, DENSE_QUERY_FLOATS // self.width)
        for lo in range(0, len(items), step):
            block = items[lo:lo + step]
            dense = np.zeros((self.width, len(block)), dtype=np.float32)
            for j, s in enumerate(block):
                dense[s[s < self.width], j] = 1.0
            inter[lo:lo + len(block)] = (self.csr @ dense).T
        return _jaccard(inter, q_sizes[:, None], self.sizes[None, :])


def _jaccard(inter, q_size, sizes) -> np.ndarray:
    union = q_size + sizes - inter
    similarity = np.divide(inter, union, out=np.zeros(np.broadcast(inter, union).shape),
                           where=union > 0)
    return 1.0 - similarity


def nearest(distances: np.ndarray, k: int, ids: np.ndarray | None = None) -> np.ndarray:
    """The k nearest of one row of distances as int64 ids, nearest first, ties by smaller id.
    `ids` names the points the distances are for (default: 0..n-1)."""
    n = len(distances)
    if ids is None:
        ids = np.arange(n, dtype=np.int64)
    if k < n:
        part = np.argpartition(distances, k - 1)[:k]
        # Points tied with the k-th distance may be left out; which one is kept is arbitrary
        # but every choice is a right answer.
        distances, ids = distances[part], ids[part]
    order = np.lexsort((ids, distances))
    return np.asarray(ids[order], dtype=np.int64)

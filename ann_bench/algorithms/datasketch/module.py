"""datasketch: MinHash LSH Forest for jaccard similarity of sets.

Every set gets a MinHash signature of num_perm hash values; MinHashLSHForest splits it into
l prefix trees of num_perm // l values each (datasketch's sorted-array trees), and a query
walks the trees with ever shorter prefixes until it has collected the keys it asked for.

Build arguments: num_perm and l (as ann-benchmarks: num_perm [128, 256, 512], l [8 .. 128];
l may not exceed num_perm). Query argument: k_factor: the forest is asked for k * k_factor
candidates, and those are re-ranked by their exact jaccard distance (sets.SetMatrix), so an
answer is nearest first and k_factor trades time for recall (datasketch's documentation
recommends asking for a multiple of k and post-processing).

Items are int ids, so the MinHash's hash function is the identity: datasketch's default
"affine32" scheme mixes each input with the MurmurHash3 finalizer before permuting, which it
documents as safe for sequential integers (and SHA-1 of each id's bytes would only be slower).
datasketch is single-threaded pure Python and numpy, so there is no thread setting to make,
and no native batch search. get_additional reports dist_comps: the candidates re-ranked per
query (exact jaccard computations), averaged since the last set_query_arguments.
"""

from __future__ import annotations

import numpy as np
from datasketch import MinHash, MinHashLSHForest

from ..base import BaseANN
from ..sets import SetMatrix, as_items, nearest


def _identity(item: int) -> int:
    return item


class DataSketch(BaseANN):
    metrics = ("jaccard",)
    point_types = ("bit",)
    supports_batch = False
    package = "datasketch"

    def __init__(self, metric: str, num_perm: int, l: int):  # noqa: E741 (datasketch's name)
        super().__init__()
        self.checked_metric(metric)
        self.num_perm = int(num_perm)
        self.l = int(l)
        if not 0 < self.l <= self.num_perm:
            raise ValueError(f"datasketch: l={l} must be between 1 and num_perm={num_perm}")
        self.k_factor = 1
        self._forest: MinHashLSHForest | None = None
        self._sets: SetMatrix | None = None
        self._template: MinHash | None = None
        self._queries = 0
        self._candidates = 0

    def _minhash(self, items: np.ndarray) -> MinHash:
        assert self._template is not None
        m = self._template.copy()  # shares the permutations; fresh hash values
        if len(items):
            m.update_batch(items.tolist())
        return m

    def fit(self, X) -> None:
        # One MinHash made up front and copied: its permutations are drawn once, not per set.
        self._template = MinHash(num_perm=self.num_perm, hashfunc=_identity)
        forest = MinHashLSHForest(num_perm=self.num_perm, l=self.l)
        for i, items in enumerate(X):
            forest.add(i, self._minhash(as_items(items)))
        forest.index()
        self._forest = forest
        self._sets = SetMatrix(X)  # the exact sets, for re-ranking

    def set_query_arguments(self, k_factor: int) -> None:
        if int(k_factor) < 1:
            raise ValueError(f"datasketch: k_factor={k_factor} must be at least 1")
        self.k_factor = int(k_factor)
        self._queries = self._candidates = 0

    def query(self, q, k: int) -> np.ndarray:
        assert self._forest is not None and self._sets is not None
        items = as_items(q)
        keys = self._forest.query(self._minhash(items), k * self.k_factor)
        candidates = np.fromiter(keys, dtype=np.int64, count=len(keys))
        self._queries += 1
        self._candidates += len(candidates)
        if not len(candidates):
            return candidates
        return nearest(self._sets.distances(items, candidates), k, candidates)

    def get_additional(self) -> dict:
        if not self._queries:
            return {}
        return {"dist_comps": self._candidates / self._queries}

    def done(self) -> None:
        self._forest = None
        self._sets = None
        self._template = None

"""Wrappers that cheat on purpose, for the tests that prove cheating does not pay
(tests/cheats-algorithms.yaml, tests/test_cheats.py).

Each one gets a better figure than its work deserves on a harness that trusts it: its search
done outside the timer (in a lazy answer, or in get_batch_results), its answers remembered from
an earlier call, or its garbage answers made to look right by writing into the arrays the
harness computes distances from. Each does
an exact search (or none) with numpy, and sleeps `seconds` per query of real work, so that
where the clock covers the work the QPS says so plainly (under 1 / seconds). They need only
numpy, which the base image has.
"""

from __future__ import annotations

import time

import numpy as np

from ..base import BaseANN


class _Exact(BaseANN):
    """Exact search with numpy, at `seconds` per query."""

    metrics = ("euclidean", "angular")
    package = "numpy"

    def __init__(self, metric: str, seconds: float = 0.01):
        super().__init__()
        self.metric = self.checked_metric(metric)
        self.seconds = seconds

    def fit(self, X: np.ndarray) -> None:
        X = np.array(X, dtype=np.float64)
        if self.metric == "angular":
            X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-30)
        self._X = X

    def search(self, Q: np.ndarray, k: int) -> np.ndarray:
        """The k nearest of each query (one per row), after sleeping `seconds` per query."""
        Q = np.atleast_2d(np.asarray(Q, dtype=np.float64))
        time.sleep(self.seconds * len(Q))
        if self.metric == "angular":
            scores = -Q @ self._X.T
        else:
            scores = (self._X ** 2).sum(axis=1) - 2 * Q @ self._X.T
        return np.argsort(scores, axis=1, kind="stable")[:, :k]


class _Deferred:
    """An answer that does its search when it is turned into an array."""

    def __init__(self, algo: _Exact, queries: np.ndarray, k: int):
        self.algo, self.queries, self.k = algo, queries, k

    def __len__(self) -> int:
        """How many answers it stands for, so that it passes for a list of them."""
        return len(self.queries) if self.queries.ndim == 2 else self.k

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        ids = self.algo.search(self.queries, self.k)
        ids = ids[0] if self.queries.ndim == 1 else ids
        return ids if dtype is None else ids.astype(dtype)


class Lazy(_Exact):
    """Answers at once with an object whose __array__ does the search (single and batch)."""

    supports_batch = True

    def query(self, q: np.ndarray, k: int):
        return _Deferred(self, q, k)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        self._batch_results = _Deferred(self, Q, k)


class LateBatch(_Exact):
    """batch_query only keeps the queries; get_batch_results does the search."""

    supports_batch = True

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.search(q, k)[0]

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        self._queries, self._k = Q, k

    def get_batch_results(self) -> np.ndarray:
        return self.search(self._queries, self._k)


class Memoizer(_Exact):
    """Remembers every answer by its query's bytes and answers a query seen before at once: only
    a query it has not seen costs `seconds`. A cache of results, as some engines keep one."""

    def __init__(self, metric: str, seconds: float = 0.01):
        super().__init__(metric, seconds)
        self._seen: dict[bytes, np.ndarray] = {}

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        key = q.tobytes() + k.to_bytes(4, "little")
        if key not in self._seen:
            self._seen[key] = self.search(q, k)[0]
        return self._seen[key]


def _overwrite(array: np.ndarray, value) -> None:
    """Write value into array in place, by any means Python offers: making the array and every
    array it views writable again first. Gives up quietly where that is refused."""
    chain = [array]
    while isinstance(chain[-1].base, np.ndarray):
        chain.append(chain[-1].base)
    for target in reversed(chain):
        try:
            target.flags.writeable = True
        except ValueError:
            pass
    try:
        array[...] = value
    except ValueError:
        pass


class Scribbler(BaseANN):
    """Answers ids 0..k-1 for every query, and writes every training point and every query it
    is given over with the first training point, so that distances computed afterwards from
    those arrays say every answer is exact (distance 0)."""

    metrics = ("euclidean", "angular")
    supports_batch = True
    package = "numpy"

    def __init__(self, metric: str):
        super().__init__()
        self.metric = metric

    def fit(self, X: np.ndarray) -> None:
        self._first = np.array(X[0])
        _overwrite(X, self._first)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        _overwrite(q, self._first)
        return np.arange(k)

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        _overwrite(Q, self._first)
        self._batch_results = np.tile(np.arange(k), (len(Q), 1))


class InPlaceNormaliser(_Exact):
    """An honest mistake rather than a cheat: normalises the training data in place (for
    angular), so the caller's array is changed. Answers exactly, at no extra cost."""

    def __init__(self, metric: str):
        super().__init__(metric, seconds=0)

    def fit(self, X: np.ndarray) -> None:
        if self.metric == "angular":
            X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-30)
        self._X = np.array(X, dtype=np.float64)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return self.search(q, k)[0]

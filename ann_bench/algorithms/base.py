"""The interface every wrapped library implements.

A wrapper states what it supports as class attributes (data, not probing): `metrics`,
`point_types`, `supports_batch`, `supports_filter`, `supports_insert`, `supports_delete`,
`package`, `clients`, `seeded` and `index_size`, written as literals
(or names bound to literals in its module), because the host reads them from the source without importing the wrapper
(ann_bench/algorithms/declared.py); the worker checks that the imported class agrees.

What a wrapper is given (the training points, each query, the batch of queries) is read-only:
the worker computes distances from the same memory (ann_bench/run/sealed.py), so writing into
it raises ValueError ("read-only"), and a wrapper that needs to change its input, say to
normalise it, works on a copy of its own. What `query` and `get_batch_results` return is copied
into a plain numpy array inside the timer, so work deferred to that conversion (a lazy result)
is timed; `batch_query` and `get_batch_results` are timed together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
from threadpoolctl import threadpool_limits

from .filtering import LabelRange


def rss_kb() -> int:
    """Resident set size of this process in kB (what ann-benchmarks reports as index size)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def allowed_threads() -> int:
    """Threads this worker may use: OMP_NUM_THREADS (set by the executor) or its CPU affinity."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return len(os.sched_getaffinity(0))


_openmp_threads: int | None = None  # what set_openmp_threads last set


def set_openmp_threads(n: int) -> None:
    """Size every OpenMP runtime loaded in this process to n threads, the copies of libgomp
    that wheels bundle included (faiss, ngtpy, mrpt; Milvus Lite's faiss). The setting is
    process-wide, so the last call wins; it is remembered, so the call costs nothing when
    nothing changes (faiss makes it before every single query). A runtime loaded after a call
    starts at OMP_NUM_THREADS, which the executor sets to the worker's threads."""
    global _openmp_threads
    if n != _openmp_threads:
        threadpool_limits(limits=n, user_api="openmp")
        _openmp_threads = n


# How concurrent clients (run.py --clients N) query one built index; see BaseANN.clients.
CLIENT_KINDS = ("threads", "processes", "connections")
# What get_memory_usage measures, hence a result's index_size; see BaseANN.index_size.
INDEX_SIZE_KINDS = ("memory", "disk")


@dataclass
class Client:
    """One concurrent client of a wrapper that declares clients = "connections": its own query
    function (over its own connection) and what closes that connection."""

    query: Callable[[np.ndarray, int], Any]
    close: Callable[[], None]


class BaseANN:
    metrics: ClassVar[tuple[str, ...]] = ()
    point_types: ClassVar[tuple[str, ...]] = ("float",)
    supports_batch: ClassVar[bool] = False
    # Filtered search (filtering.py): set_labels before fit, then filtered_query, which hands the
    # filter to the library's own mechanism (never filters the library's answers afterwards).
    supports_filter: ClassVar[bool] = False
    # Streaming runs (run/streaming.py): insert builds the index from nothing and grows it (no fit
    # before it), delete removes points from it; both under the dataset's row numbers as ids.
    supports_insert: ClassVar[bool] = False
    supports_delete: ClassVar[bool] = False
    # The PyPI distribution whose version is recorded with every result.
    package: ClassVar[str | None] = None
    # How N concurrent clients share the index (run/clients.py): "threads" call query() on this
    # one object at once (declare it only where query releases the GIL and is safe from several
    # threads: tests/test_clients.py checks that the answers equal the sequential ones);
    # "processes" are forked after the build and share the index copy-on-write (safe for any
    # wrapper); "connections" are threads that each query through open_client() (database engines).
    clients: ClassVar[str] = "processes"
    # Whether fit hands the runner's seed (self.seed, a new one for each build of run.py
    # --repeat) to the library; tests/test_conformance.py checks the class reads self.seed
    # exactly when it says so.
    seeded: ClassVar[bool] = False
    # What get_memory_usage measures: "memory", the process's resident memory (index_size is the
    # memory fit added), or "disk", the engine's index on disk (the database engines).
    index_size: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._batch_results: Any = None
        # What messages call this run. The runner names it after the result it is making, e.g.
        # "hnswlib(M=16, efConstruction=200, ef=40)", before fit and before each query-argument
        # set, so a wrapper never names itself.
        self.name = type(self).__name__
        # The seed of this build where the library takes one: None (the library's own default)
        # for a first build, another number for each further build of `run.py --repeat`, set
        # by the runner before fit.
        self.seed: int | None = None

    def checked_metric(self, metric: str) -> str:
        """`metric`, if the class declares it: constructors call this before anything else."""
        if metric not in self.metrics:
            raise ValueError(f"{self.name}: metric '{metric}' not supported (supported: {', '.join(self.metrics)})")
        return metric

    def fit(self, X: np.ndarray) -> None:
        """Build the index on X (read-only; copy it to change it)."""
        raise NotImplementedError

    def set_query_arguments(self, *args: Any, **kwargs: Any) -> None:
        """Called before each query-argument set; wrappers without query arguments ignore it."""

    def query(self, q: np.ndarray, k: int):
        """Return the ids of (at most) k nearest neighbours of q (read-only), nearest first: an
        integer numpy array (what numpy makes one of is accepted, and made one inside the timer)."""
        raise NotImplementedError

    def set_labels(self, labels: np.ndarray) -> None:
        """The integer label of each training point (read-only), given before fit on a filtered
        dataset to a wrapper that declares supports_filter."""
        raise NotImplementedError

    def filtered_query(self, q: np.ndarray, k: int, allowed: LabelRange):
        """As query, among the points whose label is in `allowed` only."""
        raise NotImplementedError

    def insert(self, X: np.ndarray, ids: np.ndarray) -> None:
        """Add the points X (read-only) under the ids (int64 row numbers, never used before); the
        first call of a streaming run makes the index. Searches that follow may answer them."""
        raise NotImplementedError

    def delete(self, ids: np.ndarray) -> None:
        """Remove the points with these ids (all inserted before): no search that follows may
        answer one of them."""
        raise NotImplementedError

    def batch_query(self, Q: np.ndarray, k: int) -> None:
        """Answer all queries at once (Q is read-only); the answers are fetched with
        get_batch_results(), which the runner times with this call.

        The default answers one by one; a wrapper with a native batch search overrides it
        and sets supports_batch = True.
        """
        self._batch_results = [self.query(q, k) for q in Q]

    def get_batch_results(self):
        """The answers of the last batch_query: an (n, k) integer array, or one id array per query."""
        return self._batch_results

    def open_client(self) -> Client:
        """For clients = "connections": a client with a connection of its own to the built index,
        set up with the current query arguments (called once per client, before the timing)."""
        raise NotImplementedError(f"{type(self).__name__} declares clients = {self.clients!r} and has no open_client")

    def get_memory_usage(self) -> int:
        """Memory in kB now; the runner subtracts the value before fit."""
        return rss_kb()

    def get_additional(self) -> dict[str, Any]:
        """Extra figures to store with a result, e.g. {"dist_comps": n} (average per query)."""
        return {}

    def done(self) -> None:
        """Free the index."""

    def __str__(self) -> str:
        return self.name

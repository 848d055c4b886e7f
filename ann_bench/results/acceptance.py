"""The host's check of a result file a worker wrote, before anything of it reaches results/.

A worker runs untrusted code, so its file is evidence, not a result: it is read without
following links and only up to a size bound, its attributes must name what the host asked
for (algorithm, dataset, k, mode, build and query arguments), every dataset must have the
dtype and shape a result has, and the ids must be a valid answer for the dataset (of a filtered dataset: each passes its query's filter; of a
streaming set: each live at its query's search step). The result
the host then writes carries the host's own attributes (the worker's extra figures kept) and
`distances` recomputed from the host's copy of the dataset and the returned ids, never the
worker's: metrics, here and in ann-benchmarks' code, are computed from those distances.
"""

from __future__ import annotations

import io
import math
import os
import stat
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..datasets.distance import distances_to
from ..datasets.hdf5 import FILTER_ARRAYS, STREAM_OPS, sparse_points, text
from ..datasets.runbook import live_sets
from .files import STATUS_OK, RunResult, attr_value, read_open

# Attributes that must say what the host asked for.
MUST_MATCH = ("algo", "dataset", "count", "batch_mode", "build_args", "query_args")
# What only a concurrent clients' result (-c<N>) says: never a worker's extra figure in another mode.
CONCURRENT = ("clients", "duration")
# Figures every result has: finite numbers, with the lower bound each can have.
FIGURES = {"build_time": 0.0, "best_search_time": 0.0, "candidates": 0.0, "index_size": -math.inf,
           "library_seconds": 0.0}
# Memory figures (run/memory.py): a peak no larger than the machine's memory; the index's files,
# which only engines that keep them on disk report.
PEAKS = ("peak_build_mb", "peak_query_mb")
ONDISK = "ondisk_mb"
MEMORY_MEASURES = {kind + overall for kind in ("cgroup-v2", "cgroup-v1", "vmhwm") for overall in ("", "-overall")}
ARRAYS = ("neighbors", "times", "run_times", "distances")
UPDATE_TIMES = "update_times"  # a streaming set's: the seconds of each step of its runbook
MAX_EXTRA_ATTRIBUTES = 64
MAX_ATTRIBUTE_BYTES = 64 << 10
TRAIN_BYTES_PER_READ = 64 << 20


class Rejected(Exception):
    """The worker's file is not the result that was asked for; the message says why."""


class Reference:
    """The host's own copy of the dataset's points, read when a result needs its distances."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        with h5py.File(self.path, "r") as f:
            self.distance = text(f.attrs["distance"])
            self.sparse = text(f.attrs.get("type", "dense")) == "sparse"
            self.n_train = len(f["size_train"]) if self.sparse else f["train"].shape[0]
            self.n_test = len(f["size_test"]) if self.sparse else f["test"].shape[0]
            # A filtered set's (datasets/filtered.py): every returned id must pass its query's filter.
            self.labels, self.filters = (f[key][:] if key in f else None for key in FILTER_ARRAYS)
            # A streaming set's (datasets/streaming.py): every returned id must be live at its step.
            self.stream_ops = f[STREAM_OPS][:] if STREAM_OPS in f else None

    def distances(self, ids: np.ndarray) -> np.ndarray:
        """Distances from each test point to the train points `ids` names (-1: +inf)."""
        with h5py.File(self.path, "r") as f:
            if self.sparse:
                return distances_to(self.distance, sparse_points(f, "test"), sparse_points(f, "train"), ids)
            used = np.unique(ids[ids >= 0])
            rows = _gather(f["train"], used)
            local = np.where(ids >= 0, np.searchsorted(used, ids), -1)
            return distances_to(self.distance, f["test"][:], rows, local)


def _gather(train: h5py.Dataset, used: np.ndarray) -> np.ndarray:
    """train[used] for sorted distinct ids, read in contiguous blocks (bounded memory per read)."""
    out = np.empty((len(used), train.shape[1]), dtype=train.dtype)
    step = max(1, TRAIN_BYTES_PER_READ // max(1, train.dtype.itemsize * train.shape[1]))
    for lo in range(0, train.shape[0], step):
        first, last = np.searchsorted(used, [lo, lo + step])
        if first < last:
            out[first:last] = train[lo:lo + step][used[first:last] - lo]
    return out


def size_bound(n_test: int, k: int, runs: int) -> int:
    """The most bytes a result file may have: its arrays at their widest dtypes, and room for
    attributes and HDF5's own structures."""
    return n_test * k * 16 + n_test * 8 + runs * 8 + MAX_EXTRA_ATTRIBUTES * MAX_ATTRIBUTE_BYTES + (1 << 20)


def read_bytes(path: Path, limit: int, root: Path) -> bytes:
    """The file's bytes, read only if neither it nor a directory between root and it is a link
    (which would lead the host anywhere on its own filesystem)."""
    inside = Path(os.path.realpath(root)) / path.parent.relative_to(root)
    if Path(os.path.realpath(path.parent)) != inside:
        raise Rejected(f"a directory on the way to {path.name} is a link")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise Rejected(f"cannot open {path.name} as a plain file ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Rejected(f"{path.name} is not a plain file")
        if st.st_size > limit:
            raise Rejected(f"{path.name} has {st.st_size} bytes, more than the {limit} a result can have")
        return f.read(limit + 1)


def _parse(data: bytes, name: str) -> RunResult:
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            unknown = [key for key in f if key not in ARRAYS + (UPDATE_TIMES,)]
            if unknown:
                raise Rejected(f"unexpected dataset {unknown[0][:40]!r} in {name}")
            return read_open(f)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Rejected(f"{name} is not a readable result file ({' '.join(str(e).split())[:200]})") from None


def _array(result: RunResult, name: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
    data = getattr(result, name)
    if not isinstance(data, np.ndarray) or data.shape != shape or data.dtype.kind not in kind:
        found = "nothing" if data is None else f"{getattr(data, 'dtype', type(data).__name__)} {np.shape(data)}"
        raise Rejected(f"{name} is {found}, expected shape {shape} of kind {kind!r}")
    return data


def check_ids(ids: np.ndarray, n_train: int) -> None:
    """Ids in [0, n_train), distinct within a row, -1 only as padding at the end of a row."""
    if ids.size and (ids.min() < -1 or ids.max() >= n_train):
        raise Rejected(f"neighbors has ids outside [-1, {n_train})")
    padding = ids < 0
    if (padding[:, :-1] & ~padding[:, 1:]).any():
        raise Rejected("neighbors has an id after a -1 in a row")
    ordered = np.sort(np.where(padding, -1 - np.arange(ids.shape[1]), ids), axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise Rejected("neighbors repeats an id within a row")


def check_filters(ids: np.ndarray, labels: np.ndarray, filters: np.ndarray) -> None:
    """Every returned id carries a label in its query's range [lo, hi)."""
    found = labels[np.maximum(ids, 0)]
    failing = (ids >= 0) & ((found < filters[:, :1]) | (found >= filters[:, 1:]))
    if failing.any():
        query, slot = np.argwhere(failing)[0]
        lo, hi = filters[query]
        raise Rejected(f"neighbors of query {query} has id {ids[query, slot]} with label {found[query, slot]}, "
                       f"which fails its filter [{lo}, {hi})")


def check_live(ids: np.ndarray, ops: np.ndarray, n_train: int) -> None:
    """Every returned id is live at its query's search step: inserted and not deleted since (the
    queries are the search steps' in order, as many at each)."""
    lives = live_sets(ops, n_train)
    per_step = len(ids) // len(lives)
    for step, live in enumerate(lives):
        rows = ids[step * per_step:(step + 1) * per_step]
        failing = (rows >= 0) & ~live[np.maximum(rows, 0)]
        if failing.any():
            query, slot = np.argwhere(failing)[0]
            raise Rejected(f"neighbors of query {query} at search step {step + 1} has id {rows[query, slot]}, "
                           f"which is not live then (deleted, or not inserted yet)")


def _figure(attrs: dict[str, Any], key: str, lowest: float, highest: float = math.inf) -> float:
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lowest <= value < highest:
        bound = "" if highest == math.inf else f" and < {highest:g}"
        raise Rejected(f"attribute {key} is {str(value)[:40]!r}, not a finite number >= {lowest}{bound}")
    return value


def physical_memory_mb() -> float:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def _memory_figures(attrs: dict[str, Any]) -> dict[str, Any]:
    """The peaks (required, at most the machine's memory), how they were measured, and the
    on-disk size where the worker reported one."""
    figures: dict[str, Any] = {key: _figure(attrs, key, 0.0, physical_memory_mb() + 1) for key in PEAKS}
    if attrs.get("memory_measure") not in MEMORY_MEASURES:
        raise Rejected(f"attribute memory_measure is {str(attrs.get('memory_measure'))[:40]!r}, "
                       f"not one of {', '.join(sorted(MEMORY_MEASURES))}")
    figures["memory_measure"] = attrs["memory_measure"]
    if ONDISK in attrs:
        figures[ONDISK] = _figure(attrs, ONDISK, 0.0)
    return figures


def _extra_attributes(attrs: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """The wrapper's own figures (get_additional): small scalars under short names."""
    extra = {key: value for key, value in attrs.items() if key not in known}
    if len(extra) > MAX_EXTRA_ATTRIBUTES:
        raise Rejected(f"{len(extra)} extra attributes, more than {MAX_EXTRA_ATTRIBUTES}")
    for key, value in extra.items():
        if len(key) > 64 or not isinstance(value, (bool, int, float, str)):
            raise Rejected(f"extra attribute {key[:64]!r} is not a short name with a number or text")
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_BYTES:
            raise Rejected(f"extra attribute {key!r} has {len(value)} characters, more than {MAX_ATTRIBUTE_BYTES}")
    return extra


def accept(path: Path, root: Path, expected: dict[str, Any], reference: Reference, runs: int) -> RunResult:
    """The result to write for the worker's file at `path` in its output directory `root`, or
    Rejected saying why not.

    `expected` holds the attributes the host asked for (name, algo, dataset, count, batch_mode,
    build_args, query_args ... and the environment, which is merged over the worker's)."""
    k, n_test = int(expected["count"]), reference.n_test
    found = _parse(read_bytes(path, size_bound(n_test, k, runs), root), path.name)
    attrs = found.attrs
    # A concurrent clients' result (-c<N>) must also name the clients and duration asked for.
    for key in MUST_MATCH + tuple(key for key in CONCURRENT if key in expected):
        if attrs.get(key) != attr_value(expected[key]):
            raise Rejected(f"attribute {key} is {str(attrs.get(key))[:80]!r}, not {str(attr_value(expected[key]))!r}")
    if attrs.get("status") != STATUS_OK:
        raise Rejected(f"status is {str(attrs.get('status'))[:40]!r}, not {STATUS_OK!r}")
    figures = {key: _figure(attrs, key, lowest) for key, lowest in FIGURES.items()}
    figures.update(_memory_figures(attrs))
    ids = _array(found, "neighbors", (n_test, k), "iu").astype(np.int64)
    times = _array(found, "times", (n_test,), "f")
    run_times = _array(found, "run_times", (runs,), "f")
    for name, values in (("times", times), ("run_times", run_times)):
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise Rejected(f"{name} has a value that is not a finite time >= 0")
    check_ids(ids, reference.n_train)
    if reference.filters is not None:
        assert reference.labels is not None
        check_filters(ids, reference.labels, reference.filters)
    extra = {}
    if reference.stream_ops is not None:
        check_live(ids, reference.stream_ops, reference.n_train)
        update_times = found.extra.get(UPDATE_TIMES)
        if not (isinstance(update_times, np.ndarray) and update_times.shape == (len(reference.stream_ops),)
                and update_times.dtype.kind == "f" and np.isfinite(update_times).all() and (update_times >= 0).all()):
            raise Rejected(f"{UPDATE_TIMES} is not {len(reference.stream_ops)} finite times >= 0, one per step")
        extra[UPDATE_TIMES] = update_times.astype(np.float64)
    try:
        worker_environment = dict(found.environment)
    except (ValueError, TypeError):
        worker_environment = {}
    known = set(expected) | set(figures) | set(CONCURRENT) | {"status", "distance", "format_version"}
    out = dict(_extra_attributes(attrs, known), **expected, **figures)
    out.update(status=STATUS_OK, distance=reference.distance,
               environment=dict(worker_environment, **expected["environment"]))
    return RunResult(attrs=out, neighbors=ids.astype(np.int32), distances=reference.distances(ids),
                     times=times.astype(np.float64), run_times=run_times.astype(np.float64), extra=extra)

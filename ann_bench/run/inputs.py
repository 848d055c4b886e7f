"""What a worker is given of a dataset: train and test (with a filtered set's labels and
filters, a streaming set's runbook steps), never the ground truth.

The host writes, once per version of a dataset, a copy holding only its points and the
attributes that describe them (distance, type, point_type, dimension), in a cache directory
beside the dataset, named by the dataset's sha256 (so a changed dataset gets a new copy).
Executors hand the worker that file alone; `neighbors` and `distances` stay on the host, which
scores the returned ids itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..atomic import atomic_path
from ..datasets.hdf5 import FILTER_ARRAYS, STREAM_OPS, Dataset, sparse_points, text
from ..datasets.sources import sha256_file

CACHE_DIR = ".worker-inputs"
ATTRIBUTES = ("distance", "type", "point_type", "dimension")
POINTS = ("train", "test", "size_train", "size_test", STREAM_OPS) + FILTER_ARRAYS

_digests: dict[tuple, str] = {}
_lock = threading.Lock()


def cached_sha256(path: Path) -> str:
    """The file's sha256, computed once per version of the file in this process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    with _lock:
        if key not in _digests:
            _digests[key] = sha256_file(path)
        return _digests[key]


def worker_input(dataset_path: Path | str) -> Path:
    """The train-and-test-only copy of the dataset, written first if it is not there yet."""
    dataset_path = Path(dataset_path).resolve()
    digest = cached_sha256(dataset_path)
    # A dataset already in a cache folder (a cluster worker's file sent by the client) gets its
    # copy beside it, not in a cache folder of the cache folder.
    folder = dataset_path.parent if dataset_path.parent.name == CACHE_DIR else dataset_path.parent / CACHE_DIR
    target = folder / f"{dataset_path.stem}-{digest[:16]}.hdf5"
    with _lock:  # parallel tasks of one sweep: one writer
        if not target.is_file():
            with atomic_path(target) as tmp, h5py.File(dataset_path, "r") as source, h5py.File(tmp, "w") as out:
                for key in ATTRIBUTES:
                    if key in source.attrs:
                        out.attrs[key] = source.attrs[key]
                for key in POINTS:
                    if key in source:
                        source.copy(key, out)
    return target


def _whole(points: Any) -> Any:
    return points[:]  # an h5py dataset read into an array; a list of sets as it is


def load_inputs(path: Path | str, hold: Callable[[Any], Any] = _whole) -> Dataset:
    """The worker's side: the points of a file written by worker_input, each kept as `hold`
    makes it from the file's dataset (or list of sets): read whole by default; the runner seals
    them straight from the file, so train never sits in memory twice."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        kind = text(f.attrs.get("type", "dense"))
        if kind == "sparse":
            train, test = hold(sparse_points(f, "train")), hold(sparse_points(f, "test"))
        else:
            train, test = hold(f["train"]), hold(f["test"])
        distance = text(f.attrs["distance"])
        point_type = text(f.attrs.get("point_type", "bit" if kind == "sparse" else "float"))
        dimension = int(f.attrs.get("dimension", 0))
        labels, filters = (f[key][:] if key in f else None for key in FILTER_ARRAYS)
        ops = f[STREAM_OPS][:] if STREAM_OPS in f else None
    nothing = np.empty((len(test), 0), dtype=np.int32)
    return Dataset(path.stem, distance, point_type, kind, dimension, train, test, nothing, nothing.astype(np.float32),
                   labels, filters, ops)

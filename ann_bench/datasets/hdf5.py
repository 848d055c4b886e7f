"""The ann-benchmarks HDF5 layout: the one reader of dataset headers, and the writer.

Files use the ann-benchmarks layout, so a file made by either tool loads in the other:
attributes `distance`, `type` ("dense" or "sparse"), `point_type` ("float" or "bit") and
`dimension`; datasets `train`, `test`, `neighbors` (exact top-`count` ids per test point) and
`distances`, in ann-benchmarks' conventions for every metric (hamming distances are the
fraction of differing bits). Sparse (jaccard) files store `train`/`test` as the concatenation
of all sets' items, with each set's length in `size_train`/`size_test`. Files from older
ann-benchmarks releases may lack `type`, `point_type` or `dimension`; they default to dense,
float (bit for sparse) and the width of `train`.

Files written here add `build_sha256` (the sha256 of their arrays, see `content_sha256`), and
built datasets their `source`, `licence`, `version` and `source_sha256` (the pins of what they
were built from).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from ..atomic import atomic_path
from ..errors import DatasetError, UserError
from ..paths import PYTHON
from .distance import METRICS, n_items
from .groundtruth import DEFAULT_MEMORY_BYTES, Points, exact_knn

_ROWS_PER_WRITE = 1 << 16
_READ_BYTES = 64 << 20
# Attributes an ann-bench build adds, in the order --list and the README show them.
PROVENANCE = ("source", "licence", "version", "source_sha256", "build_sha256")
# What a filtered dataset adds (datasets/filtered.py): a label per training point, a label
# range [lo, hi) per query.
FILTER_ARRAYS = ("train_labels", "test_filters")
# What a streaming set adds (datasets/streaming.py): its runbook's steps as (operation, lo, hi) rows.
STREAM_OPS = "stream_ops"


@dataclass
class Dataset:
    """A loaded dataset; for sparse (jaccard) data `train`/`test` are lists of int32 arrays."""

    name: str
    distance: str
    point_type: str
    type: str
    dimension: int
    train: Any
    test: Any
    neighbors: np.ndarray
    distances: np.ndarray
    # A filtered set's (FILTER_ARRAYS); None elsewhere.
    train_labels: np.ndarray | None = None
    test_filters: np.ndarray | None = None
    # A streaming set's (STREAM_OPS); None elsewhere.
    stream_ops: np.ndarray | None = None


@dataclass
class Header:
    """What the attributes and shapes of a file say, read without loading the arrays."""

    distance: str
    type: str
    point_type: str
    dimension: int | None
    n_train: int
    n_test: int
    count: int


class Malformed(Exception):
    """The file opens but does not have the layout (or its values are wrong)."""


def validate(path: Path | str) -> None:
    """Raise DatasetError unless `path` has the layout; reads only the index and the tails."""
    _read(Path(path), whole=False)


def load_dataset(path: Path | str) -> Dataset:
    """The whole dataset at `path`; a damaged or malformed file raises DatasetError."""
    data = _read(Path(path), whole=True)
    assert data is not None
    return data


def damaged(path: Path, reason: str) -> DatasetError:
    """The one message for a file that is not a usable dataset, with how to get it again."""
    from .registry import DATASETS  # the registry imports this module: imported when needed

    reason = " ".join(reason.split())
    if path.stem in DATASETS:
        fix = f"delete it and run `{fetch_command(path)}` to fetch or build it again"
    else:
        fix = "fix it, or delete it and import or copy a good one"
    return DatasetError(f"{path} is damaged or not a dataset ({reason}); {fix}")


def _read(path: Path, whole: bool) -> Dataset | None:
    try:
        with h5py.File(path, "r") as f:
            header = read_header(f)
            neighbors = f["neighbors"][:]
            if header.n_train and neighbors.size and not (
                    -1 <= neighbors.min() and neighbors.max() < header.n_train):
                raise Malformed(f"neighbors outside [-1, {header.n_train})")
            if not whole:
                _read_tail(f["train"])
                _read_tail(f["test"])
                return None
            train, test = _points(f, header)
            dimension = header.dimension if header.dimension is not None else \
                max(n_items(train), n_items(test))
            labels, filters = (f[key][:] if key in f else None for key in FILTER_ARRAYS)
            return Dataset(path.stem, header.distance, header.point_type, header.type,
                           dimension, train, test, neighbors, f["distances"][:], labels, filters,
                           f[STREAM_OPS][:] if STREAM_OPS in f else None)
    except (OSError, ValueError, KeyError, Malformed) as error:
        raise damaged(path, str(error) or type(error).__name__) from None


def _read_tail(dataset: h5py.Dataset) -> np.ndarray:
    """The last row, whose read fails if the file lost its end."""
    return dataset[-1:]


def fetch_command(path: Path) -> str:
    command = f"{PYTHON} -m ann_bench.datasets {path.stem}"
    if path.parent.resolve() != Path("data").resolve():
        command += f" --data-dir {path.parent}"
    return command


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def read_header(f: h5py.File) -> Header:
    """The header of an open file; Malformed unless it has the layout."""
    attrs = f.attrs
    distance = text(attrs.get("distance"))
    if distance not in METRICS:
        raise Malformed(f"attribute distance is {distance!r}, not one of {', '.join(METRICS)}")
    kind = text(attrs.get("type", "dense"))
    if kind not in ("dense", "sparse"):
        raise Malformed(f"attribute type is {kind!r}, not dense or sparse")
    needed = ["train", "test", "neighbors", "distances"]
    needed += ["size_train", "size_test"] if kind == "sparse" else []
    missing = [key for key in needed if key not in f]
    if missing:
        raise Malformed(f"missing {', '.join(missing)}")
    dimension: int | None
    if kind == "sparse":
        n_train, n_test = _check_sparse(f)
        dimension = int(attrs["dimension"]) if "dimension" in attrs else None
    else:
        n_train, n_test, dimension = _check_dense(f, attrs)
    neighbors, distances = f["neighbors"], f["distances"]
    if neighbors.ndim != 2 or neighbors.shape[0] != n_test:
        raise Malformed(f"neighbors has shape {neighbors.shape}, expected ({n_test}, count)")
    if distances.shape != neighbors.shape:
        raise Malformed(f"distances has shape {distances.shape}, neighbors {neighbors.shape}")
    point_type = text(attrs.get("point_type", "bit" if kind == "sparse" else "float"))
    return Header(distance, kind, point_type, dimension, n_train, n_test, neighbors.shape[1])


def file_header(path: Path | str) -> Header:
    """The header of the file at `path`, read without loading its points; sets that record no
    dimension get their item universe, as load_dataset gives them. A damaged file raises
    DatasetError."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            header = read_header(f)
            if header.dimension is None:
                header = replace(header, dimension=n_items([f["train"][:], f["test"][:]]))
            return header
    except (OSError, ValueError, KeyError, Malformed) as error:
        raise damaged(path, str(error) or type(error).__name__) from None


def _check_dense(f: h5py.File, attrs: Mapping[str, Any]) -> tuple[int, int, int]:
    train, test = f["train"], f["test"]
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise Malformed(f"train {train.shape} and test {test.shape} are not matching 2-D arrays")
    dimension = int(attrs.get("dimension", train.shape[1]))
    if dimension != train.shape[1]:
        raise Malformed(f"attribute dimension is {dimension} but train has {train.shape[1]} "
                        f"columns")
    return train.shape[0], test.shape[0], dimension


def _check_sparse(f: h5py.File) -> tuple[int, int]:
    counts = []
    for key in ("train", "test"):
        sizes = f[f"size_{key}"]
        if f[key].ndim != 1 or sizes.ndim != 1 or int(np.sum(sizes[:])) != f[key].shape[0]:
            raise Malformed(f"size_{key} does not add up to the length of {key}")
        counts.append(sizes.shape[0])
    return counts[0], counts[1]


def _points(f: h5py.File, header: Header) -> tuple[Any, Any]:
    if header.type == "dense":
        return f["train"][:], f["test"][:]
    train, test = (_split(f[key][:], f[f"size_{key}"][:]) for key in ("train", "test"))
    return train, test


def _split(flat: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    return np.split(flat.astype(np.int32), np.cumsum(sizes)[:-1].astype(np.int64))


def sparse_points(f: h5py.File, key: str) -> list[np.ndarray]:
    """The sets stored under `key` ("train" or "test") of a sparse file."""
    return _split(f[key][:], f[f"size_{key}"][:])


def content_sha256(f: h5py.File) -> str:
    """sha256 of the arrays of an open file (name, dtype, shape and bytes of each, in a fixed
    order), read in pieces: the same data gives the same digest whatever the HDF5 library."""
    digest = hashlib.sha256()
    for key in ("train", "size_train", "test", "size_test", "neighbors", "distances") + FILTER_ARRAYS + (STREAM_OPS,):
        if key not in f:
            continue
        data = f[key]
        digest.update(f"{key} {data.dtype.str} {data.shape}\n".encode())
        rows = max(1, _READ_BYTES // max(1, data.dtype.itemsize * int(np.prod(data.shape[1:]))))
        for lo in range(0, data.shape[0], rows):
            digest.update(np.ascontiguousarray(data[lo:lo + rows]).tobytes())
    return digest.hexdigest()


def write_dataset(path: Path | str, train: Points, test: Points, distance: str,
                  point_type: str = "float", neighbors: np.ndarray | None = None,
                  distances: np.ndarray | None = None, count: int = 100, progress: bool = True,
                  attrs: Mapping[str, Any] | None = None,
                  memory_bytes: int = DEFAULT_MEMORY_BYTES,
                  arrays: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the ann-benchmarks layout to `path` atomically (a temporary file in the same
    directory, then a rename). Without neighbors/distances, the exact top `count` is computed,
    reading train back from the file in chunks (so `train` may be a memory map or an HDF5
    dataset larger than memory). Jaccard data (lists of sets) is written sparse; hamming and
    jaccard points are stored as bits. `attrs` are added to the file's attributes, `arrays`
    (a filtered set's labels and filters) to its datasets."""
    if distance not in METRICS:
        raise UserError(f"unknown distance {distance!r}; expected one of {', '.join(METRICS)}")
    path = Path(path)
    with atomic_path(path) as temporary:
        with h5py.File(temporary, "w") as f:
            if distance == "jaccard":
                _write_sparse(f, train, test)
            else:
                _write_dense(f, train, test, distance, point_type)
            f.attrs["distance"] = distance
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            if neighbors is None or distances is None:
                if distance == "jaccard":
                    stored_train, stored_test = sparse_points(f, "train"), sparse_points(f, "test")
                else:
                    stored_train, stored_test = f["train"], f["test"][:]
                neighbors, distances = exact_knn(stored_train, stored_test, count, distance,
                                                 progress=progress, memory_bytes=memory_bytes)
            f.create_dataset("neighbors", data=np.asarray(neighbors, dtype=np.int32))
            f.create_dataset("distances", data=np.asarray(distances, dtype=np.float32))
            for key, values in (arrays or {}).items():
                f.create_dataset(key, data=values)
            f.attrs["build_sha256"] = content_sha256(f)
    return path


def _write_dense(f: h5py.File, train: Points, test: Points, distance: str,
                 point_type: str) -> None:
    if not hasattr(train, "shape"):
        train, test = np.asarray(train), np.asarray(test)
    dtype = bool if distance == "hamming" else \
        np.result_type(np.asarray(train[:1]), np.asarray(test[:1]))
    f.attrs["type"] = "dense"
    f.attrs["point_type"] = "bit" if distance == "hamming" else point_type
    f.attrs["dimension"] = train.shape[1]
    for key, X in (("train", train), ("test", test)):
        out = f.create_dataset(key, shape=X.shape, dtype=dtype)
        for lo in range(0, X.shape[0], _ROWS_PER_WRITE):
            out[lo:lo + _ROWS_PER_WRITE] = np.asarray(X[lo:lo + _ROWS_PER_WRITE], dtype=dtype)


def _write_sparse(f: h5py.File, train: Points, test: Points) -> None:
    train, test = ([np.sort(np.asarray(s, dtype=np.int32)) for s in sets]
                   for sets in (train, test))
    f.attrs["type"] = "sparse"
    f.attrs["point_type"] = "bit"
    f.attrs["dimension"] = max(n_items(train), n_items(test))
    for key, sets in (("train", train), ("test", test)):
        flat = np.concatenate(sets) if sets else np.empty(0, dtype=np.int32)
        f.create_dataset(key, data=flat)
        f.create_dataset(f"size_{key}", data=np.array([len(s) for s in sets], dtype=np.int32))


def provenance(path: Path | str) -> dict[str, Any]:
    """The provenance attributes of a file (those it has); source_sha256 as a dict."""
    with h5py.File(path, "r") as f:
        found = {key: text(f.attrs[key]) for key in PROVENANCE if key in f.attrs}
    if "source_sha256" in found:
        found["source_sha256"] = json.loads(found["source_sha256"])
    return found

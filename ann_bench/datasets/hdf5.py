"""The ann-benchmarks HDF5 layout: the one reader of dataset headers, and the writer.

Files use the ann-benchmarks layout, so a file made by either tool loads in the other:
attributes `distance`, `type` ("dense" or "sparse"), `point_type` ("float" or "bit") and
`dimension`; datasets `train`, `test`, `neighbors` (exact top-`count` ids per test point) and
`distances`. Sparse (jaccard) files store `train`/`test` as the concatenation of all sets'
items, with each set's length in `size_train`/`size_test`. Files from older ann-benchmarks
releases may lack `type`, `point_type` or `dimension`; they default to dense, float (bit for
sparse) and the width of `train`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..atomic import atomic_path
from ..errors import DatasetError, UserError
from ..paths import PYTHON
from .distance import METRICS, n_items
from .groundtruth import exact_knn


@dataclass
class Dataset:
    """A loaded dataset; for sparse (jaccard) data `train`/`test` are lists of int32 arrays."""

    name: str
    distance: str
    point_type: str
    type: str
    dimension: int
    train: object
    test: object
    neighbors: np.ndarray
    distances: np.ndarray


def validate(path):
    """Raise DatasetError unless `path` has the layout; reads only the index and the tails."""
    _read(path, whole=False)


def load_dataset(path):
    """The whole dataset at `path`; a damaged or malformed file raises DatasetError."""
    return _read(path, whole=True)


def _read(path, whole):
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            header = _header(f)
            neighbors = f["neighbors"][:]
            if header["n_train"] and neighbors.size and not (
                    -1 <= neighbors.min() and neighbors.max() < header["n_train"]):
                raise _Malformed(f"neighbors outside [-1, {header['n_train']})")
            if not whole:
                _read_tail(f["train"])
                _read_tail(f["test"])
                return None
            train, test = _points(f, header)
            return Dataset(path.stem, header["distance"], header["point_type"], header["type"],
                           header["dimension"], train, test, neighbors, f["distances"][:])
    except (OSError, ValueError, _Malformed) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DatasetError(f"{path} is damaged or not a dataset ({reason}); delete it and run "
                           f"`{_fetch_command(path)}` to fetch it again") from None


def _read_tail(dataset):
    """The last row, whose read fails if the file lost its end."""
    return dataset[-1:]


def _fetch_command(path):
    command = f"{PYTHON} -m ann_bench.datasets {path.stem}"
    if path.parent.resolve() != Path("data").resolve():
        command += f" --data-dir {path.parent}"
    return command


class _Malformed(Exception):
    """The file opens but does not have the layout."""


def _header(f):
    attrs = f.attrs
    distance = _text(attrs.get("distance"))
    if distance not in METRICS:
        raise _Malformed(f"attribute distance is {distance!r}, not one of {', '.join(METRICS)}")
    kind = _text(attrs.get("type", "dense"))
    if kind not in ("dense", "sparse"):
        raise _Malformed(f"attribute type is {kind!r}, not dense or sparse")
    needed = ["train", "test", "neighbors", "distances"]
    needed += ["size_train", "size_test"] if kind == "sparse" else []
    missing = [key for key in needed if key not in f]
    if missing:
        raise _Malformed(f"missing {', '.join(missing)}")
    if kind == "sparse":
        n_train, n_test = _check_sparse(f)
        dimension = int(attrs["dimension"]) if "dimension" in attrs else None
    else:
        n_train, n_test, dimension = _check_dense(f, attrs)
    neighbors, distances = f["neighbors"], f["distances"]
    if neighbors.ndim != 2 or neighbors.shape[0] != n_test:
        raise _Malformed(f"neighbors has shape {neighbors.shape}, expected ({n_test}, count)")
    if distances.shape != neighbors.shape:
        raise _Malformed(f"distances has shape {distances.shape}, neighbors {neighbors.shape}")
    point_type = _text(attrs.get("point_type", "bit" if kind == "sparse" else "float"))
    return {"distance": distance, "type": kind, "point_type": point_type,
            "dimension": dimension, "n_train": n_train}


def _check_dense(f, attrs):
    train, test = f["train"], f["test"]
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise _Malformed(f"train {train.shape} and test {test.shape} are not matching 2-D arrays")
    dimension = int(attrs.get("dimension", train.shape[1]))
    if dimension != train.shape[1]:
        raise _Malformed(f"attribute dimension is {dimension} but train has {train.shape[1]} "
                         f"columns")
    return train.shape[0], test.shape[0], dimension


def _check_sparse(f):
    counts = []
    for key in ("train", "test"):
        sizes = f[f"size_{key}"]
        if f[key].ndim != 1 or sizes.ndim != 1 or int(np.sum(sizes[:])) != f[key].shape[0]:
            raise _Malformed(f"size_{key} does not add up to the length of {key}")
        counts.append(sizes.shape[0])
    return tuple(counts)


def _points(f, header):
    if header["type"] == "dense":
        return f["train"][:], f["test"][:]
    train, test = (_split(f[key][:], f[f"size_{key}"][:]) for key in ("train", "test"))
    if header["dimension"] is None:
        header["dimension"] = max(n_items(train), n_items(test))
    return train, test


def _split(flat, sizes):
    return np.split(flat.astype(np.int32), np.cumsum(sizes)[:-1].astype(np.int64))


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def write_dataset(path, train, test, distance, point_type="float", neighbors=None,
                  distances=None, count=100, progress=True):
    """Write the ann-benchmarks layout to `path` atomically (a temporary file in the same
    directory, then a rename). Without neighbors/distances, the exact top `count` is
    computed. Jaccard data (lists of sets) is written sparse; hamming and jaccard points are
    stored as bits."""
    if distance not in METRICS:
        raise UserError(f"unknown distance {distance!r}; expected one of {', '.join(METRICS)}")
    path = Path(path)
    if neighbors is None or distances is None:
        neighbors, distances = exact_knn(train, test, count, distance, progress=progress)
    with atomic_path(path) as temporary:
        with h5py.File(temporary, "w") as f:
            if distance == "jaccard":
                _write_sparse(f, train, test)
            else:
                _write_dense(f, train, test, distance, point_type)
            f.attrs["distance"] = distance
            f.create_dataset("neighbors", data=np.asarray(neighbors, dtype=np.int32))
            f.create_dataset("distances", data=np.asarray(distances, dtype=np.float32))
    return path


def _write_dense(f, train, test, distance, point_type):
    train, test = np.asarray(train), np.asarray(test)
    if distance == "hamming":
        train, test, point_type = train.astype(bool), test.astype(bool), "bit"
    f.attrs["type"] = "dense"
    f.attrs["point_type"] = point_type
    f.attrs["dimension"] = train.shape[1]
    f.create_dataset("train", data=train)
    f.create_dataset("test", data=test)


def _write_sparse(f, train, test):
    train, test = ([np.sort(np.asarray(s, dtype=np.int32)) for s in sets]
                   for sets in (train, test))
    f.attrs["type"] = "sparse"
    f.attrs["point_type"] = "bit"
    f.attrs["dimension"] = max(n_items(train), n_items(test))
    for key, sets in (("train", train), ("test", test)):
        flat = np.concatenate(sets) if sets else np.empty(0, dtype=np.int32)
        f.create_dataset(key, data=flat)
        f.create_dataset(f"size_{key}", data=np.array([len(s) for s in sets], dtype=np.int32))



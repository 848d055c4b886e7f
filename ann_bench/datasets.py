"""Datasets: the registry, download or local build, and reading/writing the HDF5 layout.

Files use the ann-benchmarks layout, so a file made by either tool loads in the other:
attributes `distance`, `type` ("dense" or "sparse"), `point_type` ("float" or "bit") and
`dimension`; datasets `train`, `test`, `neighbors` (exact top-`count` ids per test point) and
`distances`. Sparse (jaccard) files store `train`/`test` as the concatenation of all sets'
items, with each set's length in `size_train`/`size_test`. Files from older ann-benchmarks
releases may lack `type`, `point_type` or `dimension`; they default to dense, float (bit for
sparse) and the width of `train`.

    python -m ann_bench.datasets NAME [--data-dir DIR]   # fetch or build NAME, print its path
    python -m ann_bench.datasets --list                  # the registry, and what is present
"""

import argparse
import difflib
import http.client
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import h5py
import numpy as np
from tqdm import tqdm

from ann_bench.distance import METRICS, n_items
from ann_bench.errors import DatasetError, UnknownNameError, UserError
from ann_bench.groundtruth import exact_knn

DEFAULT_BASE_URL = "http://ann-benchmarks.com"
URL_ENV = "ANN_BENCH_DATASET_URL"
# ann-benchmarks.com sits behind a firewall that rejects urllib's default agent.
_USER_AGENT = "Mozilla/5.0 (compatible; ann-bench)"
_TIMEOUT_S = 60
_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: fetched from `url`, or made by `builder()` -> (train, test)."""

    name: str
    distance: str
    dimension: int
    url: str | None
    size_bytes: int | None
    point_type: str = "float"
    type: str = "dense"
    builder: Callable | None = None
    description: str = ""


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


# ---------------------------------------------------------------------------------------
# Local builders. Fixed seeds and explicit dtypes make them identical on every machine;
# tests pin a checksum so a numpy release that changes a random stream is noticed.


def _blobs(seed, n_points, dimension, n_centers):
    """Gaussian blobs (unit spread, centres uniform in [-10, 10]), as ann-benchmarks' random
    sets; equal-sized clusters in random order, the last 10% held out as queries."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_centers, dimension), dtype=np.float64) * 20.0 - 10.0
    labels = rng.permutation(n_points) % n_centers
    X = (centres[labels] + rng.standard_normal((n_points, dimension), dtype=np.float64))
    X = X.astype(np.float32)
    n_test = n_points // 10
    return X[:-n_test], X[-n_test:]


def _digits():
    """scikit-learn's bundled 8x8 digits (1797 x 64); every 10th image is a query."""
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32)
    is_test = np.arange(len(X)) % 10 == 0
    return X[~is_test], X[is_test]


def _random_sets(seed=7, n_points=10_000, universe=500, n_topics=50):
    """Sets drawn around 50 random "topics" of ~30 items: each keeps 80% of its topic's items
    and gains ~5 random ones. 9,000 train, 1,000 queries."""
    rng = np.random.default_rng(seed)
    topics = rng.random((n_topics, universe), dtype=np.float64) < 30 / universe
    labels = rng.permutation(n_points) % n_topics
    kept = rng.random((n_points, universe), dtype=np.float64) < 0.8
    extra = rng.random((n_points, universe), dtype=np.float64) < 5 / universe
    members = (topics[labels] & kept) | extra
    sets = [np.flatnonzero(row).astype(np.int32) for row in members]
    return sets[:9_000], sets[9_000:]


def _random_bits(seed=11, n_points=10_000, dimension=64, n_prototypes=100):
    """Bit vectors: 100 random prototypes with each bit flipped with probability 0.1."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((n_prototypes, dimension), dtype=np.float64) < 0.5
    labels = rng.permutation(n_points) % n_prototypes
    flips = rng.random((n_points, dimension), dtype=np.float64) < 0.1
    X = prototypes[labels] ^ flips
    return X[:9_000], X[9_000:]


# ---------------------------------------------------------------------------------------
# The registry. Remote sizes are approximate (from ann-benchmarks' README).

_MB = 10 ** 6


def _remote(name, distance, dimension, size_mb, description, point_type="float",
            type="dense"):
    return DatasetSpec(name, distance, dimension, f"{DEFAULT_BASE_URL}/{name}.hdf5",
                       int(size_mb * _MB), point_type, type, None, description)


def _local(name, distance, dimension, builder, description, point_type="float"):
    kind = "sparse" if distance == "jaccard" else "dense"
    return DatasetSpec(name, distance, dimension, None, None, point_type, kind, builder,
                       description)


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    _remote("deep-image-96-angular", "angular", 96, 3600, "Deep1B image descriptors, 10M"),
    _remote("fashion-mnist-784-euclidean", "euclidean", 784, 217, "Fashion-MNIST, 60k"),
    _remote("gist-960-euclidean", "euclidean", 960, 3600, "GIST image descriptors, 1M"),
    _remote("glove-25-angular", "angular", 25, 121, "GloVe Twitter word vectors, 1.2M"),
    _remote("glove-50-angular", "angular", 50, 235, "GloVe Twitter word vectors, 1.2M"),
    _remote("glove-100-angular", "angular", 100, 463, "GloVe Twitter word vectors, 1.2M"),
    _remote("glove-200-angular", "angular", 200, 918, "GloVe Twitter word vectors, 1.2M"),
    _remote("kosarak-jaccard", "jaccard", 27983, 33, "Kosarak click-stream sets, 75k",
            point_type="bit", type="sparse"),
    # Despite its name, ann-benchmarks writes this file as angular: its 65th dimension
    # (the Xbox-paper transform) turns the factors' inner product into a cosine search.
    _remote("lastfm-64-dot", "angular", 65, 135, "Last.fm matrix-factorisation vectors, 292k"),
    _remote("mnist-784-euclidean", "euclidean", 784, 217, "MNIST digits, 60k"),
    _remote("movielens10m-jaccard", "jaccard", 65134, 63, "MovieLens-10M rating sets, 69k",
            point_type="bit", type="sparse"),
    _remote("nytimes-256-angular", "angular", 256, 301, "NYTimes bag-of-words, 290k"),
    _remote("sift-128-euclidean", "euclidean", 128, 501, "SIFT image descriptors, 1M"),
    _local("random-xs-20-euclidean", "euclidean", 20, lambda: _blobs(1, 10_000, 20, 100),
           "Gaussian blobs, 9,000 + 1,000 queries"),
    _local("random-xs-20-angular", "angular", 20, lambda: _blobs(1, 10_000, 20, 100),
           "Gaussian blobs, 9,000 + 1,000 queries"),
    _local("random-s-100-euclidean", "euclidean", 100, lambda: _blobs(2, 100_000, 100, 1000),
           "Gaussian blobs, 90,000 + 10,000 queries"),
    _local("random-s-100-angular", "angular", 100, lambda: _blobs(2, 100_000, 100, 1000),
           "Gaussian blobs, 90,000 + 10,000 queries"),
    _local("digits-64-euclidean", "euclidean", 64, _digits,
           "scikit-learn digits, 1,617 + 180 queries"),
    _local("random-jaccard", "jaccard", 500, _random_sets,
           "random sets around topics, 9,000 + 1,000 queries", point_type="bit"),
    _local("random-hamming-bits", "hamming", 64, _random_bits,
           "64-bit vectors around prototypes, 9,000 + 1,000 queries", point_type="bit"),
)}


# ---------------------------------------------------------------------------------------
# Names and paths


def resolve_name(name):
    """The registered full name for `name`, which may be a unique prefix ending before a '-'
    (`glove-100`, `sift`, `mnist`); an unknown or ambiguous name raises UnknownNameError."""
    name = name.strip().lower()
    if name in DATASETS:
        return name
    matches = sorted(full for full in DATASETS if full.startswith(name + "-"))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownNameError(f"dataset {name!r} is ambiguous: {', '.join(matches)}")
    raise UnknownNameError(f"unknown dataset {name!r}; closest: {', '.join(_closest(name))} "
                           f"(all: python -m ann_bench.datasets --list)")


def _closest(name, n=3):
    """Registered names most like `name`, comparing against each name with and without its
    distance suffix so short names are not penalised for being short."""
    def likeness(full):
        forms = (full, full.rsplit("-", 1)[0], full.split("-")[0])
        return max(difflib.SequenceMatcher(None, name, form).ratio() for form in forms)
    return sorted(DATASETS, key=lambda full: (-likeness(full), full))[:n]


def dataset_path(name, data_dir="data"):
    """data_dir/<full name>.hdf5; an unregistered name is accepted if that file exists."""
    try:
        return Path(data_dir) / f"{resolve_name(name)}.hdf5"
    except UnknownNameError:
        custom = Path(data_dir) / f"{name}.hdf5"
        if custom.exists():
            return custom
        raise


def dataset_url(spec):
    """Where to fetch a remote dataset; ANN_BENCH_DATASET_URL replaces the base (a mirror)."""
    base = os.environ.get(URL_ENV)
    return f"{base.rstrip('/')}/{spec.name}.hdf5" if base else spec.url


# ---------------------------------------------------------------------------------------
# Getting a dataset


def get_dataset(name, data_dir="data", progress=True):
    """Path of the dataset's file: checked if present, else built locally or downloaded."""
    path = dataset_path(name, data_dir)
    if path.exists():
        validate(path)
        return path
    spec = DATASETS[resolve_name(name)]
    if spec.builder is not None:
        if progress:
            print(f"building {spec.name} locally", file=sys.stderr)
        train, test = spec.builder()
        write_dataset(path, train, test, spec.distance, spec.point_type, progress=progress)
        return path
    url = dataset_url(spec)
    download(url, path, progress)
    try:
        validate(path)
    except DatasetError as error:
        path.unlink()
        raise DatasetError(f"the file downloaded from {url} is not a valid dataset ({error}); "
                           f"it was deleted, retry later or set {URL_ENV} to a mirror") from None
    return path


def download(url, dest, progress=True):
    """Fetch `url` into `dest` through `dest`.part, resuming a partial file with a Range
    request; `dest` appears only once the whole file (per Content-Length) has arrived."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=_TIMEOUT_S)
    except HTTPError as error:
        if error.code == 416 and offset:
            return _range_not_satisfiable(url, dest, part, offset, error, progress)
        raise DatasetError(f"cannot download {url}: HTTP {error.code} {error.reason}; check "
                           f"the name, or set {URL_ENV} to a mirror that has it") from None
    except (URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DatasetError(f"cannot reach {url} ({reason}); check the network, or set "
                           f"{URL_ENV} to a reachable mirror") from None
    with response:
        start, total = _response_range(response, offset)
        if start is None:
            if not offset:
                raise DatasetError(f"{url} answered with a partial response nobody asked for; "
                                   f"set {URL_ENV} to another mirror")
            part.unlink()  # A 206 for other bytes than asked: start over without Range.
            return download(url, dest, progress)
        received, failure = _stream(response, part, start, total, dest.name, progress)
    if failure is not None or (total is not None and received != total):
        stopped = f"{received} of {total} bytes" if total is not None else f"{received} bytes"
        raise DatasetError(f"download of {url} stopped after {stopped}"
                           f"{f' ({failure})' if failure else ''}; run the same command again "
                           f"to resume from {part}")
    os.replace(part, dest)
    return dest


def _response_range(response, offset):
    """(first byte of the body, total file size or None); (None, _) if unusable."""
    length = response.headers.get("Content-Length")
    length = int(length) if length is not None else None
    if response.status != 206:
        return 0, length  # A full body: the server ignored Range, or none was sent.
    first, total = _content_range(response.headers.get("Content-Range"))
    if first != offset:
        return None, None
    if total is None and length is not None:
        total = offset + length
    return offset, total


def _content_range(value):
    """(first byte, total or None) from 'bytes a-b/total' or 'bytes */total'."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (value or "").strip())
    if not match:
        return None, None
    first = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return first, total


def _range_not_satisfiable(url, dest, part, offset, error, progress):
    """416: the partial file is already whole (rename it) or longer than the file (restart)."""
    _, total = _content_range(error.headers.get("Content-Range"))
    if total == offset:
        os.replace(part, dest)
        return dest
    part.unlink()
    return download(url, dest, progress)


def _stream(response, part, start, total, label, progress):
    """Append the body to `part` (truncated to `start` first): (file size, failure or None)."""
    received, failure = start, None
    with open(part, "r+b" if start else "wb") as out, \
            tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=label, file=sys.stderr, disable=not progress) as bar:
        out.truncate(start)
        out.seek(start)
        while True:
            try:
                chunk = response.read(_READ_BYTES)
            except (http.client.HTTPException, OSError) as error:
                failure = str(error) or type(error).__name__
                break
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received, failure


# ---------------------------------------------------------------------------------------
# Reading and writing the layout


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
    command = f"python -m ann_bench.datasets {path.stem}"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(temporary, "w") as f:
            if distance == "jaccard":
                _write_sparse(f, train, test)
            else:
                _write_dense(f, train, test, distance, point_type)
            f.attrs["distance"] = distance
            f.create_dataset("neighbors", data=np.asarray(neighbors, dtype=np.int32))
            f.create_dataset("distances", data=np.asarray(distances, dtype=np.float32))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
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


# ---------------------------------------------------------------------------------------
# Command line


def _size(spec):
    if spec.size_bytes is None:
        return "-"
    if spec.size_bytes >= 10 ** 9:
        return f"{spec.size_bytes / 10 ** 9:.1f} GB"
    return f"{spec.size_bytes / _MB:.0f} MB"


def _table(data_dir):
    rows = [("name", "distance", "dimension", "size", "source", "present")]
    for spec in DATASETS.values():
        present = (Path(data_dir) / f"{spec.name}.hdf5").exists()
        rows.append((spec.name, spec.distance, str(spec.dimension), _size(spec),
                     "local" if spec.builder else "remote", "yes" if present else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m ann_bench.datasets",
        description="Fetch or build one dataset into the data directory and print its path.")
    parser.add_argument("name", nargs="?", help="full or short name, e.g. glove-100, sift")
    parser.add_argument("--data-dir", default="data", help="where datasets live (data)")
    parser.add_argument("--list", action="store_true", help="list the registered datasets")
    args = parser.parse_args(argv)
    if not args.list and not args.name:
        parser.error("give a dataset NAME, or --list")
    try:
        print(_table(args.data_dir) if args.list else get_dataset(args.name, args.data_dir))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

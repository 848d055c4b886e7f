"""The registry of datasets (fetched or built locally), their names, and getting one.

    python -m ann_bench.datasets NAME [--data-dir DIR]   # fetch or build NAME, print its path
    python -m ann_bench.datasets --list                  # the registry, and what is present
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DatasetError, UnknownNameError
from ..paths import PYTHON
from . import builders
from .download import DEFAULT_BASE_URL, URL_ENV, download
from .hdf5 import validate, write_dataset

log = logging.getLogger(__name__)


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
    _local("random-xs-20-euclidean", "euclidean", 20, lambda: builders.blobs(1, 10_000, 20, 100),
           "Gaussian blobs, 9,000 + 1,000 queries"),
    _local("random-xs-20-angular", "angular", 20, lambda: builders.blobs(1, 10_000, 20, 100),
           "Gaussian blobs, 9,000 + 1,000 queries"),
    _local("random-s-100-euclidean", "euclidean", 100, lambda: builders.blobs(2, 100_000, 100, 1000),
           "Gaussian blobs, 90,000 + 10,000 queries"),
    _local("random-s-100-angular", "angular", 100, lambda: builders.blobs(2, 100_000, 100, 1000),
           "Gaussian blobs, 90,000 + 10,000 queries"),
    _local("digits-64-euclidean", "euclidean", 64, builders.digits,
           "scikit-learn digits, 1,617 + 180 queries"),
    _local("random-jaccard", "jaccard", 500, builders.random_sets,
           "random sets around topics, 9,000 + 1,000 queries", point_type="bit"),
    _local("random-hamming-bits", "hamming", 64, builders.random_bits,
           "64-bit vectors around prototypes, 9,000 + 1,000 queries", point_type="bit"),
)}


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
                           f"(all: {PYTHON} -m ann_bench.datasets --list)")


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
            log.info("building %s locally", spec.name)
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


def _size(spec):
    if spec.size_bytes is None:
        return "-"
    if spec.size_bytes >= 10 ** 9:
        return f"{spec.size_bytes / 10 ** 9:.1f} GB"
    return f"{spec.size_bytes / _MB:.0f} MB"


def table(data_dir):
    """The registry as a text table, with whether each file is present in data_dir."""
    rows = [("name", "distance", "dimension", "size", "source", "present")]
    for spec in DATASETS.values():
        present = (Path(data_dir) / f"{spec.name}.hdf5").exists()
        rows.append((spec.name, spec.distance, str(spec.dimension), _size(spec),
                     "local" if spec.builder else "remote", "yes" if present else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)

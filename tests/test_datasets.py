import hashlib
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ann_bench import datasets
from ann_bench.datasets import (
    DATASETS,
    dataset_path,
    get_dataset,
    load_dataset,
    resolve_name,
    write_dataset,
)
from ann_bench.datasets.__main__ import main as datasets_main
from ann_bench.datasets.groundtruth import exact_knn
from ann_bench.datasets.hdf5 import file_header
from ann_bench.errors import DatasetError, UnknownNameError
from ann_bench.paths import REPO

ROOT = REPO

STANDARD = ["glove-25-angular", "glove-50-angular", "glove-100-angular", "glove-200-angular",
            "sift-128-euclidean", "gist-960-euclidean", "fashion-mnist-784-euclidean",
            "nytimes-256-angular", "deep-image-96-angular", "lastfm-64-dot", "kosarak-jaccard",
            "movielens10m-jaccard", "sift-256-hamming", "word2bits-800-hamming"]
LOCAL = ["random-xs-20-euclidean", "random-xs-20-angular", "random-s-100-euclidean",
         "random-s-100-angular", "digits-64-euclidean", "random-jaccard", "random-hamming-bits",
         "random-xs-16-hamming", "random-s-128-hamming", "random-l-256-hamming",
         "random-s-jaccard", "random-l-jaccard"]
REAL = ["glove-6b-50-angular", "glove-6b-50-angular-100k", "mnist-784-euclidean",
        "wordnet-minilm-384-angular"]


def built(name):
    """(train, test) of a generated set (they need no sources)."""
    return DATASETS[name].builder(Path("no-sources"), False)


def sets(rng, n, universe=50):
    return [np.sort(rng.choice(universe, size=rng.integers(1, 9), replace=False)).astype(np.int32)
            for _ in range(n)]


# --- registry and names -----------------------------------------------------------------


def test_registry_has_the_standard_remote_datasets():
    for name in STANDARD:
        spec = DATASETS[name]
        assert spec.url == f"http://ann-benchmarks.com/{name}.hdf5"
        assert spec.dimension > 0 and spec.builder is None
        # lastfm-64-dot is the one whose file says otherwise: ann-benchmarks writes it as angular.
        assert spec.distance == ("angular" if name == "lastfm-64-dot" else name.rsplit("-", 1)[1])
    assert DATASETS["kosarak-jaccard"].type == "sparse"


def test_registry_local_datasets_need_no_network():
    for name in LOCAL:
        spec = DATASETS[name]
        assert spec.url is None and spec.builder is not None


def test_real_datasets_are_built_here_from_pinned_sources():
    for name in REAL:
        spec = DATASETS[name]
        assert spec.builder is not None and spec.inputs and spec.licence and spec.source
        pins = json.loads(spec.attributes()["source_sha256"])
        assert all(len(digest) == 64 for digest in pins.values())
    # MNIST is built here, and ann-benchmarks' own file stays one option away.
    assert DATASETS["mnist-784-euclidean"].url == "http://ann-benchmarks.com/mnist-784-euclidean.hdf5"


@pytest.mark.parametrize("short, full", [
    ("glove-100", "glove-100-angular"), ("sift-256", "sift-256-hamming"),
    ("sift-128", "sift-128-euclidean"), ("fashion-mnist", "fashion-mnist-784-euclidean"),
    ("mnist", "mnist-784-euclidean"), ("gist", "gist-960-euclidean"),
    ("nytimes", "nytimes-256-angular"), ("deep-image", "deep-image-96-angular"),
    ("lastfm", "lastfm-64-dot"), ("kosarak", "kosarak-jaccard"),
    ("movielens10m", "movielens10m-jaccard"), ("digits", "digits-64-euclidean"),
    ("GloVe-25-Angular", "glove-25-angular"), ("random-s-100-angular", "random-s-100-angular"),
])
def test_resolve_name(short, full):
    assert resolve_name(short) == full


def test_ambiguous_name_lists_the_candidates():
    with pytest.raises(UnknownNameError, match="sift-128-euclidean, sift-256-hamming"):
        resolve_name("sift")
    with pytest.raises(UnknownNameError) as info:
        resolve_name("random-xs-20")
    message = str(info.value)
    assert "random-xs-20-angular" in message and "random-xs-20-euclidean" in message
    assert "\n" not in message


@pytest.mark.parametrize("typo, expected", [("glvoe-100", "glove-100-angular"),
                                            ("siftt", "sift-128-euclidean"),
                                            ("kosarac", "kosarak-jaccard")])
def test_unknown_name_suggests_the_closest(typo, expected):
    with pytest.raises(UnknownNameError) as info:
        resolve_name(typo)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_dataset_path_uses_the_full_name(tmp_path):
    assert dataset_path("sift-128", tmp_path) == tmp_path / "sift-128-euclidean.hdf5"
    assert dataset_path("glove-25") == Path("data/glove-25-angular.hdf5")


def test_unregistered_file_in_the_data_dir_is_usable(tmp_path):
    rng = np.random.default_rng(0)
    write_dataset(tmp_path / "mine.hdf5", rng.random((20, 3)), rng.random((2, 3)), "euclidean",
                  count=5, progress=False)
    assert get_dataset("mine", tmp_path, progress=False) == tmp_path / "mine.hdf5"


# --- local builders are deterministic ---------------------------------------------------

# sha256 of the first rows of each local set: if a numpy release changes a random stream,
# this fails and the datasets must be versioned rather than silently changed.
PINNED = {
    "digits-64-euclidean": "fecedccb9b8dff21af92d634762072df",
    "random-hamming-bits": "806bde85d89d2e333c109d753f312532",
    "random-jaccard": "cd4d81e0721274286051a55f40565004",
    "random-s-jaccard": "bc7ee661e76cfd4f8191597791e84bb0",
    "random-xs-16-hamming": "ccb1119766b1284ecc649cfdacf4323b",
    "random-s-100-euclidean": "55d5519e3130a4cae6086d3498d9d63e",
    "random-xs-20-euclidean": "3fc6285eebb5965b4d2938a264120723",
}


def fingerprint(train, test):
    digest = hashlib.sha256()
    for points in (train[:5], test[:5]):
        for point in points:
            digest.update(np.ascontiguousarray(point).tobytes())
    digest.update(f"{len(train)} {len(test)}".encode())
    return digest.hexdigest()[:32]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_local_builders_are_pinned(name):
    first, second = built(name), built(name)
    assert fingerprint(*first) == fingerprint(*second)
    assert fingerprint(*first) == PINNED[name]


def test_local_sizes():
    train, test = built("random-xs-20-euclidean")
    assert train.shape == (9000, 20) and test.shape == (1000, 20) and train.dtype == np.float32
    train, test = built("digits-64-euclidean")
    assert len(train) + len(test) == 1797 and len(test) == 180
    train, test = built("random-jaccard")
    assert len(train) == 9000 and all(np.all(np.diff(s) > 0) for s in train[:100])
    train, test = built("random-hamming-bits")
    assert train.shape == (9000, 64) and train.dtype == bool


def test_ann_benchmarks_random_sets_have_its_shapes():
    train, test = built("random-xs-16-hamming")
    assert train.shape == (9_900, 16) and test.shape == (100, 16) and train.dtype == bool
    train, test = built("random-s-jaccard")
    assert len(train) == 9_900 and len(test) == 100
    assert all(len(s) == 20 and s.max() < 40 and np.all(np.diff(s) > 0) for s in train)


def test_angular_and_euclidean_variants_share_points():
    a = built("random-xs-20-angular")
    e = built("random-xs-20-euclidean")
    np.testing.assert_array_equal(a[0], e[0])


def test_get_dataset_builds_once(tmp_path):
    path = get_dataset("digits", tmp_path, progress=False)
    assert path == tmp_path / "digits-64-euclidean.hdf5"
    data = load_dataset(path)
    assert data.distance == "euclidean" and data.dimension == 64
    assert data.neighbors.shape == (180, 100)
    stamp = path.stat().st_mtime_ns
    assert get_dataset("digits-64-euclidean", tmp_path, progress=False) == path
    assert path.stat().st_mtime_ns == stamp
    # No temporary left behind; the check recorded the file's sha256 and its verdict.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        path.name, path.name + ".checked", path.name + ".sha256"]


# --- layout round trips -----------------------------------------------------------------


@pytest.mark.parametrize("distance", ["euclidean", "angular", "dot"])
def test_dense_round_trip(tmp_path, distance):
    rng = np.random.default_rng(1)
    train = rng.standard_normal((300, 8)).astype(np.float32)
    test = rng.standard_normal((12, 8)).astype(np.float32)
    path = write_dataset(tmp_path / "d.hdf5", train, test, distance, count=20, progress=False)
    data = load_dataset(path)
    assert (data.name, data.distance, data.type, data.point_type, data.dimension) == \
        ("d", distance, "dense", "float", 8)
    np.testing.assert_array_equal(data.train, train)
    np.testing.assert_array_equal(data.test, test)
    ids, dists = exact_knn(train, test, 20, distance, progress=False)
    np.testing.assert_array_equal(data.neighbors, ids)
    np.testing.assert_array_equal(data.distances, dists)
    with h5py.File(path) as f:  # what ann-benchmarks reads
        assert f.attrs["distance"] == distance and f.attrs["type"] == "dense"
        assert f["neighbors"].shape == (12, 20) and f["distances"].shape == (12, 20)


def test_hamming_round_trip_stores_bits(tmp_path):
    rng = np.random.default_rng(2)
    train, test = rng.random((100, 16)) < 0.5, rng.random((5, 16)) < 0.5
    path = write_dataset(tmp_path / "h.hdf5", train.astype(np.uint8), test.astype(np.uint8),
                         "hamming", count=10, progress=False)
    data = load_dataset(path)
    assert data.point_type == "bit" and data.train.dtype == bool
    np.testing.assert_array_equal(data.train, train)


def test_sparse_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    train, test = sets(rng, 200), sets(rng, 7)
    path = write_dataset(tmp_path / "s.hdf5", train, test, "jaccard", count=10, progress=False)
    data = load_dataset(path)
    assert (data.type, data.point_type, data.dimension) == ("sparse", "bit",
                                                           max(max(s) for s in train + test) + 1)
    assert len(data.train) == 200 and all(np.array_equal(a, b) for a, b in zip(data.train, train))
    assert all(s.dtype == np.int32 for s in data.test)
    with h5py.File(path) as f:
        assert f["train"].ndim == 1 and f["size_train"][:].sum() == len(f["train"])


def test_write_is_atomic_when_ground_truth_fails(tmp_path):
    target = tmp_path / "x.hdf5"
    with pytest.raises(Exception):
        write_dataset(target, np.zeros((3, 2)), np.zeros((1, 2)), "euclidean", count=10,
                      progress=False)
    assert list(tmp_path.iterdir()) == []


def test_file_written_like_ann_benchmarks_loads(tmp_path):
    # As ann-benchmarks' write_output of older releases: no type or dimension attribute,
    # float64 points, int64 neighbours and float64 distances.
    rng = np.random.default_rng(4)
    train, test = rng.random((50, 4)), rng.random((3, 4))
    path = tmp_path / "old-4-euclidean.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.attrs["point_type"] = "float"
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=np.zeros((3, 10), dtype=int))
        f.create_dataset("distances", data=np.zeros((3, 10), dtype=float))
    data = load_dataset(path)
    assert (data.type, data.dimension) == ("dense", 4)
    np.testing.assert_array_equal(data.train, train)


def test_sparse_file_written_like_ann_benchmarks_loads(tmp_path):
    # As ann-benchmarks' write_sparse_output: int64 items and sizes from Python lists.
    train = [[1, 5, 9], [2], [0, 3, 4, 8]]
    test = [[5, 9], [3, 4]]
    path = tmp_path / "sets-jaccard.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"type": "sparse", "distance": "jaccard", "dimension": 10,
                        "point_type": "bit"})
        f.create_dataset("train", data=np.concatenate(train))
        f.create_dataset("test", data=np.concatenate(test))
        f.create_dataset("size_train", data=[len(s) for s in train])
        f.create_dataset("size_test", data=[len(s) for s in test])
        f.create_dataset("neighbors", data=np.zeros((2, 3), dtype=int))
        f.create_dataset("distances", data=np.zeros((2, 3), dtype=float))
    data = load_dataset(path)
    assert [s.tolist() for s in data.train] == train and data.dimension == 10


def test_the_header_says_what_loading_the_file_would(tmp_path):
    """run.py plans from file_header without loading the points: sets that record neither
    dimension nor point type are bit sets over their item universe, as load_dataset has them."""
    train, test = [[1, 5, 9], [2], [0, 3, 4, 8]], [[5, 11], [3, 4]]
    path = tmp_path / "bare-jaccard.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"type": "sparse", "distance": "jaccard"})
        for key, points in (("train", train), ("test", test)):
            f.create_dataset(key, data=np.concatenate(points))
            f.create_dataset(f"size_{key}", data=[len(s) for s in points])
        f.create_dataset("neighbors", data=np.zeros((2, 3), dtype=int))
        f.create_dataset("distances", data=np.zeros((2, 3), dtype=float))
    for path in (path, small_file(tmp_path)):
        header, data = file_header(path), load_dataset(path)
        assert (header.distance, header.point_type, header.dimension) == (data.distance, data.point_type,
                                                                          data.dimension)
    assert header.dimension == 20 and file_header(tmp_path / "bare-jaccard.hdf5").dimension == 12


# --- damaged files ----------------------------------------------------------------------


def assert_damaged(path):
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert str(path) in message and "python -m ann_bench.datasets" in message
    assert "\n" not in message
    with pytest.raises(DatasetError):
        datasets.validate(path)


def small_file(tmp_path, name="random-xs-20-euclidean.hdf5"):
    rng = np.random.default_rng(5)
    return write_dataset(tmp_path / name, rng.random((2000, 20)), rng.random((50, 20)),
                         "euclidean", count=10, progress=False)


def test_garbage_file_is_reported(tmp_path):
    path = tmp_path / "sift-128-euclidean.hdf5"
    path.write_bytes(b"<html>not found</html>")
    assert_damaged(path)


def test_truncated_file_is_reported(tmp_path):
    path = small_file(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_damaged(path)


def test_get_dataset_reports_a_damaged_file(tmp_path):
    path = small_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DatasetError, match="random-xs-20-euclidean"):
        get_dataset("random-xs-20-euclidean", tmp_path, progress=False)


@pytest.mark.parametrize("damage, reason", [
    (lambda f: f.attrs.__delitem__("distance"), "distance"),
    (lambda f: f.__delitem__("neighbors"), "neighbors"),
    (lambda f: f.attrs.__setitem__("dimension", 7), "dimension"),
    (lambda f: f.__delitem__("distances") or f.create_dataset("distances", data=np.zeros(3)),
     "distances"),
])
def test_malformed_layout_is_reported(tmp_path, damage, reason):
    path = small_file(tmp_path)
    with h5py.File(path, "r+") as f:
        damage(f)
    with pytest.raises(DatasetError, match=reason):
        load_dataset(path)


# --- command line -----------------------------------------------------------------------


def test_cli_lists_the_registry(tmp_path, capsys):
    small_file(tmp_path)
    assert datasets_main(["--list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "distance", "dimension", "size", "source", "licence",
                                "version", "present"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["random-xs-20-euclidean"][-1] == "yes" and rows["sift-128-euclidean"][-1] == "no"
    assert set(rows) == set(DATASETS)


def test_cli_unknown_name_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ann_bench.datasets", "glvoe", "--data-dir",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "glove-" in result.stderr


def test_cli_builds_and_prints_the_path(tmp_path, capsys):
    assert datasets_main(["random-hamming", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "random-hamming-bits.hdf5")

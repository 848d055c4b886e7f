"""`python -m ann_bench.datasets import`: every format, against files the test writes."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from ann_bench.datasets import load_dataset
from ann_bench.datasets.__main__ import main as datasets_main
from ann_bench.datasets.groundtruth import exact_knn
from ann_bench.datasets.verify import sha256_sidecar
from ann_bench.paths import REPO

RNG = np.random.default_rng(0)
TRAIN = RNG.standard_normal((400, 6)).astype(np.float32)
TEST = RNG.standard_normal((20, 6)).astype(np.float32)


def write_texmex(path, X, dtype):
    X = np.asarray(X, dtype=dtype)
    with open(path, "wb") as f:
        for row in X:
            f.write(np.int32(len(row)).tobytes())
            f.write(row.tobytes())


def write_any(path, X):
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, X)
    elif suffix in (".fvecs", ".ivecs", ".bvecs"):
        write_texmex(path, X, {".fvecs": np.float32, ".ivecs": np.int32, ".bvecs": np.uint8}[suffix])
    elif suffix in (".csv", ".tsv"):
        np.savetxt(path, X, delimiter="," if suffix == ".csv" else "\t", fmt="%.9g")
    else:
        with h5py.File(path, "w") as f:
            f.create_dataset("vectors", data=X)
    return path


def run_import(tmp_path, *args):
    return datasets_main(["import", *args, "--data-dir", str(tmp_path / "data")])


@pytest.mark.parametrize("suffix", [".npy", ".fvecs", ".csv", ".tsv", ".h5"])
def test_float_formats_with_a_test_file(tmp_path, suffix):
    train, test = write_any(tmp_path / f"train{suffix}", TRAIN), write_any(tmp_path / f"test{suffix}", TEST)
    keys = ["--train-key", "vectors", "--test-key", "vectors"] if suffix == ".h5" else []
    assert run_import(tmp_path, "mine", "--train", str(train), "--test", str(test),
                      "--metric", "euclidean", "-k", "15", *keys) == 0
    data = load_dataset(tmp_path / "data" / "mine.hdf5")
    np.testing.assert_allclose(data.train, TRAIN, rtol=1e-6)
    np.testing.assert_allclose(data.test, TEST, rtol=1e-6)
    ids, _ = exact_knn(data.train, data.test, 15, "euclidean", progress=False)
    np.testing.assert_array_equal(data.neighbors, ids)
    assert sha256_sidecar(tmp_path / "data" / "mine.hdf5").exists()  # checked on the way out


@pytest.mark.parametrize("suffix", [".ivecs", ".bvecs"])
def test_integer_texmex_formats(tmp_path, suffix):
    X = RNG.integers(0, 200, (300, 12))
    path = write_any(tmp_path / f"base{suffix}", X)
    assert run_import(tmp_path, "ints", "--train", str(path), "--test-size", "30",
                      "--metric", "euclidean") == 0
    data = load_dataset(tmp_path / "data" / "ints.hdf5")
    assert data.train.dtype == np.float32 and len(data.train) == 270 and len(data.test) == 30
    assert sorted(map(tuple, np.concatenate([data.train, data.test]))) == sorted(map(tuple, X.astype(np.float32)))


def test_an_ann_benchmarks_file_keeps_its_split_and_metric(tmp_path):
    path = tmp_path / "theirs.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f.create_dataset("train", data=TRAIN.astype(np.float64))
        f.create_dataset("test", data=TEST.astype(np.float64))
    assert run_import(tmp_path, "theirs-again", "--train", str(path)) == 0
    data = load_dataset(tmp_path / "data" / "theirs-again.hdf5")
    assert data.distance == "angular" and len(data.test) == 20


def test_split_is_seeded_and_the_default_holds_out_a_tenth(tmp_path):
    path = write_any(tmp_path / "all.npy", TRAIN)
    assert run_import(tmp_path, "a", "--train", str(path), "--metric", "angular") == 0
    assert run_import(tmp_path, "b", "--train", str(path), "--metric", "angular") == 0
    a, b = (load_dataset(tmp_path / "data" / f"{n}.hdf5") for n in "ab")
    assert len(a.test) == 40
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.neighbors, b.neighbors)


def test_hamming_and_jaccard_take_bits(tmp_path):
    bits = RNG.random((200, 40)) < 0.3
    path = write_any(tmp_path / "bits.npy", bits.astype(np.uint8))
    assert run_import(tmp_path, "bits", "--train", str(path), "--metric", "hamming") == 0
    assert load_dataset(tmp_path / "data" / "bits.hdf5").train.dtype == bool
    assert run_import(tmp_path, "sets", "--train", str(path), "--metric", "jaccard") == 0
    sets = load_dataset(tmp_path / "data" / "sets.hdf5")
    assert sets.type == "sparse" and len(sets.train) == 180


def refused(tmp_path, capsys, *args, words=()):
    status = run_import(tmp_path, *args)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []
    return err


def test_a_nan_row_is_named(tmp_path, capsys):
    X = TRAIN.copy()
    X[37, 2] = np.nan
    path = write_any(tmp_path / "nan.npy", X)
    refused(tmp_path, capsys, "x", "--train", str(path), "--metric", "euclidean",
            words=("nan.npy", "row 37", "NaN"))


def test_a_ragged_fvecs_is_refused(tmp_path, capsys):
    path = write_any(tmp_path / "ragged.fvecs", TRAIN)
    with open(path, "ab") as f:  # one more row, of another dimension
        f.write(np.int32(5).tobytes() + np.zeros(5, np.float32).tobytes())
    refused(tmp_path, capsys, "x", "--train", str(path), "--metric", "euclidean",
            words=("ragged.fvecs", "ragged"))
    raw = bytearray(write_any(tmp_path / "inner.fvecs", TRAIN).read_bytes())
    raw[7 * 28:7 * 28 + 4] = np.int32(9).tobytes()  # row 7 claims 9 dimensions
    (tmp_path / "inner.fvecs").write_bytes(bytes(raw))
    refused(tmp_path, capsys, "x", "--train", str(tmp_path / "inner.fvecs"), "--metric",
            "euclidean", words=("row 7 has dimension 9",))


def test_a_test_file_of_another_dimension_is_refused(tmp_path, capsys):
    train = write_any(tmp_path / "train.npy", TRAIN)
    test = write_any(tmp_path / "test.npy", TEST[:, :5])
    refused(tmp_path, capsys, "x", "--train", str(train), "--test", str(test), "--metric",
            "euclidean", words=("test.npy", "5 dimensions", "6"))


def test_a_zero_vector_under_angular_is_named(tmp_path, capsys):
    X = TRAIN.copy()
    X[3] = 0
    path = write_any(tmp_path / "z.csv", X)
    refused(tmp_path, capsys, "x", "--train", str(path), "--metric", "angular",
            words=("row 3", "all zeros"))


def test_text_that_is_not_numbers_is_refused(tmp_path, capsys):
    path = tmp_path / "words.csv"
    path.write_text("a,b,c\n1,2,3\n")
    refused(tmp_path, capsys, "x", "--train", str(path), "--metric", "euclidean",
            words=("words.csv", "number"))


def test_existing_and_registered_names_are_refused(tmp_path, capsys):
    path = write_any(tmp_path / "t.npy", TRAIN)
    refused(tmp_path, capsys, "sift-128-euclidean", "--train", str(path), "--metric", "euclidean",
            words=("registered",))
    assert run_import(tmp_path, "mine", "--train", str(path), "--metric", "euclidean") == 0
    assert run_import(tmp_path, "mine", "--train", str(path), "--metric", "euclidean") == 2
    assert "--force" in capsys.readouterr().err
    assert run_import(tmp_path, "mine", "--train", str(path), "--metric", "angular", "--force") == 0
    assert load_dataset(tmp_path / "data" / "mine.hdf5").distance == "angular"


def test_run_py_uses_an_imported_dataset_by_name(tmp_path):
    path = write_any(tmp_path / "t.npy", TRAIN)
    assert run_import(tmp_path, "my-own", "--train", str(path), "--metric", "euclidean") == 0
    result = subprocess.run([sys.executable, "run.py", "--dataset", "my-own", "--data-dir",
                             str(tmp_path / "data"), "--local", "--dry-run", "--algorithm",
                             "bruteforce", "--results", str(tmp_path / "results")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "bruteforce" in result.stdout


def test_the_command_line_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ann_bench.datasets", "import", "x", "--train",
                             str(tmp_path / "absent.npy"), "--metric", "euclidean", "--data-dir",
                             str(tmp_path / "data")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "absent.npy" in result.stderr

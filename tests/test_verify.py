"""The check every dataset passes before a sweep trusts it (ann_bench/datasets/verify.py)."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ann_bench.datasets import check_dataset, get_dataset, locate, write_dataset
from ann_bench.datasets.verify import SAMPLE_QUERIES, check_stamp, sha256_sidecar, verify_contents
from ann_bench.errors import DatasetError
from ann_bench.paths import REPO


def make(tmp_path, name="mine.hdf5", metric="euclidean", n=600, nq=40, d=8, seed=0):
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((n, d)).astype(np.float32)
    test = rng.standard_normal((nq, d)).astype(np.float32)
    return write_dataset(tmp_path / name, train, test, metric, count=10, progress=False)


def refused(path, *words):
    with pytest.raises(DatasetError) as info:
        verify_contents(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message
    return message


def edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize("metric", ["euclidean", "angular", "dot", "hamming", "jaccard"])
def test_a_good_file_passes_for_every_metric(tmp_path, metric):
    rng = np.random.default_rng(1)
    if metric == "hamming":
        train, test = rng.random((300, 24)) < 0.5, rng.random((20, 24)) < 0.5
    elif metric == "jaccard":
        train, test = ([np.sort(rng.choice(30, 6, replace=False)) for _ in range(n)]
                       for n in (300, 20))
    else:
        train, test = rng.standard_normal((300, 6)), rng.standard_normal((20, 6))
    path = write_dataset(tmp_path / "x.hdf5", train, test, metric, count=10, progress=False)
    verify_contents(path)


def test_neighbours_shuffled_for_one_query_are_refused(tmp_path):
    path = make(tmp_path)

    def shuffle(f):
        row = f["neighbors"][17]
        f["neighbors"][17] = row[::-1]
    edit(path, shuffle)
    refused(path, "query 17", "stored distance")


def test_an_altered_distance_is_refused(tmp_path):
    path = make(tmp_path)

    def alter(f):
        row = f["distances"][5]
        row[3:] += 0.01  # still sorted, so only the recomputation can tell
        f["distances"][5] = row
    edit(path, alter)
    refused(path, "query 5, neighbour 3")


def test_wrong_but_consistent_ground_truth_is_refused_by_the_sample(tmp_path):
    # Every query's true nearest point dropped, the rest shifted up, distances recomputed to
    # match: the stored distances agree with the vectors, but the neighbours are not the top k.
    path = make(tmp_path, nq=SAMPLE_QUERIES // 2)
    with h5py.File(path, "r+") as f:
        train, test = f["train"][:], f["test"][:]
        ids = np.argsort(np.linalg.norm(test[:, None] - train[None], axis=2), axis=1)[:, 1:11]
        f["neighbors"][...] = ids
        f["distances"][...] = np.linalg.norm(test[:, None] - train[ids], axis=2)
        del f.attrs["build_sha256"]
    refused(path, "wrong ground truth for query 0", "neighbour 0")


def test_ties_in_another_order_are_accepted(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((100, 4)).astype(np.float32)
    train = np.concatenate([base, base])  # every point twice: every distance is a tie
    test = rng.standard_normal((10, 4)).astype(np.float32)
    path = write_dataset(tmp_path / "ties.hdf5", train, test, "euclidean", count=10,
                         progress=False)
    with h5py.File(path, "r+") as f:
        ids = f["neighbors"][:]
        f["neighbors"][...] = np.where(ids < 100, ids + 100, ids - 100)  # the other copy
        del f.attrs["build_sha256"]
    verify_contents(path)


@pytest.mark.parametrize("key, row", [("train", 123), ("test", 7)])
def test_a_nan_row_is_refused_with_its_row(tmp_path, key, row):
    path = make(tmp_path)

    def poison(f):
        values = f[key][row]
        values[2] = np.nan
        f[key][row] = values
    edit(path, poison)
    refused(path, f"{key} row {row}", "NaN")


def test_nan_in_the_stored_distances_is_refused(tmp_path):
    path = make(tmp_path)

    def poison(f):
        row = f["distances"][9]
        row[4] = np.nan
        f["distances"][9] = row
    edit(path, poison)
    refused(path, "query 9, neighbour 4", "not a finite number")


@pytest.mark.parametrize("keep_build_hash", [True, False])
def test_garbage_over_the_train_matrix_is_refused(tmp_path, keep_build_hash):
    path = make(tmp_path, n=4000, d=16)
    with h5py.File(path, "r+") as f:
        offset = f["train"].id.get_offset()
        if not keep_build_hash:  # as a file from ann-benchmarks, which carries no hash
            del f.attrs["build_sha256"]
    with open(path, "r+b") as out:
        out.seek(offset + 4096)
        out.write(np.random.default_rng(8).bytes(8192))
    refused(path)


def test_neighbour_out_of_range_or_repeated_or_unsorted(tmp_path):
    path = make(tmp_path)
    edit(path, lambda f: f["neighbors"].__setitem__((3, 2), 600))
    refused(path, "query 3, neighbour 2", "outside")
    path = make(tmp_path, name="b.hdf5")
    edit(path, lambda f: f["neighbors"].__setitem__((4, 2), f["neighbors"][4, 1]))
    refused(path, "query 4 names one neighbour twice")
    path = make(tmp_path, name="c.hdf5")
    edit(path, lambda f: f["distances"].__setitem__((6, 0), 99.0))
    refused(path, "query 6", "not in increasing order")


def test_non_numeric_points_are_refused(tmp_path):
    path = make(tmp_path)

    def strings(f):
        del f["test"]
        f.create_dataset("test", data=np.array([[b"a"] * 8] * 40))
    edit(path, strings)
    refused(path, "test holds", "not numbers")


def test_hamming_counts_from_an_older_ann_bench_are_named(tmp_path):
    rng = np.random.default_rng(4)
    path = write_dataset(tmp_path / "h.hdf5", rng.random((200, 32)) < 0.5,
                         rng.random((10, 32)) < 0.5, "hamming", count=10, progress=False)
    with h5py.File(path, "r+") as f:
        f["distances"][...] = f["distances"][:] * 32
    refused(path, "counts of differing bits")


def test_arrays_other_than_the_built_ones_are_refused(tmp_path):
    path = make(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs["build_sha256"] = "0" * 64
    refused(path, "not those it was built with")


# --- recorded sha256, cached verdict ------------------------------------------------------


def test_first_use_records_the_sha256_and_the_verdict(tmp_path):
    path = make(tmp_path)
    check_dataset(path, progress=False)
    digest, name = sha256_sidecar(path).read_text().split()
    assert name == path.name and len(digest) == 64
    # The sidecar is in sha256sum's format, so the tool itself can check the file.
    assert subprocess.run(["sha256sum", "-c", sha256_sidecar(path).name], cwd=tmp_path,
                          capture_output=True).returncode == 0
    record = json.loads(check_stamp(path).read_text())
    assert record["sha256"] == digest and record["size"] == path.stat().st_size


def test_an_unchanged_file_is_not_checked_again(tmp_path, monkeypatch):
    path = make(tmp_path)
    check_dataset(path, progress=False)
    calls = []
    monkeypatch.setattr("ann_bench.datasets.verify.verify_contents",
                        lambda *args, **kwargs: calls.append(args))
    check_dataset(path, progress=False)
    assert calls == []
    os.utime(path)  # touched, not changed: checked and hashed again, and accepted
    check_dataset(path, progress=False)
    assert len(calls) == 1


def test_a_changed_file_is_reported_before_a_run(tmp_path):
    path = make(tmp_path)
    check_dataset(path, progress=False)
    make(tmp_path, seed=5)  # a valid file, but not the one first used
    with pytest.raises(DatasetError) as info:
        check_dataset(path, progress=False)
    message = str(info.value)
    assert "changed since it was first used" in message and "results" in message
    assert str(sha256_sidecar(path)) in message and "\n" not in message
    sha256_sidecar(path).unlink()  # what the message says to do, to accept the new file
    check_dataset(path, progress=False)


def test_a_file_damaged_after_its_check_is_caught_by_get_dataset(tmp_path):
    path = make(tmp_path, name="random-xs-20-euclidean.hdf5")
    get_dataset("random-xs-20-euclidean", tmp_path, progress=False)
    edit(path, lambda f: f["distances"].__setitem__((0, 0), np.nan))
    with pytest.raises(DatasetError, match="not a finite number"):
        get_dataset("random-xs-20-euclidean", tmp_path, progress=False)


def test_locate_takes_a_path_anywhere(tmp_path):
    path = make(tmp_path / "elsewhere", name="my-set.hdf5")
    assert locate(str(path), tmp_path / "data", progress=False) == ("my-set", path)
    with pytest.raises(DatasetError, match="no dataset file"):
        locate(str(tmp_path / "missing.hdf5"), tmp_path, progress=False)


def test_run_py_refuses_a_bad_file_with_one_line_and_exit_2(tmp_path):
    path = make(tmp_path)
    edit(path, lambda f: f["neighbors"].__setitem__((1, 1), f["neighbors"][1, 0]))
    result = subprocess.run([sys.executable, "run.py", "--dataset", str(path), "--local",
                             "--dry-run", "--results", str(tmp_path / "results")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "query 1 names one neighbour twice" in errors[0]
    assert "import or copy a good one" in errors[0]  # not a registered set: nothing to fetch


def test_run_py_runs_on_a_file_anywhere(tmp_path):
    path = make(tmp_path / "far" / "away", name="my-vectors.hdf5")
    result = subprocess.run([sys.executable, "run.py", "--dataset", str(path), "--local",
                             "--dry-run", "--algorithm", "bruteforce", "--results",
                             str(tmp_path / "results")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "bruteforce" in result.stdout

"""ann-benchmarks' conventions, both ways, for every metric it has (euclidean, angular,
hamming, jaccard; it has no dot-product metric: its lastfm-64-dot is stored as angular).

A file written as ann-benchmarks' write_output / write_sparse_output writes it (its dtypes,
its sparse layout, its distance definitions: hamming is the mean of the XOR) passes our check
and scores exact search at recall 1.0 here; and recall computed by ann-benchmarks' definition
from its own distances agrees with ours, on its files and on ours.
"""

import h5py
import numpy as np
import pytest

from ann_bench.algorithms.bruteforce.module import BruteForce
from ann_bench.datasets import load_dataset, write_dataset
from ann_bench.datasets.distance import distances_to
from ann_bench.datasets.verify import verify_contents
from ann_bench.report.metrics import knn_recall
from ann_bench.results.files import RunResult

K = 10


# ann-benchmarks' definitions (ann_benchmarks/distance.py), written out here.
def theirs(metric, a, b):
    if metric == "hamming":
        return float(np.mean(a.astype(bool) ^ b.astype(bool)))
    if metric == "jaccard":
        inter = len(set(a.tolist()) & set(b.tolist()))
        return 1.0 - (inter / (len(a) + len(b) - inter) if len(a) and len(b) else 0.0)
    if metric == "angular":
        return float(1.0 - np.dot(a, b) / (np.sum(a ** 2) ** 0.5 * np.sum(b ** 2) ** 0.5))
    return float(np.sum((a - b) ** 2) ** 0.5)


def their_recall(dataset_distances, run_distances, count, epsilon=1e-3):
    """ann-benchmarks' k-nn recall (plotting/metrics.py): a run distance counts when it is
    at most the count-th true distance + epsilon."""
    hits = [sum(d <= truth[count - 1] + epsilon for d in run[:count])
            for truth, run in zip(dataset_distances, run_distances)]
    return float(np.mean(hits) / count)


def points(metric, rng):
    if metric == "hamming":
        return rng.random((500, 48)) < 0.5, rng.random((25, 48)) < 0.5
    if metric == "jaccard":
        make = lambda n: [np.sort(rng.choice(60, rng.integers(8, 20), replace=False))  # noqa: E731
                          for _ in range(n)]
        return make(500), make(25)
    return rng.standard_normal((500, 12)), rng.standard_normal((25, 12))


def write_like_ann_benchmarks(path, metric, train, test):
    """As its write_output (dense) or write_sparse_output (jaccard) writes a file."""
    truth = [sorted(((i, theirs(metric, q, x)) for i, x in enumerate(train)),
                    key=lambda pair: pair[1])[:K] for q in test]
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = metric
        if metric == "jaccard":
            f.attrs.update({"type": "sparse", "dimension": 60, "point_type": "bit"})
            f.create_dataset("train", data=np.concatenate(train).astype(np.int64))
            f.create_dataset("test", data=np.concatenate(test).astype(np.int64))
            f.create_dataset("size_train", data=[len(t) for t in train])
            f.create_dataset("size_test", data=[len(t) for t in test])
        else:
            f.attrs.update({"type": "dense", "dimension": len(train[0]),
                            "point_type": "bit" if metric == "hamming" else "float"})
            f.create_dataset("train", data=train)
            f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=[[i for i, _ in row] for row in truth], dtype=int)
        f.create_dataset("distances", data=[[d for _, d in row] for row in truth], dtype=float)
    return path


def exact_search(data):
    algo = BruteForce(data.distance)
    algo.fit(data.train)
    ids = np.array([algo.query(q, K) for q in data.test])
    return ids, distances_to(data.distance, data.test, data.train, ids)


@pytest.mark.parametrize("metric", ["euclidean", "angular", "hamming", "jaccard"])
def test_an_ann_benchmarks_file_runs_here_at_recall_one(tmp_path, metric):
    rng = np.random.default_rng(["euclidean", "angular", "hamming", "jaccard"].index(metric))
    path = write_like_ann_benchmarks(tmp_path / f"theirs-{metric}.hdf5", metric, *points(metric, rng))
    verify_contents(path)
    data = load_dataset(path)
    ids, found = exact_search(data)
    assert knn_recall(data.distances, RunResult(attrs={}, distances=found), K) == 1.0
    assert their_recall(data.distances, found, K) == 1.0


@pytest.mark.parametrize("metric", ["euclidean", "angular", "hamming", "jaccard"])
def test_our_results_score_the_same_under_their_definitions(tmp_path, metric):
    rng = np.random.default_rng(10 + ["euclidean", "angular", "hamming", "jaccard"].index(metric))
    train, test = points(metric, rng)
    path = write_dataset(tmp_path / f"ours-{metric}.hdf5", train, test, metric, count=K,
                         progress=False)
    data = load_dataset(path)
    ids, _ = exact_search(data)
    ids[:, -4:] = rng.integers(0, len(data.train), (len(ids), 4))  # an approximate answer
    ours = distances_to(data.distance, data.test, data.train, ids)
    # Their runner computes each returned point's distance with its metric, and their
    # truth is in the same units as ours (hamming: fractions), so the recalls agree.
    their_run = [[theirs(metric, q, data.train[i]) for i in row] for q, row in zip(data.test, ids)]
    np.testing.assert_allclose(ours, their_run, rtol=1e-6, atol=1e-6)
    recall = knn_recall(data.distances, RunResult(attrs={}, distances=ours), K)
    assert recall == pytest.approx(their_recall(data.distances, their_run, K), abs=1e-12)
    assert 0.5 < recall < 1.0

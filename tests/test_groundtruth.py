import h5py
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from ann_bench.datasets.distance import METRICS
from ann_bench.datasets.groundtruth import exact_knn
from ann_bench.errors import UserError

TINY_BLOCK = 1024  # forces one query per block and tiles of 256 training points


def brute_force(train, queries, k, metric):
    """Every distance in float64, sorted by (distance, id)."""
    if metric == "euclidean":
        D = cdist(queries, train)
    elif metric == "angular":
        D = np.clip(cdist(queries, train, "cosine"), 0.0, 2.0)
    elif metric == "dot":
        D = -(np.asarray(queries, np.float64) @ np.asarray(train, np.float64).T)
    elif metric == "hamming":
        D = cdist(queries, train, "hamming")
    else:
        D = np.array([[1.0 - (len(set(q) & set(x)) / len(set(q) | set(x)) if len(q) + len(x)
                               else 0.0) for x in train] for q in queries])
    ids = np.array([np.lexsort((np.arange(len(row)), row))[:k] for row in D])
    return ids, np.take_along_axis(D, ids, axis=1)


def data_with_ties(metric, n_train, n_queries, seed):
    """Random points where several train points are copies of one another, and some queries
    are copies of train points, so equal distances happen at every rank."""
    rng = np.random.default_rng(seed)
    if metric == "jaccard":
        pool = [np.sort(rng.choice(40, size=rng.integers(0, 10), replace=False)).astype(np.int32)
                for _ in range(n_train)]
        train = [pool[i % (n_train // 3)] for i in range(n_train)]
        return train, [train[i] for i in range(0, 3 * n_queries, 3)][:n_queries]
    if metric == "hamming":
        train = rng.random((n_train, 12)) < 0.5
    else:
        train = rng.standard_normal((n_train, 6)).astype(np.float32)
    train[n_train // 2:] = train[: n_train - n_train // 2]
    queries = (rng.random((n_queries, 12)) < 0.5 if metric == "hamming"
               else rng.standard_normal((n_queries, 6)).astype(np.float32))
    queries[::3] = train[: len(queries[::3])]
    return train, queries


@pytest.mark.parametrize("block_bytes", [TINY_BLOCK, 64 << 20])
@pytest.mark.parametrize("metric", METRICS)
def test_matches_brute_force_with_ties(metric, block_bytes):
    train, queries = data_with_ties(metric, 600, 23, seed=METRICS.index(metric))
    ids, dists = exact_knn(train, queries, 30, metric, block_bytes=block_bytes, progress=False)
    want_ids, want_dists = brute_force(train, queries, 30, metric)
    assert ids.dtype == np.int32 and dists.dtype == np.float32 and ids.shape == (23, 30)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(dists, want_dists, rtol=1e-6, atol=1e-6)


def test_k_equal_to_train_size_returns_everything():
    train, queries = data_with_ties("euclidean", 40, 5, seed=9)
    ids, _ = exact_knn(train, queries, 40, "euclidean", progress=False)
    assert (np.sort(ids, axis=1) == np.arange(40)).all()


def test_k_above_train_size_is_an_error():
    train, queries = data_with_ties("euclidean", 40, 5, seed=9)
    with pytest.raises(UserError, match="41 neighbours from 40"):
        exact_knn(train, queries, 41, "euclidean", progress=False)


def test_mismatched_dimensions_are_an_error():
    with pytest.raises(UserError, match="dimensions"):
        exact_knn(np.zeros((5, 3)), np.zeros((2, 4)), 1, "euclidean", progress=False)


def test_nan_is_an_error():
    train = np.zeros((5, 3))
    train[2, 1] = np.nan
    with pytest.raises(UserError, match="NaN"):
        exact_knn(train, np.zeros((2, 3)), 1, "euclidean", progress=False)


def test_near_ties_beyond_the_candidates_are_resolved_exactly():
    # 400 points on a sphere around the query whose radii differ by ~1e-9: far below the
    # float32 resolution of the scores, so every query needs the exact fallback.
    rng = np.random.default_rng(5)
    directions = rng.standard_normal((400, 8))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = 100.0 + rng.permutation(400) * 1e-9
    queries = rng.standard_normal((3, 8)) * 10
    train = queries[0] + directions * radii[:, None]
    ids, _ = exact_knn(train, queries, 10, "euclidean", progress=False)
    want_ids, _ = brute_force(train, queries, 10, "euclidean")
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(ids[0], np.argsort(radii)[:10])


def test_large_offsets_do_not_misorder_euclidean():
    # Far from the origin |x|^2 - 2 q.x cancels badly in float32; the exact re-rank fixes it.
    rng = np.random.default_rng(6)
    train = 1e4 + rng.standard_normal((2000, 16))
    queries = 1e4 + rng.standard_normal((7, 16))
    ids, dists = exact_knn(train, queries, 50, "euclidean", progress=False)
    want_ids, want_dists = brute_force(train, queries, 50, "euclidean")
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(dists, want_dists, rtol=1e-6)


def test_progress_goes_to_stderr(capsys):
    train, queries = data_with_ties("dot", 50, 4, seed=1)
    exact_knn(train, queries, 3, "dot", progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "ground truth" in err


@pytest.mark.parametrize("metric", ["euclidean", "angular", "dot", "hamming"])
def test_train_read_in_chunks_from_hdf5_gives_the_same_answer(tmp_path, metric):
    train, queries = data_with_ties(metric, 5000, 30, seed=11)
    with h5py.File(tmp_path / "t.hdf5", "w") as f:
        f.create_dataset("train", data=train)
    want_ids, want_dists = exact_knn(train, queries, 20, metric, progress=False)
    with h5py.File(tmp_path / "t.hdf5", "r") as f:
        # A budget below one chunk's worth: 1,024 rows at a time, five chunks.
        ids, dists = exact_knn(f["train"], queries, 20, metric, progress=False,
                               memory_bytes=1 << 16, block_bytes=TINY_BLOCK)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(dists, want_dists)


def test_near_ties_are_redone_across_chunks(tmp_path):
    rng = np.random.default_rng(12)
    directions = rng.standard_normal((3000, 8))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = 100.0 + rng.permutation(3000) * 1e-9
    queries = rng.standard_normal((2, 8))
    with h5py.File(tmp_path / "t.hdf5", "w") as f:
        f.create_dataset("train", data=queries[0] + directions * radii[:, None])
    with h5py.File(tmp_path / "t.hdf5", "r") as f:
        ids, _ = exact_knn(f["train"], queries, 10, "euclidean", progress=False,
                           memory_bytes=1 << 16)
    np.testing.assert_array_equal(ids[0], np.argsort(radii)[:10])

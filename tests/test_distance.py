import math

import numpy as np
import pytest

from ann_bench.datasets.distance import METRICS, distances_to, normalize, pair_distances


def reference(metric, q, x):
    """One distance, straight from the definition, in Python floats."""
    if metric == "euclidean":
        return math.sqrt(sum((float(a) - float(b)) ** 2 for a, b in zip(q, x)))
    if metric == "angular":
        dot = sum(float(a) * float(b) for a, b in zip(q, x))
        norms = math.sqrt(sum(float(a) ** 2 for a in q) * sum(float(b) ** 2 for b in x))
        return 1.0 - (dot / norms if norms else 0.0)
    if metric == "dot":
        return -sum(float(a) * float(b) for a, b in zip(q, x))
    if metric == "hamming":
        return sum(bool(a) != bool(b) for a, b in zip(q, x)) / len(q)
    a, b = set(q.tolist()), set(x.tolist())
    return 1.0 - (len(a & b) / len(a | b) if a | b else 0.0)


def make_points(metric, n, rng):
    if metric == "hamming":
        return rng.random((n, 24)) < 0.5
    if metric == "jaccard":
        return [np.sort(rng.choice(30, size=rng.integers(0, 8), replace=False)).astype(np.int32)
                for _ in range(n)]
    return rng.standard_normal((n, 7)).astype(np.float32)


def test_metric_names():
    assert METRICS == ("euclidean", "angular", "dot", "hamming", "jaccard")


@pytest.mark.parametrize("metric", METRICS)
def test_distances_to_matches_definition(metric):
    rng = np.random.default_rng(3)
    train, queries = make_points(metric, 40, rng), make_points(metric, 6, rng)
    ids = rng.integers(0, 40, size=(6, 5))
    got = distances_to(metric, queries, train, ids)
    assert got.dtype == np.float32 and got.shape == (6, 5)
    want = [[reference(metric, queries[i], train[j]) for j in row] for i, row in enumerate(ids)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_padding_ids_give_inf():
    rng = np.random.default_rng(4)
    train, queries = make_points("euclidean", 10, rng), make_points("euclidean", 2, rng)
    got = distances_to("euclidean", queries, train, np.array([[3, -1, -1], [-1, 0, 9]]))
    assert np.isinf(got[0, 1:]).all() and np.isinf(got[1, 0])
    assert np.isfinite(got[0, 0]) and np.isfinite(got[1, 1:]).all()


def test_padding_ids_give_inf_for_sets():
    sets = [np.array([1, 2], np.int32), np.array([2], np.int32)]
    got = distances_to("jaccard", sets[:1], sets, np.array([[1, -1]]))
    np.testing.assert_allclose(got, [[0.5, np.inf]])


def test_out_of_range_ids_are_rejected():
    X = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="ids"):
        distances_to("euclidean", X[:1], X, np.array([[3]]))


def test_hamming_accepts_uint8_bits():
    q = np.array([[0, 1, 1, 0]], dtype=np.uint8)
    x = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], dtype=np.uint8)
    # Two of four bits differ: 0.5, as ann-benchmarks counts it (the mean of the XOR).
    np.testing.assert_array_equal(distances_to("hamming", q, x, np.array([[0, 1]])), [[0.5, 0]])


def test_zero_vector_has_angular_distance_one():
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(pair_distances("angular", x, x, [0, 1, 1], [1, 0, 1]),
                               [1.0, 1.0, 0.0])


def test_empty_sets_are_at_distance_one():
    empty, one = np.array([], np.int32), np.array([5], np.int32)
    got = pair_distances("jaccard", [empty, one], [empty, one], [0, 0, 1], [0, 1, 1])
    np.testing.assert_allclose(got, [1.0, 1.0, 0.0])


def test_dot_is_negative_inner_product():
    q, x = np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])
    assert pair_distances("dot", q, x, [0], [0])[0] == -11.0


def test_normalize_returns_unit_rows_and_keeps_input():
    X = np.array([[3.0, 4.0], [0.0, 0.0], [1e-30, 0.0]])
    before = X.copy()
    out = normalize(X)
    np.testing.assert_array_equal(X, before)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]], rtol=1e-7)


def test_normalize_copies_float32_input():
    X = np.ones((2, 2), np.float32)
    out = normalize(X)
    assert out is not X and (X == 1).all()

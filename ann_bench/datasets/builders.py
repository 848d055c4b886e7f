"""Local builders of synthetic sets: the datasets generated on this machine.

Fixed seeds and explicit dtypes make them identical on every machine; tests pin a checksum so
a numpy release that changes a random stream is noticed. Each returns (train, test). The
`ann_benchmarks_*` ones repeat ann-benchmarks' own generators (scikit-learn's make_blobs and
Python's random with its seeds, then its train_test_split), so their points are its points.
"""

from __future__ import annotations

import random

import numpy as np

from .real import split


def blobs(seed: int, n_points: int, dimension: int,
          n_centers: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs (unit spread, centres uniform in [-10, 10]), as ann-benchmarks' random
    sets; equal-sized clusters in random order, the last 10% held out as queries."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_centers, dimension), dtype=np.float64) * 20.0 - 10.0
    labels = rng.permutation(n_points) % n_centers
    X = (centres[labels] + rng.standard_normal((n_points, dimension), dtype=np.float64))
    X = X.astype(np.float32)
    n_test = n_points // 10
    return X[:-n_test], X[-n_test:]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 x 64); every 10th image is a query."""
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32)
    is_test = np.arange(len(X)) % 10 == 0
    return X[~is_test], X[is_test]


def random_sets(seed: int = 7, n_points: int = 10_000, universe: int = 500,
                n_topics: int = 50) -> tuple[list[np.ndarray], list[np.ndarray]]:
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


def random_bits(seed: int = 11, n_points: int = 10_000, dimension: int = 64,
                n_prototypes: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Bit vectors: 100 random prototypes with each bit flipped with probability 0.1."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((n_prototypes, dimension), dtype=np.float64) < 0.5
    labels = rng.permutation(n_points) % n_prototypes
    flips = rng.random((n_points, dimension), dtype=np.float64) < 0.1
    X = prototypes[labels] ^ flips
    return X[:9_000], X[9_000:]


def ann_benchmarks_bits(dimension: int, n_points: int,
                        n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """ann-benchmarks' random_bitstring: the signs of make_blobs(random_state=1) points
    around n_queries centres, n_queries of them held out."""
    from sklearn.datasets import make_blobs

    Y, _ = make_blobs(n_samples=n_points, n_features=dimension, centers=n_queries,
                      random_state=1)
    return split(Y > 0, test_size=n_queries)


def ann_benchmarks_sets(n_points: int, size: int,
                        universe: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """ann-benchmarks' random_jaccard: sets of `size` items of range(universe) drawn with
    Python's random seeded 1, 100 held out."""
    draw = random.Random(1)
    items = list(range(universe))
    X = np.array([draw.sample(items, size) for _ in range(n_points)])
    train, test = split(X, test_size=100)
    return ([np.sort(row).astype(np.int32) for row in train],
            [np.sort(row).astype(np.int32) for row in test])

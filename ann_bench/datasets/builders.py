"""Local builders: the datasets made on this machine instead of downloaded.

Fixed seeds and explicit dtypes make them identical on every machine; tests pin a checksum so
a numpy release that changes a random stream is noticed. Each returns (train, test).
"""

from __future__ import annotations

import numpy as np


def blobs(seed, n_points, dimension, n_centers):
    """Gaussian blobs (unit spread, centres uniform in [-10, 10]), as ann-benchmarks' random
    sets; equal-sized clusters in random order, the last 10% held out as queries."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_centers, dimension), dtype=np.float64) * 20.0 - 10.0
    labels = rng.permutation(n_points) % n_centers
    X = (centres[labels] + rng.standard_normal((n_points, dimension), dtype=np.float64))
    X = X.astype(np.float32)
    n_test = n_points // 10
    return X[:-n_test], X[-n_test:]


def digits():
    """scikit-learn's bundled 8x8 digits (1797 x 64); every 10th image is a query."""
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float32)
    is_test = np.arange(len(X)) % 10 == 0
    return X[~is_test], X[is_test]


def random_sets(seed=7, n_points=10_000, universe=500, n_topics=50):
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


def random_bits(seed=11, n_points=10_000, dimension=64, n_prototypes=100):
    """Bit vectors: 100 random prototypes with each bit flipped with probability 0.1."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((n_prototypes, dimension), dtype=np.float64) < 0.5
    labels = rng.permutation(n_points) % n_prototypes
    flips = rng.random((n_points, dimension), dtype=np.float64) < 0.1
    X = prototypes[labels] ^ flips
    return X[:9_000], X[9_000:]



"""Filtered datasets: a dataset's points with a label each, and a filter per query.

`python -m ann_bench.datasets filter NAME` derives from dataset NAME one file per selectivity,
`<NAME>-filter-zipf-<percent>pct.hdf5` beside it, in the ann-benchmarks layout plus:

- `train_labels` (int32, one per training point): seeded synthetic labels 0..n_labels-1 drawn
  from a Zipf distribution (label r has weight 1 / (r + 1)), as real attribute data is skewed;
- `test_filters` (int32, (n_test, 2)): the range of labels [lo, hi) a query's answers must
  carry. Each range holds about `selectivity` of the training points (at least `count` of
  them, so that every query has a full top-`count`); a few distinct ranges per selectivity
  (`n_filters`), drawn at random among those that reach it, each query given one;
- attributes `selectivity` (the target fraction) and `passing_fraction` (the mean fraction of
  training points that pass a query's filter, what the ranges give);
- `neighbors` and `distances`: the exact top-`count` among the points that pass.

Results of a filtered set go to results/<NAME>-filter-zipf-<percent>pct/ like any dataset's, so
each selectivity has its own plots.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import h5py
import numpy as np

from ..errors import UserError
from .groundtruth import filtered_knn
from .hdf5 import load_dataset, write_dataset

log = logging.getLogger(__name__)

SELECTIVITIES = (0.001, 0.01, 0.1, 0.5)
N_LABELS = 1000
N_FILTERS = 16
SEED = 1
COUNT = 100


def is_filtered(path: Path) -> bool:
    """Whether the dataset file carries filters (only wrappers with supports_filter can run it);
    False for a file not there yet (a dry run plans a registered set, never a filtered one)."""
    if not path.is_file():
        return False
    with h5py.File(path, "r") as f:
        return "test_filters" in f


def filtered_name(base: str, selectivity: float) -> str:
    return f"{base}-filter-zipf-{selectivity * 100:g}pct"


def zipf_labels(n: int, n_labels: int, rng: np.random.Generator) -> np.ndarray:
    """n labels of 0..n_labels-1, label r drawn with weight 1 / (r + 1)."""
    weights = 1.0 / np.arange(1, n_labels + 1)
    return rng.choice(n_labels, size=n, p=weights / weights.sum()).astype(np.int32)


def label_ranges(labels: np.ndarray, n_labels: int, passing: int, n_filters: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Up to n_filters distinct ranges [lo, hi), each the shortest from its lo that holds at
    least `passing` points, their lo drawn at random among those where one exists."""
    before = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_labels))])
    his = np.searchsorted(before, before[:-1] + passing, side="left")
    starts = np.flatnonzero(his <= n_labels)
    if not len(starts):
        raise UserError(f"no label range holds {passing} of the {len(labels)} points")
    chosen = np.sort(rng.choice(starts, size=min(n_filters, len(starts)), replace=False))
    return np.stack([chosen, his[chosen]], axis=1).astype(np.int32)


def build_filtered(base: Path, selectivity: float, n_labels: int = N_LABELS, n_filters: int = N_FILTERS,
                   seed: int = SEED, count: int = COUNT) -> Path:
    """Write the filtered set of `selectivity` derived from the dataset file `base`, beside it."""
    if not 0 < selectivity <= 1:
        raise UserError(f"selectivity {selectivity} is not a fraction in (0, 1]")
    data = load_dataset(base)
    n_train, n_test = len(data.train), len(data.test)
    if count > n_train:
        raise UserError(f"{base.stem} has {n_train} training points, fewer than the {count} neighbours asked for")
    rng = np.random.default_rng(seed)
    labels = zipf_labels(n_train, n_labels, rng)  # the same labels for every selectivity
    passing = max(count, math.ceil(selectivity * n_train))
    ranges = label_ranges(labels, n_labels, passing, n_filters, np.random.default_rng([seed, passing]))
    which = np.random.default_rng([seed, passing, 1]).integers(len(ranges), size=n_test)
    filters = ranges[which]
    log.info("filtered ground truth of %s at selectivity %g", base.stem, selectivity)
    neighbors, distances = filtered_knn(data.train, data.test, labels, filters, count, data.distance)
    fractions = np.array([((labels >= lo) & (labels < hi)).mean() for lo, hi in ranges])
    passing_fraction = float(fractions[which].mean())
    with h5py.File(base, "r") as f:
        point_type = f.attrs.get("point_type", "float")
    path = base.with_name(filtered_name(base.stem, selectivity) + ".hdf5")
    attrs = {"selectivity": selectivity, "passing_fraction": passing_fraction, "filter_labels": "zipf",
             "filter_seed": seed, "derived_from": base.stem}
    return write_dataset(path, data.train, data.test, data.distance, str(point_type), neighbors, distances,
                         count, progress=False, attrs=attrs,
                         arrays={"train_labels": labels, "test_filters": filters})

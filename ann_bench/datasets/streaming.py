"""Streaming sets: a dataset replayed through a runbook (runbook.py), with the exact ground truth
of the rows live at each search.

`run.py --dataset NAME --runbook RUNBOOK` (or `python -m ann_bench.datasets stream NAME
--runbook RUNBOOK`) derives `<NAME>-stream-<RUNBOOK>.hdf5` beside NAME's file, in the
ann-benchmarks layout plus:

- `stream_ops` (int64, (n_steps, 3)): the runbook's steps as (operation, lo, hi) rows of train;
- `test`: NAME's queries once per search step, in step order (the worker answers them at their
  step), so `neighbors` and `distances` are the exact top-`count` among the rows live at the
  query's step, computed here by the ground-truth code and never by the worker;
- attributes `runbook`, `runbook_sha256` (the file it was made from: a changed runbook makes
  the set anew), `search_steps` and `derived_from`.

Results go to results/<NAME>-stream-<RUNBOOK>/ like any dataset's, so they never mix with
NAME's. Only wrappers that declare supports_insert (and supports_delete, for a runbook that
deletes) run it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import h5py
import numpy as np

from ..errors import UserError
from .groundtruth import Points, filtered_knn
from .hdf5 import STREAM_OPS, load_dataset, text, write_dataset
from .runbook import DELETE, Runbook, live_sets, resolve

log = logging.getLogger(__name__)

COUNT = 100


def is_stream(path: Path) -> bool:
    """Whether the dataset file is a streaming set (False for a file not there yet)."""
    if not path.is_file():
        return False
    with h5py.File(path, "r") as f:
        return STREAM_OPS in f


def has_deletes(ops: np.ndarray) -> bool:
    return bool((ops[:, 0] == DELETE).any())


def deletes_in(path: Path) -> bool:
    """Whether the streaming set at `path` deletes points (or only inserts them)."""
    with h5py.File(path, "r") as f:
        return has_deletes(f[STREAM_OPS][:])


def stream_name(base: str, runbook: str) -> str:
    return f"{base}-stream-{runbook}"


def _digest(runbook: Runbook) -> str:
    return hashlib.sha256(runbook.text.encode()).hexdigest()


def _current(path: Path, runbook: Runbook) -> bool:
    """Whether the set at `path` was made from this version of the runbook."""
    if not path.is_file():
        return False
    with h5py.File(path, "r") as f:
        return text(f.attrs.get("runbook_sha256", "")) == _digest(runbook)


def stream_set(base: Path, runbook: Runbook, count: int = COUNT) -> Path:
    """The streaming set of `base` through `runbook`, beside it: made when missing or made from
    another version of the runbook."""
    path = base.with_name(stream_name(base.stem, runbook.name) + ".hdf5")
    if _current(path, runbook):
        return path
    data = load_dataset(base)
    if data.type != "dense":
        raise UserError(f"{base.stem} is a set of sets; streaming runs take dense vectors")
    ops = resolve(runbook, len(data.train))
    lives = live_sets(ops, len(data.train))
    count = min(count, *(int(live.sum()) for live in lives))
    test = np.tile(data.test, (len(lives), 1))
    log.info("ground truth of %s at its %d search steps", path.stem, len(lives))
    neighbors, distances = live_knn(data.train, test, ops, np.arange(len(test)), count, data.distance)
    attrs = {"runbook": runbook.name, "runbook_sha256": _digest(runbook), "search_steps": len(lives),
             "derived_from": base.stem}
    return write_dataset(path, data.train, test, data.distance, data.point_type, neighbors, distances, count,
                         progress=False, attrs=attrs, arrays={STREAM_OPS: ops})


def live_knn(train: Points, test: np.ndarray, ops: np.ndarray, rows: np.ndarray, k: int,
             metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k of the streaming set's queries `rows` (of its test, one block of queries
    per search step) among the training rows live at each one's step, as exact_knn returns it."""
    lives = live_sets(ops, len(train))
    steps = rows // (len(test) // len(lives))
    ids = np.empty((len(rows), k), dtype=np.int32)
    dists = np.empty((len(rows), k), dtype=np.float32)
    for step in np.unique(steps):
        chosen = np.flatnonzero(steps == step)
        passing = np.tile([[1, 2]], (len(chosen), 1))  # label 1 (live) passes
        ids[chosen], dists[chosen] = filtered_knn(train, test[rows[chosen]], lives[step].astype(np.int32), passing,
                                                  k, metric)
    return ids, dists

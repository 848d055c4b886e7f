"""The worker's side of a filtered dataset (ann_bench/datasets/filtered.py).

Before fit the wrapper is given the training points' labels (set_labels, sealed read-only like
the points); each query is then asked with its filter (filtered_query), one at a time. A
wrapper that does not declare supports_filter is never run on a filtered set (the host leaves
it out; a job that asks anyway fails with the reason), and neither is batch mode, which has no
filtered form. The host checks that every returned id passes its query's filter
(results/acceptance.py).
"""

from __future__ import annotations

from typing import Any, Callable

from ..algorithms.base import BaseANN
from ..algorithms.filtering import LabelRange
from ..datasets.hdf5 import Dataset
from .jobs import Job
from .sealed import handout, seal


class FilterUnsupported(Exception):
    """A filtered job that this wrapper or mode cannot run."""


def give_labels(algo: BaseANN, data: Dataset, job: Job) -> None:
    """Hand the wrapper the labels before fit, or FilterUnsupported saying why not."""
    if not algo.supports_filter:
        raise FilterUnsupported(f"{job.definition.algorithm} does not declare supports_filter; "
                                f"it cannot run the filtered dataset {data.name}")
    if job.batch:
        raise FilterUnsupported("filtered datasets are run one query at a time, not with --batch")
    assert data.train_labels is not None
    algo.set_labels(seal(data.train_labels))


def filtered_queries(algo: BaseANN, data: Dataset) -> tuple[Callable[[Any, int], Any], list]:
    """What time_single calls and with what: each row a (query, its LabelRange) pair."""
    assert data.test_filters is not None
    search = algo.filtered_query
    ranges = [LabelRange(int(lo), int(hi)) for lo, hi in data.test_filters]

    def query(row: tuple[Any, LabelRange], k: int) -> Any:
        return search(row[0], k, row[1])

    return query, list(zip(handout(data.test), ranges))

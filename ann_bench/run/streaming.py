"""The worker's side of a streaming set (ann_bench/datasets/streaming.py): replay the runbook.

There is no fit: the steps are played in order, an insert handing the wrapper its rows of train
with their row numbers as ids (insert), a delete the ids to remove (delete), each timed alone
with perf_counter_ns; at a search step every query-argument set of the job is measured as in
any run (warm-up, timed passes, answers checked) on that step's queries. Each set's result
holds its answers and times of every search step in order, and `update_times`, the seconds of
each step (0 for a search), from which the host reports insert and delete throughput. The host
scores each step against the rows then live and rejects an answer naming a row that is not
(results/acceptance.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..algorithms.base import BaseANN
from ..datasets.hdf5 import Dataset
from ..datasets.runbook import INSERT, SEARCH
from ..datasets.streaming import has_deletes
from ..results.files import canonical_json
from .jobs import Job
from .sealed import handout

log = logging.getLogger(__name__)


class StreamUnsupported(Exception):
    """A streaming job that this wrapper or mode cannot run."""


def check_supported(algo: BaseANN, ops: np.ndarray, job: Job) -> None:
    """StreamUnsupported saying why the wrapper cannot replay these steps, if it cannot."""
    name = job.definition.algorithm
    if not algo.supports_insert:
        raise StreamUnsupported(f"{name} does not declare supports_insert; it cannot run the streaming set "
                                f"{job.dataset}")
    if has_deletes(ops) and not algo.supports_delete:
        raise StreamUnsupported(f"{name} does not declare supports_delete; the runbook of {job.dataset} deletes rows")
    if job.batch or job.clients:
        raise StreamUnsupported("streaming sets are run one query at a time, not with --batch or --clients")


@dataclass
class Replay:
    """What the replay measured: per query-argument set its steps' measurements (or why it
    failed), and the seconds of each step."""

    update_times: np.ndarray
    steps: dict[str, list[dict]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def build_time(self) -> float:
        return float(self.update_times.sum())

    def measured(self, query_args: Any) -> dict:
        """The set's result arrays and figures over all its search steps, as run_query_set
        gives them for one."""
        steps = self.steps[canonical_json(query_args)]
        n = sum(len(step["times"]) for step in steps)
        return {
            "candidates": float(np.mean([step["candidates"] for step in steps])),
            "neighbors": np.concatenate([step["neighbors"] for step in steps]),
            "times": np.concatenate([step["times"] for step in steps]),
            "run_times": np.sum([step["run_times"] for step in steps], axis=0),
            "best_search_time": sum(step["best_search_time"] * len(step["times"]) for step in steps) / n,
            "library_seconds": sum(step["library_seconds"] for step in steps),
        }


def replay(algo: BaseANN, data: Dataset, job: Job, search: Callable[[BaseANN, Dataset, Job, Any], dict]) -> Replay:
    """Play the runbook; `search` measures one query-argument set on the step's queries (the
    runner's run_query_set). A set that fails at a step is left out of the steps after it."""
    ops = data.stream_ops
    assert ops is not None
    per_step = len(data.test) // int((ops[:, 0] == SEARCH).sum())
    done = Replay(np.zeros(len(ops)), {canonical_json(q): [] for q in job.query_args})
    clock = time.perf_counter_ns
    search_step = 0
    for i, (operation, lo, hi) in enumerate(ops):
        if operation == SEARCH:
            step = replace(data, test=data.test[search_step * per_step:(search_step + 1) * per_step])
            for query_args in job.query_args:
                key = canonical_json(query_args)
                if key in done.failures:
                    continue
                try:
                    done.steps[key].append(search(algo, step, job, query_args))
                except Exception as e:
                    done.failures[key] = f"search step {search_step + 1}: {type(e).__name__}: {e}"
                    log.error("%s %s failed at search step %d: %s", job.definition.algorithm, key,
                              search_step + 1, e)
            search_step += 1
            continue
        ids = np.arange(lo, hi, dtype=np.int64)
        ids.flags.writeable = False
        if operation == INSERT:
            rows = handout(data.train[lo:hi])
            start = clock()
            algo.insert(rows, ids)
        else:
            start = clock()
            algo.delete(ids)
        done.update_times[i] = (clock() - start) / 1e9
        log.info("%s rows [%d, %d) in %.6f s", "inserted" if operation == INSERT else "deleted", lo, hi,
                 done.update_times[i])
    return done

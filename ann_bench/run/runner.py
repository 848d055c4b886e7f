"""The worker: load the data, fit once, sweep the query arguments, time, validate, write.

Runs wherever an executor starts it: `python -m ann_bench.run.runner --job JSON`. It is given
train and test only and a private output directory (the job's results_dir). Each query-argument
set becomes one result file there as soon as it is done, followed by a message (messages.py;
a failed set gets a message with its reason and no file), so a crash or kill later on loses
only the set that was running. The host checks each file and computes its distances. Before
each set the worker reads the host's skip file (grading.py): the sets listed there, costlier
than one the host found at recall 1.0, are not run.
Only the library's calls are inside the timer, with the copy of their answers into plain id
arrays: work a wrapper defers to that conversion is timed too. The wrapper gets train and test
in memory it cannot write (sealed.py).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import log as logsetup
from ..algorithms import declared
from ..algorithms.base import BaseANN
from ..algorithms.ondisk import IndexDirectory
from ..datasets.hdf5 import Dataset
from ..results.files import STATUS_OK, RunResult, canonical_json, write_result
from . import clients, environment, grading, messages
from .definitions import Definition
from .filtering import FilterUnsupported, filtered_queries, give_labels
from .inputs import load_inputs
from .jobs import Job, base_attrs, display_name
from .memory import PeakMemory
from .sealed import handout, seal_points
from .streaming import Replay, StreamUnsupported, check_supported, replay

WARMUP_QUERIES = 1000

log = logging.getLogger("ann_bench.run.runner")  # by name: the worker runs as __main__


class InvalidAnswer(Exception):
    """A wrapper returned something that is not a valid k-NN answer."""


class DeclarationMismatch(Exception):
    """The imported wrapper class declares something else than the host read from its source."""


def instantiate(definition: Definition) -> BaseANN:
    """The wrapper, once its class is checked to declare what the host chose it by, named
    after the definition."""
    module = importlib.import_module(definition.module)
    constructor = getattr(module, definition.constructor)
    path = Path(module.__file__ or definition.module)
    found = declared.differences(constructor, declared.read_declared(path, definition.constructor), path)
    if found:
        raise DeclarationMismatch("the wrapper changes its declarations when imported (" + "; ".join(found) +
                                  "): declare them as literals that nothing changes")
    args, kwargs = definition.constructor_call()
    algo = constructor(*args, **kwargs)
    algo.name = display_name(definition, ())
    return algo


def validate_answers(answers, k: int, n_train: int, n_queries: int | None = None) -> np.ndarray:
    """Check every answer and return them as an (n, k) id array padded with -1.

    An answer is valid when it is a flat sequence of at most k distinct ids in [0, n_train);
    with n_queries, there must be exactly one answer per query.
    """
    if answers is None:
        raise InvalidAnswer("no answers returned")
    if isinstance(answers, np.ndarray) and answers.ndim == 0:
        raise InvalidAnswer(f"answers of type {answers.dtype} returned, expected one list of ids per query")
    if n_queries is not None and len(answers) != n_queries:
        raise InvalidAnswer(f"{len(answers)} answers for {n_queries} queries")
    ids = _id_matrix(answers)
    if ids is not None and _valid_matrix(ids, k, n_train):
        padded = np.full((len(ids), k), -1, dtype=np.int64)
        padded[:, : ids.shape[1]] = ids
        return padded
    return _validate_one_by_one(answers, k, n_train)


def _id_matrix(answers) -> np.ndarray | None:
    """The answers as one (n, m) integer array when they all have one length, else None."""
    try:
        ids = np.asarray(answers)
    except ValueError:  # answers of different lengths
        return None
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        return None
    return ids


def _valid_matrix(ids: np.ndarray, k: int, n_train: int) -> bool:
    """Every row valid, checked at numpy speed: this runs on every timed pass."""
    if ids.shape[1] > k:
        return False
    if ids.size == 0:
        return True
    if ids.min() < 0 or ids.max() >= n_train:
        return False
    ordered = np.sort(ids, axis=1)
    return not (ordered[:, 1:] == ordered[:, :-1]).any()


def _validate_one_by_one(answers, k: int, n_train: int) -> np.ndarray:
    """The slow path: ragged answers, and naming the first invalid one."""
    padded = np.full((len(answers), k), -1, dtype=np.int64)
    for i, answer in enumerate(answers):
        ids = np.asarray(answer)
        if ids.ndim != 1:
            raise InvalidAnswer(f"query {i}: answer has shape {ids.shape}, expected a flat list of ids")
        if len(ids) > k:
            raise InvalidAnswer(f"query {i}: {len(ids)} ids returned for k={k}")
        if len(ids) and not np.issubdtype(ids.dtype, np.integer):
            raise InvalidAnswer(f"query {i}: ids of type {ids.dtype}, expected integers")
        if len(ids) and (ids.min() < 0 or ids.max() >= n_train):
            bad = ids[(ids < 0) | (ids >= n_train)][0]
            raise InvalidAnswer(f"query {i}: id {bad} out of range [0, {n_train})")
        if len(np.unique(ids)) != len(ids):
            raise InvalidAnswer(f"query {i}: duplicate ids in {ids.tolist()}")
        padded[i, : len(ids)] = ids
    return padded


def time_single(query: Callable, queries: list, k: int) -> tuple[list, list]:
    """One pass of single queries. The timer brackets the library call and the copy of its
    answer into a plain array, nothing else: whatever a wrapper returns is made into ids inside
    the timer (an object that searches when converted pays for it), and a copy taken there is
    the answer, whatever the wrapper does to its own array afterwards."""
    clock = time.perf_counter_ns
    array = np.array
    times = [0] * len(queries)
    answers: list[Any] = [None] * len(queries)
    for i, q in enumerate(queries):
        start = clock()
        answer = query(q, k)
        try:
            ids = array(answer)
        except (TypeError, ValueError) as e:
            raise InvalidAnswer(f"query {i}: answer is not an array of ids ({e})") from None
        times[i] = clock() - start
        answers[i] = ids
    return times, answers


def time_batch(algo: BaseANN, queries: Any, k: int) -> tuple[int, Any]:
    """One batch: batch_query and get_batch_results both inside the timer, and the answers
    copied into plain arrays there, as single answers are."""
    clock = time.perf_counter_ns
    start = clock()
    algo.batch_query(queries, k)
    answers = _batch_arrays(algo.get_batch_results())
    elapsed = clock() - start
    return elapsed, answers


def _batch_arrays(answers: Any) -> Any:
    """The answers as one (n, m) array, or one array each where their lengths differ."""
    if answers is None:
        return None
    try:
        return np.array(answers)
    except (TypeError, ValueError):  # answers of different lengths, or not arrays: one by one
        pass
    try:
        return [np.array(answer) for answer in answers]
    except (TypeError, ValueError) as e:
        raise InvalidAnswer(f"the batch's answers are not arrays of ids ({e})") from None


def run_query_set(algo: BaseANN, data: Dataset, job: Job, query_args: Any) -> dict:
    """Warm up, then job.runs timed passes; returns arrays and attributes of the best pass."""
    algo.name = display_name(job.definition, query_args)
    if isinstance(query_args, dict):
        algo.set_query_arguments(**query_args)
    else:
        algo.set_query_arguments(*query_args)
    k, n, n_train = job.count, len(data.test), len(data.train)
    # The warm-up asks for training points, as many as it would take test queries: a wrapper
    # that remembers its answers would otherwise know timed queries before the clock starts.
    warm_queries = handout(data.train)[:min(WARMUP_QUERIES, n)]
    if job.batch:
        library_ns, warm_answers = time_batch(algo, warm_queries, k)
    else:
        query, rows = (algo.query, list(handout(data.test))) if data.test_filters is None else \
            filtered_queries(algo, data)
        # A filtered warm-up keeps the test queries' filters, on training points.
        warm_rows = list(warm_queries) if data.test_filters is None else \
            [(point, row[1]) for point, row in zip(warm_queries, rows)]
        warm_times, warm_answers = time_single(query, warm_rows, k)
        library_ns = sum(warm_times)
    # Every answer is checked, the warm-up's and every pass's, not only the best pass's.
    validate_answers(warm_answers, k, n_train, len(warm_queries))
    best_total, best_times, ids, run_totals = None, None, None, []
    for _ in range(job.runs):
        if job.batch:
            total, run_answers = time_batch(algo, handout(data.test), k)
            per_query = np.full(n, total / n)
        elif job.clients:
            burst = clients.run_burst(algo, rows, k, job.clients, job.duration, time_single)
            # Wall time per query answered, as the time of one pass: 1 / best_search_time is the aggregate QPS.
            total, per_query, run_answers = burst.wall_ns * n // burst.answered, burst.times_ns, burst.answers
        else:
            times, run_answers = time_single(query, rows, k)
            total, per_query = sum(times), np.asarray(times, dtype=np.float64)
        run_ids = validate_answers(run_answers, k, n_train, n)
        library_ns += total
        run_totals.append(total / 1e9)
        if best_total is None or total < best_total:
            best_total, best_times, ids = total, per_query / 1e9, run_ids
    assert best_total is not None and ids is not None, "runs >= 1 (the CLI refuses fewer)"
    return {
        "candidates": float((ids >= 0).sum(axis=1).mean()),
        "neighbors": ids.astype(np.int32),
        "times": best_times,
        "run_times": np.asarray(run_totals),
        "best_search_time": best_total / 1e9 / n,
        "library_seconds": library_ns / 1e9,
    }


def _last_line(error: BaseException) -> str:
    """The one line a summary shows: "ValueError: ..."; the traceback goes to the log."""
    log.error("%s", "".join(traceback.format_exception(error)).rstrip())
    return "".join(traceback.format_exception_only(error)).strip().splitlines()[-1]


def _build(algo: BaseANN, data: Dataset, memory: PeakMemory) -> tuple[float, int, dict]:
    """Fit once; the build time, the memory the index added (kB) and the memory figures of
    the build: its peak, and the index's files where the engine keeps it on disk."""
    memory_before = algo.get_memory_usage()
    memory.reset()
    start = time.perf_counter_ns()
    algo.fit(handout(data.train))
    build_time = (time.perf_counter_ns() - start) / 1e9
    figures = {"peak_build_mb": memory.peak_mb()}
    if isinstance(algo, IndexDirectory):
        figures["ondisk_mb"] = algo.disk_usage_kb() / 1024
    return build_time, algo.get_memory_usage() - memory_before, figures


def _replay(algo: BaseANN, data: Dataset, job: Job, memory: PeakMemory) -> tuple[Replay, float, int, dict]:
    """A streaming set's runbook played (streaming.py) in place of the build: the build time is
    the inserts', the memory figures the replay's."""
    assert data.stream_ops is not None
    check_supported(algo, data.stream_ops, job)
    memory_before = algo.get_memory_usage()
    memory.reset()
    streamed = replay(algo, data, job, run_query_set)
    peak = memory.peak_mb()
    figures = {"peak_build_mb": peak, "peak_query_mb": peak, "memory_measure": memory.measure}
    return streamed, streamed.build_time, algo.get_memory_usage() - memory_before, figures


def run_job(job: Job) -> bool:
    """Run every query-argument set of the job; True when all of them produced a result."""
    data = load_inputs(job.dataset_path, hold=seal_points)
    algo = None
    memory = PeakMemory()
    streamed = None
    try:
        algo = instantiate(job.definition)
        job = replace(job, environment=dict(job.environment, **environment.describe(algo.package)))
        if job.batch and not algo.supports_batch:
            log.info("%s has no native batch search; timing one-by-one answers", job.definition.algorithm)
        if data.train_labels is not None:
            give_labels(algo, data, job)
        algo.seed = None if job.repeat == 1 else job.repeat
        if data.stream_ops is None:
            build_time, index_size, memory_figures = _build(algo, data, memory)
        else:
            streamed, build_time, index_size, memory_figures = _replay(algo, data, job, memory)
    except Exception as e:
        expected = (DeclarationMismatch, FilterUnsupported, StreamUnsupported)
        failed = "fit failed: " if data.stream_ops is None else "an update failed: "
        reason = str(e) if isinstance(e, expected) else failed + _last_line(e)
        if algo is not None:
            algo.done()
        for query_args in job.query_args:
            messages.send(job.results_dir, query_args, messages.STATUS_FAILED, reason)
        return False
    log.info("built %s %s in %.3f s", job.definition.algorithm, json.dumps(job.definition.args), build_time)
    all_ok = True
    library_seconds = build_time
    for query_args in job.query_args:
        key = canonical_json(query_args)
        if key in grading.read_skip(job.results_dir):
            log.info("skipped %s: the host found a cheaper set at recall 1.0", json.dumps(query_args))
            continue
        if streamed is not None and key in streamed.failures:
            messages.send(job.results_dir, query_args, messages.STATUS_FAILED, streamed.failures[key])
            all_ok = False
            continue
        try:
            if streamed is None:
                memory.reset()
                measured = run_query_set(algo, data, job, query_args)
                memory_figures.update(peak_query_mb=memory.peak_mb(), memory_measure=memory.measure)
            else:
                measured = dict(streamed.measured(query_args), extra={"update_times": streamed.update_times})
        except InvalidAnswer as e:
            log.error("invalid answer for %s: %s", json.dumps(query_args), e)
            messages.send(job.results_dir, query_args, messages.STATUS_FAILED, f"invalid answer: {e}")
            all_ok = False
            continue
        except Exception as e:
            messages.send(job.results_dir, query_args, messages.STATUS_FAILED, _last_line(e))
            all_ok = False
            continue
        library_seconds += measured["library_seconds"]
        attrs = base_attrs(job, display_name(job.definition, query_args), query_args)
        # Extra figures go in as attributes of their own, as ann-benchmarks stores them,
        # but never over one of ours.
        attrs.update({key: value for key, value in algo.get_additional().items() if key not in attrs})
        attrs.update(
            status=STATUS_OK,
            distance=data.distance,
            build_time=build_time,
            index_size=index_size,
            best_search_time=measured.pop("best_search_time"),
            library_seconds=measured.pop("library_seconds"),
            candidates=measured.pop("candidates"),
            **memory_figures,
        )
        result = RunResult(attrs=attrs, **measured)
        path = write_result(job.result_path(query_args), result)
        messages.send(job.results_dir, query_args, messages.STATUS_OK)
        log.info("%s %s: %.1f QPS -> %s", attrs["name"], json.dumps(query_args), 1 / attrs["best_search_time"], path)
    algo.done()
    memory.close()
    log.info("library time %.3f s", library_seconds)
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one definition (started by an executor).")
    parser.add_argument("--job", required=True, help="the job as JSON")
    job = Job.from_json(parser.parse_args(argv).job)
    logsetup.setup(fmt="[%(asctime)s] %(message)s")
    return 0 if run_job(job) else 1


if __name__ == "__main__":
    sys.exit(main())

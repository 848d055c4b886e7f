"""Plan a sweep (what is done, what is left), run it on an executor, and summarise it.

The unit of work is a definition: one index build and every pending query-argument set
against it. Finished results are skipped, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import h5py
from tqdm import tqdm

from .definitions import Definition
from .errors import UserError
from .executors.base import Executor, Outcome, log_tail
from .results import STATUS_FAILED, STATUS_OK, params_name, read_result, result_dir, result_path, status_of
from .runner import Job, display_name, write_failure

POLL_SECONDS = 0.5


@dataclass
class Task:
    """One definition and the query-argument sets of it that still need a result."""

    definition: Definition
    pending: list
    paths: list[Path]
    log_path: Path

    @property
    def mtimes(self) -> list[int | None]:
        return [p.stat().st_mtime_ns if p.exists() else None for p in self.paths]


@dataclass
class Settings:
    dataset: str
    dataset_path: Path
    results_dir: Path
    count: int
    batch: bool = False
    runs: int = 5
    timeout: float | None = None
    parallelism: int = 1
    force: bool = False
    retry_failed: bool = False
    max_definitions: int | None = None
    environment: dict = field(default_factory=dict)


@dataclass
class Record:
    """The fate of one (definition, query args) in this sweep."""

    algorithm: str
    query_args: Any
    path: Path
    status: str  # ran, failed, skipped (done before), skipped-failed (failed before)
    reason: str = ""
    log_path: Path | None = None


@dataclass
class Planned:
    """What a command would do with one definition: results to make, done, failed before."""

    definition: Definition
    to_run: int
    done: int
    failed: int


@dataclass
class Plan:
    tasks: list[Task]
    records: list[Record]  # what is skipped
    definitions: list[Planned] = field(default_factory=list)

    @property
    def pending_count(self) -> int:
        return sum(len(t.pending) for t in self.tasks)


def make_plan(definitions: list[Definition], settings: Settings) -> Plan:
    tasks, skipped, counted = [], [], []
    planned_paths: set[Path] = set()
    for d in definitions:
        pending, paths, done, failed = [], [], 0, 0
        for query_args in d.query_args:
            path = result_path(settings.results_dir, settings.dataset, settings.count, d.algorithm,
                               settings.batch, d.args, query_args)
            if path in planned_paths:
                continue  # named twice (--algorithm X --algorithm X): one file, planned once
            planned_paths.add(path)
            status = None if settings.force else status_of(path)
            if status == STATUS_OK:
                skipped.append(Record(d.algorithm, query_args, path, "skipped"))
                done += 1
            elif status == STATUS_FAILED and not settings.retry_failed:
                skipped.append(Record(d.algorithm, query_args, path, "skipped-failed"))
                failed += 1
            else:
                pending.append(query_args)
                paths.append(path)
        task = None
        if pending:
            log = result_dir(settings.results_dir, settings.dataset, settings.count, d.algorithm,
                             settings.batch) / "logs" / (params_name(d.args, None) + ".log")
            task = Task(d, pending, paths, log)
            tasks.append(task)
        counted.append((d, task, done, failed))
    if settings.max_definitions is not None and len(tasks) > settings.max_definitions:
        # A random subset, as ann-benchmarks does, so repeated capped runs cover everything.
        tasks = random.sample(tasks, settings.max_definitions)
    chosen = {id(t) for t in tasks}
    overview = [Planned(d, len(t.pending) if t is not None and id(t) in chosen else 0, done, failed)
                for d, t, done, failed in counted]
    return Plan(tasks, skipped, [p for p in overview if p.to_run or p.done or p.failed])


def cpu_slots(parallelism: int, batch: bool) -> list[list[int]]:
    """Disjoint core sets, one per worker: one core each for single queries, a share for batch."""
    cores = sorted(os.sched_getaffinity(0))
    if parallelism < 1 or parallelism > len(cores):
        raise UserError(f"--parallelism {parallelism} is not possible with {len(cores)} usable cores; "
                        f"give a number from 1 to {len(cores)}")
    if not batch:
        return [[c] for c in cores[:parallelism]]
    share = len(cores) // parallelism
    return [cores[i * share:(i + 1) * share] for i in range(parallelism)]


def make_job(task: Task, settings: Settings) -> dict:
    job = Job(
        definition=task.definition,
        dataset=settings.dataset,
        dataset_path=str(settings.dataset_path),
        results_dir=str(settings.results_dir),
        count=settings.count,
        batch=settings.batch,
        runs=settings.runs,
        query_args=task.pending,
        environment=dict(settings.environment),
    )
    data = vars(job).copy()
    data["definition"] = task.definition.to_dict()
    return data


def settle(task: Task, job: dict, before: list[int | None], outcome: Outcome, distance: str) -> list[Record]:
    """Turn a worker's end into records; what it did not write becomes a failed result.

    A failure never replaces a good result from an earlier run (--force that failed keeps
    the old file) and never touches any other definition's file.
    """
    records = []
    job = Job.from_dict(job)  # as the executor left it: with what it recorded (e.g. the image id)
    for query_args, path, old in zip(task.pending, task.paths, before):
        written = path.exists() and path.stat().st_mtime_ns != old
        if written and status_of(path) == STATUS_OK:
            records.append(Record(task.definition.algorithm, query_args, path, "ran"))
            continue
        if written:
            reason = str(read_result(path, arrays=False).attrs.get("error", "failed"))
        else:
            reason = outcome.reason or "the worker ended without writing this result"
            if status_of(path) == STATUS_OK:
                reason += "; the earlier result is kept"
            write_failure(job, query_args, reason, distance)
        records.append(Record(task.definition.algorithm, query_args, path, "failed", reason, task.log_path))
    return records


def run_plan(plan: Plan, executor: Executor, settings: Settings, distance: str,
             progress: bool = True) -> list[Record]:
    """Run every task, settings.parallelism at a time, each on its own cores."""
    slots: Queue = Queue()
    for cpus in cpu_slots(settings.parallelism, settings.batch):
        slots.put(cpus)
    records = list(plan.records)
    lock = threading.Lock()
    started: dict[int, list] = {}
    interrupted = threading.Event()

    def work(index: int, task: Task) -> None:
        cpus = slots.get()
        try:
            if interrupted.is_set():
                return  # the sweep was stopped while this task waited for its cores
            before = task.mtimes
            with lock:
                started[index] = before
            job = make_job(task, settings)
            try:
                outcome = executor.run(job, cpus, task.log_path, settings.timeout)
            except Exception as e:  # a broken engine fails this task, not the sweep
                outcome = Outcome("failed", _executor_error(e, task.log_path), None, task.log_path)
            if interrupted.is_set():
                return  # not the worker's fault: what it did not finish is simply still to do
            settled = settle(task, job, before, outcome, distance)
            with lock:
                records.extend(settled)
        finally:
            slots.put(cpus)

    bar = tqdm(total=plan.pending_count, unit="run", disable=not progress, dynamic_ncols=True,
               desc=f"{settings.dataset} k={settings.count}")
    with ThreadPoolExecutor(max_workers=settings.parallelism) as pool:
        futures = []
        try:
            # Inside the try: a Ctrl-C while submitting must stop what already started.
            for i, t in enumerate(plan.tasks):
                futures.append(pool.submit(work, i, t))
            while not all(f.done() for f in futures):
                time.sleep(POLL_SECONDS)
                bar.n = _written(plan, started, lock)
                bar.refresh()
        except BaseException:
            # Interrupted: start nothing new and leave no worker behind.
            interrupted.set()
            for f in futures:
                f.cancel()
            executor.stop_all()
            raise
        for f in futures:
            f.result()
    bar.n = _written(plan, started, lock)
    bar.close()
    return records


def _executor_error(error: Exception, log_path: Path) -> str:
    """The one-line reason for an executor that raised; its traceback goes to the task's log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        traceback.print_exception(error, file=log)
    return f"executor error: {type(error).__name__}: {' '.join(str(error).split())[:300]}"


def _written(plan: Plan, started: dict, lock: threading.Lock) -> int:
    """How many pending results have been written since their task started (for progress)."""
    with lock:
        snapshot = dict(started)
    count = 0
    for index, before in snapshot.items():
        task = plan.tasks[index]
        count += sum(1 for now, old in zip(task.mtimes, before) if now is not None and now != old)
    return count


def _past_costs(directory: Path, runs: int) -> tuple[float, float] | None:
    """Median build time and median seconds per query set of the results in directory, if any."""
    builds, queries = [], []
    for path in sorted(directory.glob("*.hdf5")) if directory.is_dir() else []:
        attrs = read_result(path, arrays=False).attrs
        if attrs.get("status") == STATUS_OK and "library_seconds" in attrs:
            builds.append(float(attrs["build_time"]))
            # Seconds scale with the number of timed passes; warm-up counts as one more.
            queries.append(float(attrs["library_seconds"]) * (runs + 1) / (attrs["run_count"] + 1))
    if not builds:
        return None
    return statistics.median(builds), statistics.median(queries)


def _data_size(path: Path) -> tuple[int, int] | None:
    """Values stored in train and in test (points x dimension; set items for sparse data)."""
    try:
        with h5py.File(path, "r") as f:
            sizes = f["train"].size, f["test"].size
    except (OSError, KeyError):
        return None
    return sizes if min(sizes) > 0 else None


@dataclass
class Estimate:
    build: float  # seconds per definition
    query: float  # seconds per query-argument set
    source: str


def estimate(settings: Settings, algorithm: str) -> Estimate | None:
    """Costs from this dataset's earlier results, else scaled from another dataset's, else None.

    Scaling assumes time in proportion to the data (train values for a build, test values for
    a query set): rough, since real costs also depend on the algorithm and the distribution.
    The other dataset's file must be in the same data directory, to know its size.
    """
    here = _past_costs(result_dir(settings.results_dir, settings.dataset, settings.count, algorithm,
                                  settings.batch), settings.runs)
    if here is not None:
        return Estimate(*here, "same dataset")
    target = _data_size(settings.dataset_path)
    if target is None:
        return None
    candidates = []
    for count_dir in sorted(Path(settings.results_dir).glob("*/*")):
        dataset, count = count_dir.parent.name, count_dir.name
        if not count.isdigit() or (dataset, int(count)) == (settings.dataset, settings.count):
            continue
        costs = _past_costs(result_dir(settings.results_dir, dataset, int(count), algorithm, settings.batch),
                            settings.runs)
        size = _data_size(settings.dataset_path.with_name(f"{dataset}.hdf5")) if costs else None
        if size is not None:
            # The nearest dataset in size needs the least scaling; the same k is better still.
            closeness = (abs(math.log(target[0] / size[0])), int(count) != settings.count)
            candidates.append((closeness, dataset, int(count), costs, size))
    if not candidates:
        return None
    _, dataset, count, (build, query), (train, test) = min(candidates)
    source = f"scaled from {dataset}" + (f" k={count}" if count != settings.count else "")
    return Estimate(build * target[0] / train, query * target[1] / test, source)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def dry_run_table(plan: Plan, settings: Settings) -> str:
    """Each definition a command would run and what of it is done; per-algorithm totals with a
    time estimate, saying where each estimate comes from."""
    overview = sorted(plan.definitions, key=lambda p: p.definition.algorithm)  # stable: file order within
    lines = [f"{'to run':>6} {'done':>5} {'failed':>6}  definition"]
    lines += [f"{p.to_run:>6} {p.done:>5} {p.failed:>6}  {display_name(p.definition, ())}" for p in overview]
    totals: dict[str, list[int]] = {}
    for p in overview:
        row = totals.setdefault(p.definition.algorithm, [0, 0, 0, 0])
        row[0] += p.to_run > 0
        row[1] += p.to_run
        row[2] += p.done
        row[3] += p.failed
    width = max([len("algorithm")] + [len(a) for a in totals])
    lines += ["", f"{'algorithm':<{width}} {'builds':>6} {'to run':>6} {'done':>5} {'failed':>6}  estimate"]
    total, unknown, scaled = 0.0, [], False
    for algorithm, (builds, to_run, done, failed) in totals.items():
        costs = estimate(settings, algorithm) if builds else Estimate(0.0, 0.0, "nothing to run")
        if costs is None:
            text = "unknown (no earlier result of it with a dataset file to scale from)"
            unknown.append(algorithm)
        else:
            seconds = builds * costs.build + to_run * costs.query
            total += seconds
            scaled |= costs.source.startswith("scaled")
            text = f"{_duration(seconds)} ({costs.source})"
        lines.append(f"{algorithm:<{width}} {builds:>6} {to_run:>6} {done:>5} {failed:>6}  {text}")
    note = f", not counting {', '.join(unknown)} (unknown)" if unknown else ""
    lines.append(f"estimated time in library calls: {_duration(total)}{note}")
    if scaled:
        lines.append("scaled estimates assume time in proportion to the data size (train points x dimension "
                     "per build, queries x dimension per query set): a rough guide only")
    return "\n".join(lines)


def summary(records: list[Record]) -> tuple[str, bool]:
    """A table of what ran, was skipped and failed per algorithm; and whether anything failed."""
    counts: dict[str, Counter] = {}
    for r in records:
        counts.setdefault(r.algorithm, Counter())[r.status] += 1
    columns = ("ran", "failed", "skipped", "skipped-failed")
    width = max([len("algorithm")] + [len(a) for a in counts])
    lines = [f"{'algorithm':<{width}}  " + "  ".join(f"{c:>14}" for c in columns)]
    for algorithm in sorted(counts):
        lines.append(f"{algorithm:<{width}}  " + "  ".join(f"{counts[algorithm][c]:>14}" for c in columns))
    failures = [r for r in records if r.status == "failed"]
    shown_logs = set()
    for r in failures:
        lines.append(f"FAILED {r.algorithm} {r.query_args}: {r.reason}")
        if r.log_path is not None and r.log_path not in shown_logs:
            shown_logs.add(r.log_path)
            lines.append(f"  log: {r.log_path}")
            lines.extend("  | " + line for line in log_tail(r.log_path, 5))
    previously = sum(1 for r in records if r.status == "skipped-failed")
    if previously:
        lines.append(f"{previously} result(s) failed in an earlier run and were not retried "
                     f"(use --retry-failed or --force)")
    return "\n".join(lines), bool(failures)

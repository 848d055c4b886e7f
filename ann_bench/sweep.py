"""Plan a sweep (what is done, what is left), run it on an executor, and summarise it.

The unit of work is a definition: one index build and every pending query-argument set
against it. Finished results are skipped, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from tqdm import tqdm

from .definitions import Definition
from .errors import UserError
from .executors.base import Executor, Outcome, log_tail
from .results import STATUS_FAILED, STATUS_OK, params_name, read_result, result_dir, result_path, status_of
from .runner import Job, write_failure

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
class Plan:
    tasks: list[Task]
    records: list[Record]  # what is skipped

    @property
    def pending_count(self) -> int:
        return sum(len(t.pending) for t in self.tasks)


def make_plan(definitions: list[Definition], settings: Settings) -> Plan:
    tasks, skipped = [], []
    for d in definitions:
        pending, paths = [], []
        for query_args in d.query_args:
            path = result_path(settings.results_dir, settings.dataset, settings.count, d.algorithm,
                               settings.batch, d.args, query_args)
            status = None if settings.force else status_of(path)
            if status == STATUS_OK:
                skipped.append(Record(d.algorithm, query_args, path, "skipped"))
            elif status == STATUS_FAILED and not settings.retry_failed:
                skipped.append(Record(d.algorithm, query_args, path, "skipped-failed"))
            else:
                pending.append(query_args)
                paths.append(path)
        if pending:
            log = result_dir(settings.results_dir, settings.dataset, settings.count, d.algorithm,
                             settings.batch) / "logs" / (params_name(d.args, None) + ".log")
            tasks.append(Task(d, pending, paths, log))
    if settings.max_definitions is not None and len(tasks) > settings.max_definitions:
        # A random subset, as ann-benchmarks does, so repeated capped runs cover everything.
        tasks = random.sample(tasks, settings.max_definitions)
    return Plan(tasks, skipped)


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
            if status_of(path) != STATUS_OK:
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
            before = task.mtimes
            with lock:
                started[index] = before
            job = make_job(task, settings)
            outcome = executor.run(job, cpus, task.log_path, settings.timeout)
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
        futures = [pool.submit(work, i, t) for i, t in enumerate(plan.tasks)]
        try:
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


def _written(plan: Plan, started: dict, lock: threading.Lock) -> int:
    """How many pending results have been written since their task started (for progress)."""
    with lock:
        snapshot = dict(started)
    count = 0
    for index, before in snapshot.items():
        task = plan.tasks[index]
        count += sum(1 for now, old in zip(task.mtimes, before) if now is not None and now != old)
    return count


def _past_costs(settings: Settings, algorithm: str) -> tuple[float, float] | None:
    """Median build time and median seconds per query set of earlier results, if any."""
    directory = result_dir(settings.results_dir, settings.dataset, settings.count, algorithm, settings.batch)
    builds, queries = [], []
    for path in sorted(directory.glob("*.hdf5")) if directory.is_dir() else []:
        attrs = read_result(path, arrays=False).attrs
        if attrs.get("status") == STATUS_OK and "library_seconds" in attrs:
            builds.append(float(attrs["build_time"]))
            # Seconds scale with the number of timed passes; warm-up counts as one more.
            queries.append(float(attrs["library_seconds"]) * (settings.runs + 1) / (attrs["run_count"] + 1))
    if not builds:
        return None
    return statistics.median(builds), statistics.median(queries)


def dry_run_table(plan: Plan, settings: Settings) -> str:
    """What a command would run, what is already there, and a time estimate from past results."""
    rows: dict[str, list] = {}
    for task in plan.tasks:
        row = rows.setdefault(task.definition.algorithm, [0, 0, 0, 0, 0.0])
        row[0] += 1
        row[1] += len(task.pending)
    for record in plan.records:
        row = rows.setdefault(record.algorithm, [0, 0, 0, 0, 0.0])
        row[2 if record.status == "skipped" else 3] += 1
    lines = [f"{'algorithm':<16} {'definitions':>11} {'to run':>7} {'done':>5} {'failed':>6}  estimate"]
    total, unknown = 0.0, []
    for algorithm, (definitions, pending, done, failed, _) in sorted(rows.items()):
        costs = _past_costs(settings, algorithm) if definitions else (0.0, 0.0)
        if costs is None:
            estimate = "unknown (no earlier result)"
            unknown.append(algorithm)
        else:
            seconds = definitions * costs[0] + pending * costs[1]
            total += seconds
            estimate = f"{seconds:.0f} s"
        lines.append(f"{algorithm:<16} {definitions:>11} {pending:>7} {done:>5} {failed:>6}  {estimate}")
    note = f" plus {', '.join(unknown)}" if unknown else ""
    lines.append(f"estimated library time: {total:.0f} s{note} (from earlier results of this dataset and k)")
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

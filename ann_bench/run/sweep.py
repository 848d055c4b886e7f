"""Run a planned sweep on an executor: each task on its own cores, every worker's end settled
into records, a progress bar, and a clean stop on Ctrl-C."""

from __future__ import annotations

import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

from tqdm import tqdm

from ..results.files import STATUS_OK, read_result, status_of
from .disk import disk_error
from .executors.base import Executor, Outcome
from .jobs import Job, Settings, Task, write_failure
from .plan import Plan, Record, cpu_slots

POLL_SECONDS = 0.5


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


def settle(task: Task, job: dict, before: list[int | None], outcome: Outcome, distance: str,
           records: list[Record]) -> None:
    """Turn a worker's end into records, appended one by one (so a full disk keeps those made);
    what it did not write becomes a failed result.

    A failure never replaces a good result from an earlier run (--force that failed keeps
    the old file) and never touches any other definition's file.
    """
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
            settled: list[Record] = []
            try:
                settle(task, job, before, outcome, distance, settled)
            finally:
                with lock:
                    records.extend(settled)
        except OSError as error:  # the results disk (full, read-only): start nothing more, keep what finished
            interrupted.set()
            raise disk_error(error, settings.results_dir, records) from None
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



"""Run a planned sweep on an executor: each task on its own cores, every worker's outcome
settled into records, progress counted on outcomes, and a clean stop on Ctrl-C."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from queue import Queue

from tqdm import tqdm

from ..results.files import STATUS_OK, canonical_json, status_of
from .disk import disk_error
from .executors.base import Executor, Outcome, remove_orphaned_outputs
from .executors.logs import append_text
from .jobs import Job, Settings, Task, write_failure, write_skipped
from .plan import SKIPPED_EFFORT, Plan, Record

log = logging.getLogger(__name__)


def settle(task: Task, job: Job, outcome: Outcome, distance: str, records: list[Record]) -> None:
    """Turn a worker's outcome into records, appended one by one (so a full disk keeps those
    made); what the host did not accept becomes a failed result, with the worker's reason for
    it where it sent one, except the sets the host's grader had the worker skip (grading.py),
    which become skipped results with the grader's reason.

    A failure never replaces a good result from an earlier run (--force that failed keeps
    the old file) and never touches any other definition's file.
    """
    accepted = set(outcome.accepted)
    job = replace(job, environment=dict(job.environment, **outcome.environment))  # e.g. the image id
    for query_args, path in zip(task.pending, task.paths):
        if path in accepted:
            records.append(Record(task.definition.algorithm, query_args, path, "ran"))
            continue
        key = canonical_json(query_args)
        # Skipped only where the host's grader chose it and it did not run and fail: nothing else
        # missing is a skip.
        if key in outcome.skipped and key not in outcome.failures:
            write_skipped(job, query_args, outcome.skipped[key], distance)
            records.append(Record(task.definition.algorithm, query_args, path, SKIPPED_EFFORT, outcome.skipped[key]))
            continue
        reason = outcome.failures.get(key) or outcome.reason or \
            "the worker ended without writing this result"
        if status_of(path) == STATUS_OK:
            reason += "; the earlier result is kept"
        write_failure(job, query_args, reason, distance)
        records.append(Record(task.definition.algorithm, query_args, path, "failed", reason, task.log_path))


class Progress:
    """A bar on a terminal; elsewhere (a log file, a pipe) one line per finished definition."""

    def __init__(self, plan: Plan, settings: Settings, enabled: bool):
        self.lines = enabled and not sys.stdout.isatty()
        self.total, self.done = len(plan.tasks), 0
        self.started = time.monotonic()
        self.bar = tqdm(total=plan.pending_count, unit="run", disable=not enabled or self.lines,
                        dynamic_ncols=True, desc=f"{settings.dataset} k={settings.count}")

    def finished(self, task: Task, records: list[Record]) -> None:
        self.done += 1
        self.bar.update(len(records))
        if self.lines:
            failed = sum(1 for r in records if r.status == "failed")
            skipped = sum(1 for r in records if r.status == SKIPPED_EFFORT)
            print(f"[{self.done}/{self.total}] {task.definition.algorithm} {canonical_json(task.definition.args)}: "
                  f"{len(records) - failed - skipped} ran, {failed} failed, {skipped} skipped at recall 1.0 "
                  f"({time.monotonic() - self.started:.0f} s)", flush=True)

    def close(self) -> None:
        self.bar.close()


def run_plan(plan: Plan, executor: Executor, settings: Settings, distance: str,
             progress: bool = True) -> list[Record]:
    """Run every task, settings.parallelism at a time, each on its own cores."""
    slots: Queue = Queue()
    for cpus in executor.slots(settings.parallelism, settings.batch, settings.clients):
        slots.put(cpus)
    records = list(plan.records)
    lock = threading.Lock()
    interrupted = threading.Event()
    # Even with nothing to run: a sweep of a finished tree is how a user clears what a killed one left.
    for name in executor.remove_leftovers(settings.results_dir):
        log.warning("removed %s, left running by an earlier sweep of %s", name, settings.results_dir)
    remove_orphaned_outputs()
    shown = Progress(plan, settings, progress)

    def work(task: Task) -> None:
        cpus = slots.get()
        try:
            if interrupted.is_set():
                return  # the sweep was stopped while this task waited for its cores
            job = task.job(settings)
            try:
                outcome = executor.run(job, cpus, task.log_path, settings.timeout, grade=not settings.exhaustive)
            except Exception as e:  # a broken engine fails this task, not the sweep
                outcome = Outcome("failed", _executor_error(e, task.log_path), None, task.log_path)
            if interrupted.is_set():
                return  # not the worker's fault: what it did not finish is simply still to do
            settled: list[Record] = []
            try:
                settle(task, job, outcome, distance, settled)
                if outcome.write_error:
                    raise outcome.write_error
            finally:
                with lock:
                    records.extend(settled)
                    shown.finished(task, settled)
        except OSError as error:  # the results disk (full, read-only): start nothing more, keep what finished
            interrupted.set()
            raise disk_error(error, settings.results_dir, records) from None
        finally:
            slots.put(cpus)

    with ThreadPoolExecutor(max_workers=settings.parallelism) as pool:
        futures = []
        try:
            # Inside the try: a Ctrl-C while submitting must stop what already started.
            for task in plan.tasks:
                futures.append(pool.submit(work, task))
            for future in futures:
                future.result()
        except BaseException:
            # Interrupted: start nothing new and leave no worker behind.
            interrupted.set()
            for f in futures:
                f.cancel()
            executor.stop_all()
            raise
        finally:
            shown.close()
    return records


def _executor_error(error: Exception, log_path: Path) -> str:
    """The one-line reason for an executor that raised; its traceback goes to the task's log."""
    append_text(log_path, "".join(traceback.format_exception(error)))
    return f"executor error: {type(error).__name__}: {' '.join(str(error).split())[:300]}"

"""Plan a sweep: what is done, what failed before, what is left, and the cores each worker gets.

The unit of work is a definition: one index build and every pending query-argument set
against it; with --repeat R, each definition is R tasks, one per build. Finished results are
skipped, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..results.files import (
    REPEAT_INFIX,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    mode_suffix,
    params_name,
    result_dir,
    result_path,
    status_of,
)
from .definitions import Definition
from .disk import check_directory_name
from .jobs import Settings, Task

# A set not run because a cheaper set of its build reached recall 1.0 (this sweep's grader or an
# earlier one's): its file says so, and only --exhaustive runs it.
SKIPPED_EFFORT = "skipped-effort"


@dataclass
class Record:
    """The fate of one (definition, query args) in this sweep."""

    algorithm: str
    query_args: Any
    path: Path
    status: str  # ran, failed, skipped (done before), skipped-failed (failed before), SKIPPED_EFFORT
    reason: str = ""
    log_path: Path | None = None


@dataclass
class Planned:
    """What a command would do with one definition: results to make, done, failed before,
    skipped before (at recall 1.0)."""

    definition: Definition
    to_run: int
    done: int
    failed: int
    skipped: int = 0


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
    checked: set[Path] = set()
    for d in definitions:
        suffix = mode_suffix(settings.batch, settings.clients)
        directory = result_dir(settings.results_dir, settings.dataset, settings.count, d.algorithm, settings.batch,
                               settings.clients)
        if directory not in checked:  # before anything looks there: a name too long is a traceback later
            check_directory_name(directory, {settings.dataset: "the dataset name",
                                             directory.name: f"the algorithm name{f' (with {suffix})' * bool(suffix)}"})
            checked.add(directory)
        done = failed = skipped_effort = 0
        definition_tasks = []
        for repeat in range(1, settings.repeats + 1):
            pending, paths = [], []
            for query_args in d.query_args:
                path = result_path(settings.results_dir, settings.dataset, settings.count, d.algorithm,
                                   settings.batch, d.args, query_args, clients=settings.clients, repeat=repeat)
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
                elif status == STATUS_SKIPPED and not settings.exhaustive:
                    skipped.append(Record(d.algorithm, query_args, path, SKIPPED_EFFORT))
                    skipped_effort += 1
                else:
                    pending.append(query_args)
                    paths.append(path)
            if pending:
                suffix = "" if repeat == 1 else f"{REPEAT_INFIX}{repeat}"
                log = directory / "logs" / (params_name(d.args, None) + suffix + ".log")
                definition_tasks.append(Task(d, pending, paths, log, repeat))
        tasks.extend(definition_tasks)
        counted.append((d, definition_tasks, done, failed, skipped_effort))
    if settings.max_definitions is not None and len(tasks) > settings.max_definitions:
        # A random subset, as ann-benchmarks does, so repeated capped runs cover everything.
        tasks = random.sample(tasks, settings.max_definitions)
    chosen = {id(t) for t in tasks}
    overview = [Planned(d, sum(len(t.pending) for t in ts if id(t) in chosen), done, failed, skipped_effort)
                for d, ts, done, failed, skipped_effort in counted]
    return Plan(tasks, skipped, [p for p in overview if p.to_run or p.done or p.failed or p.skipped])


def cpu_slots(parallelism: int, batch: bool, clients: int | None = None,
              cores: list[int] | None = None) -> list[list[int]]:
    """Disjoint core sets, one per worker: one core each for single queries, a share for batch,
    a core per client for concurrent clients (as many as its share of the cores holds). `cores`:
    the cores to share out (a cluster worker slot's), by default this process's."""
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    if parallelism < 1 or parallelism > len(cores):
        raise UserError(f"--parallelism {parallelism} is not possible with {len(cores)} usable cores; "
                        f"give a number from 1 to {len(cores)}")
    if not batch and not clients:
        return [[c] for c in cores[:parallelism]]
    share = len(cores) // parallelism
    if clients:
        share = min(share, clients)
    return [cores[i * share:(i + 1) * share] for i in range(parallelism)]



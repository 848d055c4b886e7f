"""What a sweep hands to a worker: its settings, one task per definition, the job, and the
records every stage names a result by (display name, attributes, a failure record).

A `Job` crosses to the worker as JSON (`to_json`) and is parsed back into a `Job` there
(`from_json`); nothing else travels between them. The worker answers with the result files it
writes under the job's `results_dir` (its private output directory) and one JSON line per
query-argument set in MESSAGES there (see messages.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..results.files import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, RunResult, result_path, status_of, write_result
from .definitions import Definition

log = logging.getLogger(__name__)


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
    exhaustive: bool = False  # every set of an effort-ordered definition, none skipped (grading.py)
    max_definitions: int | None = None
    environment: dict = field(default_factory=dict)
    clients: int | None = None  # concurrent clients (run/clients.py); None: one query at a time
    duration: float | None = None  # seconds each burst of the clients lasts at least
    repeats: int = 1  # builds of each definition (--repeat)


@dataclass
class Task:
    """One definition and the query-argument sets of it that still need a result."""

    definition: Definition
    pending: list
    paths: list[Path]
    log_path: Path
    repeat: int = 1  # which build of the definition, from 1 (see results/files.py)

    def job(self, settings: Settings) -> "Job":
        """The job of this task, as the host sees it: the whole dataset, the results tree."""
        return Job(definition=self.definition, dataset=settings.dataset, dataset_path=str(settings.dataset_path),
                   results_dir=str(settings.results_dir), count=settings.count, batch=settings.batch,
                   runs=settings.runs, query_args=list(self.pending), environment=dict(settings.environment),
                   clients=settings.clients, duration=settings.duration, repeat=self.repeat)


@dataclass(frozen=True)
class Job:
    """One definition to run. On the host its paths are the dataset and the results tree; the
    worker gets a copy whose dataset_path is a file of train and test only and whose
    results_dir is a fresh private directory (executors/base.py)."""

    definition: Definition
    dataset: str
    dataset_path: str
    results_dir: str
    count: int
    batch: bool
    runs: int
    query_args: list
    environment: dict
    clients: int | None = None
    duration: float | None = None
    repeat: int = 1

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["definition"] = self.definition.to_dict()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "Job":
        data = json.loads(text)
        data["definition"] = Definition.from_dict(data["definition"])
        return cls(**data)

    def result_path(self, query_args: Any) -> Path:
        d = self.definition
        return result_path(self.results_dir, self.dataset, self.count, d.algorithm, self.batch, d.args, query_args,
                           clients=self.clients, repeat=self.repeat)


def _format_args(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(f"{key}={value}" for key, value in args.items())
    return ", ".join(str(value) for value in args)


def display_name(definition: Definition, query_args: Any) -> str:
    """What plots and tables call one result, e.g. "hnswlib(M=16, ef=40)"."""
    parts = [p for p in (_format_args(definition.args), _format_args(query_args)) if p]
    return f"{definition.algorithm}({', '.join(parts)})"


def base_attrs(job: Job, algo_name: str, query_args: Any) -> dict:
    d = job.definition
    concurrent = {"clients": job.clients, "duration": job.duration} if job.clients else {}
    return concurrent | {
        "name": algo_name,
        "algo": d.algorithm,
        "dataset": job.dataset,
        "count": job.count,
        "batch_mode": job.batch,
        "run_count": job.runs,
        "run_group": d.run_group,
        "build_args": d.args,
        "base_args": list(d.base_args),
        "query_args": query_args,
        "environment": job.environment,
        "repeat": job.repeat,
    }


def write_failure(job: Job, query_args: Any, error: str, distance: str = "") -> Path:
    """Record a failure, except over a good result from an earlier run (a --force re-run that
    failed): that result stays, and the failure is told in the log and the summary."""
    return _write_unmeasured(job, query_args, distance, status=STATUS_FAILED, error=error)


def write_skipped(job: Job, query_args: Any, reason: str, distance: str = "") -> Path:
    """Record a set the host's grader had skipped (run/grading.py), with why; a good result
    from an earlier run stays."""
    return _write_unmeasured(job, query_args, distance, status=STATUS_SKIPPED, reason=reason)


def _write_unmeasured(job: Job, query_args: Any, distance: str, **why: str) -> Path:
    """A result file without measurements (its status and why), never over a good result."""
    path = job.result_path(query_args)
    if status_of(path) == STATUS_OK:
        log.warning("%s %s (%s); kept the earlier result %s", json.dumps(query_args), why["status"],
                    why.get("error") or why.get("reason"), path)
        return path
    attrs = base_attrs(job, display_name(job.definition, query_args), query_args)
    attrs.update(distance=distance, **why)
    return write_result(path, RunResult(attrs=attrs))



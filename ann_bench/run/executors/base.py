"""Where a definition runs: one interface, interchangeable implementations (asv's Environment).

An executor makes sure its environment exists (`problems`), then runs a job (`run`) and returns
an `Outcome`. `run` is the same everywhere: the worker (`python -m ann_bench.run.runner --job
JSON`) gets the dataset's train and test only (inputs.py) and a fresh private output
directory; an implementation's `execute` starts it somewhere (a local process, a Docker
container, later a cluster node) and says how it ended, while the host's grader tells it which
sets past recall 1.0 to skip (grading.py). Then the host checks each result file
the worker left there (results/acceptance.py), recomputes its distances from its own copy of
the dataset, and only then writes it into results/. The sweep turns whatever was not accepted
into failed results, with the worker's reason where it sent one (messages.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import stat
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from ...results.acceptance import Reference, Rejected, accept
from ...results.files import canonical_json, write_result
from ..definitions import Definition
from ..grading import Grader
from ..inputs import worker_input
from ..jobs import Job, base_attrs, display_name
from ..messages import STATUS_FAILED, receive
from ..plan import cpu_slots
from .logs import CappedLog

log = logging.getLogger(__name__)

# Worker exit codes with a meaning of their own.
EXIT_OK = 0
EXIT_FAILED = 1  # the worker caught an exception and reported it in its messages

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MEMORY_SHARE = 0.9  # of total memory, split between parallel workers: the default memory limit


@dataclass
class Outcome:
    """How one worker ended, and what of its work the host accepted.

    status: ok, failed, crashed, timeout or oom. `environment`: what the executor knows of
    where it ran (e.g. the image id), stored in every accepted result. `accepted`: the result
    files written into results/; `failures`: the reason for each query-argument set (by
    canonical JSON) that the worker reported failed or whose file the host rejected;
    `write_error`: why writing into results/ stopped (a full or read-only disk), after which
    nothing more was accepted: the sweep stops on it, keeping what was.
    `skipped`: the reason for each set the host's grader told the worker to skip (a cluster
    worker's grader's, which execute returns, included).
    """

    status: str
    reason: str = ""
    exit_code: int | None = None
    log_path: Path | None = None
    environment: dict = field(default_factory=dict)
    accepted: list[Path] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    write_error: OSError | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def worker_command(python: str, job: Job) -> list[str]:
    return [python, "-m", "ann_bench.run.runner", "--job", job.to_json()]


def thread_environment(threads: int) -> dict[str, str]:
    """Pin BLAS/OpenMP pools to the cores the worker was given, not to the whole machine."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def outcome_from_exit(exit_code: int, log_path: Path | None = None) -> Outcome:
    """Interpret a worker's exit status (negative: killed by that signal, as subprocess says)."""
    if exit_code == EXIT_OK:
        return Outcome("ok", "", exit_code, log_path)
    if exit_code == EXIT_FAILED:
        return Outcome("failed", "exception in the wrapper (see its log)", exit_code, log_path)
    signum = -exit_code if exit_code < 0 else exit_code - 128 if exit_code > 128 else None
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return Outcome("crashed", f"crashed with {name} (exit code {exit_code})", exit_code, log_path)
    return Outcome("crashed", f"exited with code {exit_code}", exit_code, log_path)


def log_tail(path: Path | None, lines: int = 10) -> list[str]:
    if path is None or not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 16384))
        text = f.read().decode(errors="replace")
    return text.splitlines()[-lines:]


class Executor(ABC):
    name: str = "executor"
    # Whether the host grades the sets as the worker writes them; a worker elsewhere, whose files
    # reach the host only when it ends, is graded where it runs.
    grades_on_host: bool = True

    def problems(self, definitions: list[Definition], build: bool = False) -> list[str]:
        """What stops these definitions from running here (e.g. an image not built).

        With build=True the executor first makes what it can (e.g. builds missing images).
        """
        return []

    def stop_all(self) -> None:
        """Kill every worker still running (the sweep was interrupted); results written stay."""

    def slots(self, parallelism: int, batch: bool, clients: int | None = None) -> list[list[int]]:
        """The cores of each worker slot, one slot per definition at a time: this machine's by
        default (a cluster's slots are on its workers)."""
        return cpu_slots(parallelism, batch, clients)

    def run(self, job: Job, cpus: list[int], log_path: Path, timeout: float | None,
            grade: bool = True) -> Outcome:
        """Run the job's worker to its end with its inputs and a private output directory,
        then accept what it wrote. With `grade` (not --exhaustive), the host grades the sets of
        an effort-ordered definition as they finish and has the worker skip those a saturated
        set makes pointless (grading.py). Must not raise for worker faults."""
        if not Path(job.dataset_path).is_file():
            return Outcome("failed", f"dataset file {job.dataset_path} not found", None, log_path)
        with private_directory() as output:
            worker_job = replace(job, dataset_path=str(worker_input(job.dataset_path)), results_dir=str(output))
            with CappedLog(log_path) as log, Grader(job, output, enabled=grade and self.grades_on_host) as grader:
                ended = self.execute(worker_job, cpus, log, timeout, Path(job.results_dir), grade)
            return collect(job, worker_job, replace(ended, log_path=Path(log_path),
                                                    skipped={**ended.skipped, **grader.skipped}))

    @abstractmethod
    def execute(self, job: Job, cpus: list[int], log: CappedLog, timeout: float | None,
                results_dir: Path, grade: bool) -> Outcome:
        """Run the worker of `job` (whose paths are the worker's: its inputs, its private output)
        to its end, its stdout and stderr into `log`, and say how it ended; `results_dir` is the
        sweep's results tree, which the worker never sees; `grade` is run()'s, for an executor
        whose worker is graded elsewhere (not `grades_on_host`). Must not raise for worker faults."""

    def remove_leftovers(self, results_dir: Path) -> list[str]:
        """Remove what earlier sweeps of this results tree left running (a SIGKILLed run.py);
        the names of what was removed."""
        return []


def collect(job: Job, worker_job: Job, ended: Outcome) -> Outcome:
    """Accept each result file the worker wrote (into results/), and gather the reasons of
    what it reported failed or what the host rejected."""
    messages = receive(Path(worker_job.results_dir))
    reference = Reference(job.dataset_path)
    environment = dict(job.environment, **ended.environment)
    accepted, failures = [], {}
    for query_args in job.query_args:
        key = canonical_json(query_args)
        candidate = worker_job.result_path(query_args)
        if os.path.lexists(candidate):
            expected = base_attrs(job, display_name(job.definition, query_args), query_args)
            expected["environment"] = environment
            try:
                result = accept(candidate, Path(worker_job.results_dir), expected, reference, job.runs)
            except Rejected as e:
                failures[key] = f"result rejected: {e}"
                log.warning("%s %s: %s", job.definition.algorithm, key, failures[key])
                continue
            try:
                accepted.append(write_result(job.result_path(query_args), result))
            except OSError as e:
                return replace(ended, accepted=accepted, failures=failures, write_error=e)
        elif key in messages and messages[key].status == STATUS_FAILED:
            failures[key] = messages[key].reason or "failed"
    return replace(ended, accepted=accepted, failures=failures)


OUTPUT_PREFIX = "ann-bench-output-"


def sweep_directory() -> Path:
    """A fresh temporary directory on the host for one worker (its output, a container's output
    pipe). Its name carries this process's pid, so that one left by a run.py killed with SIGKILL
    can be told apart and removed by the next sweep (remove_orphaned_outputs)."""
    return Path(tempfile.mkdtemp(prefix=f"{OUTPUT_PREFIX}{os.getpid()}-"))


@contextmanager
def private_directory() -> Iterator[Path]:
    """A fresh directory for one worker's output (sweep_directory), removed with whatever the
    worker left in it (even directories it made unreadable)."""
    path = sweep_directory()
    try:
        yield path
    finally:
        shutil.rmtree(path, onerror=_allow_and_retry)


def remove_orphaned_outputs() -> list[Path]:
    """Remove the directories of sweep_directory that sweeps whose process is gone left behind
    (those this user may remove)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{OUTPUT_PREFIX}*-*"):
        pid = path.name[len(OUTPUT_PREFIX):].split("-", 1)[0]
        try:
            mine = os.geteuid() == 0 or path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if pid.isdigit() and mine and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, onerror=_allow_and_retry)
            removed.append(path)
    return removed


def _allow_and_retry(function, path: str, error) -> None:
    """rmtree's onerror: give the owner the rights back on the parent, then try once more."""
    parent = os.path.dirname(path)
    try:
        os.chmod(parent, stat.S_IRWXU)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, stat.S_IRWXU)
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        log.warning("could not remove %s from a worker's output directory", path)

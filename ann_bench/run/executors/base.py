"""Where a definition runs: one interface, interchangeable implementations (asv's Environment).

An executor starts the worker (`python -m ann_bench.run.runner --job JSON`) somewhere: a local
process, a Docker container, later a cluster node. The worker writes one result file per
query-argument set; the executor only reports how the worker ended, and the sweep turns an
abnormal end into failed results for whatever the worker did not write.
"""

from __future__ import annotations

import json
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ..definitions import Definition

# Worker exit codes with a meaning of their own.
EXIT_OK = 0
EXIT_FAILED = 1  # the worker caught an exception and recorded it in the result files

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class Outcome:
    """How one worker ended. status: ok, failed, crashed, timeout or oom."""

    status: str
    reason: str = ""
    exit_code: int | None = None
    log_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def worker_command(python: str, job: dict) -> list[str]:
    return [python, "-m", "ann_bench.run.runner", "--job", json.dumps(job)]


def thread_environment(threads: int) -> dict[str, str]:
    """Pin BLAS/OpenMP pools to the cores the worker was given, not to the whole machine."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def outcome_from_exit(exit_code: int, log_path: Path | None = None) -> Outcome:
    """Interpret a worker's exit status (negative: killed by that signal, as subprocess says)."""
    if exit_code == EXIT_OK:
        return Outcome("ok", "", exit_code, log_path)
    if exit_code == EXIT_FAILED:
        return Outcome("failed", "exception in the wrapper (see its result and log)", exit_code, log_path)
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

    def problems(self, definitions: list[Definition], build: bool = False) -> list[str]:
        """What stops these definitions from running here (e.g. an image not built).

        With build=True the executor first makes what it can (e.g. builds missing images).
        """
        return []

    def stop_all(self) -> None:
        """Kill every worker still running (the sweep was interrupted); results written stay."""

    @abstractmethod
    def run(self, job: dict, cpus: list[int], log_path: Path, timeout: float | None) -> Outcome:
        """Run one worker to its end and say how it ended. Must not raise for worker faults."""

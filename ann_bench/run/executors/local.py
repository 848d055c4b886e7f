"""Run each definition in a child process on this machine (`run.py --local`).

A child process, not the caller's own, so that a segfault, a hang or a memory blow-up in a
library costs one definition, not the sweep.

The child runs the shared environment's python (the caller's), except for a definition whose
library has an environment of its own, `.venvs/<library>` (asv's one-environment-per-need
habit): a library whose pins conflict with the shared .venv (diskannpy needs numpy 1.25) says
`local: own` in algorithms.yaml, and local_envs.py (`scripts/setup-env`) makes its environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ...paths import REPO, VENVS_DIR
from ..definitions import DEFAULT_FILE, Definition, load_algorithms
from ..jobs import Job
from .base import Executor, Outcome, outcome_from_exit, thread_environment, worker_command
from .local_envs import ensure_own, own_environment_libraries

PACKAGE_PARENT = REPO


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, python: str = sys.executable, venvs_dir: Path = VENVS_DIR,
                 definitions_file: Path | str | None = None):
        """`definitions_file` (default algorithms.yaml) says which libraries run in an
        environment of their own (`local: own`)."""
        self.python = python
        self.venvs_dir = Path(venvs_dir)
        self.definitions_file = definitions_file or DEFAULT_FILE
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def python_for(self, library: str) -> str:
        """The library's own environment's python where it has one, else the shared one."""
        own = self.venvs_dir / library / "bin" / "python"
        return str(own) if own.exists() else self.python

    def problems(self, definitions: list[Definition], build: bool = False) -> list[str]:
        """Libraries that need an environment of their own that is not made yet; with build=True
        (run.py --build) they are made first, as scripts/setup-env --library would."""
        own = own_environment_libraries(load_algorithms(self.definitions_file).values())
        problems = []
        for library in dict.fromkeys(d.image for d in definitions):
            if library not in own or self.python_for(library) != self.python:
                continue
            if build:
                ensure_own(library, self.venvs_dir)
                continue
            algorithms = ", ".join(dict.fromkeys(d.algorithm for d in definitions if d.image == library))
            problems.append(f"{algorithms} runs locally in an environment of its own (its pins conflict with "
                            f"the shared one): make it with scripts/setup-env --library {library}")
        return problems

    def stop_all(self) -> None:
        with self._lock:
            for proc in self._running:
                _kill_group(proc)

    def execute(self, job: Job, cpus: list[int], log_path: Path, timeout: float | None,
                results_dir: Path) -> Outcome:
        env = dict(os.environ, **thread_environment(len(cpus)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                worker_command(self.python_for(job.definition.image), job),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # so a timeout kills the worker's own children too
                preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            )
            with self._lock:
                self._running.add(proc)
            try:
                return outcome_from_exit(proc.wait(timeout=timeout), log_path)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                return Outcome("timeout", f"timed out after {timeout:g} s", None, log_path)
            finally:
                with self._lock:
                    self._running.discard(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """The worker runs in its own session; kill it and anything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

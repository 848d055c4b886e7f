"""Run each definition in a child process on this machine (`run.py --local`).

A child process, not the caller's own, so that a segfault, a hang or a memory blow-up in a
library costs one definition, not the sweep.

The child runs the shared environment's python (the caller's), except for a definition whose
image has an environment of its own, `.venvs/<image>` (asv's one-environment-per-need habit):
a library whose pins conflict with the shared .venv (diskannpy needs numpy 1.25) is left out
of requirements-local.txt and gets its environment from `scripts/setup-env --image <image>`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ...paths import REPO, VENVS_DIR
from ..definitions import Definition, load_algorithms
from .base import Executor, Outcome, outcome_from_exit, thread_environment, worker_command
from .docker.images import requirements_file

PACKAGE_PARENT = REPO
LOCAL_REQUIREMENTS = REPO / "requirements-local.txt"


def shares_local_environment(image: str) -> bool:
    """True unless the image has pins (install/requirements/<image>.txt) that
    requirements-local.txt leaves out: those conflict with the shared environment."""
    if not requirements_file(image).is_file():
        return True
    included = re.findall(r"^\s*-r\s+(\S+)", LOCAL_REQUIREMENTS.read_text(), re.M)
    return f"install/requirements/{image}.txt" in included


def own_environment_images() -> list[str]:
    """The images of algorithms.yaml that need an environment of their own (scripts/test
    makes one for each, and runs the conformance suite in it)."""
    return sorted({entry.image for entry in load_algorithms().values() if not shares_local_environment(entry.image)})


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, python: str = sys.executable, venvs_dir: Path = VENVS_DIR):
        self.python = python
        self.venvs_dir = Path(venvs_dir)
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def python_for(self, image: str) -> str:
        """The image's own environment's python where it has one, else the shared one."""
        own = self.venvs_dir / image / "bin" / "python"
        return str(own) if own.exists() else self.python

    def problems(self, definitions: list[Definition], build: bool = False) -> list[str]:
        """Images that need an environment of their own that is not made yet."""
        problems = []
        for image in dict.fromkeys(d.image for d in definitions):
            if shares_local_environment(image) or self.python_for(image) != self.python:
                continue
            algorithms = ", ".join(dict.fromkeys(d.algorithm for d in definitions if d.image == image))
            problems.append(f"{algorithms} runs locally in an environment of its own (its pins conflict with "
                            f"the shared one): make it with scripts/setup-env --image {image}")
        return problems

    def stop_all(self) -> None:
        with self._lock:
            for proc in self._running:
                _kill_group(proc)

    def run(self, job: dict, cpus: list[int], log_path: Path, timeout: float | None) -> Outcome:
        env = dict(os.environ, **thread_environment(len(cpus)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                worker_command(self.python_for(job["definition"]["image"]), job),
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

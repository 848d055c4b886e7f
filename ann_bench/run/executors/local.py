"""Run each definition in a child process on this machine (`run.py --local`).

A child process, not the caller's own, so that a segfault, a hang or a memory blow-up in a
library costs one definition, not the sweep. What a process can be given without Docker it
gets: its own session (so the whole process group, whatever the wrapper forked, is killed when
the worker ends, however it ended, and so is a process that left the group, as a daemon that
calls setsid does, by the worker's token it inherits in its environment), the cores it is given
(sched_setaffinity), a memory limit (RLIMIT_DATA, from --memory or the machine's total memory /
parallelism) and death with the sweep (PR_SET_PDEATHSIG). It is not isolated: it has the network, and can read and write
whatever the user can.

The child runs the shared environment's python (the caller's), except for a definition whose
library has an environment of its own, `.venvs/<library>` (asv's one-environment-per-need
habit): a library whose pins conflict with the shared .venv (diskannpy needs numpy 1.25) says
`local: own` in algorithms.yaml, and local_envs.py (`scripts/setup-env`) makes its environment.
"""

from __future__ import annotations

import ctypes
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ...paths import REPO, VENVS_DIR
from ..definitions import DEFAULT_FILE, Definition, load_algorithms
from ..jobs import Job
from .base import MEMORY_SHARE, Executor, Outcome, outcome_from_exit, thread_environment, worker_command
from .local_envs import ensure_own, own_environment_libraries
from .logs import CappedLog, copy_stream

PACKAGE_PARENT = REPO
PR_SET_PDEATHSIG = 1
SWEEP_VARIABLE = "ANN_BENCH_SWEEP"  # in every worker's environment (and its children's): its results tree
WORKER_VARIABLE = "ANN_BENCH_WORKER"  # likewise: a token of that worker alone
LOG_JOIN_SECONDS = 30  # for the output of a process that left the worker's group


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, python: str = sys.executable, venvs_dir: Path = VENVS_DIR,
                 definitions_file: Path | str | None = None, memory_limit_bytes: int | None = None,
                 parallelism: int = 1):
        """`definitions_file` (default algorithms.yaml) says which libraries run in an
        environment of their own (`local: own`). `memory_limit_bytes` defaults to MEMORY_SHARE
        of the machine's total memory / parallelism, as in Docker."""
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self.memory_limit_bytes = memory_limit_bytes or int(total * MEMORY_SHARE / max(1, parallelism))
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

    def remove_leftovers(self, results_dir: Path) -> list[str]:
        """Kill the processes earlier sweeps of this results tree left: what a worker forked
        before run.py was killed with SIGKILL (the worker itself dies with run.py)."""
        return _kill_marked(f"{SWEEP_VARIABLE}={Path(results_dir).resolve()}")

    def execute(self, job: Job, cpus: list[int], log: CappedLog, timeout: float | None,
                results_dir: Path, grade: bool) -> Outcome:
        env = dict(os.environ, **thread_environment(len(cpus)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
        env[SWEEP_VARIABLE] = str(Path(results_dir).resolve())
        env[WORKER_VARIABLE] = worker = secrets.token_hex(8)
        proc = subprocess.Popen(
            worker_command(self.python_for(job.definition.image), job),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # so that its whole group can be killed, children included
            preexec_fn=lambda: _confine(cpus, self.memory_limit_bytes),
        )
        reader = threading.Thread(target=copy_stream, args=(proc.stdout, log), daemon=True)
        reader.start()
        with self._lock:
            self._running.add(proc)
        try:
            return outcome_from_exit(proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
            return Outcome("timeout", f"timed out after {timeout:g} s")
        finally:
            _kill_group(proc)  # whatever the worker left running, even after a success
            _kill_marked(f"{WORKER_VARIABLE}={worker}")  # and what left its group (setsid)
            with self._lock:
                self._running.discard(proc)
            reader.join(LOG_JOIN_SECONDS)  # the pipe ends once every process that held it is gone


def _confine(cpus: list[int], memory_bytes: int) -> None:
    """In the child before it runs the worker: its cores, its memory, and death with the sweep."""
    os.sched_setaffinity(0, cpus)
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_marked(variable: str) -> list[str]:
    """SIGKILL every process (but this one) whose environment holds `variable` ("NAME=value"),
    as every process a worker started does, whatever group or session it moved to; the names
    of those killed."""
    marker = variable.encode()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            os.kill(int(entry), signal.SIGKILL)
            killed.append(f"process {entry}")
        except OSError:
            continue  # gone, or not ours to read
    return killed


def _kill_group(proc: subprocess.Popen) -> None:
    """The worker runs in its own session; kill it and anything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

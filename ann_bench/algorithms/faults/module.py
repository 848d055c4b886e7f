"""Wrappers that fail on purpose, for the tests of failure handling (tests/fault-algorithms.yaml,
tests/test_sweep.py, tests/test_runner.py).

Each one breaks the worker in a way a real library can: a segfault, a hang, a memory blow-up,
an answer that is not a valid k-NN answer (Scripted). The harness must record each as a failed
result with the right reason and go on with the sweep. They need only numpy and ctypes, which
the base image has.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import time

import numpy as np

from ..base import BaseANN

GIB = 1 << 30


class _Fault(BaseANN):
    metrics = ("euclidean", "angular", "dot")
    package = "numpy"

    def __init__(self, metric: str, where: str = "fit"):
        super().__init__()
        if where not in ("fit", "query"):
            raise ValueError(f"where must be 'fit' or 'query', not {where!r}")
        self.metric = metric
        self.where = where

    def fail(self) -> None:
        raise NotImplementedError

    def fit(self, X: np.ndarray) -> None:
        self.n = len(X)
        if self.where == "fit":
            self.fail()

    def query(self, q: np.ndarray, k: int):
        if self.where == "query":
            self.fail()
        return np.arange(min(k, self.n))


class Segfault(_Fault):
    """Reads address 0: the process dies with SIGSEGV (exit code 139 in a container)."""

    def fail(self) -> None:
        ctypes.string_at(0)


class Sleeper(_Fault):
    """Sleeps past any sensible timeout."""

    def __init__(self, metric: str, where: str = "fit", seconds: float = 3600):
        super().__init__(metric, where)
        self.seconds = seconds

    def fail(self) -> None:
        time.sleep(self.seconds)


class MemoryHog(_Fault):
    """Allocates and touches memory in chunks until the memory limit stops it.

    `gib` bounds the total, so that without a limit (run --local) it ends with an error
    instead of taking the machine's memory.
    """

    def __init__(self, metric: str, where: str = "fit", gib: float = 8, chunk_mib: int = 256):
        super().__init__(metric, where)
        self.gib = gib
        self.chunk_mib = chunk_mib

    def fail(self) -> None:
        chunks = []
        allocated = 0
        while allocated < self.gib * GIB:
            chunks.append(np.ones(self.chunk_mib << 20, dtype=np.uint8))  # np.ones writes every page
            allocated += self.chunk_mib << 20
            print(f"allocated {allocated >> 20} MiB", flush=True)
        raise MemoryError(f"allocated {allocated >> 20} MiB and was not stopped by a memory limit")


class Probe(BaseANN):
    """Not a fault: reports what it can see of its sandbox (uid, network interfaces, mounts and
    whether it can write to them, the root filesystem included, cgroup memory and pids limits,
    capabilities, no-new-privileges, cores, whether it can reach a port on 127.0.0.1), stored as
    the JSON result attribute "probe". Its answers are not neighbours."""

    metrics = ("euclidean", "angular", "dot")
    package = "numpy"

    def __init__(self, metric: str, port: int = 0):
        super().__init__()
        self.metric = metric
        self.port = port
        self.report: dict = {}

    def fit(self, X: np.ndarray) -> None:
        self.n = len(X)
        self.report = _sandbox_report(self.port)

    def query(self, q: np.ndarray, k: int):
        return np.arange(min(k, self.n))

    def get_additional(self) -> dict:
        return {"probe": json.dumps(self.report, sort_keys=True)}


def _sandbox_report(port: int) -> dict:

    report: dict = {"uid": os.getuid(), "gid": os.getgid(), "home": os.environ.get("HOME", "")}
    try:
        report["interfaces"] = sorted(os.listdir("/sys/class/net"))
    except OSError as e:
        report["interfaces"] = f"unreadable: {e}"
    if port:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                report["connect_127.0.0.1"] = "connected"
        except OSError as e:
            report["connect_127.0.0.1"] = f"{type(e).__name__}: {e}"
    mounts = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            _, target, fstype, options = line.split()[:4]
            if target.startswith(("/data", "/results", "/input", "/output", "/tmp", "/opt/ann-bench")) or \
                    target == "/var/run/docker.sock":
                mounts[target] = options.split(",")[0]
    report["mounts"] = mounts
    report["docker_socket"] = os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock")
    writes = {}
    for target in mounts:
        path = target if os.path.isfile(target) else os.path.join(target, ".probe-write")
        try:
            with open(path, "ab"):
                pass
            writes[target] = "written"
            if path.endswith(".probe-write"):
                os.unlink(path)
        except OSError as e:
            writes[target] = f"{type(e).__name__}: {e.strerror}"
    report["writes"] = writes
    # The mount's own read-only flag, whatever the file permissions say to this uid.
    report["readonly"] = {t: bool(os.statvfs(t).f_flag & os.ST_RDONLY) for t in mounts}
    try:
        home_file = os.path.join(report["home"] or "/", ".probe-home")
        with open(home_file, "w"):
            pass
        os.unlink(home_file)
        report["home_writable"] = True
    except OSError:
        report["home_writable"] = False
    # cgroup v1 names first, then v2's
    for key, files in (("memory_limit", ("memory/memory.limit_in_bytes", "memory.max")),
                       ("memory_swap_limit", ("memory/memory.memsw.limit_in_bytes", "memory.swap.max")),
                       ("pids_max", ("pids/pids.max", "pids.max"))):
        for name in files:
            try:
                with open(f"/sys/fs/cgroup/{name}") as f:
                    report[key] = f.read().strip()
                break
            except OSError:
                continue
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    report["capabilities"] = status.get("CapEff", "").strip()
    report["no_new_privs"] = status.get("NoNewPrivs", "").strip()
    try:
        with open("/probe-root", "w"):
            pass
        report["root_writable"] = True
    except OSError:
        report["root_writable"] = False
    report["cpus"] = sorted(os.sched_getaffinity(0))
    thread_variables = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    report["threads"] = {v: os.environ.get(v, "") for v in thread_variables}
    return report


class Scripted(BaseANN):
    """Answers each query with ids from a rule named in the constructor (query argument mode
    "bad"; "good" answers validly), to break the interface in one way each."""

    metrics = ("euclidean", "angular")
    package = "numpy"

    def __init__(self, metric: str, rule: str):
        super().__init__()
        self.rule = rule
        self.mode = "good"
        self.calls = 0

    def fit(self, X: np.ndarray) -> None:
        if self.rule == "fit-raises":
            raise RuntimeError("cannot build this index")
        self.n = len(X)

    def set_query_arguments(self, mode: str = "good") -> None:
        self.mode = mode
        self.calls = 0

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        rule = self.rule if self.mode == "bad" else "good"
        self.calls += 1
        if rule == "duplicates" or (rule == "bad-in-warmup" and self.calls == 1):
            return np.array([0, 0] + list(range(2, k)))
        if rule == "out-of-range":
            return np.array([self.n] + list(range(1, k)))
        if rule == "too-many":
            return np.arange(k + 1)
        if rule == "floats":
            return np.arange(k) + 0.5
        if rule == "hang":
            time.sleep(3600)
        if rule == "segfault":
            ctypes.string_at(0)
        if rule == "query-raises":
            raise ValueError("query blew up")
        return np.arange(k)

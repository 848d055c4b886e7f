"""One sweep per results tree (ann_bench/run/lock.py), with real run.py processes: a second one is
refused naming the first, --wait queues behind it, and a lock whose holder is gone (SIGKILL, or
a leftover process keeping it while its run.py is dead) is taken over with a note."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ann_bench.paths import REPO
from ann_bench.results.files import iter_result_paths

from .test_bad_input import SCRIPTED, refused, run_py

LOCK_NAME = ".sweep.lock"  # in the results tree, as the README says
# A worker that hangs in its query: the run.py that started it holds the tree until stopped.
HANG = SCRIPTED.format(rules="hang", modes="bad")
BRUTEFORCE = """\
algorithms:
  bruteforce:
    constructor: BruteForce
    base_args: ["@metric"]
    run_groups:
      exact:
        args: []
        query_args: []
"""
# A process left holding a lock file, with the holder record given (what a run.py's leftover
# child would keep open); it holds it until its stdin closes.
HOLD = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
        "os.write(fd, sys.argv[2].encode()); print('held', flush=True); sys.stdin.read()")


def command(definitions: Path, results: Path, data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "run.py"), "--local", "--runs", "1", "--no-progress", "--definitions",
            str(definitions), "--results", str(results), "--data-dir", str(data_dir), *extra]


def workers_of(results: Path) -> list[int]:
    """Local workers writing into results (their command line names it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ann_bench.run.runner" in cmdline and str(results).encode() in cmdline:
                found.append(int(entry))
    return found


@pytest.fixture
def holder(tmp_path, data_dir, xs_angular):
    """A run.py sweeping into tmp_path/results, started and holding the lock; stopped after the test,
    with any worker it left."""
    definitions = tmp_path / "hang.yaml"
    definitions.write_text(HANG)
    results = tmp_path / "results"
    proc = subprocess.Popen(command(definitions, results, data_dir), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # printed once it holds the lock and has planned
    assert "definition(s) to run" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    finally:
        proc.kill()  # a no-op once it has ended
        proc.wait()
        for pid in workers_of(results):  # left by a SIGKILLed run.py
            os.kill(pid, signal.SIGKILL)


def bruteforce(tmp_path: Path) -> Path:
    path = tmp_path / "bruteforce.yaml"
    path.write_text(BRUTEFORCE)
    return path


def bruteforce_results(results: Path) -> list[Path]:
    return [p for p in iter_result_paths(results) if "bruteforce" in p.parts]


def test_a_second_run_py_on_the_same_tree_is_refused_naming_the_first(tmp_path, data_dir, holder):
    results = tmp_path / "results"
    held = json.loads((results / LOCK_NAME).read_text())
    assert held["pid"] == holder.pid and held["host"] == socket.gethostname() and held["started"]
    second = run_py("--definitions", bruteforce(tmp_path), "--results", results, data_dir=data_dir)
    refused(second, str(results), f"pid {holder.pid}", f"host {socket.gethostname()}", "--wait")
    assert bruteforce_results(results) == []
    # Another tree is free.
    other = run_py("--definitions", bruteforce(tmp_path), "--results", tmp_path / "other", data_dir=data_dir)
    assert other.returncode == 0, other.stderr


def test_wait_queues_behind_the_holder_then_runs(tmp_path, data_dir, holder):
    results = tmp_path / "results"
    waiter = subprocess.Popen(command(bruteforce(tmp_path), results, data_dir, "--wait"), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = waiter.stderr.readline()
    assert "waiting for" in said and f"pid {holder.pid}" in said, said
    assert waiter.poll() is None and bruteforce_results(results) == []
    holder.send_signal(signal.SIGTERM)
    holder.communicate(timeout=60)
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert len(bruteforce_results(results)) == 1 and "bruteforce" in out
    assert not (results / LOCK_NAME).exists()  # released and removed


def test_the_lock_of_a_killed_run_py_is_taken_over_with_a_note(tmp_path, data_dir, holder):
    results = tmp_path / "results"
    holder.kill()
    holder.wait()
    assert json.loads((results / LOCK_NAME).read_text())["pid"] == holder.pid  # left behind
    after = run_py("--definitions", bruteforce(tmp_path), "--results", results, data_dir=data_dir)
    assert after.returncode == 0, after.stderr
    assert f"pid {holder.pid}" in after.stderr and "ended without releasing" in after.stderr
    assert len(bruteforce_results(results)) == 1 and not (results / LOCK_NAME).exists()


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def leftover(lock: Path, record: dict) -> subprocess.Popen:
    lock.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), json.dumps(record)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("host, namespace, taken", [
    (None, None, True), ("elsewhere", None, False), (None, "pid:[1]", False)], ids=["here", "elsewhere", "container"])
def test_a_lock_kept_by_a_leftover_of_a_dead_run_py(tmp_path, data_dir, xs_angular, host, namespace, taken):
    """Taken over when its run.py's pid is dead on this host; never for another host's pid, nor for
    one of another pid namespace (a container sharing the host name)."""
    results = tmp_path / "results"
    record = {"pid": dead_pid(), "host": host or socket.gethostname(), "started": "2026-01-01T00:00:00+00:00",
              "pid_namespace": namespace or os.readlink("/proc/self/ns/pid")}
    keeper = leftover(results / LOCK_NAME, record)
    try:
        after = run_py("--definitions", bruteforce(tmp_path), "--results", results, data_dir=data_dir)
    finally:
        keeper.communicate("")
    if taken:
        assert after.returncode == 0, after.stderr
        assert f"pid {record['pid']}" in after.stderr and "has ended; taking the lock over" in after.stderr
        assert len(bruteforce_results(results)) == 1
    else:
        refused(after, f"pid {record['pid']} on host {record['host']}")


def test_the_lock_names_its_holder_and_is_removed_on_release(tmp_path):
    from ann_bench.run.lock import ResultsLocked, SweepLock

    with SweepLock(tmp_path / "results") as lock:
        held = json.loads(lock.path.read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(ResultsLocked, match=f"pid {os.getpid()}"):
            SweepLock(tmp_path / "results").__enter__()
    assert not lock.path.exists()

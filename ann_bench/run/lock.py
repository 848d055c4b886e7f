"""One sweep per results tree at a time: `<results>/.sweep.lock`, held with flock while run.py
plans and runs.

The kernel releases a flock when its holder's process dies, SIGKILL included, so a dead
run.py never keeps the tree; the file's text (pid, host, start time) only tells the next
run.py whom it waits for, or whose lock it takes over. A holder that is gone while its lock is
still held (its file descriptor kept open by a process it left behind) is recognised by its pid
on this host and its lock file replaced. The holder removes the file when it is done; a waiter
that locked the removed file notices (another inode at the path) and locks the new one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from ..errors import UserError
from .disk import disk_error

log = logging.getLogger(__name__)

LOCK_NAME = ".sweep.lock"


class ResultsLocked(UserError):
    """Another run.py is sweeping into the same results tree."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    started: str  # UTC, ISO 8601
    # Two containers may share a host name (--uts=host) but never a pid namespace: a pid is
    # looked up only in its own.
    pid_namespace: str = ""

    def __str__(self) -> str:
        return f"run.py pid {self.pid} on host {self.host} (started {self.started})"

    @classmethod
    def me(cls) -> "Holder":
        return cls(os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   _pid_namespace())

    def gone(self) -> bool:
        """Its process has ended, as far as this host can tell (never for another host's pid)."""
        if self.host != socket.gethostname() or self.pid_namespace != _pid_namespace():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, another user's
        return False


class SweepLock:
    """`with SweepLock(results_dir, wait=False):` holds the results tree or raises ResultsLocked
    (or, for a results directory that cannot be written, a UserError saying why)."""

    def __init__(self, results_dir: Path, wait: bool = False) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / LOCK_NAME
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> "SweepLock":
        try:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            self._fd = self._acquire()
            _write_holder(self._fd, Holder.me())
        except OSError as error:
            self._release()
            raise disk_error(error, self.results_dir) from None
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._release()

    def _acquire(self) -> int:
        waited = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                if holder is not None and holder.gone():
                    log.warning("%s holds %s but has ended; taking the lock over", holder, self.results_dir)
                    _unlink_if_same(self.path, fd)
                    os.close(fd)
                    continue
                if not self.wait:
                    os.close(fd)
                    raise ResultsLocked(
                        f"{self.results_dir} is in use by {holder or 'another run.py'} (lock file "
                        f"{self.path}); wait for it to finish, or pass --wait to start when it does") from None
                if not waited:
                    log.warning("waiting for %s to finish with %s", holder or "another run.py", self.results_dir)
                    waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(self.path, fd):
                previous = _read_holder(fd)
                if previous is not None:
                    log.warning("%s ended without releasing %s; taking its lock over", previous, self.results_dir)
                return fd
            os.close(fd)  # the holder we waited for removed this file; lock the one at the path now

    def _release(self) -> None:
        if self._fd is None:
            return
        _unlink_if_same(self.path, self._fd)
        os.close(self._fd)  # closing releases the flock
        self._fd = None


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = path.stat(follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _unlink_if_same(path: Path, fd: int) -> None:
    if _same_file(path, fd):
        path.unlink(missing_ok=True)


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _read_holder(fd: int) -> Holder | None:
    """Who the file names, or None (empty: its holder has just created it, or left cleanly)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), str(data.get("pid_namespace", "")))
    except (ValueError, TypeError, KeyError):
        return None


def _write_holder(fd: int, holder: Holder) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(asdict(holder)) + "\n").encode(), 0)

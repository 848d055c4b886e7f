"""A worker's log, written by the host: the worker's own stdout and stderr, end to end, capped.

The file is opened without following a symbolic link at its name (a link planted there would
send the output anywhere the user can write; one found is removed and the file made anew) and
truncated: each attempt (a --retry-failed, a --force) starts a fresh log. Output beyond
HEAD_BYTES is held in a ring of TAIL_BYTES, so a chatty worker's log keeps its first and last
words with a line saying how much was cut between them, whatever it printed.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import deque
from pathlib import Path

HEAD_BYTES = 4 << 20
TAIL_BYTES = 4 << 20


def open_nofollow(path: Path, flags: int) -> int:
    """os.open(path) that never follows a link at path: such a link is removed first."""
    flags |= os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
    os.unlink(path)
    return os.open(path, flags | os.O_EXCL, 0o644)


def append_text(path: Path, text: str) -> None:
    """Add a note by the host to a log (not a worker's output: uncapped, never through a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_nofollow(path, os.O_APPEND), "w") as f:
        f.write(text)


class CappedLog:
    """The log of one attempt: write() whatever comes, close() to put the tail in. Nothing is
    written after close (a reader thread that outlived its worker)."""

    def __init__(self, path: Path, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = os.fdopen(open_nofollow(self.path, os.O_TRUNC), "wb")
        self._head_left = head_bytes
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._tail_bytes = tail_bytes
        self._cut = 0
        self._lock = threading.Lock()  # a reader thread streams while the executor adds notes

    def write(self, data: bytes) -> None:
        with self._lock:
            if not self._file.closed:
                self._write(data)

    def _write(self, data: bytes) -> None:
        if self._head_left:
            head, data = data[:self._head_left], data[self._head_left:]
            self._file.write(head)
            self._file.flush()
            self._head_left -= len(head)
        if not data:
            return
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size - len(self._tail[0]) >= self._tail_bytes:
            dropped = self._tail.popleft()
            self._tail_size -= len(dropped)
            self._cut += len(dropped)

    def note(self, text: str) -> None:
        """A line of the host's own (a kill, an engine error), after what the worker wrote."""
        self.write(f"\n[ann-bench] {text}\n".encode())

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._close()

    def _close(self) -> None:
        tail = b"".join(self._tail)
        extra = max(0, len(tail) - self._tail_bytes)
        if self._cut or extra:
            self._file.write(f"\n[ann-bench] {self._cut + extra} bytes of output cut here\n".encode())
        self._file.write(tail[extra:])
        self._file.close()

    def __enter__(self) -> "CappedLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_stream(source, log: CappedLog) -> None:
    """Copy a worker's output (a pipe, or an engine's stream of chunks) into its log."""
    try:
        for chunk in iter(lambda: source.read1(65536), b"") if hasattr(source, "read1") else source:
            log.write(chunk)
    except (OSError, ValueError):
        pass  # the stream was cut (the engine gone, the pipe closed): what came is in the log
    finally:
        source.close()

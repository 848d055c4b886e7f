"""A container's output, carried to its log through a named pipe the host holds open.

Not the engine's attach stream: the engine drops output a slow reader has not taken yet
(moby/moby#45689), which a loaded machine hits with a chatty worker. A pipe loses nothing: a
full one stops the writer until the host has read. The host keeps a write end of its own until
the container has ended, so that the reader sees the end of the output only then, and not
before the worker has opened the pipe.
"""

from __future__ import annotations

import os
import shutil
import threading

from ..base import sweep_directory
from ..logs import CappedLog, copy_stream

CONTAINER_PATH = "/output.log"  # the pipe, as the worker's stdout and stderr see it
JOIN_SECONDS = 30


class OutputPipe:
    """Create with the log, mount `volume`, start(), then finish() once the container ended."""

    def __init__(self, log: CappedLog, owner: tuple[int, int] | None = None):
        self.log = log
        self._dir = sweep_directory()  # removed by the next sweep if run.py is killed with SIGKILL
        self.path = self._dir / "pipe"
        os.mkfifo(self.path, 0o600)
        if owner is not None:
            os.chown(self.path, *owner)  # the container's user opens it for writing
        self._reader: threading.Thread | None = None
        self._hold: int | None = None

    @property
    def volume(self) -> dict:
        # Read-only: the worker can write to a pipe there but not change its mode.
        return {str(self.path): {"bind": CONTAINER_PATH, "mode": "ro"}}

    def start(self) -> None:
        read_end = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._hold = os.open(self.path, os.O_WRONLY)
        os.set_blocking(read_end, True)
        source = os.fdopen(read_end, "rb")
        self._reader = threading.Thread(target=copy_stream, args=(source, self.log), daemon=True)
        self._reader.start()

    def finish(self, wait: bool = True) -> None:
        """Let the reader drain what the ended container wrote, and wait for it (bounded)."""
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        if wait and self._reader is not None:
            self._reader.join(JOIN_SECONDS)

    def remove(self, wait: bool = True) -> None:
        """finish(), and remove the pipe's name (without waiting for a container that may
        still run: the engine lost, its reader ends when the container does)."""
        self.finish(wait)
        shutil.rmtree(self._dir, ignore_errors=True)


def redirected(command: list[str]) -> list[str]:
    """The command with its stdout and stderr sent into the pipe (the shell's, then exec'd)."""
    return ["sh", "-c", f'exec "$@" >{CONTAINER_PATH} 2>&1', "sh", *command]

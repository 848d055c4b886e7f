"""Waiting for something a test started (a process, a container, a file) to happen."""

from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(found: Callable[[], T], attempts: int = 600) -> T:
    """What found() returns once it is truthy, asked every 0.1 s; its last answer otherwise."""
    result = found()
    for _ in range(attempts):
        if result:
            break
        threading.Event().wait(0.1)
        result = found()
    return result


def processes_with(*texts: str) -> list[int]:
    """The pids of the processes (other than this one) whose command line contains every text
    (a tag and a test session's data folder: not another session's processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    line = f.read()
                    if all(text.encode() in line for text in texts):
                        found.append(int(entry))
            except OSError:
                pass  # ended meanwhile
    return found

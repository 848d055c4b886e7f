"""Progress of a long step (a download, a ground truth, an embedding) on stderr.

On a terminal, a bar redrawn in place. Anywhere else (a log file, a pipe, CI), a redrawn bar is
one endless line of carriage returns: there, the same status is written as a whole line, once a
minute and at the end.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

LOG_INTERVAL = 60.0  # seconds between status lines when stderr is not a terminal


class _Lines:
    """What tqdm writes, as whole lines: its carriage returns and blank padding dropped."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def bar(enabled: bool = True, **options) -> tqdm:
    """A tqdm bar on stderr; `enabled` False shows nothing."""
    if sys.stderr.isatty():
        return tqdm(file=sys.stderr, disable=not enabled, **options)
    return tqdm(file=_Lines(sys.stderr), disable=not enabled, mininterval=LOG_INTERVAL, ncols=100, **options)

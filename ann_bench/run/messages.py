"""What a worker tells the host: one JSON line per query-argument set it finished, in
MESSAGES in its private output directory.

    {"query_args": {"ef": 40}, "status": "ok"}
    {"query_args": {"ef": 80}, "status": "failed", "reason": "invalid answer: query 3: ..."}

An "ok" line says that the set's result file is written; the host checks that file before it
believes it (results/acceptance.py). A "failed" line carries the one-line reason the summary
shows. The file is untrusted input: the host reads a bounded prefix, skips what does not parse,
and cuts reasons to one short line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results.files import canonical_json

MESSAGES = "messages.jsonl"
MAX_BYTES = 1 << 20
MAX_REASON = 300
STATUS_OK = "ok"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class Message:
    query_args: Any
    status: str
    reason: str = ""

    @property
    def key(self) -> str:
        return canonical_json(self.query_args)


def send(output_dir: Path | str, query_args: Any, status: str, reason: str = "") -> None:
    """The worker's side: append one line, flushed to disk before the next set starts."""
    line = json.dumps({"query_args": query_args, "status": status, "reason": reason}) + "\n"
    with open(Path(output_dir) / MESSAGES, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:MAX_REASON]


def receive(output_dir: Path) -> dict[str, Message]:
    """The host's side: the last message for each query-argument set (by canonical JSON)."""
    try:
        fd = os.open(output_dir / MESSAGES, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}  # none written, or not a plain file
    with os.fdopen(fd, "rb") as f:
        text = f.read(MAX_BYTES).decode(errors="replace")
    found: dict[str, Message] = {}
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("status") not in (STATUS_OK, STATUS_FAILED):
            continue
        message = Message(data.get("query_args"), data["status"], one_line(data.get("reason", "")))
        found[message.key] = message
    return found

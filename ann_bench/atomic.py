"""Files that appear whole or not at all: written under a temporary name, then renamed.

The one place that does it, for result files, dataset files, the metrics cache, plots and
exports. The temporary name is unique per host, process and call (a container's pid is often
1, its host name is its own), hidden (a leading dot, so listings skip it) and removed on error.
"""

from __future__ import annotations

import os
import secrets
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

# Bytes of the final name kept in the temporary one: with the host name (at most 64), pid and
# token it stays under the 255 bytes a file name may have, whatever the final name's length.
_NAME_BYTES = 150


def temporary_name(path: Path) -> Path:
    stem = os.fsencode(path.name)[:_NAME_BYTES].decode(errors="ignore")
    return path.with_name(f".{stem}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path to write; on leaving without an error it is synced and renamed to path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # whole on disk before the rename makes it visible
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: Path | str, data: str | bytes) -> Path:
    """Write text or bytes atomically, with the permissions a plain open() would give."""
    path = Path(path)
    with atomic_path(path) as tmp:
        umask = os.umask(0)
        os.umask(umask)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return path

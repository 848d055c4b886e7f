"""The lifecycle of a wrapper whose engine keeps its index in files, written once.

- IndexDirectory: a private temporary directory that fit makes (make_directory) and done()
  removes once close() has let go of the engine (clients, tables, handles; a wrapper overrides
  close). diskann and ngt save their graphs there. disk_usage_kb() is what its files take,
  which the runner records with each result as `ondisk_mb`.
- DiskIndex: the database engines (chromadb, lancedb, milvus), whose index size is its files:
  get_memory_usage() is the size of index_files() in kB (0 before there are any), so the
  runner's index_size (after fit minus before fit) is the engine's index on disk, not the
  process's memory; get_additional() returns the figures fit put in `_additional`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from .base import BaseANN


class IndexDirectory(BaseANN):
    directory: Path | None = None

    def make_directory(self) -> Path:
        self.directory = Path(tempfile.mkdtemp(prefix=f"ann-bench-{type(self).__name__.lower()}-"))
        return self.directory

    def disk_usage_kb(self) -> int:
        """kB of the files under the directory, 0 where there is none."""
        if self.directory is None:
            return 0
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file()) // 1024

    def close(self) -> None:
        """Let go of the engine before its files are removed."""

    def done(self) -> None:
        try:
            self.close()
        finally:
            directory, self.directory = self.directory, None
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)


class DiskIndex(IndexDirectory):
    index_size = "disk"
    # Extra figures of the built index (e.g. its size, its segments), set by fit; replaced, never
    # changed in place.
    _additional: Mapping[str, Any] = {}

    def index_files(self) -> Iterable[Path]:
        """The files of the engine's index under self.directory (which is not None here)."""
        raise NotImplementedError

    def get_memory_usage(self) -> int:
        """kB: the index's files on disk, 0 before there are any; see the module doc."""
        if self.directory is None:
            return 0
        return sum(p.stat().st_size for p in self.index_files() if p.is_file()) // 1024

    def disk_usage_kb(self) -> int:
        return self.get_memory_usage()

    def get_additional(self) -> dict[str, Any]:
        return dict(self._additional)

"""ann_bench/algorithms/ondisk.py: the one lifecycle of the wrappers whose engine keeps its index
in files (chromadb, lancedb, milvus as DiskIndex; diskann and ngt as IndexDirectory)."""

import numpy as np
import pytest

from ann_bench.algorithms.ondisk import DiskIndex


class Engine(DiskIndex):
    """Writes its "index" as one file of the points' bytes, and a scratch file beside it."""

    metrics = ("euclidean",)
    package = "numpy"

    def __init__(self, fail_close=False):
        super().__init__()
        self.fail_close = fail_close
        self.closed = False

    def fit(self, X):
        (self.make_directory() / "index.bin").write_bytes(np.asarray(X, dtype=np.float32).tobytes())
        (self.directory / "scratch.log").write_bytes(b"x" * 4096)  # not part of the index
        self._additional = {"segments": 1}

    def index_files(self):
        return [self.directory / "index.bin"]

    def close(self):
        self.closed = True
        if self.fail_close:
            raise RuntimeError("the engine would not let go")


def test_the_index_size_is_its_files_and_done_removes_them_after_closing():
    engine = Engine()
    assert engine.get_memory_usage() == 0 and engine.disk_usage_kb() == 0  # before fit: nothing on disk
    engine.fit(np.zeros((256, 8)))  # 8 kB of float32
    directory = engine.directory
    assert engine.get_memory_usage() == 8 and engine.disk_usage_kb() == 8  # the scratch file is not the index
    additional = engine.get_additional()
    additional["segments"] = 99
    assert engine.get_additional() == {"segments": 1}  # a copy: the caller cannot change the wrapper's
    engine.done()
    assert engine.closed and engine.directory is None and not directory.exists()
    engine.done()  # a second done() (the runner's finally after the wrapper's own) is harmless


def test_done_removes_the_files_even_when_closing_fails():
    engine = Engine(fail_close=True)
    engine.fit(np.zeros((4, 2)))
    directory = engine.directory
    with pytest.raises(RuntimeError):
        engine.done()
    assert engine.directory is None and not directory.exists()

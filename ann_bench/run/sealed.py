"""The vectors a wrapper is given, in memory nobody in the worker can write.

The worker computes its distances from the same train and test it hands the wrapper, so the
wrapper must not be able to change them (a wrapper that writes its queries over with a training
point would make garbage answers look exact). A read-only flag alone does not do: an array that
owns its memory can be made writable again by anyone. Here the points are copied once into a
sealed memfd (F_SEAL_WRITE) mapped read-only, so no flag can be set back, no writable mapping of
it can be made, and a library writing into it through a pointer faults instead of silently
changing the data. One copy serves the worker and the wrapper: memory is not doubled.

Each wrapper call gets its own view objects (`handout`), so that a wrapper that reshapes the
array object it was given (`X.shape = ...`) changes its own view, never the worker's.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from typing import Any

import numpy as np

_PIECE_BYTES = 64 << 20
_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


def seal(points: Any) -> np.ndarray:
    """A copy of `points` in sealed read-only memory, its pages resident from the start
    (MAP_POPULATE) so that they count in the memory measured before fit, not in the index's
    size. `points` is an array, or anything that slices by rows into arrays (an h5py dataset is
    read straight into place): no temporary copy is made, so none is freed to leave the
    allocator's thresholds raised for the wrapper's own allocations."""
    shape, dtype = tuple(points.shape), np.dtype(points.dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes == 0:  # nothing to write into; mmap refuses an empty mapping
        empty = np.empty(shape, dtype=dtype)
        empty.flags.writeable = False
        return empty
    fd = os.memfd_create("ann-bench-points", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, nbytes)
        with mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE) as writable:
            _fill(np.frombuffer(writable, dtype=dtype).reshape(shape), points)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)  # only once no writable mapping is left
        memory = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def _fill(target: np.ndarray, points: Any) -> None:
    if hasattr(points, "read_direct"):
        points.read_direct(target)
        return
    rows = max(1, _PIECE_BYTES // max(1, target[:1].nbytes))
    for lo in range(0, len(target), rows):
        target[lo:lo + rows] = points[lo:lo + rows]


def seal_points(points: Any) -> Any:
    """Dense points (a 2-D array or dataset) sealed; sets (a list of item arrays) as views of one sealed
    array of all their items."""
    if not isinstance(points, list):  # an array, or an h5py dataset sealed as it is read
        return seal(points)
    if not len(points):
        return []
    sizes = np.fromiter((len(s) for s in points), dtype=np.int64, count=len(points))
    items = seal(np.concatenate(points))
    return np.split(items, np.cumsum(sizes)[:-1])


def handout(points: Any) -> Any:
    """Sealed points as a wrapper gets them: new view objects of the same memory."""
    if isinstance(points, np.ndarray):
        return points.view()
    return [s.view() for s in points]

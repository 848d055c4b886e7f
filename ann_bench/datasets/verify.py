"""Every dataset is checked before a sweep trusts it, once per version of its file.

`check_dataset(path)` refuses (DatasetError, naming the row or query) a file that:

- lacks the ann-benchmarks layout, or has arrays of the wrong kind (non-numeric points,
  non-integer neighbour ids, non-float distances);
- has a non-finite value in train, test or the stored distances, a neighbour id out of range
  or repeated within a query, or a query's distances out of order;
- stores a distance that is not the distance between the vectors: every neighbour of a
  seeded sample of queries, and for every query its first, last and a few seeded other
  neighbours, are recomputed (a query whose neighbours were shuffled, altered distances,
  damaged train rows);
- has wrong ground truth: for a seeded sample of queries the exact neighbours are recomputed
  and compared, tie-tolerantly (the k distances must match position by position, whichever
  of several tied points the file names);
- has arrays other than those it was built with (the `build_sha256` attribute), or whose
  sha256 changed since the file was first used here: results in results/ were measured on the
  old file.

The file's sha256 is recorded beside it on first use (`NAME.hdf5.sha256`, in `sha256sum`'s
format) and the check's verdict in `NAME.hdf5.checked`, keyed by the file's size, inode and
change times, so a file is checked again only when it changes. The check reads the file a few
times in chunks (bounded memory) and costs seconds where a sweep costs minutes to hours.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import numpy as np

from ..atomic import write_atomically
from ..errors import DatasetError
from ..progress import bar as progress_bar
from .distance import n_items, pair_distances, sets_to_csr
from .groundtruth import DEFAULT_MEMORY_BYTES, exact_knn, filtered_knn
from .hdf5 import STREAM_OPS, Header, Malformed, content_sha256, damaged, read_header, sparse_points, text
from .sources import sha256_file
from .streaming import live_knn

log = logging.getLogger(__name__)

# Bump when the check gets stricter: files checked by an older version are checked again.
CHECK_VERSION = 1
SAMPLE_QUERIES = 100
SAMPLE_SEED = 0
SLOTS_PER_QUERY = 8  # neighbours per query whose stored distance is recomputed
STEPS = ("layout and neighbours", "stored distances", "sampled ground truth", "build hash")
# Stored distances are float32 (ann-benchmarks' may be float64 computed in float32).
_RTOL = 1e-4
_ATOL = 1e-5


def sha256_sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def check_stamp(path: Path) -> Path:
    return path.with_name(path.name + ".checked")


def check_dataset(path: Path | str, progress: bool = True) -> None:
    """Trust `path` or raise DatasetError; a file already checked and unchanged costs a stat."""
    path = Path(path)
    stamp = _stat_stamp(path)
    if _recorded_stamp(path) == stamp:
        return
    start = time.perf_counter()
    with progress_bar(progress, total=len(STEPS) + 1, desc=f"checking {path.name} (once per version)",
                      unit="step") as bar:
        verify_contents(path, bar.update)
        digest = sha256_file(path)
        bar.update()
    recorded = _recorded_sha256(path)
    if recorded is not None and recorded != digest:
        raise DatasetError(
            f"{path} changed since it was first used here (sha256 {recorded[:16]}... then, "
            f"{digest[:16]}... now), so results in results/ for it were measured on the old "
            f"file; move those results away, then delete {sha256_sidecar(path)} to accept the "
            f"new file")
    seconds = time.perf_counter() - start
    try:
        if recorded is None:
            write_atomically(sha256_sidecar(path), f"{digest}  {path.name}\n")
        write_atomically(check_stamp(path), json.dumps(
            dict(stamp, sha256=digest, seconds=round(seconds, 3)), sort_keys=True) + "\n")
    except OSError as error:
        log.warning("cannot record the check of %s beside it (%s); it will be checked again "
                    "next time", path, error)


def forget(path: Path) -> None:
    """Drop the recorded sha256 and check of `path` (its file was replaced on purpose)."""
    sha256_sidecar(path).unlink(missing_ok=True)
    check_stamp(path).unlink(missing_ok=True)


def _stat_stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    # The change time (ctime) moves with every write and cannot be set back by a user.
    return {"version": CHECK_VERSION, "size": st.st_size, "inode": st.st_ino,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _recorded_stamp(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(check_stamp(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    return {key: record.get(key) for key in ("version", "size", "inode", "mtime_ns", "ctime_ns")}


def _recorded_sha256(path: Path) -> str | None:
    try:
        words = sha256_sidecar(path).read_text().split()
    except OSError:
        return None
    return words[0].lower() if words else None


def verify_contents(path: Path, step: Callable[[], Any] = lambda: None,
                    memory_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
    """Every check but the file's sha256 (STEPS, calling `step` after each); DatasetError
    naming what is wrong and where."""
    try:
        with h5py.File(path, "r") as f:
            header = read_header(f)
            _check_kinds(f, header)
            neighbors = np.asarray(f["neighbors"][:], dtype=np.int64)
            stored = np.asarray(f["distances"][:], dtype=np.float64)
            _check_neighbors(neighbors, stored, header.n_train)
            step()
            sample = np.sort(np.random.default_rng(SAMPLE_SEED).choice(
                header.n_test, min(SAMPLE_QUERIES, header.n_test), replace=False))
            picked = _picked(neighbors.shape, sample)
            if header.type == "sparse":
                width = _width(f)
                train: Any = sets_to_csr(sparse_points(f, "train"), width)
                test: Any = sets_to_csr(sparse_points(f, "test"), width)
                exact = _stored_distances(header.distance, [(0, train)], test, neighbors, picked)
            else:
                test = np.asarray(f["test"][:])
                _check_finite("test", test, 0)
                train = f["train"]
                if train.size * train.dtype.itemsize <= memory_bytes // 4:
                    train = np.asarray(train[:])  # read once, not once per step
                exact = _stored_distances(header.distance, _dense_chunks(train, memory_bytes),
                                          test, neighbors, picked)
            _compare_stored(header, neighbors, stored, exact, picked)
            step()
            filters = (f["train_labels"][:], f["test_filters"][:]) if "test_filters" in f else None
            ops = f[STREAM_OPS][:] if STREAM_OPS in f else None
            _check_sample(header, train, test, neighbors, exact, sample, memory_bytes, filters, ops)
            step()
            if "build_sha256" in f.attrs:
                recorded, found = text(f.attrs["build_sha256"]), content_sha256(f)
                if recorded != found:
                    raise Malformed(f"its arrays are not those it was built with (build_sha256 "
                                    f"{recorded[:16]}..., the arrays give {found[:16]}...)")
            step()
    except (OSError, ValueError, KeyError, Malformed) as error:
        raise damaged(path, str(error) or type(error).__name__) from None


def _width(f: h5py.File) -> int:
    return max(int(f.attrs.get("dimension", 0)), n_items([f["train"][:], f["test"][:]]))


def _check_kinds(f: h5py.File, header: Header) -> None:
    point_kinds = "iu" if header.type == "sparse" else "fiub"
    for key in ("train", "test"):
        if f[key].dtype.kind not in point_kinds:
            raise Malformed(f"{key} holds {f[key].dtype}, not numbers")
    if f["neighbors"].dtype.kind not in "iu":
        raise Malformed(f"neighbors holds {f['neighbors'].dtype}, not integer ids")
    if f["distances"].dtype.kind != "f":
        raise Malformed(f"distances holds {f['distances'].dtype}, not floats")
    if header.count < 1 or header.n_test < 1 or header.n_train < 1:
        raise Malformed(f"{header.n_train} train points, {header.n_test} queries and "
                        f"{header.count} neighbours each; a dataset needs at least one of each")


def _check_neighbors(neighbors: np.ndarray, stored: np.ndarray, n_train: int) -> None:
    """Ids in range and distinct per query, distances finite (a missing id, -1, has +inf) and
    in order."""
    present = neighbors >= 0
    bad = (neighbors < -1) | (neighbors >= n_train)
    if bad.any():
        q, j = np.argwhere(bad)[0]
        raise Malformed(f"query {q}, neighbour {j}: id {neighbors[q, j]} is outside "
                        f"[0, {n_train})")
    bad = np.where(present, ~np.isfinite(stored), ~(np.isinf(stored) & (stored > 0)))
    if bad.any():
        q, j = np.argwhere(bad)[0]
        raise Malformed(f"query {q}, neighbour {j}: stored distance {stored[q, j]} is not a "
                        f"finite number")
    ordered = np.sort(np.where(present, neighbors, -1 - np.arange(neighbors.shape[1])), axis=1)
    repeated = (np.diff(ordered, axis=1) == 0).any(axis=1)
    if repeated.any():
        raise Malformed(f"query {int(np.flatnonzero(repeated)[0])} names one neighbour twice")
    unsorted = (np.diff(stored, axis=1) < 0).any(axis=1)
    if unsorted.any():
        raise Malformed(f"query {int(np.flatnonzero(unsorted)[0])}: stored distances are not in "
                        f"increasing order")


def _check_finite(name: str, X: np.ndarray, first_row: int) -> None:
    if X.dtype.kind != "f":
        return
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise Malformed(f"{name} row {first_row + int(np.flatnonzero(bad)[0])} has a NaN or "
                        f"infinite value")


def _dense_chunks(train: Any, memory_bytes: int) -> Iterator[tuple[int, np.ndarray]]:
    rows = max(1024, memory_bytes // 4 // max(1, train.dtype.itemsize * train.shape[1]))
    for lo in range(0, train.shape[0], rows):
        chunk = np.asarray(train[lo:lo + rows])
        _check_finite("train", chunk, lo)
        yield lo, chunk


def _picked(shape: tuple[int, ...], sample: np.ndarray) -> np.ndarray:
    """Which stored distances to recompute: every one of the sampled queries; of every query
    its first, its last and seeded others (a shuffled or altered row shows at its ends)."""
    n_test, count = shape
    picked = np.zeros(shape, dtype=bool)
    picked[sample] = True
    picked[:, [0, count - 1]] = True
    others = np.random.default_rng(SAMPLE_SEED).integers(0, count, (n_test, SLOTS_PER_QUERY - 2))
    picked[np.arange(n_test)[:, None], others] = True
    return picked


def _stored_distances(metric: str, chunks: Any, test: Any, neighbors: np.ndarray,
                      picked: np.ndarray) -> np.ndarray:
    """The distance between a query and each picked stored neighbour, from the vectors (+inf
    for a missing neighbour, nan where not picked), a chunk of training points at a time."""
    exact = np.where(picked, np.inf, np.nan)
    for lo, chunk in chunks:
        inside = picked & (neighbors >= lo) & (neighbors < lo + chunk.shape[0])
        rows, slots = np.nonzero(inside)
        exact[rows, slots] = pair_distances(metric, test, chunk, rows, neighbors[rows, slots] - lo)
    return exact


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.abs(a - b) <= _ATOL + _RTOL * np.abs(b)) | ((a == b) & np.isinf(b))


def _compare_stored(header: Header, neighbors: np.ndarray, stored: np.ndarray,
                    exact: np.ndarray, picked: np.ndarray) -> None:
    wrong = picked & ~_close(stored, exact)
    if not wrong.any():
        return
    if header.distance == "hamming" and header.dimension and \
            _close(stored[picked], exact[picked] * header.dimension).all():
        raise Malformed("its hamming distances are counts of differing bits; ann-benchmarks "
                        "and ann-bench store the fraction (an ann-bench file from before "
                        "that change)")
    q, j = np.argwhere(wrong)[0]
    raise Malformed(f"query {q}, neighbour {j} (id {neighbors[q, j]}): the stored distance is "
                    f"{stored[q, j]:.6g} but the vectors give {exact[q, j]:.6g}")


def _check_sample(header: Header, train: Any, test: Any, neighbors: np.ndarray,
                  exact: np.ndarray, sample: np.ndarray, memory_bytes: int,
                  filters: tuple[np.ndarray, np.ndarray] | None = None, ops: np.ndarray | None = None) -> None:
    """The exact top-k of the sampled queries against the file's, tie-tolerantly (of a
    filtered set: among the points that pass each query's filter; of a streaming set: among the
    rows live at each query's search step)."""
    k = min(header.count, header.n_train)
    queries = test[sample]
    if ops is not None:
        true_ids, true = live_knn(train, test, ops, sample, k, header.distance)
    elif filters is not None:
        labels, ranges = filters
        true_ids, true = filtered_knn(train, queries, labels, ranges[sample], k, header.distance)
    else:
        true_ids, true = exact_knn(train, queries, k, header.distance, progress=False,
                                   memory_bytes=memory_bytes)
    found = exact[sample, :k]
    true = true.astype(np.float64)
    wrong = ~_close(found, true)
    if wrong.any():
        i, j = np.argwhere(wrong)[0]
        raise Malformed(f"wrong ground truth for query {sample[i]}: its neighbour {j} (id "
                        f"{neighbors[sample[i], j]}) is at distance {found[i, j]:.6g}, but the "
                        f"{j + 1}-th nearest point (id {true_ids[i, j]}) is at {true[i, j]:.6g}")

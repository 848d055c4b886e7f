"""Your own vectors as a dataset: read, validate, split, ground truth, data/NAME.hdf5.

    python -m ann_bench.datasets import NAME --train FILE [--test FILE | --test-size N]
                                             --metric M [-k 100]

Formats, by extension: `.npy`; `.fvecs`, `.ivecs`, `.bvecs` (the TEXMEX formats of SIFT and
GIST: each row is its dimension as int32, then its values as float32, int32 or uint8); `.csv`
and `.tsv` of numbers (no header); `.hdf5`/`.h5`, either a file in the ann-benchmarks layout
(its train and test; its metric unless --metric) or any file with `--train-key`/`--test-key`
naming the arrays. Every value must be finite, train and test must have one dimension, and
under angular no row may be zero; hamming takes 0/1 values, jaccard a 0/1 matrix whose rows
become sets. The first error is reported with its file and row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import UserError
from .distance import METRICS
from .hdf5 import write_dataset
from .real import split
from .registry import DATASETS
from .verify import check_dataset, forget

FORMATS = (".npy", ".fvecs", ".ivecs", ".bvecs", ".csv", ".tsv", ".hdf5", ".h5")
_TEXMEX = {".fvecs": np.float32, ".ivecs": np.int32, ".bvecs": np.uint8}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CHUNK_ROWS = 1 << 16


@dataclass
class Request:
    name: str
    train: Path
    metric: str | None = None
    test: Path | None = None
    test_size: int | None = None
    count: int = 100
    train_key: str | None = None
    test_key: str | None = None
    force: bool = False


def import_dataset(request: Request, data_dir: Path | str = "data", progress: bool = True) -> Path:
    """Validate the request's files, compute the ground truth and write data_dir/NAME.hdf5."""
    target = _target(request, Path(data_dir))
    train, file_metric, file_test = read_points(request.train, request.train_key, request.test_key)
    metric = request.metric or file_metric
    if metric is None:
        raise UserError(f"{request.train} does not say its metric: give --metric "
                        f"({', '.join(METRICS)})")
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    # Rows are validated as they are numbered in their files, before any split.
    checked_train = validate(train, metric, request.train, "train")
    test_origin = request.test or request.train
    if request.test is not None:
        test, _, _ = read_points(request.test, request.test_key, None)
        checked_test = validate(test, metric, request.test, "test")
    elif file_test is not None and request.test_size is None:
        checked_test = validate(file_test, metric, request.train, "test")
    else:
        size = request.test_size if request.test_size is not None else \
            min(10_000, len(checked_train) // 10)
        if not 1 <= size < len(checked_train):
            raise UserError(f"cannot hold out {size} of the {len(checked_train)} rows of "
                            f"{request.train} as queries; give --test-size between 1 and "
                            f"{len(checked_train) - 1}, or --test")
        checked_train, checked_test = split(checked_train, size)
    if checked_train.shape[1] != checked_test.shape[1]:
        raise UserError(f"{test_origin} has {checked_test.shape[1]} dimensions but {request.train} "
                        f"has {checked_train.shape[1]}; give queries of the training dimension")
    if request.count > len(checked_train):
        raise UserError(f"-k {request.count} is more than the {len(checked_train)} training rows "
                        f"of {request.train}; give a smaller -k")
    points = [_as_sets(X) for X in (checked_train, checked_test)] if metric == "jaccard" else \
        [checked_train, checked_test]
    attrs = {"source": f"imported from {request.train.name}"
                       + (f" and {request.test.name}" if request.test else ""),
             "licence": "-", "version": "1"}
    write_dataset(target, points[0], points[1], metric, count=request.count, progress=progress,
                  attrs=attrs)
    forget(target)  # a file replaced on purpose: its earlier sha256 no longer applies
    check_dataset(target, progress)
    return target


def _target(request: Request, data_dir: Path) -> Path:
    if not _NAME.fullmatch(request.name):
        raise UserError(f"dataset name {request.name!r} must be letters, digits, '.', '_' or "
                        f"'-' (at most 100), starting with a letter or digit")
    if request.name in DATASETS:
        raise UserError(f"{request.name} is a registered dataset; import under another name")
    target = data_dir / f"{request.name}.hdf5"
    if target.exists() and not request.force:
        raise UserError(f"{target} exists; give --force to replace it (results in results/ "
                        f"for {request.name} were measured on the old file)")
    return target


def read_points(path: Path, train_key: str | None,
                test_key: str | None) -> tuple[np.ndarray, str | None, np.ndarray | None]:
    """(points, metric the file states or None, the file's test points or None)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path}: unknown format {suffix or '(no extension)'}; give one of "
                        f"{', '.join(FORMATS)}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        if suffix == ".npy":
            return _matrix(path, np.load(path, mmap_mode="r", allow_pickle=False)), None, None
        if suffix in _TEXMEX:
            return read_texmex(path), None, None
        if suffix in (".csv", ".tsv"):
            return read_text(path), None, None
        return read_hdf5(path, train_key, test_key)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"{path}: cannot read it as {suffix} ({' '.join(str(error).split())})"
                        ) from None


def _matrix(path: Path, X: np.ndarray) -> np.ndarray:
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise UserError(f"{path}: expected a 2-D array of rows, got shape {X.shape}")
    if X.dtype.kind not in "fiub":
        raise UserError(f"{path}: holds {X.dtype}, not numbers")
    return X


def read_texmex(path: Path) -> np.ndarray:
    """A .fvecs/.ivecs/.bvecs file: (n, d) values, every row checked to have dimension d."""
    dtype = np.dtype(_TEXMEX[path.suffix.lower()])
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size < 4:
        raise UserError(f"{path}: empty or shorter than one row")
    d = int(raw[:4].view(np.int32)[0])
    row_bytes = 4 + d * dtype.itemsize
    if d <= 0 or raw.size % row_bytes:
        raise UserError(f"{path}: its first row has dimension {d}, but the file is not a whole "
                        f"number of such rows (a ragged file: every row must have dimension {d})")
    records = raw.reshape(-1, row_bytes)
    dims = records[:, :4].copy().view(np.int32).ravel()
    ragged = np.flatnonzero(dims != d)
    if ragged.size:
        row = int(ragged[0])
        raise UserError(f"{path}: row {row} has dimension {dims[row]}, not {d} (a ragged file: "
                        f"every row must have dimension {d})")
    return records[:, 4:].copy().view(dtype)


def read_text(path: Path) -> np.ndarray:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        X = np.loadtxt(path, delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise UserError(f"{path}: {' '.join(str(error).split())} (every field must be a number, "
                        f"with no header line)") from None
    return _matrix(path, X)


def read_hdf5(path: Path, train_key: str | None,
              test_key: str | None) -> tuple[np.ndarray, str | None, np.ndarray | None]:
    with h5py.File(path, "r") as f:
        key = train_key or "train"
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise UserError(f"{path} has no array {key!r}; name one with --train-key "
                            f"(it has: {', '.join(sorted(f.keys())) or 'nothing'})")
        if f.attrs.get("type", "dense") in ("sparse", b"sparse"):
            raise UserError(f"{path} is a sparse ann-benchmarks file; run on it directly with "
                            f"`run.py --dataset {path}`")
        train = _matrix(path, f[key][:])
        metric = f.attrs.get("distance")
        metric = metric.decode() if isinstance(metric, bytes) else metric
        test = None
        t_key = test_key or ("test" if train_key is None else None)
        if t_key is not None:
            if t_key not in f:
                raise UserError(f"{path} has no array {t_key!r}; name one with --test-key")
            test = _matrix(path, f[t_key][:])
    return train, metric, test


def validate(X: np.ndarray, metric: str, path: Path, role: str) -> np.ndarray:
    """X as float32 (bool for hamming and jaccard), or UserError naming the first bad row."""
    bits = metric in ("hamming", "jaccard")
    out = np.empty(X.shape, dtype=bool if bits else np.float32)
    for lo in range(0, len(X), _CHUNK_ROWS):
        chunk = np.asarray(X[lo:lo + _CHUNK_ROWS])
        if chunk.dtype.kind == "f":
            bad = ~np.isfinite(chunk).all(axis=1)
            _refuse(bad, lo, path, role, "has a NaN or infinite value")
        if bits:
            bad = ~((chunk == 0) | (chunk == 1)).all(axis=1)
            _refuse(bad, lo, path, role, f"has a value other than 0 or 1 ({metric} takes bits)")
            out[lo:lo + _CHUNK_ROWS] = chunk.astype(bool)
            continue
        converted = chunk.astype(np.float32)
        if chunk.dtype.kind == "f":
            _refuse(~np.isfinite(converted).all(axis=1), lo, path, role,
                    "has a value too large for float32")
        if metric == "angular":
            _refuse(~converted.any(axis=1), lo, path, role,
                    "is all zeros, which has no angle to anything")
        out[lo:lo + _CHUNK_ROWS] = converted
    return out


def _refuse(bad: Any, lo: int, path: Path, role: str, what: str) -> None:
    bad = np.asarray(bad)
    if bad.any():
        row = lo + int(np.flatnonzero(bad)[0])
        raise UserError(f"{path}: row {row} ({role}) {what}; fix or drop that row")


def _as_sets(X: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(row).astype(np.int32) for row in X]

"""Result files: one HDF5 file per (dataset, k, algorithm, build args, query args).

Layout: results/<dataset>/<k>/<algorithm>[-batch|-c<N>]/<params>.hdf5 (-c<N>: N concurrent
clients, run.py --clients), with the ann-benchmarks
attributes and datasets (so their plotting code reads ours) plus what ann-bench adds:
every run's times, the environment, the arguments as JSON, and a status. With `run.py
--repeat R` the index is built R times: the first build's results are those files (attribute
`repeat` 1), and build r = 2..R writes `<params>.repeat<r>.h5` beside them, a suffix that
ann-benchmarks' loader and ours (`*.hdf5`) pass over, so plots show one point per parameter set
and only the spread report (report/repeats.py) reads the others. A file is
written under a temporary name and renamed, so a file on disk is always whole, and it is
never written again after that (metrics are cached elsewhere).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from ..atomic import write_atomically

FORMAT_VERSION = 1
STATUS_OK = "ok"
STATUS_FAILED = "failed"
# Not run: the host saw a cheaper set of the same build reach recall 1.0 (run/effort.py); the
# file records why, so a resumed sweep does not run it, and reports list it apart from failures.
STATUS_SKIPPED = "skipped"

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")
_MAX_SLUG = 80


def canonical_json(value: Any) -> str:
    """The one spelling of a value that file names and equality are based on."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _slug(args: Any) -> str:
    if isinstance(args, dict):
        text = ",".join(f"{k}={_slug(v)}" for k, v in sorted(args.items()))
    elif isinstance(args, (list, tuple)):
        text = ",".join(_slug(v) for v in args)
    else:
        text = str(args)
    return _UNSAFE.sub("_", text)


def params_name(build_args: Any, query_args: Any) -> str:
    """A readable file stem for a parameter set, unique through a hash of both argument sets.

    The readable part may be cut or may collide after sanitising ("a/b" and "a_b"); the
    hash of the canonical JSON never does, so different parameter sets never share a file.
    """
    readable = _slug(build_args)
    if query_args:
        readable += "__" + _slug(query_args)
    readable = readable[:_MAX_SLUG] or "default"
    digest = hashlib.sha256(canonical_json([build_args, query_args]).encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


def mode_suffix(batch: bool, clients: int | None = None) -> str:
    """What a result directory's name adds to the algorithm's: "-batch", "-c<N>" or nothing."""
    if clients is not None:
        return f"-c{clients}"
    return "-batch" if batch else ""


_CLIENTS_SUFFIX = re.compile(r"-c([0-9]+)$")


def clients_of(directory_name: str) -> int | None:
    """N of a result directory "<algorithm>-c<N>", None for the other modes."""
    found = _CLIENTS_SUFFIX.search(directory_name)
    return int(found.group(1)) if found else None


def algorithm_of(directory_name: str) -> str:
    """The algorithm a result directory is named after, without its mode's suffix."""
    return _CLIENTS_SUFFIX.sub("", directory_name).removesuffix("-batch")


def result_dir(results_dir: Path | str, dataset: str, count: int, algorithm: str, batch: bool,
               clients: int | None = None) -> Path:
    return Path(results_dir) / dataset / str(count) / (algorithm + mode_suffix(batch, clients))


def result_path(results_dir, dataset, count, algorithm, batch, build_args, query_args,
                clients: int | None = None, repeat: int = 1) -> Path:
    return result_dir(results_dir, dataset, count, algorithm, batch, clients) / (
        params_name(build_args, query_args) + (".hdf5" if repeat == 1 else f"{REPEAT_INFIX}{repeat}.h5")
    )


REPEAT_INFIX = ".repeat"


def repeat_paths(path: Path) -> list[Path]:
    """The result files of builds 2, 3, ... of the result at `path` (a first build's), in order."""
    found = path.parent.glob(f"{path.stem}{REPEAT_INFIX}*.h5")
    numbered = [(p.name[len(path.stem) + len(REPEAT_INFIX):-3], p) for p in found]
    return [p for n, p in sorted((int(n), p) for n, p in numbered if n.isdigit())]


@dataclass
class RunResult:
    """What one (build args, query args) pair produced, as stored in its file.

    `times` holds, per query, the time of the best run (seconds); in batch mode every query
    gets the batch time divided by the number of queries, as in ann-benchmarks.
    `run_times` holds every run's total seconds, not only the best (pyperf's habit).
    """

    attrs: dict[str, Any]
    neighbors: np.ndarray | None = None
    distances: np.ndarray | None = None
    times: np.ndarray | None = None
    run_times: np.ndarray | None = None
    path: Path | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.attrs.get("status", STATUS_OK)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def build_args(self) -> Any:
        return json.loads(self.attrs.get("build_args", "null"))

    @property
    def query_args(self) -> Any:
        return json.loads(self.attrs.get("query_args", "null"))

    @property
    def environment(self) -> dict:
        return json.loads(self.attrs.get("environment", "{}"))


def attr_value(value: Any) -> Any:
    """h5py stores numbers, strings and bools; anything else is stored as JSON text."""
    if isinstance(value, (bool, int, float, str, np.integer, np.floating, np.bool_)):
        return value
    if value is None:
        return "null"
    return canonical_json(value)


def write_result(path: Path | str, result: RunResult) -> Path:
    """Write atomically: a reader sees either no file or the whole file. The file is made in
    memory and written with one plain write, so a full disk is one OSError, not HDF5 failing
    in its destructors (which print tracebacks that no caller can catch)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        for key, value in result.attrs.items():
            f.attrs[key] = attr_value(value)
        for name in ("neighbors", "distances", "times", "run_times"):
            data = getattr(result, name)
            if data is not None:
                f.create_dataset(name, data=data)
        for name, data in result.extra.items():
            f.create_dataset(name, data=data)
    return write_atomically(path, buffer.getvalue())


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_result(path: Path | str, arrays: bool = True) -> RunResult:
    """Read one result file; with arrays=False only the attributes (fast for listings)."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        return read_open(f, path, arrays)


def read_open(f: h5py.File, path: Path | None = None, arrays: bool = True) -> RunResult:
    """The result in an open file (which may live in memory: the host's check reads one so)."""
    result = RunResult(attrs={k: _decode(v) for k, v in f.attrs.items()}, path=path)
    if arrays:
        for name in f:
            data = f[name][()]
            if name in ("neighbors", "distances", "times", "run_times"):
                setattr(result, name, data)
            else:
                result.extra[name] = data
    return result


def is_result_file(path: Path) -> bool:
    return path.suffix == ".hdf5" and not path.name.startswith(".")


def iter_result_paths(results_dir, dataset: str | None = None, count: int | None = None,
                      batch: bool | None = None, clients: bool = False) -> Iterator[Path]:
    """Every result file under results_dir, optionally only one dataset, k and mode; the
    concurrent clients' results (-c<N>) only with clients=True, and then only they."""
    root = Path(results_dir)
    if dataset is not None:
        root = root / dataset
        if count is not None:
            root = root / str(count)
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*.hdf5")):
        if not is_result_file(path):
            continue
        if (clients_of(path.parent.name) is not None) != clients:
            continue
        if batch is not None and path.parent.name.endswith("-batch") != batch:
            continue
        yield path


def load_results(results_dir, dataset: str, count: int, batch: bool | None = None,
                 arrays: bool = True, include_failed: bool = False, clients: bool = False) -> Iterator[RunResult]:
    for path in iter_result_paths(results_dir, dataset, count, batch, clients):
        result = read_result(path, arrays=arrays)
        if include_failed or result.ok:
            yield result


def status_of(path: Path) -> str | None:
    """The status of the result at path, or None where there is no (readable) result."""
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            return _decode(f.attrs.get("status", STATUS_OK))
    except OSError:
        return None

"""The metrics cache: metrics of every result file, computed once and kept beside the results.

It computes metrics, so it lives with them in report/, not under results/ (which would then
import upward). `metrics_for_results` is what plots, export and the site read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import write_atomically
from ..errors import UnknownNameError
from ..results.files import STATUS_OK, RunResult, iter_result_paths, read_result
from .metrics import METRICS, METRICS_VERSION, NAN, compute_metrics

ROW_FIELDS = ("algorithm", "name", "build_args", "query_args", "batch_mode", "library_version", "cpu_model")


def _describe(result: RunResult) -> dict:
    """The non-metric part of a row: who and what produced this result."""
    env = result.environment
    return {
        "algorithm": result.attrs.get("algo", ""),
        "name": result.attrs.get("name", ""),
        "build_args": result.build_args,
        "query_args": result.query_args,
        "batch_mode": bool(result.attrs.get("batch_mode", False)),
        "library_version": env.get("library_version", ""),
        "cpu_model": env.get("cpu_model", ""),
    }


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


class MetricsCache:
    """Metrics of result files, kept in <results_dir>/.cache/metrics-<dataset>-<k>.json.

    An entry is keyed by the result file's path relative to results_dir and is valid while
    the file's size, mtime_ns and inode are unchanged and METRICS_VERSION is the same. The
    whole cache is valid only for the ground truth it was computed against (the dataset
    file's stamp): a dataset made or fetched again invalidates it. A failed result is
    remembered too (as its status), so listing it again opens nothing.
    """

    def __init__(self, results_dir: Path | str):
        self.results_dir = Path(results_dir)
        self.directory = self.results_dir / ".cache"

    def path(self, dataset: str, count: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset)
        return self.directory / f"metrics-{safe}-{count}.json"

    def load(self, dataset: str, count: int) -> tuple[dict | None, dict[str, dict]]:
        """The stamp of the truth the entries were computed against, and the entries."""
        try:
            with open(self.path(dataset, count)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None, {}
        if not isinstance(data, dict) or data.get("version") != METRICS_VERSION:
            return None, {}
        entries = data.get("entries")
        return data.get("truth"), entries if isinstance(entries, dict) else {}

    def save(self, dataset: str, count: int, entries: dict[str, dict], truth: dict | None = None) -> None:
        """Write atomically; a cache that cannot be written is not an error."""
        text = json.dumps({"version": METRICS_VERSION, "truth": truth, "entries": entries}, sort_keys=True)
        try:
            write_atomically(self.path(dataset, count), text)
        except OSError:
            pass

    def key(self, path: Path) -> str:
        return Path(path).relative_to(self.results_dir).as_posix()

    def lookup(self, entries: dict[str, dict], path: Path) -> dict | None:
        entry = entries.get(self.key(path))
        if entry is None or entry.get("stamp") != _stamp(path):
            return None
        return entry


def _dataset_stamp(dataset_name: str, data_dir: Path | str) -> dict | None:
    """The dataset file's stamp, or None where there is no file (yet)."""
    from .. import datasets

    try:
        path = datasets.dataset_path(dataset_name, data_dir)
    except UnknownNameError:
        return None
    return _stamp(path) if path.exists() else None


def _dataset_distances(dataset_name: str, data_dir: Path | str) -> np.ndarray:
    from .. import datasets

    data = datasets.load_dataset(datasets.get_dataset(dataset_name, data_dir=data_dir, check=False))
    return np.asarray(data.distances)


def metrics_for_results(results_dir: Path | str, dataset_name: str, count: int,
                        batch: bool | None = None, data_dir: Path | str = "data",
                        true_distances: np.ndarray | Callable[[], np.ndarray] | None = None,
                        ) -> list[dict]:
    """One row per ok result of dataset/k (and mode): who made it, its path, every metric.

    The dataset's true distances are loaded only when some result is not in the cache;
    `true_distances` (an array, or a function returning one) stands in for the dataset file.
    """
    results_dir = Path(results_dir)
    cache = MetricsCache(results_dir)
    truth_stamp, entries = cache.load(dataset_name, count)
    if true_distances is None and truth_stamp != _dataset_stamp(dataset_name, data_dir):
        entries = {}  # computed against another dataset file than the one there now
    fresh: dict[str, dict] = {}
    truth: np.ndarray | None = None
    rows = []
    for path in iter_result_paths(results_dir, dataset_name, count, batch):
        key = cache.key(path)
        entry = cache.lookup(entries, path)
        if entry is None:
            stamp = _stamp(path)
            result = read_result(path)
            if result.ok:
                if truth is None:
                    if true_distances is None:
                        truth = _dataset_distances(dataset_name, data_dir)
                    elif callable(true_distances):
                        truth = np.asarray(true_distances())
                    else:
                        truth = np.asarray(true_distances)
                entry = {"stamp": stamp, "status": STATUS_OK, "row": _describe(result),
                         "metrics": compute_metrics(truth, result, count)}
            else:
                entry = {"stamp": stamp, "status": result.status}
        fresh[key] = entry
        if entry["status"] == STATUS_OK:
            metrics = entry["metrics"]
            described = entry["row"]
            rows.append({**{f: described.get(f) for f in ROW_FIELDS}, "path": str(path),
                         **{name: metrics.get(name, NAN) for name in METRICS}})
    # Keep entries of the other mode when only one mode was listed; drop vanished files.
    for key, entry in entries.items():
        if key not in fresh and (results_dir / key).exists():
            fresh[key] = entry
    if fresh != entries:
        if true_distances is None:  # (given truths stand in for the file and keep its stamp)
            truth_stamp = _dataset_stamp(dataset_name, data_dir)  # as it is now: loading may have made it
        cache.save(dataset_name, count, fresh, truth_stamp)
    return rows

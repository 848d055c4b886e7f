"""The metrics cache: metrics of every result file, computed once and kept beside the results.

It computes metrics, so it lives with them in report/, not under results/ (which would then
import upward). `results_table` (ok runs with their metrics, failed runs with their reasons,
and files that could not be read) is what the site reads; `metrics_for_results` (the ok runs)
is what plots and export read.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import progress
from ..atomic import write_atomically
from ..errors import UnknownNameError, UserError
from ..results.files import STATUS_OK, STATUS_SKIPPED, RunResult, iter_result_paths, read_result
from .metrics import METRICS, METRICS_VERSION, NAN, compute_metrics

log = logging.getLogger(__name__)

ROW_FIELDS = ("algorithm", "name", "build_args", "query_args", "batch_mode", "clients", "library_version",
              "cpu_model", "environment")
# Bump when what an entry holds changes (METRICS_VERSION covers the metrics' definitions).
ENTRY_FORMAT = 3
# What reading or measuring one damaged or foreign result file can raise; the file is then
# listed as unreadable, never dropped silently nor fatal to the rest.
_UNREADABLE = (OSError, KeyError, ValueError, TypeError, UserError)


def _describe(result: RunResult) -> dict:
    """The non-metric part of a row: who and what produced this result."""
    env = result.environment
    return {
        "algorithm": result.attrs.get("algo", ""),
        "name": result.attrs.get("name", ""),
        "build_args": result.build_args,
        "query_args": result.query_args,
        "batch_mode": bool(result.attrs.get("batch_mode", False)),
        "clients": result.attrs.get("clients"),  # concurrent clients (-c<N>), None for the other modes
        "library_version": env.get("library_version", ""),
        "cpu_model": env.get("cpu_model", ""),
        "environment": env,
    }


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


class MetricsCache:
    """Metrics of result files, kept in <results_dir>/.cache/metrics-<dataset>-<k>.json.

    An entry is keyed by the result file's path relative to results_dir and is valid while
    the file's size, mtime_ns and inode are unchanged and METRICS_VERSION and ENTRY_FORMAT
    are the same. The
    whole cache is valid only for the ground truth it was computed against (the dataset
    file's stamp): a dataset made or fetched again invalidates it. A failed result is
    remembered too (its status, description and error), so listing it again opens nothing.
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
        if not isinstance(data, dict) or data.get("version") != [METRICS_VERSION, ENTRY_FORMAT]:
            return None, {}
        entries = data.get("entries")
        return data.get("truth"), entries if isinstance(entries, dict) else {}

    def save(self, dataset: str, count: int, entries: dict[str, dict], truth: dict | None = None) -> None:
        """Write atomically; a cache that cannot be written is not an error."""
        text = json.dumps({"version": [METRICS_VERSION, ENTRY_FORMAT], "truth": truth, "entries": entries},
                          sort_keys=True)
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


def dataset_distances(dataset_name: str, data_dir: Path | str) -> np.ndarray:
    from .. import datasets

    data = datasets.load_dataset(datasets.get_dataset(dataset_name, data_dir=data_dir, check=False))
    return np.asarray(data.distances)


@dataclass
class ResultsTable:
    """Every result file of a dataset/k (and mode), sorted by path, in three kinds.

    rows: ok runs, each who made it (ROW_FIELDS), its path, mtime_ns and every metric.
    failures: failed runs, each who made it (ROW_FIELDS), its path, mtime_ns, status and error.
    skipped: sets not run because a cheaper one reached recall 1.0 (run/grading.py), each who
    it is (ROW_FIELDS), its path, mtime_ns and reason: neither failures nor points.
    unreadable: files that could not be read or measured, each its path and error.
    """

    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)


def _measure(path: Path, count: int, truth: Callable[[], np.ndarray]) -> dict:
    stamp = _stamp(path)
    result = read_result(path)
    if result.status == STATUS_SKIPPED:
        return {"stamp": stamp, "status": STATUS_SKIPPED, "row": _describe(result),
                "reason": str(result.attrs.get("reason", ""))}
    if not result.ok:
        return {"stamp": stamp, "status": result.status, "row": _describe(result),
                "error": str(result.attrs.get("error", ""))}
    return {"stamp": stamp, "status": STATUS_OK, "row": _describe(result),
            "metrics": compute_metrics(truth(), result, count)}


def results_table(results_dir: Path | str, dataset_name: str, count: int, batch: bool | None = None,
                  data_dir: Path | str = "data",
                  true_distances: np.ndarray | Callable[[], np.ndarray] | None = None,
                  progress: bool = False, clients: bool = False) -> ResultsTable:
    """Every result of dataset/k (and mode), with metrics for the ok ones; with clients, the
    concurrent clients' results (-c<N>) instead of the others.

    The dataset's true distances are loaded only when some result is not in the cache;
    `true_distances` (an array, or a function returning one) stands in for the dataset file.
    With progress, their progress on stderr while uncached files are measured (a bar on a
    terminal, whole lines elsewhere).
    """
    results_dir = Path(results_dir)
    cache = MetricsCache(results_dir)
    truth_stamp, entries = cache.load(dataset_name, count)
    if true_distances is None and truth_stamp != _dataset_stamp(dataset_name, data_dir):
        entries = {}  # computed against another dataset file than the one there now
    loaded: list[np.ndarray] = []

    def truth() -> np.ndarray:
        if not loaded:
            if true_distances is None:
                loaded.append(dataset_distances(dataset_name, data_dir))
            elif callable(true_distances):
                loaded.append(np.asarray(true_distances()))
            else:
                loaded.append(np.asarray(true_distances))
        return loaded[0]

    paths = list(iter_result_paths(results_dir, dataset_name, count, batch, clients))
    fresh: dict[str, dict] = {}
    missing = []
    for path in paths:
        entry = cache.lookup(entries, path)
        if entry is None:
            missing.append(path)
        else:
            fresh[cache.key(path)] = entry
    errors: dict[str, str] = {}
    if missing:
        log.info("measuring %d result file(s) of %s (k=%d) not in the metrics cache", len(missing),
                 dataset_name, count)
    for path in _progress(missing, f"{dataset_name} k={count}", progress):
        try:
            fresh[cache.key(path)] = _measure(path, count, truth)
        except _UNREADABLE as e:
            if not loaded and isinstance(e, UserError):
                raise  # the dataset itself is missing or damaged: no file can be measured
            errors[cache.key(path)] = " ".join(str(e).split()) or type(e).__name__
            log.warning("cannot read or measure %s: %s", path, errors[cache.key(path)])

    table = ResultsTable()
    for path in paths:
        key = cache.key(path)
        if key in errors:
            table.unreadable.append({"path": str(path), "error": errors[key]})
            continue
        entry = fresh[key]
        described = entry["row"]
        row = {**{f: described.get(f) for f in ROW_FIELDS}, "path": str(path),
               "mtime_ns": entry["stamp"]["mtime_ns"]}
        if entry["status"] == STATUS_OK:
            metrics = entry["metrics"]
            table.rows.append({**row, **{name: metrics.get(name, NAN) for name in METRICS}})
        elif entry["status"] == STATUS_SKIPPED:
            table.skipped.append({**row, "reason": entry["reason"]})
        else:
            table.failures.append({**row, "status": entry["status"], "error": entry["error"]})
    # Keep entries of the other mode when only one mode was listed; drop vanished files.
    for key, entry in entries.items():
        if key not in fresh and key not in errors and (results_dir / key).exists():
            fresh[key] = entry
    if fresh != entries:
        if true_distances is None:  # (given truths stand in for the file and keep its stamp)
            truth_stamp = _dataset_stamp(dataset_name, data_dir)  # as it is now: loading may have made it
        cache.save(dataset_name, count, fresh, truth_stamp)
    return table


def _progress(paths: list[Path], label: str, enabled: bool):
    """The paths, with their progress on stderr while they are measured (ann_bench.progress: a
    bar on a terminal, whole lines once a minute and at the end elsewhere)."""
    if not enabled or not paths:
        return paths
    return progress.bar(iterable=paths, desc=f"metrics {label}", unit="file")


def metrics_for_results(results_dir: Path | str, dataset_name: str, count: int,
                        batch: bool | None = None, data_dir: Path | str = "data",
                        true_distances: np.ndarray | Callable[[], np.ndarray] | None = None,
                        clients: bool = False) -> list[dict]:
    """One row per ok result of dataset/k (and mode): who made it, its path, every metric.

    Files that cannot be read are left out with a warning each (results_table lists them).
    """
    return results_table(results_dir, dataset_name, count, batch, data_dir, true_distances, clients=clients).rows

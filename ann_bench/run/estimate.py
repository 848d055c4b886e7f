"""How long a planned sweep will take, from earlier results: the dry-run table."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import h5py

from ..results.files import STATUS_OK, read_result, result_dir
from .jobs import Settings, display_name
from .plan import Plan


def _past_costs(directory: Path, runs: int) -> tuple[float, float] | None:
    """Median build time and median seconds per query set of the results in directory, if any."""
    builds, queries = [], []
    for path in sorted(directory.glob("*.hdf5")) if directory.is_dir() else []:
        attrs = read_result(path, arrays=False).attrs
        if attrs.get("status") == STATUS_OK and "library_seconds" in attrs:
            builds.append(float(attrs["build_time"]))
            # Seconds scale with the number of timed passes; warm-up counts as one more.
            queries.append(float(attrs["library_seconds"]) * (runs + 1) / (attrs["run_count"] + 1))
    if not builds:
        return None
    return statistics.median(builds), statistics.median(queries)


def _data_size(path: Path) -> tuple[int, int] | None:
    """Values stored in train and in test (points x dimension; set items for sparse data)."""
    try:
        with h5py.File(path, "r") as f:
            sizes = f["train"].size, f["test"].size
    except (OSError, KeyError):
        return None
    return sizes if min(sizes) > 0 else None


@dataclass
class Estimate:
    build: float  # seconds per definition
    query: float  # seconds per query-argument set
    source: str


def estimate(settings: Settings, algorithm: str) -> Estimate | None:
    """Costs from this dataset's earlier results, else scaled from another dataset's, else None.

    Scaling assumes time in proportion to the data (train values for a build, test values for
    a query set): rough, since real costs also depend on the algorithm and the distribution.
    The other dataset's file must be in the same data directory, to know its size.
    """
    here = _past_costs(result_dir(settings.results_dir, settings.dataset, settings.count, algorithm,
                                  settings.batch), settings.runs)
    if here is not None:
        return Estimate(*here, "same dataset")
    target = _data_size(settings.dataset_path)
    if target is None:
        return None
    candidates = []
    for count_dir in sorted(Path(settings.results_dir).glob("*/*")):
        dataset, count = count_dir.parent.name, count_dir.name
        if not count.isdigit() or (dataset, int(count)) == (settings.dataset, settings.count):
            continue
        costs = _past_costs(result_dir(settings.results_dir, dataset, int(count), algorithm, settings.batch),
                            settings.runs)
        size = _data_size(settings.dataset_path.with_name(f"{dataset}.hdf5")) if costs else None
        if size is not None:
            # The nearest dataset in size needs the least scaling; the same k is better still.
            closeness = (abs(math.log(target[0] / size[0])), int(count) != settings.count)
            candidates.append((closeness, dataset, int(count), costs, size))
    if not candidates:
        return None
    _, dataset, count, (build, query), (train, test) = min(candidates)
    source = f"scaled from {dataset}" + (f" k={count}" if count != settings.count else "")
    return Estimate(build * target[0] / train, query * target[1] / test, source)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def dry_run_table(plan: Plan, settings: Settings) -> str:
    """Each definition a command would run and what of it is done; per-algorithm totals with a
    time estimate, saying where each estimate comes from."""
    overview = sorted(plan.definitions, key=lambda p: p.definition.algorithm)  # stable: file order within
    lines = [f"{'to run':>6} {'done':>5} {'failed':>6}  definition"]
    lines += [f"{p.to_run:>6} {p.done:>5} {p.failed:>6}  {display_name(p.definition, ())}" for p in overview]
    totals: dict[str, list[int]] = {}
    for p in overview:
        row = totals.setdefault(p.definition.algorithm, [0, 0, 0, 0])
        row[0] += p.to_run > 0
        row[1] += p.to_run
        row[2] += p.done
        row[3] += p.failed
    width = max([len("algorithm")] + [len(a) for a in totals])
    lines += ["", f"{'algorithm':<{width}} {'builds':>6} {'to run':>6} {'done':>5} {'failed':>6}  estimate"]
    total, unknown, scaled = 0.0, [], False
    for algorithm, (builds, to_run, done, failed) in totals.items():
        costs = estimate(settings, algorithm) if builds else Estimate(0.0, 0.0, "nothing to run")
        if costs is None:
            text = "unknown (no earlier result of it with a dataset file to scale from)"
            unknown.append(algorithm)
        else:
            seconds = builds * costs.build + to_run * costs.query
            total += seconds
            scaled |= costs.source.startswith("scaled")
            text = f"{_duration(seconds)} ({costs.source})"
        lines.append(f"{algorithm:<{width}} {builds:>6} {to_run:>6} {done:>5} {failed:>6}  {text}")
    note = f", not counting {', '.join(unknown)} (unknown)" if unknown else ""
    lines.append(f"estimated time in library calls: {_duration(total)}{note}")
    if scaled:
        lines.append("scaled estimates assume time in proportion to the data size (train points x dimension "
                     "per build, queries x dimension per query set): a rough guide only")
    return "\n".join(lines)



"""How long a planned sweep will take: a range per algorithm, and what each range is based on.

Costs are modelled per build and per query-argument set, from the results already in the tree:
- a setting measured before (a resumed definition) costs what it cost then, give or take noise;
- an unmeasured setting of a measured grid is read off a power law fitted to the measured
  ones (cost against each numeric argument, in log-log), or, with too few points, taken from
  the nearest measured setting, between constant and linear in the change of effort. That is
  what keeps an annoy resume from being priced like the cheap search_k values already done;
- with nothing on this dataset, the nearest dataset's costs are scaled by data size, with a
  wide range, since costs also depend on how hard the data is;
- a set the grader skipped on this dataset (a cheaper set of its build had reached recall 1.0)
  is skipped again unless --exhaustive, so it costs nothing; one skipped on another dataset
  may or may not be, so it costs nothing at the low end and its price at the high end;
- else the estimate is "unknown", and says so.
Ranges add up (low with low, high with high); the wall-time range divides the work between the
definitions run at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..datasets.registry import DATASETS
from ..results.files import STATUS_OK, STATUS_SKIPPED, canonical_json, read_result, result_dir
from .definitions import Definition
from .jobs import Settings, display_name
from .plan import Plan, Planned
from .runner import WARMUP_QUERIES

# Around a measured cost: timing noise between runs of the same setting, and a machine busier or
# quieter than when it was measured. bench/estimates.py's "again" case here, on a 2-core machine
# shared with other work: a quick sweep of annoy, hnswlib and faiss IVF on glove-6b-50-angular-100k
# took 290 s, then 397 s (1.37x) once the load average rose from 3 to 11.
NOISE = (0.8, 1.5)
# Around a cost read off a fitted power law or scaled from another dataset.
FIT_SPREAD = 2.0
SCALED_SPREAD = 3.0
# Seconds per definition outside library calls (start-up, loading the data, writing results),
# by executor: bench/docker_overhead.py measured ~0.7 s local and ~1.5 s in Docker.
START_UP = {"docker": (1.0, 4.0), "local": (0.4, 2.0)}


@dataclass(frozen=True)
class Range:
    low: float
    high: float

    def __add__(self, other: Range) -> Range:
        return Range(self.low + other.low, self.high + other.high)

    def __mul__(self, factor: float) -> Range:
        return Range(self.low * factor, self.high * factor)

    def widened(self, low: float, high: float) -> Range:
        return Range(self.low * low, self.high * high)

    def text(self) -> str:
        return duration(self.low) if _same_text(self.low, self.high) else f"{duration(self.low)}-{duration(self.high)}"


ZERO = Range(0.0, 0.0)


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _same_text(a: float, b: float) -> bool:
    return duration(a) == duration(b)


@dataclass
class Observation:
    """One measured cost: the arguments that produced it (flattened) and its seconds."""

    args: dict[str, Any]
    seconds: float


def flatten(*argument_sets: Any) -> dict[str, Any]:
    """Build and query arguments as one mapping; positional ones are named by position."""
    flat: dict[str, Any] = {}
    for prefix, args in zip(("b", "q"), argument_sets):
        items = args.items() if isinstance(args, dict) else enumerate(args or ())
        for key, value in items:
            flat[f"{prefix}.{key}"] = value
    return flat


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@dataclass
class CostModel:
    """Seconds of one kind of work (a build, or a query set) as a function of its arguments."""

    observations: list[Observation] = field(default_factory=list)

    def predict(self, args: dict[str, Any]) -> tuple[Range, str] | None:
        if not self.observations:
            return None
        same = [o.seconds for o in self.observations if o.args == args]
        if same:
            return Range(min(same), max(same)).widened(*NOISE), "measured"
        # Only settings that agree on every non-numeric argument say anything about this one.
        fixed = {k: v for k, v in args.items() if not _numeric(v)}
        alike = [o for o in self.observations
                 if {k: v for k, v in o.args.items() if not _numeric(v)} == fixed and o.args.keys() == args.keys()]
        if not alike:
            seconds = [o.seconds for o in self.observations]
            return Range(min(seconds), max(seconds)).widened(1 / FIT_SPREAD, FIT_SPREAD), "other settings"
        fitted = _power_law(alike, args)
        if fitted is not None:
            return fitted, f"fitted on {len(alike)} results"
        return _nearest(alike, args), "nearest setting"


def _power_law(alike: list[Observation], args: dict[str, Any]) -> Range | None:
    """log(seconds) = a + sum b_k log(x_k), for the numeric arguments that vary; None when the
    points are too few to fit (two more than the unknowns)."""
    keys = [k for k, v in args.items() if _numeric(v) and len({o.args[k] for o in alike}) > 1]
    if len(alike) < len(keys) + 2 or not keys:
        return None
    X = np.array([[1.0] + [math.log(o.args[k]) for k in keys] for o in alike])
    y = np.log([max(o.seconds, 1e-6) for o in alike])
    coefficients, *_ = np.linalg.lstsq(X, y, rcond=None)
    # More effort never costs less, and rarely more than quadratically.
    coefficients[1:] = np.clip(coefficients[1:], 0.0, 2.0)
    residuals = y - X @ coefficients
    sigma = float(np.sqrt(np.mean(residuals ** 2)))
    target = np.array([1.0] + [math.log(args[k]) for k in keys])
    # Beyond the measured values the law is less sure: widen by how far out the target is.
    outside = max(max(0.0, math.log(args[k]) - max(math.log(o.args[k]) for o in alike),
                      min(math.log(o.args[k]) for o in alike) - math.log(args[k])) for k in keys)
    spread = math.exp(2 * sigma + 0.3 * outside) * FIT_SPREAD ** 0.5
    centre = math.exp(float(target @ coefficients))
    return Range(centre / spread, centre * spread)


def _nearest(alike: list[Observation], args: dict[str, Any]) -> Range:
    """From the nearest measured setting, between constant and linear in the change of effort."""
    def distance(o: Observation) -> float:
        return sum(abs(math.log(args[k] / o.args[k])) for k in args if _numeric(args[k]) and _numeric(o.args[k]))
    nearest = min(alike, key=distance)
    ratio = math.prod(args[k] / nearest.args[k] for k in args if _numeric(args[k]) and _numeric(nearest.args[k]))
    return Range(nearest.seconds * min(1.0, ratio), nearest.seconds * max(1.0, ratio)).widened(*NOISE)


@dataclass
class AlgorithmCosts:
    builds: CostModel
    queries: CostModel
    # Query sets (flattened with their build) that the grader skipped there: a cheaper set of
    # their build had reached recall 1.0 (grading.py), as it will again on the same data.
    skipped: set[str] = field(default_factory=set)


def past_costs(directory: Path, runs: int) -> AlgorithmCosts:
    """The builds and query sets measured in one algorithm's result directory."""
    builds: dict[str, Observation] = {}
    queries = CostModel()
    skipped = set()
    for path in sorted(directory.glob("*.hdf5")) if directory.is_dir() else []:
        result = read_result(path, arrays=False)
        attrs = result.attrs
        build_args, query_args = result.build_args, result.query_args
        if result.status == STATUS_SKIPPED:
            skipped.add(canonical_json(flatten(build_args, query_args)))
        if result.status != STATUS_OK or "library_seconds" not in attrs:
            continue
        builds.setdefault(canonical_json(build_args), Observation(flatten(build_args), float(attrs["build_time"])))
        # Seconds scale with the passes: the timed ones and the warm-up, a pass over at most
        # WARMUP_QUERIES of the queries (a tenth of a pass on a set of 10,000).
        warm_up, measured_runs = _warm_up_share(path), int(attrs.get("run_count", runs))
        query_seconds = float(attrs["library_seconds"]) * (runs + warm_up) / (measured_runs + warm_up)
        queries.observations.append(Observation(flatten(build_args, query_args), query_seconds))
    return AlgorithmCosts(CostModel(list(builds.values())), queries, skipped)


def _warm_up_share(path: Path) -> float:
    """The warm-up's share of a pass in one result: its queries over all of them."""
    with h5py.File(path, "r") as f:
        n = len(f["times"]) if "times" in f else WARMUP_QUERIES
    return min(WARMUP_QUERIES, n) / max(n, 1)


@dataclass(frozen=True)
class DataSize:
    """What a dataset holds: values in train and in test (points x dimension; set items for
    sparse data), and train's points."""

    train_values: int
    test_values: int
    train_points: int


def data_size(path: Path) -> DataSize | None:
    """The size of a dataset file; for a registered set whose file is not there yet, the
    registry's sizes."""
    if not path.exists():
        spec = DATASETS.get(path.stem)
        sizes = None if spec is None else spec.values()
        return None if sizes is None else DataSize(*sizes)
    try:
        with h5py.File(path, "r") as f:
            points = f["size_train"] if "size_train" in f else f["train"]
            size = DataSize(int(f["train"].size), int(f["test"].size), int(points.shape[0]))
    except (OSError, KeyError):
        return None
    return size if min(size.train_values, size.test_values, size.train_points) > 0 else None


@dataclass
class Basis:
    """Where an algorithm's costs come from: this dataset, or another one scaled to this one."""

    costs: AlgorithmCosts
    source: str  # "" for this dataset, else "scaled from NAME"
    build_scale: Range = Range(1.0, 1.0)
    query_scale: Range = Range(1.0, 1.0)


def basis_for(settings: Settings, algorithm: str) -> Basis | None:
    here = past_costs(result_dir(settings.results_dir, settings.dataset, settings.count, algorithm,
                                 settings.batch), settings.runs)
    if here.builds.observations:
        return Basis(here, "")
    target = data_size(settings.dataset_path)
    if target is None:
        return None
    candidates = []
    for count_dir in sorted(Path(settings.results_dir).glob("*/*")):
        dataset, k = count_dir.parent.name, count_dir.name
        if not k.isdigit() or (dataset, int(k)) == (settings.dataset, settings.count):
            continue
        costs = past_costs(result_dir(settings.results_dir, dataset, int(k), algorithm, settings.batch),
                           settings.runs)
        size = data_size(settings.dataset_path.with_name(f"{dataset}.hdf5")) if costs.builds.observations else None
        if size is not None:
            # The nearest dataset in size needs the least scaling; the same k is better still.
            closeness = (abs(math.log(target.train_values / size.train_values)), int(k) != settings.count)
            candidates.append((closeness, dataset, int(k), costs, size))
    if not candidates:
        return None
    _, dataset, count, costs, size = min(candidates, key=lambda c: c[0])
    train_ratio, test_ratio = target.train_values / size.train_values, target.test_values / size.test_values
    points_ratio = target.train_points / size.train_points
    source = f"scaled from {dataset}" + (f" k={count}" if count != settings.count else "")
    # A build grows at least with the data and at most a little faster (n log n, n^1.3); a query
    # set with the queries' values (their number and dimension), times at most the growth in the
    # points each query searches (linear for exhaustive search; the dimension is counted once),
    # and differences in the data's difficulty on top of both.
    build = Range(train_ratio, train_ratio ** 1.3 if train_ratio > 1 else train_ratio ** 0.7)
    query = Range(test_ratio * min(1.0, points_ratio), test_ratio * max(1.0, points_ratio))
    return Basis(costs, source, build.widened(1 / SCALED_SPREAD, SCALED_SPREAD),
                 query.widened(1 / SCALED_SPREAD, SCALED_SPREAD))


@dataclass
class Estimate:
    """The time one algorithm's planned work takes, and the kinds of evidence behind it."""

    work: Range
    longest_definition: Range
    bases: list[str]

    @property
    def source(self) -> str:
        return ", ".join(dict.fromkeys(self.bases))


def estimate_definitions(planned: Iterable[tuple[Definition, Sequence[Any]]], settings: Settings,
                         algorithm: str, executor: str = "docker") -> Estimate | None:
    """The range for one algorithm's definitions (each with its pending query-argument sets)."""
    basis = basis_for(settings, algorithm)
    if basis is None:
        return None
    start_up = Range(*START_UP.get(executor, START_UP["docker"]))
    work, longest, bases = ZERO, ZERO, []
    for definition, pending in planned:
        if not pending:
            continue
        build = basis.costs.builds.predict(flatten(definition.args))
        if build is None:
            return None
        cost = start_up + Range(build[0].low * basis.build_scale.low, build[0].high * basis.build_scale.high)
        bases.append(basis.source or build[1])
        for query_args in pending:
            args = flatten(definition.args, query_args)
            query = basis.costs.queries.predict(args)
            if query is None:
                return None
            low, high = query[0].low * basis.query_scale.low, query[0].high * basis.query_scale.high
            if not settings.exhaustive and canonical_json(args) in basis.costs.skipped:
                # Skipped there once a cheaper set reached recall 1.0: on this dataset it will
                # be again; on another, maybe (nothing at the low end, all of it at the high).
                low, high = 0.0, 0.0 if not basis.source else high
                bases.append(basis.source or "skipped before")
            else:
                bases.append(basis.source or query[1])
            cost = cost + Range(low, high)
        work = work + cost
        longest = Range(max(longest.low, cost.low), max(longest.high, cost.high))
    return Estimate(work, longest, bases)


def wall_time(estimates: Sequence[Estimate], parallelism: int) -> Range:
    """The sweep's wall time: the work shared between the definitions run at once, and never less
    than the longest single definition; at most the share plus (1 - 1/p) of the longest, the
    bound of any schedule that keeps every worker busy while work is left (Graham's)."""
    work = sum((e.work for e in estimates), ZERO)
    longest = max([0.0] + [e.longest_definition.high for e in estimates])
    low = max([work.low / parallelism] + [e.longest_definition.low for e in estimates])
    high = work.high / parallelism + (1 - 1 / parallelism) * longest
    return Range(low, high)


def dry_run_table(plan: Plan, settings: Settings, executor: str = "docker") -> str:
    """Each definition a command would run and what of it is done; per-algorithm totals with a
    time range, saying what each range is based on."""
    overview = sorted(plan.definitions, key=lambda p: p.definition.algorithm)  # stable: file order within
    lines = [f"{'to run':>6} {'done':>5} {'failed':>6}  definition"]
    lines += [f"{p.to_run:>6} {p.done:>5} {p.failed:>6}  {display_name(p.definition, ())}" for p in overview]
    tasks: dict[str, list] = {}  # each build to run (one per definition, or --repeat per definition)
    for task in plan.tasks:
        tasks.setdefault(task.definition.algorithm, []).append(task)
    by_algorithm: dict[str, list[Planned]] = {}
    for p in overview:
        by_algorithm.setdefault(p.definition.algorithm, []).append(p)
    width = max([len("algorithm")] + [len(a) for a in by_algorithm])
    lines += ["", f"{'algorithm':<{width}} {'builds':>6} {'to run':>6} {'done':>5} {'failed':>6}  estimate"]
    estimates, unknown, scaled = [], [], False
    for algorithm, rows in by_algorithm.items():
        builds = len(tasks.get(algorithm, []))
        counts = (sum(p.to_run for p in rows), sum(p.done for p in rows), sum(p.failed for p in rows))
        if builds:
            work = [(task.definition, task.pending) for task in tasks[algorithm]]
            estimate = estimate_definitions(work, settings, algorithm, executor)
        else:
            estimate = Estimate(ZERO, ZERO, ["nothing to run"])
        if estimate is None:
            text = "unknown (no earlier result of it with a dataset file to scale from)"
            unknown.append(algorithm)
        else:
            estimates.append(estimate)
            scaled |= estimate.source.startswith("scaled")
            text = f"{estimate.work.text()} ({estimate.source})"
        lines.append(f"{algorithm:<{width}} {builds:>6} {counts[0]:>6} {counts[1]:>5} {counts[2]:>6}  {text}")
    note = f", not counting {', '.join(unknown)} (unknown)" if unknown else ""
    lines.append(f"estimated wall time: {wall_time(estimates, settings.parallelism).text()} "
                 f"with {settings.parallelism} definition(s) at once{note}")
    if scaled:
        lines.append("scaled ranges assume time grows with the data size (train values per build, test values per "
                     "query set) and allow for a harder or easier dataset: a rough guide only")
    return "\n".join(lines)

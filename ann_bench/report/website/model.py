"""What the site shows, gathered from results/ and the metrics cache: one Group per dataset and k.

Nothing here draws or writes; charts.py and pages.py turn these into Plotly figures and HTML.
Every result file ends up somewhere a reader sees it: an ok run in the charts and tables (or
named in a note where a chart cannot show it), a failed run in the failures table, a file that
cannot be read in the same table with the reason, and a dataset whose metrics cannot be
computed at all on the index with the reason and its number of files.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, partial
from pathlib import Path

from ...errors import UserError
from ...results.files import algorithm_of, canonical_json, clients_of, iter_result_paths, read_result
from .. import repeats, streaming
from ..cache import dataset_distances, results_table
from ..common import mode_label, result_groups
from ..tables import unsettled

log = logging.getLogger(__name__)

# The environment keys shown, in order, with their column titles; anything else stays in the files.
ENVIRONMENT_KEYS = (("library_version", "library"), ("host", "host"), ("cpu_model", "CPU"), ("cores", "cores"),
                    ("executor", "executor"), ("image_id", "image"), ("harness_revision", "harness revision"),
                    ("harness_digest", "harness digest"), ("python", "Python"), ("numpy", "numpy"))
# Where these differ within one page, its figures are not comparable as they stand.
MACHINE_KEYS = (("host", "machines (hosts)"), ("cpu_model", "machines (CPU models)"),
                ("harness_revision", "harness revisions"), ("harness_digest", "harness digests"),
                ("executor", "executors"))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def slug(text: str) -> str:
    """A file-name-safe spelling of a dataset or algorithm name."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text) or "_"


def environment_of(row: dict) -> dict[str, str]:
    """The shown environment of one run; "" where its file does not say (an older harness)."""
    env = row.get("environment") or {}
    shown = {key: str(env.get(key, "")) for key, _ in ENVIRONMENT_KEYS}
    cpus = env.get("cpus_allowed")
    shown["cores"] = str(len(cpus)) if isinstance(cpus, list) else ""
    shown["image_id"] = shown["image_id"].removeprefix("sha256:")[:12]
    return shown


def clients_of_run(row: dict) -> int | None:
    """N of a concurrent clients' run (its file under <algorithm>-c<N>/), None for the others;
    from its path, which an unreadable file has too."""
    return clients_of(Path(row["path"]).parent.name)


def run_mode(row: dict) -> str:
    """How a run queried, as its page says: "single queries", "batch" or "4 concurrent clients"."""
    clients = clients_of_run(row)
    if clients is not None:
        return f"{clients} concurrent clients"
    return mode_label(row.get("batch_mode", Path(row["path"]).parent.name.endswith("-batch")))


def run_algorithm(row: dict) -> str:
    """The algorithm of a run, from its directory where the file cannot be read."""
    return row.get("algorithm") or algorithm_of(Path(row["path"]).parent.name)


def args_text(args: object) -> str:
    """build_args / query_args as people write them: "M=16, ef=40", "100, 0.5"; "" for none."""
    if isinstance(args, dict):
        return ", ".join(f"{key}={value}" for key, value in args.items())
    if isinstance(args, list):
        return ", ".join(args_text(value) if isinstance(value, (dict, list)) else str(value) for value in args)
    return "" if args is None else str(args)


@dataclass
class Group:
    """Every result of one dataset and k, both modes and the concurrent clients' runs; failures,
    skipped sets and unreadable files of every kind, clients' too, in their one list each."""

    dataset: str
    count: int
    rows: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # past recall 1.0: listed, not failures nor points
    unreadable: list[dict] = field(default_factory=list)
    error: str = ""  # why no metric could be computed (the dataset file is missing, say)
    n_files: int = 0
    clients_rows: list[dict] = field(default_factory=list)  # concurrent clients' results (-c<N>)
    steps: list[dict] = field(default_factory=list)  # a streaming set's ok runs per search step
    steps_missing: list[str] = field(default_factory=list)  # runs whose steps cannot be had, and why

    @property
    def skipped_lines(self) -> list[dict]:
        """One line per build whose costlier sets were skipped: the sets, and why."""
        lines: dict[tuple, dict] = {}
        for r in sorted(self.skipped, key=lambda r: (r["algorithm"], run_mode(r), r["path"])):
            key = (r["algorithm"], run_mode(r), canonical_json(r.get("build_args")), r["reason"])
            line = lines.setdefault(key, {"algorithm": r["algorithm"], "mode": run_mode(r),
                                          "build": args_text(r.get("build_args")), "queries": [],
                                          "reason": r["reason"]})
            line["queries"].append(args_text(r.get("query_args")))
        return list(lines.values())

    @property
    def page(self) -> str:
        return f"datasets/{slug(self.dataset)}-k{self.count}.html"

    @property
    def csv(self) -> str:
        return f"datasets/{slug(self.dataset)}-k{self.count}.csv"

    @property
    def title(self) -> str:
        return f"{self.dataset}, k={self.count}"

    @property
    def modes(self) -> list[bool]:
        """Single queries and/or batch: the modes with an ok or failed run (clients' are apart)."""
        return sorted({r["batch_mode"] for r in self.rows} | {r["batch_mode"] for r in self.failures_of(None)})

    def rows_of(self, batch: bool) -> list[dict]:
        return [r for r in self.rows if r["batch_mode"] == batch]

    def failures_of(self, batch: bool | None) -> list[dict]:
        """The failures of one mode (None: of either), concurrent clients' runs not among them."""
        return [r for r in self.failures if clients_of_run(r) is None and batch in (None, r["batch_mode"])]

    @property
    def algorithms(self) -> list[str]:
        return sorted({r["algorithm"] for r in self.rows} | {r["algorithm"] for r in self.failures})

    @property
    def dates(self) -> tuple[str, str] | None:
        """The oldest and newest result file's time (UTC), as text."""
        stamps = [r["mtime_ns"] for r in self.rows + self.failures]
        if not stamps:
            return None
        return date_text(min(stamps)), date_text(max(stamps))

    @cached_property
    def shown_environments(self) -> list[dict[str, str]]:
        """environment_of each run, rows then failures (asked for by several parts of a page)."""
        return [environment_of(r) for r in self.rows + self.failures]

    def distinct(self, key: str) -> list[str]:
        """The distinct non-empty values of one environment key over the page's runs."""
        return sorted({env[key] for env in self.shown_environments} - {""})

    @cached_property
    def warnings(self) -> list[str]:
        """What makes the page's figures not comparable, or incomplete, in one line each."""
        runs = self.rows + self.failures
        lines = []
        for key, what in MACHINE_KEYS:
            values = self.distinct(key)
            if len(values) > 1:
                counts = Counter(env[key] for env in self.shown_environments)
                lines.append(f"Results on this page come from {len(values)} {what}: "
                             + "; ".join(f"{v} ({plural(counts[v], 'run')})" for v in values) + ".")
        no_env = sum(1 for r in runs if not r.get("environment"))
        if no_env:
            lines.append(f"{no_env} of {len(runs)} runs record no environment (files from an older harness or "
                         "from ann-benchmarks): their machine and versions are unknown.")
        repeated = [r for r in self.rows if r.get("repeats")]
        if repeated:
            varying = sum(1 for r in repeated if r[repeats.FLAGS])
            lines.append(f"{plural(len(repeated), 'run')} of {len(self.rows)} were built more than once "
                         f"(run.py --repeat); in {varying} of them build time, recall or QPS differs across the "
                         "builds by more than 10 % of its mean (see Spread across builds, ⚠).")
        flagged = sum(1 for r in self.rows if unsettled(r))
        if flagged:
            lines.append(f"In {plural(flagged, 'run')} of {len(self.rows)} the timed passes disagree by more than "
                         "10 %: a red ring marks those on a frontier, their hover text and the tables say so (⚠).")
        return lines

    def environments(self) -> list[dict]:
        """One line per distinct (algorithm, mode, environment), with how many runs share it."""
        counts: Counter = Counter()
        for r, env in zip(self.rows + self.failures, self.shown_environments):
            counts[(r["algorithm"], run_mode(r), tuple(env[key] for key, _ in ENVIRONMENT_KEYS))] += 1
        return [{"algorithm": algorithm, "mode": mode, "runs": n,
                 **dict(zip((key for key, _ in ENVIRONMENT_KEYS), values))}
                for (algorithm, mode, values), n in sorted(counts.items())]


# What reading a result's arrays again for its steps can raise; that run is then named, not dropped.
_STEP_ERRORS = (OSError, KeyError, ValueError, IndexError, AssertionError)


def stream_steps(group: Group, data_dir: Path | str) -> None:
    """For a streaming set (run.py --runbook), each ok run's figures per search step
    (report/streaming.py, as plot.py and the export have them); nothing for another set."""
    found = streaming.runbook_steps(group.dataset, data_dir)
    if found is None or not group.rows:
        return
    truth, ops = found
    for row in group.rows:
        try:
            group.steps.append(streaming.result_steps(read_result(row["path"]), truth, ops, group.count))
        except _STEP_ERRORS as e:
            group.steps_missing.append(f"{row['name']}: {' '.join(str(e).split()) or type(e).__name__}")


def date_text(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def collect(results_dir: Path | str, data_dir: Path | str, datasets: list[str] | None = None,
            counts: list[int] | None = None, progress: bool = True) -> list[Group]:
    """A Group for every dataset and k in results_dir (or those asked for), metrics from the cache."""
    groups = []
    for dataset, count, _ in result_groups(results_dir):
        if (datasets and dataset not in datasets) or (counts and count not in counts):
            continue
        group = Group(dataset, count)
        try:
            table = results_table(results_dir, dataset, count, batch=None, data_dir=data_dir, progress=progress)
            rows = repeats.with_spread(table.rows, partial(dataset_distances, dataset, data_dir), count)
            clients = results_table(results_dir, dataset, count, data_dir=data_dir, progress=progress, clients=True)
        except UserError as e:
            group.error = " ".join(str(e).split())
            group.n_files = sum(1 for kind in (False, True) for _ in iter_result_paths(results_dir, dataset, count,
                                                                                      clients=kind))
            log.warning("%s (k=%d): no metrics: %s", dataset, count, group.error)
        else:
            group.rows, group.clients_rows = rows, clients.rows
            group.failures = table.failures + clients.failures
            group.skipped = table.skipped + clients.skipped
            group.unreadable = table.unreadable + clients.unreadable
            group.n_files = sum(len(t.rows) + len(t.failures) + len(t.skipped) + len(t.unreadable)
                                for t in (table, clients))
            stream_steps(group, data_dir)
        groups.append(group)
    return groups

"""run.py's command line: pick a dataset and algorithms, plan, run, summarise."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

from . import datasets
from . import log as logsetup
from .datasets import runbook
from .datasets.filtered import is_filtered
from .datasets.hdf5 import file_header
from .datasets.streaming import deletes_in, is_stream, stream_set
from .errors import UserError, report
from .report.common import positive_int
from .run import environment
from .run.definitions import DEFAULT_FILE, MAX_RUNS, Definition, capable_only, get_definitions, load_algorithms
from .run.disk import ResultsDiskError
from .run.estimate import dry_run_table
from .run.executors import Executor, LocalExecutor
from .run.jobs import Settings
from .run.lock import SweepLock
from .run.plan import make_plan
from .run.provenance import existing_text
from .run.summary import summary
from .run.sweep import run_plan
from .usage import Formatter


def parse_memory(text: str) -> int:
    """"4g", "512m", "1073741824" -> bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    text = text.strip().lower().removesuffix("b")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a memory size; write e.g. 4g, 512m or a number of bytes")


def client_counts(text: str) -> list[int]:
    """"1,2,4" -> [1, 2, 4]: the numbers of concurrent clients one --clients gives."""
    try:
        return [positive_int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of client counts; write e.g. 2 or 1,2,4,8") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py",
        description="Benchmark approximate nearest neighbour libraries on one dataset.",
        formatter_class=Formatter,
    )
    p.add_argument("--dataset", default="random-xs-20-angular", metavar="NAME",
                   help="a dataset; short names work (glove-100 is glove-100-angular; see --list-datasets), or the "
                        "path of an HDF5 file in the ann-benchmarks layout")
    p.add_argument("--runbook", metavar="NAME|FILE",
                   help="a streaming run of the dataset: a runbook's inserts, deletes and searches (shipped: "
                        f"{', '.join(runbook.shipped())}; or a YAML file of your own), scored at each search against "
                        "the rows then live; results go to results/<dataset>-stream-<runbook>/")
    p.add_argument("-k", "--count", type=positive_int, default=10, metavar="K", help="neighbours per query")
    p.add_argument("--algorithm", action="append", metavar="NAME",
                   help="run only this algorithm (repeatable); default: every enabled one for the dataset")
    p.add_argument("--definitions", type=Path, default=DEFAULT_FILE, metavar="FILE",
                   help="the algorithms file (grids and entries)")
    p.add_argument("--quick", action="store_true",
                   help="each algorithm's small quick grid (2-3 points) instead of its full grids")
    p.add_argument("--local", action="store_true",
                   help="run each definition in a local process instead of a Docker container")
    p.add_argument("--cluster", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the definitions on the Dask cluster whose scheduler is at ADDRESS (tcp://HOST:8786; "
                        "alone: $DASK_SCHEDULER_ADDRESS), each in a worker slot of its own, Docker there unless "
                        "--local; results are written here (pip install .[cluster])")
    p.add_argument("--batch", action="store_true",
                   help="give the library all queries at once (its native batch search where it has one)")
    p.add_argument("--clients", type=client_counts, action="extend", metavar="N[,N...]",
                   help="after each build, N clients query the index at once (threads, forked processes or "
                        "connections, as the wrapper declares); results go to <algorithm>-c<N>/ with the aggregate "
                        "QPS and per-query latencies (repeatable or a list: 1,2,4,8, one sweep per N)")
    p.add_argument("--duration", type=positive_float, default=None, metavar="S",
                   help="with --clients: each burst goes on for S seconds (in whole rounds of the test set) "
                        "instead of one pass of the test set")
    p.add_argument("--runs", type=positive_int, default=5, metavar="N",
                   help="timed passes per query-argument set; the best gives QPS, all are kept")
    p.add_argument("--repeat", type=positive_int, default=1, metavar="R",
                   help="build each index R times (a new seed each where the library takes one); the export "
                        "and the site show the spread of build time, recall and QPS across the builds")
    p.add_argument("--timeout", type=float, default=7200.0, metavar="S",
                   help="seconds one definition (its build and all its queries) may take")
    p.add_argument("--parallelism", type=positive_int, default=1, metavar="N",
                   help="definitions at once, each pinned to its own core (batch mode: its share of the cores)")
    p.add_argument("--memory", type=parse_memory, default=None, metavar="SIZE",
                   help="memory limit per worker, e.g. 8g: its container's, or with --local its RLIMIT_DATA "
                        "(default: 90%% of total memory / --parallelism)")
    p.add_argument("--build", action="store_true",
                   help="build missing Docker images first (with --local: make missing environments)")
    p.add_argument("--dry-run", action="store_true",
                   help="list each definition with what of it is to run, done and failed before, per-algorithm "
                        "totals and a time estimate saying what it is based on; run nothing (a registered dataset "
                        "not fetched or built yet is planned from the registry's sizes)")
    p.add_argument("--force", action="store_true", help="run again what is done")
    p.add_argument("--retry-failed", action="store_true", help="run again what failed before")
    p.add_argument("--exhaustive", action="store_true",
                   help="run every query-argument set, also those of an entry with an effort argument that "
                        "come after a set at recall 1.0 (skipped by default, and recorded as skipped)")
    p.add_argument("--max-n-algorithms", type=positive_int, default=None, metavar="N",
                   help="run at most N definitions (a random subset of what is left)")
    p.add_argument("--max-runs", type=positive_int, default=MAX_RUNS, metavar="N",
                   help="refuse a plan of more than N results (build-argument sets x query-argument sets), "
                        "before expanding it")
    p.add_argument("--wait", action="store_true",
                   help="when another run.py is using the same --results, wait for it to finish instead of "
                        "stopping")
    p.add_argument("--list-algorithms", action="store_true", help="list the algorithms and exit")
    p.add_argument("--list-datasets", action="store_true", help="list the datasets and exit")
    p.add_argument("--data-dir", type=Path, default=Path("data"), metavar="DIR", help="where datasets are kept")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR", help="where results are written")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (where output is not a terminal there is none anyway, but a line per "
                        "finished definition, which this turns off too)")
    logsetup.add_arguments(p)
    return p


def list_algorithms(definitions_file: Path) -> None:
    entries = load_algorithms(definitions_file).values()
    rows = [("algorithm", "library", "metrics", "groups", "state")]
    for entry in entries:
        state = "disabled" if entry.disabled else ("exact" if entry.exact else "")
        rows.append((entry.name, entry.library, ", ".join(entry.metrics), str(len(entry.run_groups)), state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def dataset_attributes(path: Path) -> tuple[str, str, int]:
    """distance, point_type and dimension, read without loading the vectors."""
    header = file_header(path)
    assert header.dimension is not None  # file_header gives sets without the attribute theirs
    return header.distance, header.point_type, header.dimension


def dataset_to_plan(args: argparse.Namespace) -> tuple[str, Path, tuple[str, str, int]]:
    """The dataset's name, path and (distance, point type, dimension). A dry run on a registered
    set that is not there yet plans from the registry instead of fetching or building it."""
    spec = datasets.registry.missing(args.dataset, args.data_dir) if args.dry_run and not args.runbook else None
    if spec is not None:
        path = datasets.dataset_path(spec.name, args.data_dir)
        print(f"{path} is not there yet: planned with the registry's sizes ({spec.shape_text()}); "
              f"run without --dry-run to {'build' if spec.builder else 'download'} it")
        return spec.name, path, (spec.distance, spec.point_type, spec.dimension)
    name, path = datasets.locate(args.dataset, args.data_dir, progress=not args.no_progress)
    if args.runbook:
        path = stream_set(path, runbook.load(args.runbook))
        name = path.stem
    return name, path, dataset_attributes(path)


def make_executor(args: argparse.Namespace) -> Executor:
    if args.cluster is not None:
        return cluster_executor(args)
    if args.local:
        return LocalExecutor(definitions_file=args.definitions, memory_limit_bytes=args.memory,
                             parallelism=args.parallelism)
    from .run.executors.docker.executor import DockerExecutor

    return DockerExecutor(memory_limit_bytes=args.memory, parallelism=args.parallelism,
                          data_dir=args.data_dir, results_dir=args.results, definitions_file=args.definitions)


def cluster_executor(args: argparse.Namespace) -> Executor:
    """--cluster: one definition at a time per worker slot of the cluster (--parallelism is theirs)."""
    from .run.executors.cluster import ADDRESS_VARIABLE, ClusterExecutor

    address = args.cluster or os.environ.get(ADDRESS_VARIABLE, "")
    if not address:
        raise UserError(f"--cluster needs the scheduler's address: --cluster tcp://HOST:8786, "
                        f"or set {ADDRESS_VARIABLE}")
    executor = ClusterExecutor(address, local=args.local, memory_limit_bytes=args.memory)
    args.parallelism = executor.slot_count
    return executor


def run(args: argparse.Namespace) -> int:
    if args.list_algorithms:
        list_algorithms(args.definitions)
        return 0
    if args.list_datasets:
        print(datasets.registry.table(args.data_dir))
        return 0
    entries = load_algorithms(args.definitions)
    name, path, (distance, point_type, dimension) = dataset_to_plan(args)
    definitions = get_definitions(entries, distance, point_type, args.count, dimension, args.algorithm,
                                  quick=args.quick, max_runs=args.max_runs)
    if not definitions:
        raise UserError(f"no algorithm in {args.definitions} supports {name} ({distance}, {point_type}); "
                        f"see run.py --list-algorithms")
    if is_filtered(path):
        definitions = capable_only(definitions, entries, name, ("supports_filter",), "filtered", "Filtered search")
    if is_stream(path):
        needs = ("supports_insert", "supports_delete") if deletes_in(path) else ("supports_insert",)
        definitions = capable_only(definitions, entries, name, needs, "streaming", "Streaming updates")
    if is_stream(path) and (args.batch or args.clients):
        raise UserError(f"{name} is a streaming set, run one query at a time; leave out --batch and --clients")
    if args.clients and args.batch:
        raise UserError("--clients and --batch are two modes; give one of them")
    if args.duration is not None and not args.clients:
        raise UserError("--duration is the length of a burst of --clients; give --clients N too")
    executor = make_executor(args)
    settings = Settings(
        dataset=name, dataset_path=path.resolve(), results_dir=args.results.resolve(), count=args.count,
        batch=args.batch, runs=args.runs, timeout=args.timeout, parallelism=args.parallelism,
        force=args.force, retry_failed=args.retry_failed, exhaustive=args.exhaustive,
        max_definitions=args.max_n_algorithms, duration=args.duration, repeats=args.repeat,
        environment={"host": socket.gethostname(), "harness_revision": environment.harness_revision(),
                     "harness_digest": environment.harness_digest(), "executor": executor.name},
    )
    # One sweep per number of clients, each N once, in the order given.
    modes = [replace(settings, clients=clients) for clients in dict.fromkeys(args.clients or [None])]
    if args.dry_run:
        for mode in modes:
            plan = make_plan(definitions, mode)
            print(dry_run_table(plan, mode, executor.name))
            if plan.records:
                print(existing_text([record.path for record in plan.records], executor.name))
        return 0
    # Planned under the lock: a second run.py on this tree then sees what the first one made.
    with SweepLock(settings.results_dir, wait=args.wait):
        return max(plan_and_run(definitions, mode, executor, name, distance, args) for mode in modes)


def plan_and_run(definitions: list[Definition], settings: Settings, executor: Executor, name: str, distance: str,
                 args: argparse.Namespace) -> int:
    plan = make_plan(definitions, settings)
    # Only what will run needs its image; finished definitions need nothing.
    problems = executor.problems([task.definition for task in plan.tasks], build=args.build)
    if problems:
        raise UserError("; ".join(problems))
    print(f"{name}: {len(plan.tasks)} definition(s) to run, {plan.pending_count} result(s) to make, "
          f"{existing_text([record.path for record in plan.records], executor.name)}", flush=True)
    try:
        records = run_plan(plan, executor, settings, distance, progress=not args.no_progress)
    except ResultsDiskError as error:
        print(summary(list(error.records))[0])  # what finished before the disk failed
        raise
    table, failed = summary(records)
    print(table)
    return 1 if failed else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup_from(args)
    # A kill (SIGTERM) stops the workers too, as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except UserError as e:
        return report(e)
    except KeyboardInterrupt:
        print("interrupted; finished results are kept, run the same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)

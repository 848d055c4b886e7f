"""`python -m ann_bench.datasets NAME`: fetch or build one dataset; `--list` the registry;
`python -m ann_bench.datasets import NAME --train FILE ...`: your own vectors as a dataset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .. import log as logsetup
from ..errors import UserError, report
from . import filtered, runbook
from .distance import METRICS
from .importer import FORMATS, Request, import_dataset
from .registry import get_dataset, locate, table
from .streaming import stream_set


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["import"]:
        return import_main(argv[1:])
    if argv[:1] == ["filter"]:
        return filter_main(argv[1:])
    if argv[:1] == ["stream"]:
        return stream_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m ann_bench.datasets",
        description="Fetch or build one dataset into the data directory, check it and print its "
                    "path. `python -m ann_bench.datasets import --help`: import your own; "
                    "`python -m ann_bench.datasets filter --help`: filtered sets; "
                    "`python -m ann_bench.datasets stream --help`: streaming sets.")
    parser.add_argument("name", nargs="?", help="full or short name, e.g. glove-100, sift")
    parser.add_argument("--data-dir", default="data", help="where datasets live (data)")
    parser.add_argument("--list", action="store_true", help="list the registered datasets")
    parser.add_argument("--download", action="store_true",
                        help="take the published file of a set that is also built here (mnist)")
    logsetup.add_arguments(parser)
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    if not args.list and not args.name:
        parser.error("give a dataset NAME, or --list")
    try:
        print(table(args.data_dir) if args.list else
              get_dataset(args.name, args.data_dir, download_file=args.download))
    except UserError as error:
        return report(error)
    return 0


def import_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ann_bench.datasets import",
        description="Import your own vectors: validate them, compute the exact top-k and write "
                    "DATA_DIR/NAME.hdf5, which run.py --dataset NAME then uses.")
    parser.add_argument("name", help="the new dataset's name")
    parser.add_argument("--train", type=Path, required=True,
                        help=f"the points to search ({', '.join(FORMATS)})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--test", type=Path, help="the queries, in any of those formats")
    group.add_argument("--test-size", type=int,
                       help="hold out this many seeded rows of --train as queries (default: "
                            "the file's own test set, else min(10,000, a tenth))")
    parser.add_argument("--metric", choices=METRICS,
                        help="the distance (default: the one an ann-benchmarks file states)")
    parser.add_argument("-k", "--count", type=int, default=100,
                        help="neighbours of ground truth per query (100)")
    parser.add_argument("--train-key", help="the array of an HDF5 file to take as train")
    parser.add_argument("--test-key", help="the array of an HDF5 file to take as test")
    parser.add_argument("--force", action="store_true", help="replace an existing NAME")
    parser.add_argument("--data-dir", default="data", help="where datasets live (data)")
    logsetup.add_arguments(parser)
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    request = Request(args.name, args.train, args.metric, args.test, args.test_size, args.count,
                      args.train_key, args.test_key, args.force)
    try:
        print(import_dataset(request, args.data_dir))
    except UserError as error:
        return report(error)
    return 0


def filter_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ann_bench.datasets filter",
        description="Derive filtered sets from a dataset: seeded Zipf labels per point, a label "
                    "range per query, and the exact top-k among the points that pass; one file "
                    "DATA_DIR/NAME-filter-zipf-<percent>pct.hdf5 per selectivity.")
    parser.add_argument("--selectivity", type=float, action="append",
                        help="fraction of the points a query's filter lets through (repeatable; "
                             f"default {' '.join(map(str, filtered.SELECTIVITIES))})")
    parser.add_argument("--labels", type=int, default=filtered.N_LABELS,
                        help=f"distinct labels ({filtered.N_LABELS})")
    parser.add_argument("--filters", type=int, default=filtered.N_FILTERS,
                        help=f"distinct filters per selectivity ({filtered.N_FILTERS})")
    parser.add_argument("--seed", type=int, default=filtered.SEED, help=f"seed ({filtered.SEED})")
    parser.add_argument("-k", "--count", type=int, default=filtered.COUNT,
                        help=f"neighbours of ground truth per query ({filtered.COUNT})")

    def derive(args: argparse.Namespace, base: Path) -> None:
        for selectivity in args.selectivity or filtered.SELECTIVITIES:
            print(filtered.build_filtered(base, selectivity, args.labels, args.filters, args.seed, args.count))

    return derive_main(parser, argv, derive)


def stream_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ann_bench.datasets stream",
        description="Derive a streaming set from a dataset: a runbook's steps and the exact top-k of the rows live "
                    "at each search step; DATA_DIR/NAME-stream-<runbook>.hdf5 (run.py --runbook makes it too).")
    parser.add_argument("--runbook", required=True,
                        help=f"a shipped runbook ({', '.join(runbook.shipped())}) or a YAML file of your own")
    return derive_main(parser, argv, lambda args, base: print(stream_set(base, runbook.load(args.runbook))))


def derive_main(parser: argparse.ArgumentParser, argv: list[str],
                derive: Callable[[argparse.Namespace, Path], None]) -> int:
    """A command that derives sets from the dataset NAME: its common options, the dataset
    located (fetched or built when missing), then `derive`."""
    parser.add_argument("name", help="the dataset to derive from (fetched or built when missing)")
    parser.add_argument("--data-dir", default="data", help="where datasets live (data)")
    logsetup.add_arguments(parser)
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    try:
        _, base = locate(args.name, args.data_dir)
        derive(args, base)
    except UserError as error:
        return report(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())

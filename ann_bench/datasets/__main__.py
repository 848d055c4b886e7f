"""`python -m ann_bench.datasets NAME`: fetch or build one dataset; `--list` the registry."""

from __future__ import annotations

import argparse
import sys

from .. import log as logsetup
from ..errors import UserError, report
from .registry import get_dataset, table


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m ann_bench.datasets",
        description="Fetch or build one dataset into the data directory and print its path.")
    parser.add_argument("name", nargs="?", help="full or short name, e.g. glove-100, sift")
    parser.add_argument("--data-dir", default="data", help="where datasets live (data)")
    parser.add_argument("--list", action="store_true", help="list the registered datasets")
    logsetup.add_arguments(parser)
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    if not args.list and not args.name:
        parser.error("give a dataset NAME, or --list")
    try:
        print(table(args.data_dir) if args.list else get_dataset(args.name, args.data_dir))
    except UserError as error:
        return report(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())

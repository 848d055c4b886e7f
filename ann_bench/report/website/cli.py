"""`python -m ann_bench.website [--output site/] [--dataset NAME ...] [--count K ...]`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from ... import log as logsetup
from ...errors import UserError, report
from ..common import add_common_arguments, dataset_name, positive_int
from .model import collect
from .pages import write_site


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ann_bench.website",
                                description="Write the results as a static website that works from disk "
                                            "with no network: charts, QPS at recall, failures, machines.")
    p.add_argument("--output", "-o", type=Path, default=Path("site"), help="folder for the site (default site)")
    p.add_argument("--dataset", action="append", metavar="NAME",
                   help="only this dataset (repeatable; default every dataset in the results)")
    p.add_argument("--count", "-k", type=positive_int, action="append", metavar="K",
                   help="only this k (repeatable; default every k in the results)")
    p.add_argument("--definitions", type=Path, help="algorithms file for each algorithm's grid "
                                                    "(default algorithms.yaml)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while metrics are computed")
    add_common_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup_from(args)
    start = time.perf_counter()
    try:
        datasets = [dataset_name(name, args.data_dir, args.results) for name in args.dataset or []]
        groups = collect(args.results, args.data_dir, datasets, args.count, progress=not args.no_progress)
        if args.dataset and not groups:
            raise UserError(f"no results for {', '.join(datasets)} in {args.results}/; "
                            f"make some with: python run.py --dataset {datasets[0]}")
        pages = write_site(groups, args.output, args.results, args.definitions)
    except UserError as e:
        return report(e)
    files = sum(g.n_files for g in groups)
    print(f"wrote {args.output}/index.html: {len(pages)} pages, {len(groups)} dataset/k pairs, {files} result files "
          f"in {time.perf_counter() - start:.1f} s; open it in a browser (file://{args.output.resolve()}/index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""What the host's check of one result file costs (ann_bench/results/acceptance.py): read and
check the worker's file, recompute its distances from the host's dataset, write the result.

A worker's file is made up here (random valid ids, times) for a dataset file, then checked and
written --repeats times; prints the median per result and per query. Figures, not pass/fail.

Usage: python bench/acceptance_cost.py --dataset data/glove-6b-50-angular-100k.hdf5 [-k 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ann_bench.results.acceptance import Reference, accept
from ann_bench.results.files import STATUS_OK, RunResult, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="an HDF5 file in the ann-benchmarks layout")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reference = Reference(args.dataset)
    n, k, runs = reference.n_test, args.k, 5
    rng = np.random.default_rng(0)
    ids = np.stack([rng.choice(reference.n_train, k, replace=False) for _ in range(n)]).astype(np.int32)
    expected = {"name": "x", "algo": "x", "dataset": "d", "count": k, "batch_mode": False, "run_count": runs,
                "run_group": "g", "build_args": {}, "base_args": [], "query_args": {}, "environment": {}}
    figures = {"build_time": 1.0, "best_search_time": 1e-4, "candidates": float(k), "index_size": 1,
               "library_seconds": 1.0}
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        worker = Path(tmp) / "worker.hdf5"
        write_result(worker, RunResult(attrs=dict(expected, **figures, status=STATUS_OK), neighbors=ids,
                                       times=np.full(n, 1e-4), run_times=np.full(runs, n * 1e-4)))
        for _ in range(args.repeats):
            start = time.perf_counter()
            write_result(Path(tmp) / "accepted.hdf5", accept(worker, Path(tmp), expected, reference, runs))
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(f"{args.dataset.name}: {n} queries, k={k}, train {reference.n_train} rows")
    print(f"host check, distances and write per result: {median * 1000:.1f} ms "
          f"({median / n * 1e6:.2f} us per query), median of {args.repeats}")


if __name__ == "__main__":
    main()

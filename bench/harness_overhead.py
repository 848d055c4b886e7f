#!/usr/bin/env python3
"""Harness overhead per timed query in single-query mode, measured with a null algorithm.

A null algorithm returns a ready answer, so whatever time the runner records for it is the
harness's own cost inside the timer (clock reads, the call, the copy of the answer into a
plain array). Also prints the whole loop's cost per query (outside the timer too), and the
same for batch mode.

Usage: python bench/harness_overhead.py [--queries N] [--repeats R]
"""

import argparse
import statistics
import time

import numpy as np

from ann_bench.algorithms.base import BaseANN
from ann_bench.run.runner import time_batch, time_single


class NullANN(BaseANN):
    supports_batch = True

    def __init__(self, k: int):
        super().__init__()
        self.answer = np.arange(k)

    def query(self, q, k):
        return self.answer

    def batch_query(self, Q, k):
        self._batch_results = [self.answer] * len(Q)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    k = 10
    queries = list(np.random.default_rng(0).standard_normal((args.queries, 20), dtype=np.float32))
    algo = NullANN(k)
    timed, loop = [], []
    for _ in range(args.repeats):
        start = time.perf_counter_ns()
        times, _ = time_single(algo.query, queries, k)
        loop.append((time.perf_counter_ns() - start) / len(queries))
        timed.append(sum(times) / len(times))
    clock = time.perf_counter_ns
    empty = []
    for _ in range(args.repeats):
        total = 0
        for _ in range(args.queries):
            start = clock()
            total += clock() - start
        empty.append(total / args.queries)
    batch = [time_batch(algo, np.stack(queries), k)[0] / len(queries) for _ in range(args.repeats)]
    print(f"queries per pass: {args.queries}, passes: {args.repeats} (median of passes shown)")
    print(f"recorded time per query, null algorithm (harness cost inside the timer): "
          f"{statistics.median(timed) / 1000:.3f} us  (target <= 0.3 us)")
    print(f"  of which two clock reads alone:                                 "
          f"{statistics.median(empty) / 1000:.3f} us")
    print(f"whole timed loop per query (inside and outside the timer):        "
          f"{statistics.median(loop) / 1000:.3f} us")
    print(f"batch mode, recorded time per query:                              "
          f"{statistics.median(batch) / 1000:.4f} us")


if __name__ == "__main__":
    main()

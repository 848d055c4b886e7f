#!/usr/bin/env python3
"""End-to-end cost of the harness: wall time of a whole sweep / time inside library calls.

Runs `run.py --local` (a fresh results directory, so nothing is skipped) and adds up what the
result files say was spent in the library: every build, and every query pass including the
warm-up. The ratio is the harness's own cost on top (process start, imports, data loading,
validation, distances, writing files).

Usage: python bench/end_to_end.py [--dataset random-xs-20-angular] [--algorithm hnswlib] [--runs 2]
"""

import argparse
import subprocess
import sys
import tempfile
import time

from ann_bench.paths import REPO as ROOT
from ann_bench.results.files import iter_result_paths, read_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="random-xs-20-angular")
    parser.add_argument("--algorithm", default="hnswlib")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    args = parser.parse_args()
    # Build the dataset first: making it is not part of the sweep being measured.
    subprocess.run([sys.executable, "-m", "ann_bench.datasets", args.dataset, "--data-dir", args.data_dir],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as results:
        command = [sys.executable, str(ROOT / "run.py"), "--local", "--dataset", args.dataset,
                   "--algorithm", args.algorithm, "--runs", str(args.runs), "--results", results,
                   "--data-dir", args.data_dir, "--no-progress"]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        builds, queries, count = {}, 0.0, 0
        for path in iter_result_paths(results):
            attrs = read_result(path, arrays=False).attrs
            builds[attrs["build_args"]] = attrs["build_time"]
            queries += attrs["library_seconds"]
            count += 1
    library = sum(builds.values()) + queries
    print(f"{args.algorithm} on {args.dataset}, --runs {args.runs}: {len(builds)} builds, {count} results")
    print(f"wall time {wall:.2f} s; inside library calls {library:.2f} s "
          f"(builds {sum(builds.values()):.2f} s, query passes incl. warm-up {queries:.2f} s)")
    print(f"ratio wall / library: {wall / library:.3f}  (target <= 1.25)")


if __name__ == "__main__":
    main()

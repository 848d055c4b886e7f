#!/usr/bin/env python3
"""Every algorithm in Docker: build every image, run each one's quick grid, print a table.

For each algorithm in algorithms.yaml (disabled ones too): the build time of its image (as
install.py reports it: from the layer cache where nothing changed; --no-cache for a cold
build), and on each dataset (default random-xs-20-angular and random-xs-20-euclidean; the
local random-hamming-bits and random-jaccard check the bit and set entries) the best k-nn
recall of its quick grid and the QPS at that recall. Exits non-zero if an image or a run failed.

Usage: python bench/docker_matrix.py [--no-cache] [--proc 2] [--results DIR] [--dataset NAME ...]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from ann_bench import datasets
from ann_bench.paths import REPO as ROOT
from ann_bench.report.export import export_rows
from ann_bench.run.definitions import load_algorithms
from ann_bench.run.executors.docker import images

DATASETS = ("random-xs-20-angular", "random-xs-20-euclidean")


def best_points(results: Path, dataset: str, data_dir: Path) -> dict[str, tuple[float, float]]:
    """algorithm -> (best recall, QPS of the fastest result at that recall)."""
    best: dict[str, tuple[float, float]] = {}
    for row in export_rows(results, dataset, 10, data_dir=data_dir):
        point = (row["k-nn"], row["qps"])
        if point > best.get(row["algorithm"], (-1.0, 0.0)):
            best[row["algorithm"]] = point
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer of every image")
    parser.add_argument("--proc", type=int, default=2, help="images built in parallel")
    parser.add_argument("--results", type=Path, help="results directory (default: a temporary one)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--dataset", action="append", metavar="NAME",
                        help=f"a dataset to run on (repeatable; default: {', '.join(DATASETS)})")
    args = parser.parse_args()
    names_of_datasets = args.dataset or list(DATASETS)
    entries = load_algorithms()
    names = list(entries)
    built = images.build_images({e.image for e in entries.values()}, proc=args.proc, nocache=args.no_cache,
                                progress=None)
    seconds = {images.bare_name(r.image): r for r in built}
    results = args.results or Path(tempfile.mkdtemp(prefix="docker-matrix-"))
    failed_runs = []
    for dataset in names_of_datasets:
        command = [sys.executable, str(ROOT / "run.py"), "--dataset", dataset, "--quick", "--runs", "1",
                   "--results", str(results), "--data-dir", str(args.data_dir), "--no-progress"]
        spec = datasets.DATASETS[dataset]
        chosen = [name for name in names if entries[name].supports(spec.distance, spec.point_type)]
        if not chosen:
            continue  # with no --algorithm, run.py would run every enabled entry
        command += [a for name in chosen for a in ("--algorithm", name)]
        if subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL).returncode != 0:
            failed_runs.append(dataset)
    points = {dataset: best_points(results, dataset, args.data_dir) for dataset in names_of_datasets}
    print(f"{'algorithm':<20} {'image':<12} {'build':>9}  " +
          "  ".join(f"{d.removeprefix('random-').removeprefix('xs-20-') + ' recall / QPS':>26}"
                    for d in names_of_datasets))
    for name, entry in entries.items():
        build = seconds.get(entry.image)
        build_text = f"{build.seconds:.1f} s" if build and build.ok else "FAILED"
        cells = []
        for dataset in names_of_datasets:
            spec = datasets.DATASETS[dataset]
            if not entry.supports(spec.distance, spec.point_type):
                cells.append(f"{'-':>26}")
            elif name in points[dataset]:
                recall, qps = points[dataset][name]
                cells.append(f"{recall:>14.3f} / {qps:>9.0f}")
            else:
                cells.append(f"{'no result':>26}")
        print(f"{name:<20} {entry.image:<12} {build_text:>9}  " + "  ".join(cells))
    print(f"results: {results}")
    if failed_runs:
        print(f"some definitions failed on: {', '.join(failed_runs)} (run.py's summary has the reasons)")
    return 1 if failed_runs or any(not r.ok for r in built) else 0


if __name__ == "__main__":
    sys.exit(main())

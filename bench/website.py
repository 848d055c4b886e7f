#!/usr/bin/env python3
"""Time to build the site for a big synthetic results tree, cold (metrics not cached) and warm.

Makes small datasets (so the ground truth is real) and --files result files spread over them,
over the entries of algorithms.yaml, both modes, with a few failures (and their worker logs),
then times `python -m ann_bench.website`'s work twice: first with an empty metrics cache (every
file read and measured), then with the cache warm (the figure the issue asks for: < 60 s for
10,000 files).

Usage: python bench/website.py [--files 10000] [--datasets 8] [--dir DIR] [--warm] [--profile]
(with --dir the tree is kept and made only once; --warm then times the warm build alone)
"""

import argparse
import cProfile
import itertools
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ann_bench.datasets import load_dataset, write_dataset
from ann_bench.report.website.model import collect
from ann_bench.report.website.pages import write_site
from ann_bench.results.files import RunResult, params_name, result_dir, result_path, write_result
from ann_bench.run.definitions import load_algorithms

K = 10
QUERIES = 100
FAILURE_RATE = 0.02


def make_dataset(data_dir: Path, name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    train = rng.standard_normal((2000, 16), dtype=np.float32)
    test = rng.standard_normal((QUERIES, 16), dtype=np.float32)
    path = data_dir / f"{name}.hdf5"
    write_dataset(path, train, test, "euclidean", progress=False)
    return np.asarray(load_dataset(path).distances)[:, :K]


def make_results(results: Path, dataset: str, truth: np.ndarray, algorithms: list[str], n_files: int,
                 rng: np.random.Generator) -> int:
    """n_files result files of dataset: per algorithm, builds x query settings, both modes."""
    written = 0
    for index, (algorithm, batch) in enumerate(itertools.product(algorithms, (False, True))):
        modes = 2 * len(algorithms)
        share = n_files // modes + (1 if index < n_files % modes else 0)
        builds = max(1, share // 8)
        speed = 0.5 + rng.random() * 2  # each algorithm its own curve
        for i in range(share):
            build_args, query_args = {"M": 4 * (1 + i % builds)}, {"ef": 10 * (1 + i // builds)}
            path = result_path(results, dataset, K, algorithm, batch, build_args, query_args)
            attrs = {"name": f"{algorithm}(M={build_args['M']}, ef={query_args['ef']})", "algo": algorithm,
                     "dataset": dataset, "count": K, "batch_mode": batch, "build_args": build_args,
                     "query_args": query_args, "run_count": 5,
                     "environment": {"library_version": "1.0", "cpu_model": "Synthetic CPU", "cpus_allowed": [0],
                                     "harness_revision": "bench", "harness_digest": "0123456789ab",
                                     "executor": "docker", "python": "3.11.2", "numpy": "2.4.6"}}
            if rng.random() < FAILURE_RATE:
                attrs.update(status="failed", error="crashed with SIGSEGV (exit code 139)")
                log = result_dir(results, dataset, K, algorithm, batch) / "logs" / (
                    params_name(build_args, None) + ".log")
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text("building\nSegmentation fault\n")
                write_result(path, RunResult(attrs=attrs))
            else:
                recall = min(1.0, 0.3 + 0.7 * (i + 1) / share)
                distances = truth.copy()
                distances[rng.random(truth.shape) > recall] += 1e3
                best = 1e-4 / speed / (1.05 - recall) ** 0.7
                run_times = best * QUERIES * (1 + rng.random(5) * (0.3 if rng.random() < 0.03 else 0.06))
                run_times[0] = best * QUERIES
                attrs.update(status="ok", best_search_time=best, build_time=1.0 + i % builds,
                             index_size=1000.0 * (1 + i % builds), candidates=float(K), distance="euclidean")
                write_result(path, RunResult(attrs=attrs, neighbors=np.zeros(truth.shape, np.int32),
                                             distances=distances, times=np.full(QUERIES, best),
                                             run_times=run_times))
            written += 1
    return written


def build(results: Path, data_dir: Path, site: Path) -> tuple[float, float, int]:
    start = time.perf_counter()
    groups = collect(results, data_dir, progress=True)
    measured = time.perf_counter()
    pages = write_site(groups, site, results)
    return measured - start, time.perf_counter() - measured, len(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=8)
    parser.add_argument("--dir", type=Path, help="work folder (default a temporary one, removed after)")
    parser.add_argument("--warm", action="store_true", help="only the warm build (the cache as an earlier run left it)")
    parser.add_argument("--profile", action="store_true", help="profile the warm build; print the top 25")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="ann-bench-site-"))
    data_dir, results, site = work / "data", work / "results", work / "site"
    try:
        if not results.exists():
            start = time.perf_counter()
            algorithms = list(load_algorithms())
            rng = np.random.default_rng(0)
            total = 0
            for d in range(args.datasets):
                name = f"synthetic-{d}-16-euclidean"
                truth = make_dataset(data_dir, name, d)
                total += make_results(results, name, truth, algorithms, (args.files - total) // (args.datasets - d),
                                      rng)
            print(f"made {total} result files over {args.datasets} datasets and {len(algorithms)} algorithms "
                  f"in {time.perf_counter() - start:.1f} s ({work})")
        if not args.warm:
            shutil.rmtree(results / ".cache", ignore_errors=True)
            measure, render, pages = build(results, data_dir, site)
            print(f"cold cache: metrics {measure:.1f} s + pages {render:.1f} s = {measure + render:.1f} s "
                  f"({pages} pages)")
        profile = cProfile.Profile() if args.profile else None
        if profile:
            profile.enable()
        measure, render, pages = build(results, data_dir, site)
        if profile:
            profile.disable()
        print(f"warm cache: metrics {measure:.1f} s + pages {render:.1f} s = {measure + render:.1f} s ({pages} pages)")
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

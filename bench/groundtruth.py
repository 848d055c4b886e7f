"""How fast is exact_knn? Figures for random-s-100-angular and random-s-100-euclidean.

    python bench/groundtruth.py [--data-dir data] [--repeat 3] [--naive-queries 200]

For each dataset: wall time of exact_knn (k=100) on every run, the time inside its phases
(matrix product, candidate selection, exact re-rank; summed over worker threads, so they can
exceed the wall time), and a naive per-query brute force in the style of ann-benchmarks'
BruteForceBLAS on a sample of queries, extrapolated to all of them, with its agreement.
The target is at most 8 s for random-s-100-angular on a 2-core machine.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

from ann_bench.datasets import DATASETS, dataset_path, load_dataset
from ann_bench.datasets.distance import normalize
from ann_bench.datasets.groundtruth import exact_knn
from ann_bench.datasets.registry import SOURCES_DIR

K = 100
NAMES = ("random-s-100-angular", "random-s-100-euclidean")


def points(name, data_dir):
    """train, test of the dataset: from its file when present, else from its builder."""
    path = dataset_path(name, data_dir)
    if path.exists():
        data = load_dataset(path)
        return data.train, data.test, f"loaded {path}"
    train, test = DATASETS[name].builder(Path(data_dir) / SOURCES_DIR, False)
    return train, test, "built in memory"


def naive(train, queries, metric):
    """One query at a time, as ann-benchmarks' BruteForceBLAS: a matrix-vector product in
    float64, an argpartition of the whole row, then a sort of the k best."""
    X = normalize(train).astype(np.float64) if metric == "angular" else train.astype(np.float64)
    half_norms = 0.5 * np.einsum("ij,ij->i", X, X)
    ids = np.empty((len(queries), K), dtype=np.int64)
    for i, q in enumerate(queries.astype(np.float64)):
        scores = -(X @ q) if metric == "angular" else half_norms - X @ q
        best = np.argpartition(scores, K)[:K]
        ids[i] = best[np.argsort(scores[best], kind="stable")]
    return ids


def bench(name, data_dir, repeat, naive_queries):
    metric = DATASETS[name].distance
    train, test, origin = points(name, data_dir)
    print(f"{name}: train {train.shape}, test {test.shape}, k={K} ({origin})")
    runs = []
    for _ in range(repeat):
        phases = {}
        start = time.perf_counter()
        ids, _ = exact_knn(train, test, K, metric, progress=False, timings=phases)
        runs.append(time.perf_counter() - start)
    print(f"  exact_knn: {min(runs):.2f} s best of {repeat} "
          f"(runs: {', '.join(f'{s:.2f}' for s in runs)})")
    print("  phases of the last run, summed over threads: "
          + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in phases.items()))
    if naive_queries:
        sample = test[:naive_queries]
        start = time.perf_counter()
        naive_ids = naive(train, sample, metric)
        seconds = (time.perf_counter() - start) * len(test) / len(sample)
        same = np.mean([len(set(a) & set(b)) / K for a, b in zip(naive_ids, ids)])
        print(f"  naive per-query float64 brute force: {seconds:.1f} s extrapolated from "
              f"{len(sample)} queries ({seconds / min(runs):.0f}x slower); "
              f"same neighbours {same:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--naive-queries", type=int, default=200,
                        help="queries timed for the naive reference (0: skip it)")
    args = parser.parse_args()
    print(f"{len(os.sched_getaffinity(0))} usable cores, numpy {np.__version__}")
    for name in NAMES:
        bench(name, args.data_dir, args.repeat, args.naive_queries)


if __name__ == "__main__":
    main()

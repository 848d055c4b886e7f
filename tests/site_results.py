"""A small results tree for the website's tests: real ground truth, curves like real ones, and
every kind of trouble the site must show (failures with logs, another machine, an unsettled
run, a file from an older harness, one from ann-benchmarks without latencies, a damaged file,
a dataset with only failures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ann_bench.results.files import RunResult, params_name, result_dir, result_path, write_result

DATASET = "random-xs-20-euclidean"
ONLY_FAILURES = "random-xs-20-angular"
K = 10
ENVIRONMENT = {"library_version": "0.8.0", "cpu_model": "Test CPU @ 3.0GHz", "cpus_allowed": [0],
               "harness_revision": "abc123def456", "harness_digest": "0123456789ab", "executor": "docker",
               "image_id": "sha256:feedfacecafe0000", "python": "3.11.2", "numpy": "2.4.6"}
# algorithm -> [(build args, query args, recall, qps)]: recall in tenths, so it is exact at k=10
SWEEPS = {
    "hnswlib": [({"M": 8}, {"ef": ef}, r, q) for ef, r, q in ((10, 0.6, 9000), (20, 0.8, 6500), (40, 0.9, 4000),
                                                               (80, 1.0, 2200))]
    + [({"M": 16}, {"ef": ef}, r, q) for ef, r, q in ((10, 0.7, 8000), (20, 0.9, 5200), (40, 1.0, 3000))],
    "annoy": [({"n_trees": 10}, [sk], r, q) for sk, r, q in ((100, 0.5, 7000), (1000, 0.8, 2500), (5000, 0.9, 900))],
    "faiss-ivf": [({"n_list": 32}, {"nprobe": p}, r, q) for p, r, q in ((1, 0.4, 12000), (4, 0.8, 5000),
                                                                         (16, 1.0, 1500))],
    "bruteforce": [({}, [], 1.0, 800)],
}
BATCH_SWEEPS = {"hnswlib": [({"M": 8}, {"ef": ef}, r, q) for ef, r, q in ((10, 0.6, 30000), (40, 0.9, 15000))]}
UNSETTLED = ("annoy", [1000])  # its passes disagree by 30 %
OTHER_MACHINE = "faiss-ivf"  # its runs come from another CPU
FAILED = "pgvector-hnsw"
FAILED_ERROR = "fit failed: RuntimeError: could not start postgres"
LOG_LINE = "FATAL: could not create shared memory segment"


def answers(truth: np.ndarray, recall: float) -> np.ndarray:
    """Distances that hit exactly round(recall * K) of each query's K true neighbours."""
    hits = int(round(recall * K))
    found = truth[:, :K].astype(np.float64).copy()
    found[:, hits:] += 1e3
    return found


def write_run(results: Path, dataset: str, truth: np.ndarray, algorithm: str, build_args, query_args, recall: float,
              qps: float, batch: bool = False, environment: dict | None = None, spread: float = 0.04) -> Path:
    nq = len(truth)
    attrs = {"name": f"{algorithm}({build_args}, {query_args})", "algo": algorithm, "dataset": dataset, "count": K,
             "batch_mode": batch, "build_args": build_args, "query_args": query_args, "status": "ok",
             "best_search_time": 1.0 / qps, "build_time": 0.5 + len(str(build_args)) / 10, "index_size": 2048.0,
             "candidates": float(K), "run_count": 3, "distance": "euclidean",
             "environment": environment if environment is not None else ENVIRONMENT}
    result = RunResult(attrs=attrs, neighbors=np.zeros((nq, K), np.int32), distances=answers(truth, recall),
                       times=np.linspace(0.5, 2.0, nq) / qps,
                       run_times=np.array([1.0, 1.0 + spread / 2, 1.0 + spread]) * nq / qps)
    return write_result(result_path(results, dataset, K, algorithm, batch, build_args, query_args), result)


def write_failure(results: Path, dataset: str, algorithm: str, build_args, query_args, error: str,
                  log_lines: list[str] | None = None, clients: int | None = None) -> Path:
    attrs = {"name": f"{algorithm}({build_args})", "algo": algorithm, "dataset": dataset, "count": K,
             "batch_mode": False, "build_args": build_args, "query_args": query_args, "status": "failed",
             "error": error, "environment": ENVIRONMENT}
    if clients is not None:  # a concurrent clients' run (run.py --clients), under <algorithm>-c<N>/
        attrs["clients"] = clients
    path = write_result(result_path(results, dataset, K, algorithm, False, build_args, query_args, clients),
                        RunResult(attrs=attrs))
    if log_lines:
        log = result_dir(results, dataset, K, algorithm, False, clients) / "logs" / (
            params_name(build_args, None) + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(["starting", *log_lines]) + "\n")
    return path


def write_legacy(results: Path, dataset: str, truth: np.ndarray) -> tuple[Path, Path]:
    """A file of an older harness (no environment, no pass times, no status) and one in
    ann-benchmarks' layout, without per-query latencies or recorded arguments."""
    nq = len(truth)
    old = {"name": "old-ann(8)", "algo": "old-ann", "dataset": dataset, "count": K, "batch_mode": False,
           "build_args": {"trees": 8}, "query_args": [64], "best_search_time": 1.0 / 3000, "build_time": 1.0,
           "index_size": 100.0, "candidates": float(K), "run_count": 1}
    old_path = write_result(result_path(results, dataset, K, "old-ann", False, {"trees": 8}, [64]),
                            RunResult(attrs=old, neighbors=np.zeros((nq, K), np.int32),
                                      distances=answers(truth, 0.8), times=np.full(nq, 1.0 / 3000)))
    ann_benchmarks = {"name": "Annoy(n_trees=100, search_k=200)", "algo": "ab-annoy", "dataset": dataset,
                      "count": K, "batch_mode": False, "best_search_time": 1.0 / 2000, "build_time": 3.0,
                      "index_size": 500.0, "candidates": float(K), "run_count": 3, "distance": "euclidean",
                      "expect_extra": False}
    ab_path = result_dir(results, dataset, K, "ab-annoy", False) / "Annoy_n_trees_100_search_k_200.hdf5"
    write_result(ab_path, RunResult(attrs=ann_benchmarks, neighbors=np.zeros((nq, K), np.int32),
                                    distances=answers(truth, 0.7)))
    return old_path, ab_path


def make_tree(results: Path, truth: np.ndarray) -> dict[str, Path]:
    """The whole tree; returns the paths a test names."""
    for algorithm, sweep in SWEEPS.items():
        environment = dict(ENVIRONMENT, cpu_model="Other CPU @ 2.0GHz") if algorithm == OTHER_MACHINE else None
        for build_args, query_args, recall, qps in sweep:
            spread = 0.30 if (algorithm, query_args) == UNSETTLED else 0.04
            write_run(results, DATASET, truth, algorithm, build_args, query_args, recall, qps,
                      environment=environment, spread=spread)
    for algorithm, sweep in BATCH_SWEEPS.items():
        for build_args, query_args, recall, qps in sweep:
            write_run(results, DATASET, truth, algorithm, build_args, query_args, recall, qps, batch=True)
    failed = write_failure(results, DATASET, FAILED, {"m": 16}, {"ef_search": 40}, FAILED_ERROR, [LOG_LINE])
    write_failure(results, DATASET, FAILED, {"m": 16}, {"ef_search": 80}, FAILED_ERROR)
    old, ab = write_legacy(results, DATASET, truth)
    damaged = result_dir(results, DATASET, K, "annoy", False) / "damaged.hdf5"
    damaged.write_bytes(b"this is not HDF5")
    only = write_failure(results, ONLY_FAILURES, "hnswlib", {"M": 8}, {"ef": 10}, "timed out after 600 s")
    return {"failed": failed, "old": old, "ann-benchmarks": ab, "damaged": damaged, "only-failures": only}

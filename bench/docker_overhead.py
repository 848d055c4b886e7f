#!/usr/bin/env python3
"""What Docker costs: image build times, container start-up per definition, QPS in a container.

    python bench/docker_overhead.py [--rounds 5] [--cpu 1] [--from-nothing] [--skip-builds]

Prints:
1. build times: each image from the layer cache (install.py's usual case); with
   --from-nothing also the OS image (debootstrap + import) and the base with --no-cache,
   built under throw-away tags so the real images and their cache are left as they are;
2. start-up overhead per definition: wall time of one trivial job (bruteforce, no query
   arguments) through DockerExecutor minus the same through LocalExecutor, median of --rounds;
3. QPS ratio: hnswlib M=16 efConstruction=200 ef=40 on random-xs-20-angular, QPS in Docker
   divided by QPS with --local, alternating local/docker --rounds times on the same core
   (target 0.95 to 1.05). QPS is the runner's own: queries / best pass, library call only.
   The image runs Debian's Python; the local side runs --local-python (default: this one).
   A Python-heavy query loop is faster or slower with the interpreter's build (PGO, LTO), so
   give Debian's interpreter to measure Docker's own cost.

Needs the images bruteforce and hnswlib (scripts/build-test-images). Figures, not pass/fail:
another process on the same core moves them, so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ann_bench import datasets
from ann_bench.paths import REPO as ROOT
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.definitions import get_definitions, load_algorithms
from ann_bench.run.executors import DockerExecutor, LocalExecutor
from ann_bench.run.executors.docker import images
from ann_bench.run.jobs import Job

DATASET = "random-xs-20-angular"
BENCH_OS = "ann-bench-os:bench-from-nothing"
BENCH_BASE = "ann-bench-base:bench-from-nothing"


def build_times(from_nothing: bool) -> list[tuple[str, float, str]]:
    rows = []
    if from_nothing:
        client = images.docker_client()
        log_dir = ROOT / "build" / "logs" / "bench"
        log_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(log_dir / "os.log", "wb") as log:
            subprocess.run(["bash", str(ROOT / "install" / "base-os.sh"), "--force"], check=True, stdout=log,
                           stderr=subprocess.STDOUT, env=dict(os.environ, ANN_BENCH_OS_IMAGE=BENCH_OS))
        rows.append(("OS image (debootstrap + import)", time.perf_counter() - start, "from nothing"))
        result = images.build_image("base", {"BASE_IMAGE": BENCH_OS}, nocache=True, log_dir=log_dir, tag=BENCH_BASE)
        if not result.ok:
            raise SystemExit(f"base build failed: {result.error} (log {result.log_path})")
        rows.append(("ann-bench-base", result.seconds, "--no-cache"))
        rows.append(("OS image + base", rows[-1][1] + rows[-2][1], "from nothing"))
        for tag in (BENCH_BASE, BENCH_OS):
            client.images.remove(tag, force=True)
    for result in images.build_images(["bruteforce", "hnswlib", "faults"], progress=None):
        if result.status != "exists":
            rows.append((result.image, result.seconds, "from cache" if result.ok else "FAILED"))
    return rows


def job(definition, dataset: Path, results: Path, runs: int) -> Job:
    return Job(definition=definition, dataset=DATASET, dataset_path=str(dataset), results_dir=str(results), count=10,
               batch=False, runs=runs, environment={},
               query_args=[q if isinstance(q, dict) else list(q) for q in definition.query_args])


def definition(name: str, args, query_args):
    entry = load_algorithms()[name]
    d = get_definitions({name: entry}, "angular", "float", 10, 20, [name])[0]
    return type(d).from_dict(dict(d.to_dict(), args=args, query_args=query_args, run_group="bench"))


def timed_run(executor, the_job: Job, cpus: list[int], log: Path) -> float:
    start = time.perf_counter()
    outcome = executor.run(the_job, cpus, log, 600)
    elapsed = time.perf_counter() - start
    if not outcome.ok:
        raise SystemExit(f"{executor.name} run failed: {outcome.reason} (log {log})")
    return elapsed


def startup_overhead(dataset: Path, cpus: list[int], rounds: int, work: Path) -> dict[str, float]:
    brute = definition("bruteforce", [], [[]])
    walls = {"local": [], "docker": []}
    executors = {"local": LocalExecutor(), "docker": DockerExecutor()}
    for i in range(rounds + 1):  # the first round warms the page cache and is dropped
        for name, executor in executors.items():
            wall = timed_run(executor, job(brute, dataset, work / f"startup-{name}-{i}", 1), cpus,
                             work / f"startup-{name}-{i}.log")
            if i:
                walls[name].append(wall)
    return {name: statistics.median(values) for name, values in walls.items()}


def qps_ratio(dataset: Path, cpus: list[int], rounds: int, work: Path,
              local_python: str) -> tuple[list[float], list[float]]:
    hnsw = definition("hnswlib", {"M": 16, "efConstruction": 200}, [{"ef": 40}])
    qps = {"local": [], "docker": []}
    executors = {"local": LocalExecutor(python=local_python), "docker": DockerExecutor()}
    for i in range(rounds):
        order = list(executors.items()) if i % 2 == 0 else list(executors.items())[::-1]
        for name, executor in order:
            results = work / f"qps-{name}-{i}"
            timed_run(executor, job(hnsw, dataset, results, 3), cpus, work / f"qps-{name}-{i}.log")
            [path] = iter_result_paths(results)
            qps[name].append(1.0 / read_result(path, arrays=False).attrs["best_search_time"])
    return qps["local"], qps["docker"]


def interpreter_version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternations of local and docker")
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="the core to run on")
    parser.add_argument("--from-nothing", action="store_true",
                        help="also time the OS image and the base built from nothing (about a minute or two)")
    parser.add_argument("--skip-builds", action="store_true", help="no build timings")
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--local-python", default=sys.executable,
                        help="the interpreter of the local side of the QPS ratio (with numpy, h5py and "
                             "hnswlib): one built like the image's (Debian's /usr/bin/python3) separates "
                             "what Docker costs from what a differently built interpreter costs")
    args = parser.parse_args()
    cpus = [args.cpu]

    if not args.skip_builds:
        print("build times")
        for image, seconds, how in build_times(args.from_nothing):
            print(f"  {image:<34} {seconds:7.1f} s  {how}")

    dataset = datasets.get_dataset(DATASET, args.data_dir, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        walls = startup_overhead(dataset, cpus, args.rounds, work)
        print(f"start-up per definition (trivial bruteforce job, median of {args.rounds}, core {args.cpu})")
        print(f"  local process {walls['local']:.3f} s, container {walls['docker']:.3f} s, "
              f"overhead {walls['docker'] - walls['local']:+.3f} s")
        local, docker = qps_ratio(dataset, cpus, args.rounds, work, args.local_python)
    ratio = statistics.median(docker) / statistics.median(local)
    print(f"QPS, hnswlib M=16 efConstruction=200 ef=40 on {DATASET}, best of 3 passes, {args.rounds} rounds")
    print(f"  local  {' '.join(f'{q:8.0f}' for q in local)}  median {statistics.median(local):8.0f}"
          f"  ({args.local_python}, Python {interpreter_version(args.local_python)})")
    print(f"  docker {' '.join(f'{q:8.0f}' for q in docker)}  median {statistics.median(docker):8.0f}")
    print(f"  docker / local = {ratio:.3f}  (target 0.95 to 1.05)")


if __name__ == "__main__":
    main()

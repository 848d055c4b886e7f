"""Ground truth at scale, in bounded memory; and what the dataset check costs.

    python bench/groundtruth_scale.py [--data-dir data] [--work-dir /tmp] [--memory-gb 2]
                                      [--case glove] [--case synthetic] [--case check]

- glove: exact top-100 of glove-6b-50-angular's 10,000 queries against its 390,000 points,
  read in chunks from the HDF5 file (built first if missing); compared with the stored ones.
- synthetic: a 2,000,000 x 128 float32 set (seeded Gaussian blobs, 10,000 queries) written in
  chunks to an HDF5 file under --work-dir, then its exact top-100 read from that file in chunks.
- check: the check every dataset passes before a sweep trusts it (verify.py, without the
  sha256 of the file, which `sha256sum` times as well), for each set present in --data-dir.

Each case runs in a child process of its own, so the peak resident memory printed (the
kernel's ru_maxrss) is that case's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from ann_bench.datasets import get_dataset
from ann_bench.datasets.groundtruth import exact_knn
from ann_bench.datasets.verify import verify_contents

K = 100
SYNTHETIC_ROWS, SYNTHETIC_DIM, QUERIES = 2_000_000, 128, 10_000
CHECKED = ("glove-6b-50-angular", "glove-6b-50-angular-100k", "mnist-784-euclidean",
           "wordnet-minilm-384-angular", "random-s-100-euclidean")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def glove(args: argparse.Namespace) -> dict:
    path = get_dataset("glove-6b-50-angular", args.data_dir)
    with h5py.File(path, "r") as f:
        test = f["test"][:]
        start = time.perf_counter()
        ids, _ = exact_knn(f["train"], test, K, "angular", memory_bytes=args.memory)
        seconds = time.perf_counter() - start
        same = float(np.mean(ids == f["neighbors"][:]))
        shape = f["train"].shape
    return {"case": f"glove-6b-50-angular {shape[0]:,} x {shape[1]}, {len(test):,} queries",
            "seconds": seconds, "peak_mb": peak_mb(), "same_ids_as_file": same}


def synthetic(args: argparse.Namespace) -> dict:
    path = Path(args.work_dir) / "groundtruth-scale-synthetic.hdf5"
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((1000, SYNTHETIC_DIM)) * 4
    step = 100_000
    try:
        with h5py.File(path, "w") as f:
            train = f.create_dataset("train", (SYNTHETIC_ROWS, SYNTHETIC_DIM), dtype=np.float32)
            for lo in range(0, SYNTHETIC_ROWS, step):
                labels = rng.integers(0, len(centres), step)
                train[lo:lo + step] = centres[labels] + rng.standard_normal((step, SYNTHETIC_DIM))
        queries = (centres[rng.integers(0, len(centres), QUERIES)]
                   + rng.standard_normal((QUERIES, SYNTHETIC_DIM))).astype(np.float32)
        with h5py.File(path, "r") as f:
            start = time.perf_counter()
            exact_knn(f["train"], queries, K, "euclidean", memory_bytes=args.memory)
            seconds = time.perf_counter() - start
    finally:
        path.unlink(missing_ok=True)
    return {"case": f"synthetic {SYNTHETIC_ROWS:,} x {SYNTHETIC_DIM}, {QUERIES:,} queries "
                    f"(file {SYNTHETIC_ROWS * SYNTHETIC_DIM * 4 / 2**30:.2f} GiB)",
            "seconds": seconds, "peak_mb": peak_mb()}


def check(args: argparse.Namespace) -> list[dict]:
    rows = []
    for name in CHECKED:
        path = Path(args.data_dir) / f"{name}.hdf5"
        if not path.exists():
            continue
        start = time.perf_counter()
        verify_contents(path)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
        rows.append({"case": f"check {name} ({path.stat().st_size / 2**20:.0f} MiB)",
                     "seconds": seconds, "sha256_seconds": time.perf_counter() - start,
                     "peak_mb": peak_mb()})
    return rows


CASES = {"glove": glove, "synthetic": synthetic, "check": check}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--work-dir", default="/tmp")
    parser.add_argument("--memory-gb", type=float, default=2.0,
                        help="the ground truth's memory budget (default 2)")
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.memory = int(args.memory_gb * 2**30)
    if args.child:
        result = CASES[args.child](args)
        print(json.dumps(result if isinstance(result, list) else [result]))
        return
    print(f"{len(os.sched_getaffinity(0))} usable cores, numpy {np.__version__}, "
          f"budget {args.memory_gb:g} GB, load average {os.getloadavg()[0]:.1f}")
    for case in args.case or ["glove", "synthetic", "check"]:
        command = [sys.executable, __file__, "--child", case, "--data-dir", args.data_dir,
                   "--work-dir", args.work_dir, "--memory-gb", str(args.memory_gb)]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        for row in json.loads(output.strip().splitlines()[-1]):
            extra = "".join(f", {key} {value:.4g}" for key, value in row.items()
                            if key not in ("case", "seconds", "peak_mb"))
            print(f"{row['case']}: {row['seconds']:.1f} s, peak resident memory "
                  f"{row['peak_mb']:.0f} MB{extra}")


if __name__ == "__main__":
    main()

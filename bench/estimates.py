"""How well `run.py --dry-run` predicts the wall time of a sweep: estimate vs actual, per case.

    .venv/bin/python bench/estimates.py [--dataset random-xs-20-angular] [--basis random-xs-20-euclidean]
                                        [--algorithm annoy --algorithm hnswlib ...] [--local] [--quick]

Cases, each in a fresh results tree:
- scaled: the grid run on the basis dataset first, then the target's dry run (nothing measured on
  it, so scaled by size) against the target's sweep;
- again: the same sweep once more with --force, priced from its own results (timing noise only);
- resume: a third of the target's definitions run first (--max-n-algorithms), then the dry run of
  the rest against the rest's sweep (the costly settings of a grid priced from the cheap ones done);
  left out where an algorithm has fewer than three definitions (quick grids), since the rest of
  such a sweep would have nothing of its own measured.
Prints one row per case: the estimated wall-time range, the actual wall time, and whether it fell
inside. Runs real sweeps: minutes for quick grids, longer for full ones. Run it with `nice -n 19`
on a shared machine, and compare like with like: other work on the machine slows the sweeps.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ann_bench.paths import REPO

UNITS = {"s": 1, "min": 60, "h": 3600}


def run(args: list[str], results: Path, data_dir: Path) -> tuple[float, str]:
    command = [sys.executable, str(REPO / "run.py"), *args, "--results", str(results), "--data-dir",
               str(data_dir), "--no-progress"]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return time.monotonic() - start, done.stdout


def estimated_range(dry_run: str) -> tuple[float, float]:
    match = re.search(r"estimated wall time: (.+?) with", dry_run)
    if match is None or "unknown" in dry_run.splitlines()[-1]:
        raise SystemExit(f"the dry run gave no full estimate:\n{dry_run}")

    def seconds(text: str) -> float:
        value, unit = text.split()
        return float(value) * UNITS[unit]
    low, _, high = match.group(1).partition("-")
    return seconds(low), seconds(high or low)


def case(name: str, selection: list[str], results: Path, data_dir: Path) -> None:
    _, dry = run(selection + ["--dry-run"], results, data_dir)
    low, high = estimated_range(dry)
    actual, _ = run(selection, results, data_dir)
    inside = low <= actual <= high
    print(f"{name:<8} estimate {low:8.1f}-{high:8.1f} s  actual {actual:8.1f} s  "
          f"{'inside' if inside else 'OUTSIDE'}  (actual/geometric middle {actual / math.sqrt(low * high):.2f})",
          flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="random-xs-20-angular")
    p.add_argument("--basis", default="random-xs-20-euclidean", help="dataset measured first for the scaled case")
    p.add_argument("--algorithm", action="append", help="default: annoy, hnswlib, faiss-ivf")
    p.add_argument("--local", action="store_true", help="local processes instead of Docker")
    p.add_argument("--quick", action="store_true", help="quick grids instead of full ones")
    p.add_argument("--runs", default="2")
    p.add_argument("--data-dir", type=Path, default=REPO / "data")
    args = p.parse_args()
    common = ["--runs", args.runs] + (["--local"] if args.local else []) + (["--quick"] if args.quick else [])
    algorithms = args.algorithm or ["annoy", "hnswlib", "faiss-ivf"]
    for algorithm in algorithms:
        common += ["--algorithm", algorithm]
    with tempfile.TemporaryDirectory() as tmp:
        scaled = Path(tmp) / "scaled"
        basis_seconds, _ = run(["--dataset", args.basis] + common, scaled, args.data_dir)
        print(f"basis: {args.basis} swept in {basis_seconds:.1f} s", flush=True)
        case("scaled", ["--dataset", args.dataset] + common, scaled, args.data_dir)
        case("again", ["--dataset", args.dataset, "--force"] + common, scaled, args.data_dir)
        resume = Path(tmp) / "resume"
        _, dry = run(["--dataset", args.dataset, "--dry-run"] + common, resume, args.data_dir)
        builds = [int(line.split()[1]) for line in dry.splitlines() if line.split() and line.split()[0] in algorithms]
        if min(builds) < 3:
            print("resume: left out, an algorithm has fewer than three definitions", flush=True)
            return 0
        first, _ = run(["--dataset", args.dataset, "--max-n-algorithms", str(sum(builds) // 3)] + common,
                       resume, args.data_dir)
        print(f"resume: a third of the definitions first, in {first:.1f} s", flush=True)
        case("resume", ["--dataset", args.dataset] + common, resume, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

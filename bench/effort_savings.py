#!/usr/bin/env python3
"""What skipping past recall 1.0 saves: full default grids run with --exhaustive and without.

Each algorithm's full default grid runs twice on one dataset, into separate results trees, with
everything else the same (`nice -n 19`, the same --runs, Docker unless --local): once with
--exhaustive (every set), once by default (sets of an effort-ordered build after one at recall
1.0 are skipped). The two runs of an algorithm follow each other, so the machine's load drifts
little between them. Printed per algorithm: the wall time of each run and what the default
saved; the results made and skipped; and whether the Pareto frontier (k-NN recall vs QPS) is
unchanged, asked two ways:

- `dropped`: in the exhaustive tree, the frontier of every point and the frontier without the
  points the default run skipped, compared by (build, query) arguments. Same measurements on
  both sides, so timing noise cannot make them differ: "same" means every skipped set lay off
  the frontier.
- `rerun`: the frontier of each tree, compared by arguments: the default run measured its points
  again, so a point near the frontier may trade places with a neighbour by timing noise.

Also the lowest recall the exhaustive run measured for a set the default run skipped (1.0: the
effort argument kept its promise).

Usage: python bench/effort_savings.py [--dataset random-s-100-angular] [--runs 1] [--local]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ann_bench.paths import REPO as ROOT
from ann_bench.report.cache import results_table
from ann_bench.report.pareto import pareto_frontier
from ann_bench.results.files import canonical_json

ALGORITHMS = ("annoy", "hnswlib", "faiss-ivf")


def sweep(algorithm: str, results: Path, args: argparse.Namespace, exhaustive: bool) -> float:
    """Wall seconds of one run.py over the algorithm's full default grid."""
    command = ["nice", "-n", "19", sys.executable, str(ROOT / "run.py"), "--dataset", args.dataset,
               "--algorithm", algorithm, "--runs", str(args.runs), "--results", str(results),
               "--data-dir", str(args.data_dir), "--no-progress"]
    command += ["--local"] * args.local + ["--exhaustive"] * exhaustive
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    (results / f"{algorithm}.log").write_text(done.stdout)
    if done.returncode != 0:
        print(f"  {algorithm}{' --exhaustive' * exhaustive} exited {done.returncode}; see {results}/{algorithm}.log")
    return wall


def key(row: dict) -> str:
    return canonical_json([row["build_args"], row["query_args"]])


def frontier(rows: list[dict]) -> set[str]:
    return {key(rows[i]) for i in pareto_frontier([(r["k-nn"], r["qps"]) for r in rows])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="random-s-100-angular")
    parser.add_argument("--algorithm", action="append", help=f"default: {', '.join(ALGORITHMS)}")
    parser.add_argument("--runs", type=int, default=2, help="timed passes per set (run.py --runs)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, help="where the two trees go (default: a temporary folder)")
    parser.add_argument("--local", action="store_true", help="run.py --local instead of Docker")
    args = parser.parse_args()
    # Made first: making the dataset is not part of either sweep.
    subprocess.run([sys.executable, "-m", "ann_bench.datasets", args.dataset, "--data-dir", str(args.data_dir)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    root = args.results or Path(tempfile.mkdtemp(prefix="effort-savings-"))
    trees = {"exhaustive": root / "exhaustive", "default": root / "default"}
    print(f"{args.dataset}, --runs {args.runs}, {'local' if args.local else 'Docker'}, results in {root}")
    print(f"{'algorithm':<10} {'exhaustive s':>12} {'default s':>10} {'saved':>7} {'results':>8} {'skipped':>8} "
          f"{'min recall skipped':>18} {'dropped':>8} {'rerun':>8}")
    total = {"exhaustive": 0.0, "default": 0.0}
    for algorithm in args.algorithm or ALGORITHMS:
        walls = {mode: sweep(algorithm, tree, args, mode == "exhaustive") for mode, tree in trees.items()}
        for mode in walls:
            total[mode] += walls[mode]
        tables = {mode: results_table(tree, args.dataset, 10, batch=False, data_dir=args.data_dir)
                  for mode, tree in trees.items()}
        rows = {mode: [r for r in t.rows if r["algorithm"] == algorithm] for mode, t in tables.items()}
        skipped = {key(r) for r in tables["default"].skipped if r["algorithm"] == algorithm}
        kept = [r for r in rows["exhaustive"] if key(r) not in skipped]
        dropped_same = frontier(rows["exhaustive"]) == frontier(kept)
        rerun_same = frontier(rows["exhaustive"]) == frontier(rows["default"])
        recalls = [r["k-nn"] for r in rows["exhaustive"] if key(r) in skipped]
        saved = 1 - walls["default"] / walls["exhaustive"]
        print(f"{algorithm:<10} {walls['exhaustive']:>12.0f} {walls['default']:>10.0f} {saved:>7.0%} "
              f"{len(rows['exhaustive']):>8} {len(skipped):>8} {min(recalls, default=float('nan')):>18.4f} "
              f"{'same' if dropped_same else 'DIFFERS':>8} {'same' if rerun_same else 'differs':>8}", flush=True)
    print(f"{'total':<10} {total['exhaustive']:>12.0f} {total['default']:>10.0f} "
          f"{1 - total['default'] / total['exhaustive']:>7.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

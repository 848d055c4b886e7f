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
effort argument kept its promise), and `work`: the library seconds (build and timed passes, from
the result files) the exhaustive run spent on the sets the default run skipped, as a share of all
it spent: what skipping saves, free of the machine's load (wall times on a busy machine vary).
`builds`: those compared, of those planned: only builds the exhaustive tree has every set of.
`--no-run` only compares the trees already in --results (of sweeps run before, even unfinished).

Usage: python bench/effort_savings.py [--dataset random-s-100-angular] [--runs 1] [--local]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ann_bench.paths import REPO as ROOT
from ann_bench.report.cache import results_table
from ann_bench.report.pareto import pareto_frontier
from ann_bench.results.files import canonical_json, read_result

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


def build(row: dict) -> str:
    return canonical_json(row["build_args"])


def key(row: dict) -> str:
    return canonical_json([row["build_args"], row["query_args"]])


def frontier(rows: list[dict]) -> set[str]:
    return {key(rows[i]) for i in pareto_frontier([(r["k-nn"], r["qps"]) for r in rows])}


def library_seconds(rows: list[dict], builds: bool) -> float:
    """Seconds in the library: every set's timed passes (warm-up included), and with `builds`
    each build once."""
    attrs = [read_result(r["path"], arrays=False).attrs for r in rows]
    built = {build(r): a["build_time"] for r, a in zip(rows, attrs)} if builds else {}
    return sum(a["library_seconds"] for a in attrs) + sum(built.values())


def compare(algorithm: str, trees: dict[str, Path], args: argparse.Namespace) -> str:
    """The columns after the wall times: results, skipped, the skipped sets' lowest recall and
    share of the work, and whether each frontier is the same."""
    tables = {mode: results_table(tree, args.dataset, 10, batch=False, data_dir=args.data_dir)
              for mode, tree in trees.items()}
    # Only the builds the exhaustive tree has every set of (a sweep stopped early has fewer).
    default = [r for r in tables["default"].rows + tables["default"].skipped if r["algorithm"] == algorithm]
    planned = Counter(build(r) for r in default)
    done = Counter(build(r) for r in tables["exhaustive"].rows if r["algorithm"] == algorithm)
    complete = {b for b in planned if done[b] == planned[b]}
    rows = {mode: [r for r in t.rows if r["algorithm"] == algorithm and build(r) in complete]
            for mode, t in tables.items()}
    skipped = {key(r) for r in tables["default"].skipped if r["algorithm"] == algorithm and build(r) in complete}
    kept = [r for r in rows["exhaustive"] if key(r) not in skipped]
    dropped_same = frontier(rows["exhaustive"]) == frontier(kept)
    rerun_same = frontier(rows["exhaustive"]) == frontier(rows["default"])
    skipped_rows = [r for r in rows["exhaustive"] if key(r) in skipped]
    work = library_seconds(skipped_rows, builds=False) / max(library_seconds(rows["exhaustive"], builds=True), 1e-9)
    return (f"{len(complete):>3}/{len(planned):<3} {len(rows['exhaustive']):>8} {len(skipped):>8} "
            f"{min((r['k-nn'] for r in skipped_rows), default=float('nan')):>18.4f} {work:>6.0%} "
            f"{'same' if dropped_same else 'DIFFERS':>8} {'same' if rerun_same else 'differs':>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="random-s-100-angular")
    parser.add_argument("--algorithm", action="append", help=f"default: {', '.join(ALGORITHMS)}")
    parser.add_argument("--runs", type=int, default=2, help="timed passes per set (run.py --runs)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, help="where the two trees go (default: a temporary folder)")
    parser.add_argument("--local", action="store_true", help="run.py --local instead of Docker")
    parser.add_argument("--no-run", action="store_true", help="only compare the trees already in --results")
    args = parser.parse_args()
    if args.no_run and not args.results:
        parser.error("--no-run needs --results: the folder of the two trees to compare")
    # Made first: making the dataset is not part of either sweep.
    subprocess.run([sys.executable, "-m", "ann_bench.datasets", args.dataset, "--data-dir", str(args.data_dir)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    root = args.results or Path(tempfile.mkdtemp(prefix="effort-savings-"))
    trees = {"exhaustive": root / "exhaustive", "default": root / "default"}
    if not args.no_run:
        print(f"{args.dataset}, --runs {args.runs}, {'local' if args.local else 'Docker'}, results in {root}")
    print(f"{'algorithm':<10} {'exhaustive s':>12} {'default s':>10} {'saved':>7} {'builds':>7} {'results':>8} "
          f"{'skipped':>8} {'min recall skipped':>18} {'work':>6} {'dropped':>8} {'rerun':>8}")
    total = {"exhaustive": 0.0, "default": 0.0}
    for algorithm in args.algorithm or ALGORITHMS:
        if args.no_run:
            print(f"{algorithm:<10} {'-':>12} {'-':>10} {'-':>7} {compare(algorithm, trees, args)}", flush=True)
            continue
        walls = {mode: sweep(algorithm, tree, args, mode == "exhaustive") for mode, tree in trees.items()}
        for mode in walls:
            total[mode] += walls[mode]
        print(f"{algorithm:<10} {walls['exhaustive']:>12.0f} {walls['default']:>10.0f} "
              f"{1 - walls['default'] / walls['exhaustive']:>7.0%} {compare(algorithm, trees, args)}", flush=True)
    if not args.no_run:
        print(f"{'total':<10} {total['exhaustive']:>12.0f} {total['default']:>10.0f} "
              f"{1 - total['default'] / total['exhaustive']:>7.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The table printed at the end of a sweep: what ran, was skipped and failed, with last words."""

from __future__ import annotations

from collections import Counter

from ..report.machines import machines, made_on
from ..results.files import read_result
from .executors.base import log_tail
from .plan import SKIPPED_EFFORT, Record


def summary(records: list[Record]) -> tuple[str, bool]:
    """A table of what ran, was skipped (done before, failed before, or past recall 1.0) and failed
    per algorithm; and whether anything failed."""
    counts: dict[str, Counter] = {}
    for r in records:
        counts.setdefault(r.algorithm, Counter())[r.status] += 1
    columns = ("ran", "failed", "skipped", "skipped-failed", SKIPPED_EFFORT)
    width = max([len("algorithm")] + [len(a) for a in counts])
    lines = [f"{'algorithm':<{width}}  " + "  ".join(f"{c:>14}" for c in columns)]
    for algorithm in sorted(counts):
        lines.append(f"{algorithm:<{width}}  " + "  ".join(f"{counts[algorithm][c]:>14}" for c in columns))
    failures = [r for r in records if r.status == "failed"]
    shown_logs = set()
    for r in failures:
        lines.append(f"FAILED {r.algorithm} {r.query_args}: {r.reason}")
        if r.log_path is not None and r.log_path not in shown_logs:
            shown_logs.add(r.log_path)
            lines.append(f"  log: {r.log_path}")
            lines.extend("  | " + line for line in log_tail(r.log_path, 5))
    made = made_here(records)
    if made:
        lines.append(made)
    previously = sum(1 for r in records if r.status == "skipped-failed")
    if previously:
        lines.append(f"{previously} result(s) failed in an earlier run and were not retried "
                     f"(use --retry-failed or --force)")
    saturated = sum(1 for r in records if r.status == SKIPPED_EFFORT)
    if saturated:
        lines.append(f"{saturated} result(s) not run: a cheaper set of the same build reached recall 1.0, so "
                     f"costlier ones have nothing to gain (use --exhaustive to run them)")
    return "\n".join(lines), bool(failures)


def made_here(records: list[Record]) -> str:
    """Which machines made what this sweep ran, when that is not simply this one: results of
    Dask workers, or of several machines."""
    environments = []
    for r in records:
        if r.status == "ran":
            try:
                environments.append(read_result(r.path, arrays=False).environment)
            except (OSError, ValueError, KeyError):
                continue  # a file gone or replaced meanwhile: it is counted by nothing
    counts = machines(environments)
    if len(counts) > 1 or any("dask_worker" in environment for environment in environments):
        return made_on(counts)
    return ""

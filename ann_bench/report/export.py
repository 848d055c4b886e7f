"""Every result of a dataset as a table: `python -m ann_bench.report.export --dataset NAME --output F.csv`.

One row per run: dataset, k, algorithm, name, build_args, query_args, batch, every metric
in METRICS order, the spread across builds where the run was built more than once (`run.py
--repeat`: repeats.COLUMNS, empty otherwise), library_version, cpu_model, executor (docker or
local: where it ran, so a tree with both is told apart; empty for a file from a harness that did
not record it), the result file's path, its status and reason. A set skipped because a cheaper
one of its build reached recall 1.0 (run/grading.py) is a row with status "skipped", its reason,
and no metrics; failures are not exported (the site lists them).

With --steps (a streaming set, datasets/streaming.py): one row per result and search step
instead, STEP_COLUMNS: the step, its k-nn recall and QPS, and the rows inserted and deleted
before it with their throughput (rows/s; empty where there were none).

CSV: arguments are JSON strings; a metric that has no value (nan) is an empty cell, infinity
is "inf". JSON: a list of row objects, arguments as JSON values, nan and infinity as null
(JSON has no spelling for them).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from .. import log as logsetup
from ..atomic import write_atomically
from ..errors import UserError, report
from ..results.files import STATUS_OK, STATUS_SKIPPED, canonical_json
from . import repeats, streaming
from .cache import dataset_distances, results_table
from .common import (
    DEFAULT_COUNT,
    add_common_arguments,
    dataset_name,
    executor_of,
    no_results_message,
    positive_int,
)
from .metrics import METRICS, NAN

COLUMNS = (
    ["dataset", "k", "algorithm", "name", "build_args", "query_args", "batch"]
    + list(METRICS)
    + repeats.COLUMNS
    + ["library_version", "cpu_model", "executor", "path", "status", "reason"]
)
STEP_COLUMNS = ["dataset", "k", "algorithm", "name", "build_args", "query_args", "step", "recall", "qps", "inserted",
                "insert_rate", "deleted", "delete_rate"]
FORMATS = (".csv", ".json")


def export_rows(results_dir: Path | str, dataset: str, count: int, batch: bool | None = False,
                data_dir: Path | str = "data", true_distances=None) -> list[dict]:
    """The rows of the table, values as Python objects, keys in COLUMNS order."""
    table = results_table(results_dir, dataset, count, batch=batch, data_dir=data_dir, true_distances=true_distances)

    def truth():
        if true_distances is None:
            return dataset_distances(dataset, data_dir)
        return true_distances() if callable(true_distances) else true_distances

    return table_rows(repeats.with_spread(table.rows, truth, count), dataset, count, table.skipped)


def table_rows(metric_rows: list[dict], dataset: str, count: int, skipped: Sequence[dict] = ()) -> list[dict]:
    """Rows of results_table's rows (ok) and skipped as rows of the table, sorted."""
    rows = []
    unmeasured = {name: NAN for name in METRICS}
    for row in [{"status": STATUS_OK, **r} for r in metric_rows] + [{"status": STATUS_SKIPPED, **unmeasured, **r}
                                                                     for r in skipped]:
        full = {"dataset": dataset, "k": count, "batch": row["batch_mode"], "executor": executor_of(row), **row}
        rows.append({column: full.get(column, "") for column in COLUMNS})
    rows.sort(key=lambda r: (r["algorithm"], r["batch"], r["name"], r["path"]))
    return rows


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (dict, list)) or value is None:
        return canonical_json(value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def step_rows(results_dir: Path | str, dataset: str, count: int, data_dir: Path | str = "data") -> list[dict]:
    """A streaming set's rows per result and search step (STEP_COLUMNS); a UserError for any
    other dataset."""
    found = streaming.runbook_steps(dataset, data_dir)
    if found is None:
        raise UserError(f"{dataset} is not a streaming set in {data_dir}/ (run.py --runbook makes one); "
                        f"leave out --steps")
    truth, ops = found
    return [{"dataset": dataset, "k": count, "algorithm": result["algorithm"], "name": result["name"],
             "build_args": result["build_args"], "query_args": result["query_args"], **step}
            for result in streaming.stream_results(results_dir, dataset, count, truth, ops) for step in result["steps"]]


def render(rows: list[dict], fmt: str, columns: Sequence[str] = COLUMNS) -> str:
    if fmt == ".csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(row[c]) for c in columns])
        return out.getvalue()
    if fmt == ".json":
        clean = [{c: _json_value(row[c]) for c in columns} for row in rows]
        return json.dumps(clean, indent=1, allow_nan=False) + "\n"
    raise UserError(f"cannot export to {fmt or 'a file without a suffix'}; name the output *.csv or *.json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ann_bench.report.export",
                                description="Write every result of a dataset, with all metrics, as CSV or JSON.")
    p.add_argument("--dataset", required=True)
    p.add_argument("--count", "-k", type=positive_int, default=DEFAULT_COUNT,
                   help=f"number of neighbours searched for (default {DEFAULT_COUNT})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--batch", action="store_true", help="batch-mode results only")
    mode.add_argument("--all-modes", action="store_true", help="single-query and batch results")
    p.add_argument("--steps", action="store_true",
                   help="a streaming set's figures per search step (recall, QPS, insert and delete throughput), "
                        "one row per result and step")
    p.add_argument("--output", "-o", type=Path, required=True, help="FILE.csv or FILE.json")
    add_common_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup_from(args)
    batch = None if args.all_modes else args.batch
    fmt = args.output.suffix.lower()
    try:
        if fmt not in FORMATS:
            render([], fmt)  # raises the UserError naming the accepted suffixes
        dataset = dataset_name(args.dataset, args.data_dir, args.results)
        if args.steps:
            rows, columns = step_rows(args.results, dataset, args.count, args.data_dir), STEP_COLUMNS
        else:
            rows, columns = export_rows(args.results, dataset, args.count, batch, args.data_dir), COLUMNS
        if not rows:
            print(no_results_message(args.results, dataset, args.count, batch), file=sys.stderr)
            return 2
        write_atomically(args.output, render(rows, fmt, columns))
    except UserError as e:
        return report(e)
    print(f"wrote {args.output} ({len(rows)} results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A streaming set's figures per search step (datasets/streaming.py): recall, QPS, and the
insert and delete throughput of the updates before the step; and their plot.

A stream result answers every search step's queries in order (as many at each), so a step's
recall and QPS are the usual metrics on its slice of the result; a step's throughput is the rows
inserted (deleted) since the previous search over the seconds those updates took
(`update_times`, one per runbook step). `python plot.py --dataset <stream set>` draws the
recall/QPS plot of the whole run as for any dataset and, beside it, this one:
<results>/<dataset>[-k<count>]-steps.<format>.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from .. import datasets
from ..datasets.hdf5 import STREAM_OPS
from ..datasets.runbook import DELETE, INSERT, SEARCH
from ..errors import UnknownNameError
from ..results.acceptance import UPDATE_TIMES
from ..results.files import RunResult, canonical_json, load_results
from .common import DEFAULT_COUNT, save_figure
from .metrics import knn_recall
from .styles import algorithm_style

NAN = float("nan")


def runbook_steps(dataset: str, data_dir: Path | str) -> tuple[np.ndarray, np.ndarray] | None:
    """A streaming set's true distances (every search step's queries) and runbook steps; None
    for any other dataset, or one without a file here (its results can still be plotted from
    the metrics cache)."""
    try:
        path = datasets.dataset_path(dataset, data_dir)
    except UnknownNameError:
        return None
    if not path.is_file():
        return None
    with h5py.File(path, "r") as f:
        return (f["distances"][:], f[STREAM_OPS][:]) if STREAM_OPS in f else None


def _rate(rows: int, seconds: float) -> float:
    return rows / seconds if rows and seconds > 0 else NAN


def step_figures(result: RunResult, true_distances: np.ndarray, ops: np.ndarray, count: int) -> list[dict]:
    """One dict per search step: step (from 1), k-nn recall, qps, and the rows inserted and
    deleted since the step before, with their throughput (rows/s; nan where there were none)."""
    assert result.times is not None and result.distances is not None
    n_steps = int((ops[:, 0] == SEARCH).sum())
    per_step = len(result.times) // n_steps
    update_times = result.extra.get(UPDATE_TIMES, np.zeros(len(ops)))
    figures: list[dict] = []
    rows_since, seconds_since = {INSERT: 0, DELETE: 0}, {INSERT: 0.0, DELETE: 0.0}
    for (operation, lo, hi), seconds in zip(ops, update_times):
        if operation != SEARCH:
            rows_since[operation] += int(hi - lo)
            seconds_since[operation] += float(seconds)
            continue
        rows = slice(len(figures) * per_step, (len(figures) + 1) * per_step)
        step = replace(result, distances=result.distances[rows], times=result.times[rows])
        figures.append({
            "step": len(figures) + 1,
            "recall": knn_recall(true_distances[rows], step, count),
            "qps": per_step / float(result.times[rows].sum()),
            "inserted": rows_since[INSERT], "insert_rate": _rate(rows_since[INSERT], seconds_since[INSERT]),
            "deleted": rows_since[DELETE], "delete_rate": _rate(rows_since[DELETE], seconds_since[DELETE]),
        })
        rows_since, seconds_since = {INSERT: 0, DELETE: 0}, {INSERT: 0.0, DELETE: 0.0}
    return figures


def result_steps(result: RunResult, true_distances: np.ndarray, ops: np.ndarray, count: int) -> dict:
    """One ok result of a streaming set: its name, algorithm, arguments and step figures."""
    return {"name": result.attrs["name"], "algorithm": result.attrs["algo"], "build_args": result.build_args,
            "query_args": result.query_args, "steps": step_figures(result, true_distances, ops, count)}


def stream_results(results_dir: Path | str, dataset: str, count: int, true_distances: np.ndarray,
                   ops: np.ndarray) -> list[dict]:
    """Every ok result of the streaming set, as result_steps gives it."""
    return [result_steps(result, true_distances, ops, count)
            for result in load_results(results_dir, dataset, count, batch=False)]


def default_output(results_dir: Path | str, dataset: str, count: int = DEFAULT_COUNT, fmt: str = "png") -> Path:
    stem = dataset + (f"-k{count}" if count != DEFAULT_COUNT else "")
    return Path(results_dir) / f"{stem}-steps.{fmt}"


def plot_steps(results: list[dict], output: Path | str, title: str) -> Path:
    """Three panels side by side over the search steps: recall, QPS (one line per result), and
    the update throughput (one line per build: inserts solid, deletes dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = Path(output)
    fig, (recall_ax, qps_ax, update_ax) = plt.subplots(1, 3, figsize=(16, 6.5), layout="constrained")
    try:
        builds = set()
        for result in results:
            style = algorithm_style(result["algorithm"])
            steps = [s["step"] for s in result["steps"]]
            line = dict(color=style.colour, marker=style.marker, linestyle=style.dash, linewidth=1.2, markersize=4)
            recall_ax.plot(steps, [s["recall"] for s in result["steps"]], label=result["name"], **line)
            qps_ax.plot(steps, [s["qps"] for s in result["steps"]], **line)
            build = (result["algorithm"], canonical_json(result["build_args"]))
            if build in builds:
                continue  # the updates of one build are the same for each of its query arguments
            builds.add(build)
            update_ax.plot(steps, [s["insert_rate"] for s in result["steps"]], color=style.colour,
                           marker=style.marker, label=f"{build[0]} {build[1]}")
            update_ax.plot(steps, [s["delete_rate"] for s in result["steps"]], color=style.colour,
                           marker=style.marker, linestyle="--", fillstyle="none")
        recall_ax.set(xlabel="search step", ylabel="k-nn recall", title="Recall of the live set at each step")
        qps_ax.set(xlabel="search step", ylabel="Queries per second (1/s)", yscale="log", title="QPS at each step")
        update_ax.set(xlabel="search step", ylabel="rows per second", yscale="log",
                      title="Updates before each step (solid: insert, dashed: delete)")
        for ax in (recall_ax, qps_ax, update_ax):
            ax.set_xticks(sorted({s["step"] for result in results for s in result["steps"]}))
            ax.grid(True, alpha=0.3)
        # The results' legend below the panels, where it covers no line; the builds' in their panel.
        fig.legend(*recall_ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize="small")
        update_ax.legend(fontsize="x-small")
        fig.suptitle(title)
        save_figure(fig, output)
    finally:
        plt.close(fig)
    return output

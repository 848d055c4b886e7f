"""Recall vs QPS plots (any two metrics from the table), one Pareto frontier per algorithm.

`python plot.py --dataset glove-100-angular` writes results/glove-100-angular.png.

Default output: <results>/<dataset>[-k<count>][-batch][-<x>-vs-<y>].png, where -k<count>
appears only when count is not 10 and -<x>-vs-<y> only when the axes are not the default
k-nn vs qps, so plots of different settings never overwrite each other.

An algorithm keeps its colour and marker in every plot: both come from its place in
algorithms.yaml (or a hash of its name), not from which algorithms happen to be present.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import math
import sys
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .. import log as logsetup
from ..atomic import write_atomically
from ..errors import UserError, report
from ..run.definitions import load_algorithms
from ..usage import Formatter
from .cache import metrics_for_results
from .common import DEFAULT_COUNT, add_common_arguments, dataset_name, mode_label, no_results_message, positive_int
from .metrics import METRICS
from .pareto import pareto_frontier

log = logging.getLogger(__name__)

DEFAULT_X, DEFAULT_Y = "k-nn", "qps"
SCALES = ("linear", "log", "logit")
# Recall 1.0 (or 0.0) cannot be drawn on a logit axis; it is drawn this close to the edge, or
# closer when some other value is nearer the edge, so that the order of points is kept.
LOGIT_CLAMP = 1e-4

# Colours that stay apart on white: Tableau 10 and six darker or brighter ones of other hues.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#000000", "#1a237e", "#7b1e1e", "#00796b", "#c9a400", "#c51b8a",
)
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "p", "h")


def algorithm_style(algorithm: str) -> tuple[str, str]:
    """(colour, marker) for an algorithm, the same in every plot and on every machine.

    Entries of algorithms.yaml take the pairs in file order, so no two share a style; any
    other name (from another definitions file) hashes into the same palettes.
    """
    registry = _registered_names()
    if algorithm in registry:
        index = registry.index(algorithm)
    else:
        index = int.from_bytes(hashlib.sha256(algorithm.encode()).digest()[:4], "big")
    return PALETTE[index % len(PALETTE)], MARKERS[(index // len(PALETTE)) % len(MARKERS)]


@lru_cache(maxsize=1)
def _registered_names() -> list[str]:
    try:
        return list(load_algorithms())
    except UserError:
        return []  # a broken algorithms.yaml must not stop a plot of finished results


def default_output(results_dir: Path | str, dataset: str, count: int = DEFAULT_COUNT, batch: bool = False,
                   x: str = DEFAULT_X, y: str = DEFAULT_Y) -> Path:
    stem = dataset
    if count != DEFAULT_COUNT:
        stem += f"-k{count}"
    if batch:
        stem += "-batch"
    if (x, y) != (DEFAULT_X, DEFAULT_Y):
        stem += f"-{x}-vs-{y}"
    return Path(results_dir) / f"{stem}.png"


def logit_clamp(values: list[float]) -> float:
    """How close to 0 and 1 the values 0 and 1 are drawn on a logit axis."""
    inside = [v for v in values if 0.0 < v < 1.0]
    return min([LOGIT_CLAMP] + [min(v, 1.0 - v) / 2 for v in inside])


def _drawable(value: float, scale: str, metric: str, clamp: float = LOGIT_CLAMP) -> float | None:
    """The value as it can be drawn on the scale; None where the point cannot be drawn."""
    if not math.isfinite(value) or (scale == "log" and value <= 0):
        return None
    if scale == "logit":
        if not 0.0 <= value <= 1.0:
            raise UserError(f"metric {metric} has value {value:g} outside [0, 1]; a logit scale cannot show it")
        return min(max(value, clamp), 1.0 - clamp)
    return value


def draw(ax, rows: list[dict], x_metric: str = DEFAULT_X, y_metric: str = DEFAULT_Y, x_scale: str = "linear",
         y_scale: str = "log", raw: bool = False) -> dict:
    """Draw each algorithm's frontier (with raw, every point too); returns {algorithm: its line}."""
    mx, my = METRICS[x_metric], METRICS[y_metric]
    by_algorithm: dict[str, list[tuple[float, float]]] = defaultdict(list)
    skipped = 0
    x_clamp = logit_clamp([row[x_metric] for row in rows])
    y_clamp = logit_clamp([row[y_metric] for row in rows])
    for row in rows:
        x = _drawable(row[x_metric], x_scale, x_metric, x_clamp)
        y = _drawable(row[y_metric], y_scale, y_metric, y_clamp)
        if x is None or y is None:
            skipped += 1
        else:
            by_algorithm[row["algorithm"]].append((x, y))
    if skipped:
        log.warning("%d of %d results have no %s/%s value that a %s/%s plot can show; they are left out",
                    skipped, len(rows), x_metric, y_metric, x_scale, y_scale)

    lines = {}
    for algorithm in sorted(by_algorithm):
        points = by_algorithm[algorithm]
        colour, marker = algorithm_style(algorithm)
        frontier = [points[i] for i in pareto_frontier(points, mx.better, my.better)]
        if raw:
            ax.scatter([p[0] for p in points], [p[1] for p in points], color=colour, marker=marker,
                       s=18, alpha=0.35, linewidths=0)
        (lines[algorithm],) = ax.plot([p[0] for p in frontier], [p[1] for p in frontier], color=colour,
                                      marker=marker, markersize=6, linewidth=1.5, label=algorithm)

    ax.set_xscale(x_scale)
    ax.set_yscale(y_scale)
    for axis, scale, clamp, metric in ((ax.xaxis, x_scale, x_clamp, x_metric), (ax.yaxis, y_scale, y_clamp, y_metric)):
        if scale == "logit" and any(row[metric] in (0.0, 1.0) for row in rows):
            _mark_logit_ends(ax, axis, clamp)
    ax.set_xlabel(mx.description)
    ax.set_ylabel(my.description)
    ax.grid(True, which="major", linestyle="-", alpha=0.4)
    ax.grid(True, which="minor", linestyle=":", alpha=0.2)
    if lines:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="algorithm")
    return lines


def _mark_logit_ends(ax, axis, clamp: float) -> None:
    """Label the positions where 0 and 1 are drawn on a logit axis "0" and "1"."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    ax.get_xlim(), ax.get_ylim()  # settle the view limits so the locator sees them
    low, high = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_major_locator()() if low <= t <= high and clamp < t < 1 - clamp]
    ends = {clamp: "0", 1.0 - clamp: "1"}
    default = axis.get_major_formatter()
    default.set_locs(ticks)
    axis.set_major_locator(FixedLocator(sorted(ticks + [e for e in ends if low <= e <= high])))
    axis.set_major_formatter(FuncFormatter(lambda v, pos: ends.get(v) or default(v)))


def plot_rows(rows: list[dict], output: Path | str, x_metric: str = DEFAULT_X, y_metric: str = DEFAULT_Y,
              x_scale: str = "linear", y_scale: str = "log", raw: bool = False, title: str = "") -> Path:
    """Plot the rows (from metrics_for_results) and write the image atomically."""
    import matplotlib  # here, so that importing this module (export does) stays cheap

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6.5), layout="constrained")
    try:
        draw(ax, rows, x_metric, y_metric, x_scale, y_scale, raw)
        if title:
            ax.set_title(title)
        output = Path(output)
        fmt = output.suffix.lstrip(".").lower() or "png"
        if fmt not in fig.canvas.get_supported_filetypes():
            raise UserError(f"cannot write a .{fmt} image; name the output .png (or .svg, .pdf)")
        image = io.BytesIO()
        fig.savefig(image, format=fmt, dpi=120)
        write_atomically(output, image.getvalue())
    finally:
        plt.close(fig)
    return output


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plot.py", formatter_class=Formatter,
                                description="Plot two metrics (default recall vs QPS) for every algorithm run on "
                                "a dataset, one Pareto frontier per algorithm.")
    metrics = ", ".join(METRICS)
    p.add_argument("--dataset", required=True, metavar="NAME", help="dataset name, e.g. glove-100-angular")
    p.add_argument("-k", "--count", type=positive_int, default=DEFAULT_COUNT, metavar="K",
                   help="neighbours per query of the results to plot")
    p.add_argument("-x", "--x-axis", choices=list(METRICS), default=DEFAULT_X, metavar="METRIC",
                   help=f"metric on the x axis, one of: {metrics}")
    p.add_argument("-y", "--y-axis", choices=list(METRICS), default=DEFAULT_Y, metavar="METRIC",
                   help="metric on the y axis")
    p.add_argument("-X", "--x-scale", choices=SCALES, default="linear", metavar="SCALE",
                   help=f"x axis scale: {', '.join(SCALES)}")
    p.add_argument("-Y", "--y-scale", choices=SCALES, default="log", metavar="SCALE", help="y axis scale")
    p.add_argument("--raw", action="store_true", help="draw every result, not only the frontiers")
    p.add_argument("--batch", action="store_true", help="plot batch-mode results")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="image file (default <results>/<dataset>[-k<count>][-batch][-<x>-vs-<y>].png)")
    add_common_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup_from(args)
    try:
        dataset = dataset_name(args.dataset, args.data_dir, args.results)
        rows = metrics_for_results(args.results, dataset, args.count, batch=args.batch, data_dir=args.data_dir)
        if not rows:
            print(no_results_message(args.results, dataset, args.count, args.batch), file=sys.stderr)
            return 2
        output = args.output or default_output(args.results, dataset, args.count, args.batch,
                                               args.x_axis, args.y_axis)
        title = f"{dataset}: k={args.count}, {mode_label(args.batch)}"
        plot_rows(rows, output, args.x_axis, args.y_axis, args.x_scale, args.y_scale, args.raw, title)
    except UserError as e:
        return report(e)
    n_algorithms = len({row["algorithm"] for row in rows})
    print(f"wrote {output} ({len(rows)} results, {n_algorithms} algorithms)")
    return 0

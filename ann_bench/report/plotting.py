"""Recall vs QPS plots (any two metrics from the table), one Pareto frontier per algorithm.

`python plot.py --dataset glove-100-angular` writes results/glove-100-angular.png;
`python plot.py --all` draws every dataset, k and mode in results/ (and each concurrent clients' figure,
concurrency.py, beside them). A streaming set gets its figure per search step (streaming.py) beside its plot.

Default output: <results>/<dataset>[-k<count>][-batch][-<x>-vs-<y>].<png|svg|pdf>, where
-k<count> appears only when count is not 10 and -<x>-vs-<y> only when the axes are not the
default k-nn vs qps, so plots of different settings never overwrite each other.

An algorithm keeps its colour, marker and dash in every plot (styles.py), whichever other
algorithms happen to be present.
"""

from __future__ import annotations

import argparse
import io
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

from .. import log as logsetup
from ..atomic import write_atomically
from ..errors import UserError, report
from ..results.files import iter_result_paths
from ..usage import Formatter
from . import concurrency, streaming
from .cache import metrics_for_results
from .common import (
    DEFAULT_COUNT,
    add_common_arguments,
    dataset_name,
    drawn_hollow,
    mixed_executors,
    mode_label,
    no_results_message,
    positive_int,
    result_groups,
    run_command,
    series_name,
)
from .concurrency import DEFAULT_RECALL, clients_points, plot_clients
from .machines import machines
from .metrics import METRICS
from .pareto import pareto_frontier
from .styles import algorithm_style

log = logging.getLogger(__name__)

DEFAULT_X, DEFAULT_Y = "k-nn", "qps"
SCALES = ("linear", "log", "logit")
# Recall 1.0 (or 0.0) cannot be drawn on a logit axis; it is drawn this close to the edge, or
# closer when some other value is nearer the edge, so that the order of points is kept.
LOGIT_CLAMP = 1e-4

def default_output(results_dir: Path | str, dataset: str, count: int = DEFAULT_COUNT, batch: bool = False,
                   x: str = DEFAULT_X, y: str = DEFAULT_Y, fmt: str = "png") -> Path:
    stem = dataset
    if count != DEFAULT_COUNT:
        stem += f"-k{count}"
    if batch:
        stem += "-batch"
    if (x, y) != (DEFAULT_X, DEFAULT_Y):
        stem += f"-{x}-vs-{y}"
    return Path(results_dir) / f"{stem}.{fmt}"


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


# The QPS of each pass lies between the slowest pass's and the best's (the one plotted).
SPREAD_LOW = {"qps": "qps-slowest"}


def _spread(values: list[float], rows: list[dict], metric: str) -> list[list[float]] | None:
    """Error bar lengths [below, above] on an axis of metric: from the slowest pass to the best."""
    low = SPREAD_LOW.get(metric)
    if low is None:
        return None
    below = [value - row[low] if math.isfinite(row[low]) else 0.0 for value, row in zip(values, rows)]
    return [below, [0.0] * len(values)]


def draw(ax, rows: list[dict], x_metric: str = DEFAULT_X, y_metric: str = DEFAULT_Y, x_scale: str = "linear",
         y_scale: str = "log", raw: bool = False, errorbars: bool = False, legend_columns: int = 1) -> dict:
    """Draw each algorithm's frontier (with raw, every point too; with errorbars, the spread
    from the slowest to the fastest pass on a QPS axis); returns {algorithm: its line}, where an
    algorithm with runs from two executors has a line for each ("hnswlib (docker)")."""
    mx, my = METRICS[x_metric], METRICS[y_metric]
    by_series: dict[str, list[tuple[float, float, dict]]] = defaultdict(list)
    skipped = 0
    mixed = mixed_executors(rows)
    x_clamp = logit_clamp([row[x_metric] for row in rows])
    y_clamp = logit_clamp([row[y_metric] for row in rows])
    for row in rows:
        x = _drawable(row[x_metric], x_scale, x_metric, x_clamp)
        y = _drawable(row[y_metric], y_scale, y_metric, y_clamp)
        if x is None or y is None:
            skipped += 1
        else:
            by_series[series_name(row, mixed)].append((x, y, row))
    if skipped:
        log.warning("%d of %d results have no %s/%s value that a %s/%s plot can show; they are left out",
                    skipped, len(rows), x_metric, y_metric, x_scale, y_scale)
    if errorbars and x_metric not in SPREAD_LOW and y_metric not in SPREAD_LOW:
        log.warning("error bars show the spread of QPS over passes; neither %s nor %s is QPS", x_metric, y_metric)

    lines = {}
    for series in sorted(by_series):
        points = by_series[series]
        first = points[0][2]
        style = algorithm_style(first["algorithm"])
        frontier = [points[i] for i in pareto_frontier([p[:2] for p in points], mx.better, my.better)]
        if raw:
            ax.scatter([p[0] for p in points], [p[1] for p in points], color=style.colour, marker=style.marker,
                       s=18, alpha=0.35, linewidths=0)
        fill = "none" if drawn_hollow(first, mixed) else "full"
        (lines[series],) = ax.plot([p[0] for p in frontier], [p[1] for p in frontier], color=style.colour,
                                   marker=style.marker, linestyle=style.dash, fillstyle=fill, label=series)
        if errorbars:
            shown = points if raw else frontier
            shown_rows = [p[2] for p in shown]
            xerr = _spread([p[0] for p in shown], shown_rows, x_metric)
            yerr = _spread([p[1] for p in shown], shown_rows, y_metric)
            if xerr or yerr:
                ax.errorbar([p[0] for p in shown], [p[1] for p in shown], xerr=xerr, yerr=yerr, fmt="none",
                            ecolor=style.colour, elinewidth=0.8, capsize=2, alpha=0.8)

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
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="algorithm",
                  ncols=legend_columns, handlelength=3.0)
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


@dataclass(frozen=True)
class Page:
    """A figure's size (inches), lettering (points) and raster resolution (PNG only)."""

    size: tuple[float, float]
    font: float
    dpi: int


SCREEN = Page((10, 6.5), 10, 120)
# Two columns of a paper: 7 in wide, 8 pt text, 300 dpi; vector formats ignore the dpi.
PAPER = Page((7.0, 4.3), 8, 300)
FORMATS = ("png", "svg", "pdf")
LEGEND_ROWS = 24  # at most this many entries in one legend column


def plot_rows(rows: list[dict], output: Path | str, x_metric: str = DEFAULT_X, y_metric: str = DEFAULT_Y,
              x_scale: str = "linear", y_scale: str = "log", raw: bool = False, title: str = "",
              errorbars: bool = False, page: Page = SCREEN) -> Path:
    """Plot the rows (from metrics_for_results) and write the image atomically; its format
    follows the output's suffix (.png, .svg, .pdf)."""
    import matplotlib  # here, so that importing this module (export does) stays cheap

    matplotlib.use("Agg")  # no display
    import matplotlib.pyplot as plt

    output = Path(output)
    fmt = output.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise UserError(f"cannot write a .{fmt} image; name the output .png, .svg or .pdf")
    n_algorithms = len({row["algorithm"] for row in rows})
    # Markers and lines scale with the lettering; the legend (up to 35 entries) is a size smaller.
    with plt.rc_context({"font.size": page.font, "legend.fontsize": "small", "lines.markersize": page.font / 2,
                         "lines.linewidth": 1.3, "svg.fonttype": "none", "pdf.fonttype": 42}):
        fig, ax = plt.subplots(figsize=page.size, layout="constrained")
        try:
            draw(ax, rows, x_metric, y_metric, x_scale, y_scale, raw, errorbars,
                 legend_columns=math.ceil(n_algorithms / LEGEND_ROWS) or 1)
            if title:
                ax.set_title(title)
            image = io.BytesIO()
            # No creation date in SVG and PDF, so the same results give the same bytes.
            fig.savefig(image, format=fmt, dpi=page.dpi,
                        metadata={"Date": None} if fmt in ("svg", "pdf") else None)
            write_atomically(output, image.getvalue())
        finally:
            plt.close(fig)
    return output


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plot.py", formatter_class=Formatter,
                                description="Plot two metrics (default recall vs QPS) for every algorithm run on "
                                "a dataset, one Pareto frontier per algorithm.")
    metrics = ", ".join(METRICS)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", metavar="NAME", help="dataset name, e.g. glove-100-angular")
    which.add_argument("--all", action="store_true",
                       help="every dataset, k and mode in the results directory, each to its default output")
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
    p.add_argument("--errorbars", action="store_true",
                   help="show the spread of QPS over the timed passes, from the slowest pass to the fastest")
    p.add_argument("--batch", action="store_true", help="plot batch-mode results")
    p.add_argument("--clients", action="store_true",
                   help="plot the concurrent clients' results (run.py --clients): QPS vs clients at a fixed recall "
                        "and p99 latency vs clients, to <results>/<dataset>[-k<count>]-clients.<format>")
    p.add_argument("--recall", type=float, default=DEFAULT_RECALL, metavar="R",
                   help="with --clients: the k-nn recall each algorithm's fastest result must reach")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="image format of the default output; -o FILE follows FILE's suffix")
    p.add_argument("--paper", action="store_true",
                   help=f"size and lettering for a paper: {PAPER.size[0]:g} x {PAPER.size[1]:g} in, "
                        f"{PAPER.font:g} pt text, {PAPER.dpi} dpi")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="image file (default <results>/<dataset>[-k<count>][-batch][-<x>-vs-<y>].<format>)")
    add_common_arguments(p)
    return p


def _plot_one(args: argparse.Namespace, dataset: str, count: int, output: Path | None, batch: bool) -> str:
    """Draw one dataset/k/mode; the line to print. Raises UserError where there is nothing to draw."""
    rows = metrics_for_results(args.results, dataset, count, batch=batch, data_dir=args.data_dir)
    if not rows:
        raise UserError(no_results_message(args.results, dataset, count, batch))
    if output is None:
        output = default_output(args.results, dataset, count, batch, args.x_axis, args.y_axis, args.format)
    title = f"{dataset}: k={count}, {mode_label(batch)}"
    made = machines(row.get("environment") or {} for row in rows)
    if len(made) > 1:  # figures of different machines are not comparable as they stand
        title += f"\nmixes results of {len(made)} machines: {', '.join(sorted(made))}"
    plot_rows(rows, output, args.x_axis, args.y_axis, args.x_scale, args.y_scale, args.raw, title,
              args.errorbars, PAPER if args.paper else SCREEN)
    n_algorithms = len({row["algorithm"] for row in rows})
    return f"wrote {output} ({len(rows)} results, {n_algorithms} algorithms){_plot_steps(args, dataset, count)}"


def _plot_steps(args: argparse.Namespace, dataset: str, count: int) -> str:
    """A streaming set's figure per search step, beside its plot; what to add to the line printed."""
    found = streaming.runbook_steps(dataset, args.data_dir)
    if found is None:
        return ""
    truth, ops = found
    results = streaming.stream_results(args.results, dataset, count, truth, ops)
    output = streaming.default_output(args.results, dataset, count, args.format)
    streaming.plot_steps(results, output, f"{dataset}: k={count}, per search step")
    return f"; wrote {output} (recall, QPS and update throughput per search step)"


def _plot_clients(args: argparse.Namespace, dataset: str, count: int, output: Path | None) -> str:
    """Draw the concurrent clients' figure of one dataset/k; the line to print."""
    rows = metrics_for_results(args.results, dataset, count, data_dir=args.data_dir, clients=True)
    points = clients_points(rows, args.recall)
    if not points:
        raise UserError(f"no concurrent clients' result of {dataset} (k={count}) in {args.results}/ reaches recall "
                        f"{args.recall:g}; make some with: {run_command(dataset, count, False, args.results)} "
                        f"--clients 1,2 (or lower --recall)")
    output = output or concurrency.default_output(args.results, dataset, count, args.format)
    plot_clients(points, output, f"{dataset}: k={count}, concurrent clients", args.recall)
    return f"wrote {output} ({len(points)} points, {len({p.algorithm for p in points})} algorithms)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    if args.all and args.output:
        parser.error("--all writes each plot to its default output; leave out --output")
    try:
        if not args.all:
            dataset = dataset_name(args.dataset, args.data_dir, args.results)
            plot = _plot_clients if args.clients else partial(_plot_one, batch=args.batch)
            print(plot(args, dataset, args.count, output=args.output))
            return 0
        groups = result_groups(args.results)
        if not groups:
            raise UserError(f"no results in {args.results}/; make some with: python run.py --dataset NAME")
        drawn = 0
        for dataset, count, modes in groups:
            for batch in modes:
                try:
                    print(_plot_one(args, dataset, count, None, batch))
                    drawn += 1
                except UserError as e:  # one dataset without ok results or data does not stop the rest
                    log.warning("%s", e)
            if next(iter_result_paths(args.results, dataset, count, clients=True), None) is not None:
                try:
                    print(_plot_clients(args, dataset, count, None))
                except UserError as e:
                    log.warning("%s", e)
        if not drawn:
            raise UserError(f"nothing to plot in {args.results}/: every dataset has only failed results")
    except UserError as e:
        return report(e)
    return 0

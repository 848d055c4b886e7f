"""Plotly figures (plain dicts, drawn in the page by plotly.js) from metric rows.

Each chart of a dataset page has one trace per algorithm with its Pareto frontier (meta kind
"frontier"); the recall/QPS chart adds every run as faint points (kind "runs"), error bars from
the slowest to the fastest pass, and a ring around frontier runs whose passes disagree by more
than 10 % (kind "unsettled"; the hover text of any such run says so too). A run that a chart
cannot place (no value, or not positive on a log axis) is counted in the chart's note, never
dropped without a word.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass

from ..common import drawn_hollow, mixed_executors, series_name
from ..metrics import METRICS
from ..pareto import pareto_frontier
from ..styles import algorithm_style
from ..tables import pass_spread, unsettled
from .model import args_text


@dataclass(frozen=True)
class Chart:
    x: str
    y: str
    x_log: bool = False
    y_log: bool = True
    title: str = ""


MAIN = Chart("k-nn", "qps", title="Recall vs queries per second")
PAIRS = (
    Chart("k-nn", "build", title="Recall vs build time"),
    Chart("k-nn", "indexsize", title="Recall vs index size"),
    Chart("k-nn", "p99", title="Recall vs p99 latency"),
    Chart("epsilon-0.01", "qps", title="Epsilon 0.01 recall vs queries per second"),
    Chart("rel", "qps", title="Relative distance error vs queries per second"),
)
# Why a run may lack a metric, said under a chart that leaves it out.
MISSING_REASON = {
    "p50": "no per-query latencies in its file (an older harness or ann-benchmarks)",
    "p99": "no per-query latencies in its file (an older harness or ann-benchmarks)",
    "build": "no build time in its file",
    "indexsize": "no index size in its file",
}
RECALLS = ("k-nn", "epsilon-0.01", "epsilon-0.1")
UNSETTLED_COLOUR = "#d62728"
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def number(value: float, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def hover_text(row: dict) -> str:
    """What hovering a run shows: who, with which arguments, and its figures."""
    e = html.escape
    build = args_text(row.get("build_args"))
    query = args_text(row.get("query_args"))
    lines = [f"<b>{e(row['algorithm'])}</b>"]
    if row.get("build_args") is None and row.get("query_args") is None:
        lines.append(f"{e(row.get('name') or '')} (arguments not recorded)")
    else:
        lines.append(f"build: {e(build) or '(none)'}")
        lines.append(f"query: {e(query) or '(none)'}")
    qps_line = f"QPS {number(row['qps'])}"
    if math.isfinite(row.get("qps-slowest", math.nan)):
        qps_line += f" (slowest pass {number(row['qps-slowest'])}"
        qps_line += f", cv {row['qps-cv'] * 100:.1f} %)" if math.isfinite(row.get("qps-cv", math.nan)) else ")"
    lines.append(qps_line)
    if unsettled(row):
        lines.append(f"⚠ passes differ by {pass_spread(row) * 100:.0f} %")
    lines.append(f"recall {number(row['k-nn'])}")
    lines.append(f"p50 {number(row['p50'])} ms · p99 {number(row['p99'])} ms")
    lines.append(f"build {number(row['build'])} s · index {number(row['indexsize'])} kB")
    return "<br>".join(lines)


def _placeable(value: float, log_axis: bool) -> bool:
    return value is not None and math.isfinite(value) and (value > 0 or not log_axis)


def _axis(metric: str, log_axis: bool, values: list[float]) -> dict:
    axis: dict[str, object] = {"title": {"text": METRICS[metric].description}, "type": "log" if log_axis else "linear",
            "automargin": True}
    if metric in RECALLS and values:
        # A recall axis ends at 1, not where Plotly's autorange pads to (0 to 2 when every run
        # is at recall 1), and starts a little below its lowest run.
        low = min(values)
        pad = max(0.005, (1.0 - low) * 0.04)
        axis["range"] = [low - pad, 1.0 + pad]
    return axis


def _scatter(rows: list[dict], chart: Chart, texts: dict[str, str]) -> dict:
    return {"type": "scatter", "x": [r[chart.x] for r in rows], "y": [r[chart.y] for r in rows],
            "text": [texts[r["path"]] for r in rows], "hovertemplate": "%{text}<extra></extra>"}


def _spread_bars(rows: list[dict], colour: str) -> dict:
    below = [r["qps"] - r["qps-slowest"] if math.isfinite(r.get("qps-slowest", math.nan)) else 0.0 for r in rows]
    return {"type": "data", "symmetric": False, "array": [0.0] * len(rows), "arrayminus": below,
            "color": colour, "thickness": 1, "width": 3}


def figure(rows: list[dict], chart: Chart, texts: dict[str, str], every_run: bool = False,
           height: int = 520) -> tuple[dict, str]:
    """The figure of one metric pair, and its note ("" or which runs it cannot show and why)."""
    mx, my = METRICS[chart.x], METRICS[chart.y]
    # One frontier per algorithm, and per executor where its runs come from both (as plot.py).
    mixed = mixed_executors(rows)
    placed: dict[str, list[dict]] = defaultdict(list)
    left_out: dict[tuple[str, bool], int] = defaultdict(int)  # (metric, has a value) -> runs
    for row in rows:
        for metric, log_axis in ((chart.x, chart.x_log), (chart.y, chart.y_log)):
            value = row.get(metric, math.nan)
            if not _placeable(value, log_axis):
                left_out[(metric, value is not None and math.isfinite(value))] += 1
                break
        else:
            placed[series_name(row, mixed)].append(row)
    spread = chart.y == "qps"
    traces = []
    flagged = []  # frontier runs whose passes disagree: the figures a reader takes away
    for series in sorted(placed):
        runs = placed[series]
        algorithm = runs[0]["algorithm"]
        style = algorithm_style(algorithm)
        symbol = style.plotly_marker + ("-open" if drawn_hollow(runs[0], mixed) else "")
        frontier = [runs[i] for i in pareto_frontier([(r[chart.x], r[chart.y]) for r in runs], mx.better, my.better)]
        trace = {**_scatter(frontier, chart, texts), "mode": "lines+markers", "name": series,
                 "legendgroup": series, "meta": {"kind": "frontier", "algorithm": algorithm},
                 "line": {"color": style.colour, "dash": style.plotly_dash, "width": 1.5},
                 "marker": {"color": style.colour, "symbol": symbol, "size": 7}}
        if spread:
            trace["error_y"] = _spread_bars(frontier, style.colour)
            flagged += [r for r in frontier if unsettled(r)]
        traces.append(trace)
        if every_run:
            points = {**_scatter(runs, chart, texts), "mode": "markers", "name": f"{series}: every run",
                      "legendgroup": series, "showlegend": False, "opacity": 0.35,
                      "meta": {"kind": "runs", "algorithm": algorithm},
                      "marker": {"color": style.colour, "symbol": symbol, "size": 5}}
            if spread:
                points["error_y"] = _spread_bars(runs, style.colour)
            traces.append(points)
    if flagged:
        traces.append({**_scatter(flagged, chart, texts), "mode": "markers",
                       "name": "passes differ > 10 %", "meta": {"kind": "unsettled"},
                       "marker": {"symbol": "circle-open", "size": 13, "color": UNSETTLED_COLOUR,
                                  "line": {"width": 1.5, "color": UNSETTLED_COLOUR}}})
    shown = [r for runs in placed.values() for r in runs]
    layout = {"xaxis": _axis(chart.x, chart.x_log, [r[chart.x] for r in shown]),
              "yaxis": _axis(chart.y, chart.y_log, [r[chart.y] for r in shown]), "height": height,
              "margin": {"l": 70, "r": 20, "t": 30, "b": 60}, "hovermode": "closest",
              "legend": {"title": {"text": "algorithm (click to hide)"}}}
    notes = []
    for (metric, has_value), n in sorted(left_out.items()):
        if has_value:
            why = f"{metric} is 0 or less, which a log axis cannot show"
        else:
            why = f"no {metric} value" + (f" ({MISSING_REASON[metric]})" if metric in MISSING_REASON else "")
        notes.append(f"{n} of {len(rows)} runs are not drawn: {why}")
    return {"data": traces, "layout": layout, "config": CONFIG}, "; ".join(notes) + ("." if notes else "")


def thumbnail(rows: list[dict], texts: dict[str, str]) -> dict:
    """A small recall/QPS chart of frontiers for the index: no legend, no interaction."""
    fig, _ = figure(rows, MAIN, texts, height=240)
    fig["data"] = [trace for trace in fig["data"] if trace["meta"]["kind"] == "frontier"]
    for trace in fig["data"]:
        trace.pop("error_y")
    fig["layout"].update(showlegend=False, margin={"l": 50, "r": 10, "t": 10, "b": 40})
    fig["config"] = {"staticPlot": True, "responsive": True}
    return fig


def build_figure(rows: list[dict], texts: dict[str, str], height: int = 440) -> tuple[dict, str]:
    """One algorithm's recall/QPS runs on one dataset, one trace per build (its build arguments)."""
    builds: dict[str, list[dict]] = defaultdict(list)
    left_out = 0
    for row in rows:
        if _placeable(row["k-nn"], False) and _placeable(row["qps"], True):
            builds[args_text(row.get("build_args")) or row.get("name") or "(arguments not recorded)"].append(row)
        else:
            left_out += 1
    traces = []
    for label, runs in sorted(builds.items()):
        runs.sort(key=lambda r: r["k-nn"])
        traces.append({**_scatter(runs, MAIN, texts), "mode": "lines+markers", "name": label,
                       "meta": {"kind": "build", "build": label}, "error_y": _spread_bars(runs, "#555555"),
                       "marker": {"size": 6}})
    shown = [r for runs in builds.values() for r in runs]
    layout = {"xaxis": _axis("k-nn", False, [r["k-nn"] for r in shown]), "yaxis": _axis("qps", True, []),
              "height": height,
              "margin": {"l": 70, "r": 20, "t": 30, "b": 60}, "hovermode": "closest",
              "legend": {"title": {"text": "build arguments"}}}
    note = f"{left_out} of {len(rows)} runs are not drawn: no recall or QPS value." if left_out else ""
    return {"data": traces, "layout": layout, "config": CONFIG}, note


# A streaming set's charts over its search steps (report/streaming.py's figures): (figure key,
# axis title, log axis, chart title).
STEP_CHARTS = (
    ("recall", "k-nn recall of the live rows", False, "Recall at each search step"),
    ("qps", "Queries per second (1/s)", True, "Queries per second at each search step"),
)
STEP_UPDATES = (("insert_rate", "inserted", "insert", "solid"), ("delete_rate", "deleted", "delete", "dash"))


def _step_layout(y_title: str, y_log: bool, steps: list[int], legend: str) -> dict:
    return {"xaxis": {"title": {"text": "search step"}, "tickvals": steps, "automargin": True},
            "yaxis": {"title": {"text": y_title}, "type": "log" if y_log else "linear", "automargin": True},
            "height": 420, "margin": {"l": 70, "r": 20, "t": 30, "b": 60}, "hovermode": "closest",
            "legend": {"title": {"text": legend}}}


def _step_trace(name: str, algorithm: str, steps: list[dict], key: str, texts: list[str], dash: str,
                meta: dict) -> dict:
    """One line over the search steps, in the algorithm's colour and marker."""
    style = algorithm_style(algorithm)
    return {"type": "scatter", "mode": "lines+markers", "name": name, "legendgroup": algorithm,
            "meta": {"algorithm": algorithm, **meta}, "x": [s["step"] for s in steps], "y": [s[key] for s in steps],
            "text": texts, "hovertemplate": "%{text}<extra></extra>",
            "line": {"color": style.colour, "dash": dash, "width": 1.5},
            "marker": {"color": style.colour, "symbol": style.plotly_marker, "size": 6}}


def step_charts(entries: list[dict]) -> list[tuple[dict, str]]:
    """Recall and QPS per search step, one line per run, and the update throughput before each
    step, one line per build and operation (rows/s; a gap where a step had none), with titles."""
    steps = sorted({s["step"] for entry in entries for s in entry["steps"]})
    charts = []
    for key, y_title, y_log, title in STEP_CHARTS:
        traces = [_step_trace(entry["name"], entry["algorithm"], entry["steps"], key,
                              [f"<b>{html.escape(entry['name'])}</b><br>step {s['step']}: {key} {number(s[key])}"
                               for s in entry["steps"]],
                              algorithm_style(entry["algorithm"]).plotly_dash, {"kind": "steps"})
                  for entry in sorted(entries, key=lambda e: (e["algorithm"], e["name"]))]
        charts.append(({"data": traces, "layout": _step_layout(y_title, y_log, steps, "run (click to hide)"),
                        "config": CONFIG}, title))
    builds: dict[tuple[str, str], dict] = {}
    for entry in entries:  # the updates of one build are the same for each of its query arguments
        builds.setdefault((entry["algorithm"], args_text(entry["build_args"])), entry)
    traces = []
    for (algorithm, build), entry in sorted(builds.items()):
        for key, rows, operation, dash in STEP_UPDATES:
            if not any(s[rows] for s in entry["steps"]):
                continue  # a runbook without deletes (say) gets no empty line in the legend
            label = f"{algorithm} {build}: {operation}".replace(" :", ":")
            texts = [f"<b>{html.escape(label)}</b><br>step {s['step']}: {s[rows]:,} rows, {number(s[key])} rows/s"
                     for s in entry["steps"]]
            traces.append(_step_trace(label, algorithm, entry["steps"], key, texts, dash,
                                      {"kind": "updates", "operation": operation}))
    charts.append(({"data": traces, "layout": _step_layout("rows per second", True, steps, "build (click to hide)"),
                    "config": CONFIG}, "Updates before each search step (solid: insert, dashed: delete)"))
    return charts

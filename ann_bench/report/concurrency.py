"""Concurrent clients (run.py --clients N): aggregate QPS and p99 latency against N.

Each result under <algorithm>-c<N>/ is one build, one query-argument set and one N. For an
algorithm and N the figure takes the fastest result whose recall reaches a target ("QPS vs
clients at fixed recall"), and that result's p99 latency ("p99 latency vs clients"); a thin
line shows perfect scaling from the algorithm's fewest clients (its QPS there times N / that N).
`python plot.py --dataset NAME --clients` draws both; the site shows them on the dataset's page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .common import DEFAULT_COUNT, save_figure
from .styles import algorithm_style

DEFAULT_RECALL = 0.9


@dataclass(frozen=True)
class ClientsPoint:
    """The fastest result of one algorithm with `clients` clients at the target recall."""

    algorithm: str
    clients: int
    qps: float
    p99: float  # ms
    recall: float
    name: str


def clients_points(rows: list[dict], recall: float = DEFAULT_RECALL) -> list[ClientsPoint]:
    """One point per (algorithm, clients) among rows (metrics_for_results(..., clients=True)),
    sorted by algorithm and clients; none where no result reaches the recall."""
    best: dict[tuple[str, int], dict] = {}
    for row in rows:
        if row.get("clients") is None or not row["k-nn"] >= recall or not math.isfinite(row["qps"]):
            continue
        key = (row["algorithm"], int(row["clients"]))
        if key not in best or row["qps"] > best[key]["qps"]:
            best[key] = row
    return [ClientsPoint(algorithm, clients, row["qps"], row["p99"], row["k-nn"], row["name"])
            for (algorithm, clients), row in sorted(best.items())]


def scaling(points: list[ClientsPoint]) -> dict[str, list[tuple[int, float]]]:
    """algorithm -> (clients, QPS / (QPS at its fewest clients x clients / fewest)) for each N:
    1.0 is perfect scaling."""
    out: dict[str, list[tuple[int, float]]] = {}
    for point in points:
        series = out.setdefault(point.algorithm, [])
        if not series:
            base = point
        series.append((point.clients, point.qps / (base.qps * point.clients / base.clients)))
    return out


def default_output(results_dir: Path | str, dataset: str, count: int = DEFAULT_COUNT, fmt: str = "png") -> Path:
    stem = dataset + (f"-k{count}" if count != DEFAULT_COUNT else "")
    return Path(results_dir) / f"{stem}-clients.{fmt}"


def plot_clients(points: list[ClientsPoint], output: Path | str, title: str, recall: float) -> Path:
    """Two panels side by side: QPS vs clients (with perfect scaling as a thin line) and p99 vs clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = Path(output)
    fig, (qps_ax, p99_ax) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    try:
        for algorithm in dict.fromkeys(point.algorithm for point in points):
            mine = [point for point in points if point.algorithm == algorithm]
            style = algorithm_style(algorithm)
            n = [point.clients for point in mine]
            line = dict(color=style.colour, marker=style.marker, linestyle=style.dash, label=algorithm)
            qps_ax.plot(n, [point.qps for point in mine], **line)
            qps_ax.plot(n, [mine[0].qps * c / mine[0].clients for c in n], color=style.colour, linestyle="-",
                        linewidth=0.6, alpha=0.5)
            p99_ax.plot(n, [point.p99 for point in mine], **line)
        qps_ax.set(xlabel="clients", ylabel="Queries per second, all clients (1/s)",
                   title=f"QPS vs clients at recall >= {recall:g} (thin lines: perfect scaling)")
        p99_ax.set(xlabel="clients", ylabel="Latency p99 (ms)", title="p99 latency vs clients")
        for ax in (qps_ax, p99_ax):
            ax.set_xticks(sorted({point.clients for point in points}))
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
        qps_ax.legend()
        fig.suptitle(title)
        save_figure(fig, output)
    finally:
        plt.close(fig)
    return output


def plotly_figures(points: list[ClientsPoint], recall: float) -> list[tuple[dict, str]]:
    """The site's two figures (Plotly JSON) with their titles: QPS vs clients, p99 vs clients;
    none without points."""
    from .website.charts import CONFIG  # the site's look, imported here: plot.py needs none of the site

    figures: list[tuple[dict, str]] = []
    if not points:
        return figures
    for metric, title, label in (("qps", f"QPS vs clients at recall ≥ {recall:g}", "Queries per second, all clients"),
                                 ("p99", "p99 latency vs clients", "Latency p99 (ms)")):
        traces = []
        for algorithm in dict.fromkeys(point.algorithm for point in points):
            mine = [point for point in points if point.algorithm == algorithm]
            style = algorithm_style(algorithm)
            traces.append({"type": "scatter", "mode": "lines+markers", "name": algorithm,
                           "x": [point.clients for point in mine], "y": [getattr(point, metric) for point in mine],
                           "text": [f"{point.name}<br>recall {point.recall:.3f}" for point in mine],
                           "line": {"color": style.colour, "dash": style.plotly_dash, "width": 1.5},
                           "marker": {"color": style.colour, "symbol": style.plotly_marker, "size": 7}})
        layout = {"height": 420, "xaxis": {"title": {"text": "clients"}, "dtick": 1},
                  "yaxis": {"title": {"text": label}, "rangemode": "tozero"},
                  "margin": {"l": 70, "r": 20, "t": 30, "b": 60}}
        figures.append(({"data": traces, "layout": layout, "config": CONFIG}, title))
    return figures

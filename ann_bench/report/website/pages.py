"""The site's pages from Groups: the index, one page per dataset and k, one per algorithm.

Templates (jinja2) are in templates/, the page script and style in static/; plotly.min.js comes
from the plotly wheel and is written once per site, in assets/, where every page loads it
from (the pages sit in subfolders, so one copy serves them all, as include_plotlyjs='directory'
does for pages in one folder). Every page works from file:// with no network.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ...atomic import write_atomically
from ...errors import UserError
from ...results.files import canonical_json
from ...run.definitions import AlgorithmEntry, load_algorithms
from ..common import mode_label
from ..concurrency import DEFAULT_RECALL, clients_points, plotly_figures, scaling
from ..export import render, table_rows
from ..repeats import SPREAD_METRICS, TITLES
from ..tables import RECALL_TARGETS, pass_spread, qps_at_recall, unsettled
from . import charts
from .logs import log_tail, worker_log
from .model import ENVIRONMENT_KEYS, Group, args_text, date_text, run_algorithm, run_mode, slug

HERE = Path(__file__).parent
MARKER = ".ann-bench-site"  # marks a folder as a site this command made, so stale pages may go


@dataclass
class Figures:
    """The figures of one page, each given a unique element id."""

    items: list[dict] = field(default_factory=list)

    def add(self, fig: dict, title: str = "", note: str = "", kind: str = "chart") -> dict:
        item = {"id": f"fig-{len(self.items)}", "json": _script_json(fig), "title": title, "note": note,
                "kind": kind}
        self.items.append(item)
        return item


def _clean(value: Any) -> Any:
    """JSON has no nan or infinity: they become null (a gap, which Plotly skips)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _script_json(value: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no "</" can close it."""
    return json.dumps(_clean(value), allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = charts.number
    env.filters["percent"] = lambda v: "n/a" if v is None or not math.isfinite(v) else f"{v * 100:.1f} %"
    env.filters["args"] = args_text
    return env


def _texts(rows: Iterable[dict]) -> dict[str, str]:
    return {r["path"]: charts.hover_text(r) for r in rows}


def qps_table(rows: list[dict]) -> list[dict]:
    """The QPS-at-recall table of one mode: per algorithm, per target, the best run's figures."""
    lines = []
    for algorithm, cells in qps_at_recall(rows).items():
        shown: list[dict | None] = []
        for target in RECALL_TARGETS:
            best = cells[target]
            if best is None:
                shown.append(None)
                continue
            r = best.row
            shown.append({"qps": best.qps, "recall": r["k-nn"], "cv": r.get("qps-cv", math.nan),
                          "spread": pass_spread(r), "unsettled": unsettled(r),
                          "params": f"build: {args_text(r.get('build_args')) or '(none)'}; "
                                    f"query: {args_text(r.get('query_args')) or '(none)'}"})
        lines.append({"algorithm": algorithm, "cells": shown})
    return lines


def failure_table(failures: list[dict], unreadable: list[dict]) -> list[dict]:
    """One line per failed definition (build) and reason, with the query arguments it failed
    for and its worker log's last lines; then one per result file that cannot be read."""
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for f in failures:
        grouped[(f["algorithm"], run_mode(f), canonical_json(f.get("build_args")), f["error"])].append(f)
    lines = []
    for (algorithm, mode, _, error), runs in sorted(grouped.items(), key=lambda item: item[0][:3]):
        first = runs[0]
        log_path = worker_log(first["path"], first.get("build_args"))
        lines.append({"algorithm": algorithm, "mode": mode,
                      "build": args_text(first.get("build_args")) or first.get("name") or "",
                      "queries": [args_text(r.get("query_args")) or "(none)" for r in runs],
                      "error": error or "(no reason recorded)", "when": date_text(max(r["mtime_ns"] for r in runs)),
                      "log": str(log_path), "tail": log_tail(log_path)})
    for u in unreadable:
        path = Path(u["path"])
        lines.append({"algorithm": run_algorithm(u), "mode": run_mode(u), "build": path.name, "queries": [],
                      "error": f"result file cannot be read: {u['error']}", "when": "", "log": "", "tail": []})
    return lines


class Site:
    """Writes every page of a site into one folder."""

    def __init__(self, output: Path, results_dir: Path, definitions: Path | None = None):
        self.output = Path(output)
        self.results_dir = Path(results_dir)
        self.env = _environment()
        self.generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.written: set[Path] = set()
        self.entries = _entries(definitions)

    def _write(self, relative: str, text: str | bytes) -> None:
        path = self.output / relative
        write_atomically(path, text)
        self.written.add(path)

    def _page(self, relative: str, template: str, **values: Any) -> None:
        root = "../" * relative.count("/")
        html = self.env.get_template(template).render(root=root, generated=self.generated,
                                                      results_dir=str(self.results_dir), **values)
        self._write(relative, html)

    def assets(self) -> None:
        from plotly.offline import get_plotlyjs

        self._write("assets/plotly.min.js", get_plotlyjs())
        for name in ("site.css", "site.js"):
            self._write(f"assets/{name}", (HERE / "static" / name).read_bytes())

    def index(self, groups: list[Group], algorithms: list[str]) -> None:
        cards = []
        for group in groups:
            mode = next((batch for batch in group.modes if group.rows_of(batch)), None)
            rows = group.rows_of(mode) if mode is not None else []
            figures = Figures()
            thumb = figures.add(charts.thumbnail(rows, _texts(rows)), kind="thumbnail") if rows else None
            cards.append({"group": group, "thumb": thumb, "mode": mode_label(mode) if rows else "",
                          "cpus": group.distinct("cpu_model"), "revisions": group.distinct("harness_revision")})
        self._page("index.html", "index.html", title="ann-bench results", cards=cards,
                   algorithms=[(a, f"algorithms/{slug(a)}.html") for a in algorithms])

    def dataset(self, group: Group) -> None:
        figures = Figures()
        texts = _texts(group.rows)
        modes = []
        for batch in group.modes:
            rows = group.rows_of(batch)
            main = pairs = None
            if rows:
                fig, note = charts.figure(rows, charts.MAIN, texts, every_run=True)
                main = figures.add(fig, charts.MAIN.title, note, kind="main")
                pairs = [figures.add(*_titled(charts.figure(rows, chart, texts, height=420), chart.title))
                         for chart in charts.PAIRS]
            modes.append({"label": mode_label(batch), "batch": batch, "rows": rows, "main": main, "pairs": pairs,
                          "qps": qps_table(rows), "failed": len(group.failures_of(batch))})
        points = clients_points(group.clients_rows)
        concurrent = [figures.add(fig, title) for fig, title in plotly_figures(points, DEFAULT_RECALL)]
        steps = [figures.add(fig, title) for fig, title in charts.step_charts(group.steps)] if group.steps else []
        if group.rows:
            self._write(group.csv, render(table_rows(group.rows, group.dataset, group.count, group.skipped), ".csv"))
        self._page(group.page, "dataset.html", title=group.title, group=group, modes=modes,
                   concurrent=concurrent, steps=steps, scaling=scaling(points), recall=DEFAULT_RECALL,
                   targets=RECALL_TARGETS, failures=failure_table(group.failures, group.unreadable),
                   environment=group.environments(), env_columns=ENVIRONMENT_KEYS,
                   spread_columns=[(m, TITLES[m]) for m in SPREAD_METRICS],
                   csv=group.csv.removeprefix("datasets/") if group.rows else "")

    def algorithm(self, name: str, groups: list[Group]) -> None:
        figures = Figures()
        sections = []
        failures, unreadable = [], []
        for group in groups:
            for batch in group.modes:
                rows = [r for r in group.rows_of(batch) if r["algorithm"] == name]
                failed = [f for f in group.failures_of(batch) if f["algorithm"] == name]
                if not rows and not failed:
                    continue
                chart = figures.add(*_titled(charts.build_figure(rows, _texts(rows)), "")) if rows else None
                versions = sorted({(r.get("library_version") or "unknown") for r in rows + failed})
                sections.append({"group": group, "mode": mode_label(batch), "chart": chart, "runs": len(rows),
                                 "failed": len(failed), "versions": versions,
                                 "builds": len({canonical_json(r.get("build_args")) for r in rows}),
                                 "qps": qps_table(rows), "page": group.page})
            failures += [f for f in group.failures if f["algorithm"] == name]  # concurrent clients' too
            unreadable += [u for u in group.unreadable if run_algorithm(u) == name]
        entry = self.entries.get(name)
        grid = yaml.safe_dump({"run_groups": entry.run_groups, "quick": entry.quick}, sort_keys=False,
                              default_flow_style=None) if entry else ""
        self._page(f"algorithms/{slug(name)}.html", "algorithm.html", title=name, name=name, sections=sections,
                   entry=entry, grid=grid, targets=RECALL_TARGETS, failures=failure_table(failures, unreadable))

    def remove_stale(self) -> None:
        """Pages of an earlier build of this site that this build did not write (a dataset gone)."""
        if not (self.output / MARKER).exists():
            return
        for folder in ("datasets", "algorithms"):
            for path in (self.output / folder).glob("*"):
                if path.is_file() and path not in self.written and path.suffix in (".html", ".csv"):
                    path.unlink()


def _titled(fig_and_note: tuple[dict, str], title: str) -> tuple[dict, str, str]:
    fig, note = fig_and_note
    return fig, title, note


def _entries(definitions: Path | None) -> dict[str, AlgorithmEntry]:
    """algorithms.yaml's entries, for each algorithm page's grid; {} where it cannot be read."""
    try:
        return load_algorithms(definitions) if definitions else load_algorithms()
    except UserError:
        return {}


def write_site(groups: list[Group], output: Path, results_dir: Path, definitions: Path | None = None) -> list[Path]:
    """Write the whole site; returns the pages written (index first)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UserError(f"{output} is a file; name a folder for the site with --output")
    by_algorithm: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        unreadable = {run_algorithm(u) for u in group.unreadable}
        for name in sorted(set(group.algorithms) | unreadable):
            by_algorithm[name].append(group)
    site = Site(output, results_dir, definitions)
    site.assets()
    site.index(groups, sorted(by_algorithm))
    for group in groups:
        site.dataset(group)
    for name, its_groups in sorted(by_algorithm.items()):
        site.algorithm(name, its_groups)
    site.remove_stale()
    write_atomically(output / MARKER, "made by python -m ann_bench.website; pages here are replaced\n")
    return sorted((p for p in site.written if p.suffix == ".html"), key=lambda p: (p.name != "index.html", p))

"""The static site from real result files: what its pages say, without a browser
(tests/test_website_browser.py opens it in Chromium)."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from ann_bench.datasets import load_dataset
from ann_bench.report.tables import qps_at_recall
from ann_bench.report.website import cli
from ann_bench.report.website.model import collect

from .site_results import (
    DATASET,
    ENVIRONMENT,
    FAILED,
    FAILED_ERROR,
    LOG_LINE,
    ONLY_FAILURES,
    SWEEPS,
    K,
    make_tree,
    write_failure,
    write_run,
)


class Page(HTMLParser):
    """The parts of a page the tests read: links, script sources, figures, text, table cells."""

    def __init__(self, path: Path):
        super().__init__()
        self.links, self.scripts, self.styles, self.figures, self.text = [], [], [], {}, []
        self._json_id = None
        self.feed(path.read_text())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "script" and "src" in attrs:
            self.scripts.append(attrs["src"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])
        if tag == "script" and attrs.get("type") == "application/json":
            self._json_id = attrs["id"]

    def handle_endtag(self, tag):
        self._json_id = None

    def handle_data(self, data):
        if self._json_id:
            self.figures[self._json_id.removesuffix("-json")] = json.loads(data)
        else:
            self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_dir, xs_euclidean):
    root = tmp_path_factory.mktemp("site")
    truth = load_dataset(xs_euclidean).distances
    paths = make_tree(root / "results", truth)
    code = cli.main(["--results", str(root / "results"), "--data-dir", str(data_dir), "--output", str(root / "site"),
                     "--no-progress"])
    assert code == 0
    return root / "site", paths


def page(site_dir: Path, relative: str) -> Page:
    return Page(site_dir / relative)


def test_every_page_links_and_loads_only_files_of_the_site(site):
    site_dir, _ = site
    index = page(site_dir, "index.html")
    pages = {link for link in index.links if link.endswith(".html")}
    assert f"datasets/{DATASET}-k{K}.html" in pages and f"datasets/{ONLY_FAILURES}-k{K}.html" in pages
    assert {f"algorithms/{a}.html" for a in [*SWEEPS, FAILED, "old-ann", "ab-annoy"]} <= pages
    for relative in ["index.html", *pages]:
        p = page(site_dir, relative)
        for source in p.scripts + p.styles + p.links:
            assert not re.match(r"[a-z]+://|//", source), f"{relative} loads {source} from the network"
            target = (site_dir / relative).parent / source.split("#")[0]
            assert target.is_file(), f"{relative} links to {source}, which is not in the site"
    assert [p.name for p in site_dir.rglob("*.js") if "plotly" in p.name] == ["plotly.min.js"]  # once per site


def test_figures_are_valid_plotly_figures_with_a_frontier_per_algorithm(site):
    site_dir, _ = site
    p = page(site_dir, f"datasets/{DATASET}-k{K}.html")
    assert len(p.figures) == 2 * 6  # both modes: recall/QPS and five other metric pairs
    for fig in p.figures.values():
        go.Figure(data=fig["data"], layout=fig["layout"])  # raises on anything Plotly does not know
    main = p.figures["fig-0"]
    frontiers = {t["name"]: t for t in main["data"] if t["meta"]["kind"] == "frontier"}
    assert sorted(frontiers) == sorted([*SWEEPS, "old-ann", "ab-annoy"])
    # hnswlib M=16 ef=10 (0.7, 8000) is beaten by nothing: on the frontier with M=8's points
    assert frontiers["hnswlib"]["x"] == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0])
    assert "build: M=16<br>query: ef=10" in frontiers["hnswlib"]["text"][1]
    (ring,) = [t for t in main["data"] if t["meta"]["kind"] == "unsettled"]
    assert ring["x"] == pytest.approx([0.8]) and "passes differ by 30 %" in ring["text"][0]
    (annoy,) = [t for t in main["data"] if t["name"] == "annoy"]
    assert annoy["error_y"]["arrayminus"] == pytest.approx([7000 - 7000 / 1.04, 2500 - 2500 / 1.3, 900 - 900 / 1.04])


def test_qps_at_recall_table_and_spread(site, xs_euclidean):
    site_dir, _ = site
    html = (site_dir / f"datasets/{DATASET}-k{K}.html").read_text()
    single = html.split('data-batch="true"')[0]
    # hnswlib at 0.9: M=16 ef=20 (5200 QPS) beats M=8 ef=40 (4000)
    row = re.search(r'<tr data-algorithm="hnswlib">(.*?)</tr>', single, re.S).group(1)
    values = re.findall(r'data-value="([^"]*)"', row)
    assert [float(v) if v else None for v in values] == pytest.approx([9000, 6500, 5200, 3000, 3000])
    assert "build: M=16; query: ef=20" in row
    bruteforce = re.search(r'<tr data-algorithm="bruteforce">(.*?)</tr>', single, re.S).group(1)
    assert bruteforce.count('data-value="800.0"') == 5
    annoy = re.search(r'<tr data-algorithm="annoy">(.*?)</tr>', single, re.S).group(1)
    assert annoy.count("—") == 2  # never reaches 0.95 or 0.99
    assert "passes differ by 30.0 %" in annoy  # the unsettled run is the best at 0.8
    assert "In 1 run of 18 the timed passes disagree by more than 10 %" in html


def test_failures_warnings_and_files_without_newer_attributes_are_all_said(site):
    site_dir, paths = site
    p = page(site_dir, f"datasets/{DATASET}-k{K}.html")
    words = p.words
    assert FAILED in words and FAILED_ERROR in words and LOG_LINE in words
    assert "ef_search=40; ef_search=80" in words  # one line per failed build, its query sets listed
    assert "result file cannot be read" in words and "damaged.hdf5" in words
    assert "come from 2 machines (CPU models)" in words
    assert "2 of 20 runs record no environment" in words  # the old harness's and ann-benchmarks' files
    assert "are not drawn: no p99 value (no per-query latencies in its file" in words
    assert "arguments not recorded" in json.dumps(p.figures["fig-0"])  # the ann-benchmarks run is drawn
    only = page(site_dir, f"datasets/{ONLY_FAILURES}-k{K}.html").words
    assert "No successful runs in this mode: 1 failed" in only and "timed out after 600 s" in only
    index = page(site_dir, "index.html").words
    assert "No successful runs: 1 failed" in index and "Test CPU @ 3.0GHz" in index and "abc123def456" in index


def test_algorithm_page_has_its_curves_grid_versions_and_failures(site):
    site_dir, _ = site
    hnswlib = page(site_dir, "algorithms/hnswlib.html")
    builds = [t["name"] for t in hnswlib.figures["fig-0"]["data"]]
    assert builds == ["M=16", "M=8"]
    assert "library version 0.8.0" in hnswlib.words and "efConstruction" in hnswlib.words  # algorithms.yaml's grid
    assert f"{ONLY_FAILURES}, k={K}" in hnswlib.words and "timed out after 600 s" in hnswlib.words
    failed = page(site_dir, f"algorithms/{FAILED}.html").words
    assert FAILED_ERROR in failed and LOG_LINE in failed


def test_csv_next_to_the_page_agrees_with_the_table(site):
    site_dir, _ = site
    import csv

    with open(site_dir / f"datasets/{DATASET}-k{K}.csv") as f:
        rows = [dict(r, **{m: float(r[m]) for m in ("k-nn", "qps")}) for r in csv.DictReader(f)]
    assert len(rows) == sum(len(s) for s in SWEEPS.values()) + 2 + 2  # + batch + the two older files
    assert qps_at_recall([r for r in rows if r["batch"] == "False"])["hnswlib"][0.9].qps == pytest.approx(5200)


def test_empty_results_tree_builds_a_site_that_says_so(tmp_path, capsys):
    assert cli.main(["--results", str(tmp_path / "results"), "--output", str(tmp_path / "site")]) == 0
    words = page(tmp_path / "site", "index.html").words
    assert "No results in" in words and "python run.py --dataset" in words


def test_measuring_off_a_terminal_logs_progress_as_whole_lines(tmp_path, data_dir, xs_euclidean, capsys):
    """Warming the metrics cache with stderr not a terminal: the files' progress as lines, the
    last one at 100 %, and no bar redrawn with carriage returns."""
    make_tree(tmp_path / "results", load_dataset(xs_euclidean).distances)
    assert cli.main(["--results", str(tmp_path / "results"), "--data-dir", str(data_dir),
                     "--output", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert any(line.startswith(f"metrics {DATASET} k=10") and "100%" in line for line in err.splitlines()), err


def test_a_dataset_without_its_file_is_named_with_its_files(tmp_path, data_dir, xs_euclidean):
    truth = load_dataset(xs_euclidean).distances
    make_tree(tmp_path / "results", truth)
    (tmp_path / "results" / DATASET).rename(tmp_path / "results" / "custom-set")
    assert cli.main(["--results", str(tmp_path / "results"), "--data-dir", str(tmp_path / "no-data"),
                     "--output", str(tmp_path / "site"), "--no-progress"]) == 0
    words = page(tmp_path / "site", "index.html").words
    assert "No metrics:" in words and "custom-set" in words and "21 result files not shown" in words


def test_dataset_filter_and_stale_pages(site, tmp_path, data_dir, capsys):
    site_dir, paths = site
    results = paths["failed"].parents[3]
    out = tmp_path / "site"
    assert cli.main(["--results", str(results), "--data-dir", str(data_dir), "--output", str(out)]) == 0
    assert (out / f"datasets/{ONLY_FAILURES}-k{K}.html").exists()
    assert cli.main(["--results", str(results), "--data-dir", str(data_dir), "--output", str(out),
                     "--dataset", DATASET]) == 0
    assert not (out / f"datasets/{ONLY_FAILURES}-k{K}.html").exists()  # not in this site any more
    assert (out / f"datasets/{DATASET}-k{K}.html").exists()
    assert cli.main(["--results", str(results), "--output", str(out), "--dataset", "random-xs-20-euclidean",
                     "--count", "100"]) == 2
    assert "no results for random-xs-20-euclidean" in capsys.readouterr().err


def test_collect_keeps_every_file(site, data_dir):
    _, paths = site
    results = paths["failed"].parents[3]
    groups = {g.dataset: g for g in collect(results, data_dir, progress=False)}
    group = groups[DATASET]
    files = sum(1 for _ in results.joinpath(DATASET).rglob("*.hdf5"))
    assert len(group.rows) + len(group.failures) + len(group.unreadable) == files == group.n_files
    assert np.isnan(next(r for r in group.rows if r["algorithm"] == "ab-annoy")["p99"])


def test_concurrent_clients_failures_and_damaged_files_are_listed(tmp_path, data_dir, xs_euclidean):
    results = tmp_path / "results"
    write_run(results, DATASET, load_dataset(xs_euclidean).distances, "hnswlib", {"M": 8}, {"ef": 10}, 0.6, 9000)
    failed = write_failure(results, DATASET, "hnswlib", {"M": 8}, {"ef": 10}, "clients crashed: BrokenPipeError",
                           [LOG_LINE], clients=4)
    (failed.parent / "damaged.hdf5").write_bytes(b"this is not HDF5")
    write_failure(results, ONLY_FAILURES, "annoy", {"n_trees": 10}, [100], "timed out after 600 s", clients=2)
    assert cli.main(["--results", str(results), "--data-dir", str(data_dir), "--output", str(tmp_path / "site"),
                     "--no-progress"]) == 0
    words = page(tmp_path / "site", f"datasets/{DATASET}-k{K}.html").words
    assert "hnswlib 4 concurrent clients M=8 ef=10 clients crashed: BrokenPipeError" in words and LOG_LINE in words
    assert "hnswlib 4 concurrent clients damaged.hdf5 result file cannot be read" in words
    assert "1 failed, 1 unreadable" in words and "No successful runs in this mode" not in words  # not single queries
    assert "clients crashed" in page(tmp_path / "site", "algorithms/hnswlib.html").words
    only = page(tmp_path / "site", f"datasets/{ONLY_FAILURES}-k{K}.html").words
    assert "annoy 2 concurrent clients n_trees=10 100 timed out after 600 s" in only
    assert "No successful runs: 1 failed" in page(tmp_path / "site", "index.html").words
    for group in collect(results, data_dir, progress=False):
        files = sum(1 for _ in results.joinpath(group.dataset).rglob("*.hdf5"))
        assert len(group.rows) + len(group.clients_rows) + len(group.failures) + len(group.unreadable) == files
        assert group.n_files == files


def test_runs_from_docker_and_local_processes_get_a_frontier_each(tmp_path, data_dir, xs_euclidean):
    """Their QPS are not comparable (the interpreter differs), so as in plot.py an algorithm with
    runs from both has a frontier for each, the local one with hollow markers."""
    results, truth = tmp_path / "results", load_dataset(xs_euclidean).distances
    write_run(results, DATASET, truth, "hnswlib", {"M": 8}, {"ef": 10}, 0.6, 9000)
    write_run(results, DATASET, truth, "hnswlib", {"M": 8}, {"ef": 20}, 0.7, 8000,
              environment=dict(ENVIRONMENT, executor="local"))
    write_run(results, DATASET, truth, "annoy", {"n_trees": 10}, [100], 0.5, 5000)
    assert cli.main(["--results", str(results), "--data-dir", str(data_dir), "--output", str(tmp_path / "site"),
                     "--no-progress"]) == 0
    main = page(tmp_path / "site", f"datasets/{DATASET}-k{K}.html").figures["fig-0"]
    frontiers = {t["name"]: t for t in main["data"] if t["meta"]["kind"] == "frontier"}
    assert set(frontiers) == {"annoy", "hnswlib (docker)", "hnswlib (local)"}
    assert frontiers["hnswlib (local)"]["marker"]["symbol"].endswith("-open")
    assert not frontiers["hnswlib (docker)"]["marker"]["symbol"].endswith("-open")

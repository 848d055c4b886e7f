"""The site opened in a real browser: Debian's chromium driven by playwright, every request that
leaves the site's folder blocked. Skipped, with the reason, where chromium is not installed
(scripts/test installs it where it can). A screenshot of each page type is written to the
test's output folder (printed with -s; kept under pytest's basetemp)."""

import csv
import math
import shutil
from pathlib import Path
from urllib.parse import urljoin

import pytest

from ann_bench.datasets import load_dataset
from ann_bench.report import export
from ann_bench.report.website import cli

from .site_results import DATASET, FAILED, FAILED_ERROR, LOG_LINE, ONLY_FAILURES, K, make_tree

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir, xs_euclidean):
    root = tmp_path_factory.mktemp("browser")
    make_tree(root / "results", load_dataset(xs_euclidean).distances)
    assert cli.main(["--results", str(root / "results"), "--data-dir", str(data_dir),
                     "--output", str(root / "site"), "--no-progress"]) == 0
    csv_path = root / "export.csv"
    assert export.main(["--dataset", DATASET, "--results", str(root / "results"), "--data-dir", str(data_dir),
                        "--output", str(csv_path)]) == 0
    return root


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Visit:
    """A page with everything the browser said and every request it tried to send out."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.problems: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("requestfailed", lambda r: r.url.startswith("file:") and self.problems.append(f"missing {r.url}"))
        self.page.route("**/*", self._only_files)
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.page.wait_for_function("() => !document.querySelector('div.chart:not(.js-plotly-plot)')")

    def _only_files(self, route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def close(self):
        self.page.close()


def test_every_page_loads_without_errors_or_network(built, browser, tmp_path):
    index = (built / "site" / "index.html").as_uri()
    visit = Visit(browser, index)
    links = visit.page.eval_on_selector_all("a[href$='.html']", "els => els.map(e => e.getAttribute('href'))")
    visit.page.screenshot(path=tmp_path / "index.png", full_page=True)
    visit.close()
    assert any(link.startswith("datasets/") for link in links) and any(link.startswith("algorithms/") for link in links)
    shots = {f"datasets/{DATASET}-k{K}.html": tmp_path / "dataset.png",
             f"datasets/{ONLY_FAILURES}-k{K}.html": tmp_path / "dataset-only-failures.png",
             "algorithms/hnswlib.html": tmp_path / "algorithm.png"}
    for link in [index, *{urljoin(index, link) for link in links}]:
        v = Visit(browser, link)
        assert v.problems == [], f"{link}: {v.problems}"
        assert v.outside == [], f"{link} asked the network for {v.outside}"
        assert v.page.title().endswith("ann-bench")
        shot = next((path for page, path in shots.items() if link.endswith("/" + page)), None)
        if shot:
            v.page.screenshot(path=shot, full_page="algorithms" in link)
        v.close()
    print(f"screenshots: {sorted(str(p) for p in tmp_path.glob('*.png'))}")
    assert all(p.stat().st_size > 10_000 for p in [tmp_path / "index.png", *shots.values()])


def read_export(path: Path) -> list[dict]:
    with open(path) as f:
        return [dict(r, **{m: float(r[m]) if r[m] else math.nan for m in ("k-nn", "qps")}) for r in csv.DictReader(f)]


def frontier_sizes(rows: list[dict]) -> dict[str, int]:
    """Points on each algorithm's recall/QPS frontier, worked out here from the CSV: those that
    no other run of the algorithm beats on both (at least as good on each, better on one)."""
    sizes = {}
    for algorithm in {r["algorithm"] for r in rows}:
        points = {(r["k-nn"], r["qps"]) for r in rows if r["algorithm"] == algorithm}
        sizes[algorithm] = sum(1 for p in points if not any(q != p and q[0] >= p[0] and q[1] >= p[1] for q in points))
    return sizes


def test_dataset_page_chart_hover_table_and_failures(built, browser, tmp_path):
    rows = [r for r in read_export(built / "export.csv") if r["batch"] == "False"]
    visit = Visit(browser, (built / "site" / "datasets" / f"{DATASET}-k{K}.html").as_uri())
    page = visit.page
    try:
        # one frontier trace per algorithm, with the right number of points
        traces = page.evaluate("""() => document.getElementById('fig-0').data
            .filter(t => t.meta.kind === 'frontier').map(t => [t.name, t.x.length])""")
        assert dict(traces) == frontier_sizes(rows)

        # hovering a point shows its parameters
        x, y = page.evaluate("""() => {
            const gd = document.getElementById('fig-0'), layout = gd._fullLayout;
            const t = gd.data.find(t => t.name === 'hnswlib' && t.meta.kind === 'frontier');
            const box = gd.getBoundingClientRect();
            return [box.left + layout.xaxis._offset + layout.xaxis.l2p(t.x[1]),
                    box.top + layout.yaxis._offset + layout.yaxis.l2p(Math.log10(t.y[1]))];
        }""")
        page.mouse.move(x, y)
        page.wait_for_selector("#fig-0 .hoverlayer .hovertext")
        hover = page.text_content("#fig-0 .hoverlayer")
        assert "hnswlib" in hover and "build: M=16" in hover and "query: ef=10" in hover and "QPS 8,000" in hover

        # the QPS-at-recall table, against the CSV: the best QPS at recall >= 0.9
        for algorithm in ("hnswlib", "annoy", "faiss-ivf", "bruteforce"):
            expected = max(r["qps"] for r in rows if r["algorithm"] == algorithm and r["k-nn"] >= 0.9 - 1e-9)
            cell = page.get_attribute(f"section[data-batch=false] table.qps-at-recall "
                                      f"tr[data-algorithm='{algorithm}'] td:nth-child(4)", "data-value")
            assert float(cell) == pytest.approx(expected)
        # sortable: the 0.9 column, highest first
        page.click("section[data-batch=false] table.qps-at-recall th:nth-child(4)")
        order = page.eval_on_selector_all("section[data-batch=false] table.qps-at-recall tbody tr",
                                          "trs => trs.map(tr => tr.cells[3].dataset.value)")
        values = [float(v) for v in order if v]
        assert values == sorted(values, reverse=True) and order[len(values):] == [""] * (len(order) - len(values))

        # the failed definition, its reason and its log
        failures = page.inner_text("table.failures")
        assert FAILED in failures and FAILED_ERROR in failures and LOG_LINE in failures

        # clicking a legend entry hides that library
        entry = page.locator('#fig-0 .legend .traces >> text="annoy"')
        entry.scroll_into_view_if_needed()
        box = entry.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # as a user does
        page.wait_for_function("""() => document.getElementById('fig-0').data
            .filter(t => t.legendgroup === 'annoy').every(t => t.visible === 'legendonly')""")
        assert visit.problems == [] and visit.outside == []
    finally:
        visit.close()

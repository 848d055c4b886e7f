"""Plots from real result files (written with results.write_result)."""

from pathlib import Path

import numpy as np
import pytest

from ann_bench.report import plotting, styles
from ann_bench.report.cache import metrics_for_results
from ann_bench.report.plotting import algorithm_style, default_output, draw, no_results_message, plot_rows
from ann_bench.results.files import RunResult, read_result, result_path, write_result
from ann_bench.run.definitions import load_algorithms

NQ, K = 40, 10
TRUTH = np.tile(np.arange(1, 2 * K + 1, dtype=np.float64), (NQ, 1))  # (NQ, 2K), sorted


def write_synthetic(results_dir, dataset, algorithm, setting, recall, qps, batch=False):
    """A result whose first recall*K answers are the true neighbours, the rest too far."""
    hits = int(round(recall * K))
    distances = np.concatenate([TRUTH[:, :hits], np.full((NQ, K - hits), 100.0)], axis=1)
    attrs = {"name": f"{algorithm}(ef={setting})", "algo": algorithm, "dataset": dataset, "count": K,
             "batch_mode": batch, "build_args": {"M": 16}, "query_args": [setting], "status": "ok",
             "best_search_time": 1.0 / qps, "build_time": 2.0, "index_size": 1234.0, "candidates": K,
             "run_count": 3, "environment": {"library_version": "0.1", "cpu_model": "Test CPU"}}
    result = RunResult(attrs=attrs, neighbors=np.zeros((NQ, K), dtype=np.int32), distances=distances,
                       times=np.full(NQ, 1.0 / qps), run_times=np.array([1.0, 1.25, 1.1]) * NQ / qps)
    return write_result(result_path(results_dir, dataset, K, algorithm, batch, {"M": 16}, [setting]), result)


SWEEPS = {
    "hnswlib": [(10, 0.5, 20000), (20, 0.7, 15000), (40, 0.9, 9000), (80, 1.0, 5000), (30, 0.6, 8000)],
    "annoy": [(1, 0.3, 12000), (2, 0.6, 6000), (3, 0.8, 2500), (4, 0.9, 1200)],
    "faiss-ivf": [(1, 0.4, 30000), (2, 0.7, 11000), (4, 0.9, 4000), (8, 1.0, 1500)],
}


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "results"
    for algorithm, sweep in SWEEPS.items():
        for setting, recall, qps in sweep:
            write_synthetic(d, "toy", algorithm, setting, recall, qps)
    return d


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_from_result_files(results_dir, capsys):
    rows = metrics_for_results(results_dir, "toy", K, batch=False, true_distances=TRUTH)
    assert len(rows) == sum(len(s) for s in SWEEPS.values())
    out = plot_rows(rows, default_output(results_dir, "toy"), raw=True, title="toy: k=10, single queries")
    assert out == results_dir / "toy.png"
    assert is_png(out) and out.stat().st_size > 20_000
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_one_frontier_per_algorithm(results_dir):
    import matplotlib.pyplot as plt

    rows = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)
    fig, ax = plt.subplots()
    try:
        lines = draw(ax, rows)
        assert sorted(lines) == sorted(SWEEPS)
        # hnswlib's (30, 0.6, 8000) is dominated by (20, 0.7, 15000): not on its line
        assert list(lines["hnswlib"].get_xdata()) == [0.5, 0.7, 0.9, 1.0]
        assert list(lines["hnswlib"].get_ydata()) == pytest.approx([20000, 15000, 9000, 5000])
        assert ax.get_xlabel() == "Recall" and ax.get_ylabel() == "Queries per second (1/s)"
        assert ax.get_yscale() == "log"
        assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted(SWEEPS)
    finally:
        plt.close(fig)


def test_an_algorithm_run_in_docker_and_locally_gets_a_frontier_for_each(results_dir):
    """Their QPS are not comparable (another interpreter): one line per executor, hollow markers for
    the local one; an algorithm from one executor keeps its plain name."""
    import matplotlib.pyplot as plt

    rows = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)
    for row in rows:
        fast = row["algorithm"] == "hnswlib" and row["qps"] > 10000
        row["environment"] = dict(row["environment"], executor="local" if fast else "docker")
    fig, ax = plt.subplots()
    try:
        lines = draw(ax, rows)
        assert sorted(lines) == ["annoy", "faiss-ivf", "hnswlib (docker)", "hnswlib (local)"]
        assert list(lines["hnswlib (local)"].get_xdata()) == [0.5, 0.7]
        assert list(lines["hnswlib (docker)"].get_xdata()) == [0.9, 1.0]  # (0.6, 8000) is below (0.9, 9000)
        assert lines["hnswlib (local)"].get_fillstyle() == "none"
        assert lines["hnswlib (docker)"].get_fillstyle() == lines["annoy"].get_fillstyle() == "full"
        assert line_style(lines["hnswlib (local)"]) == line_style(lines["hnswlib (docker)"])
    finally:
        plt.close(fig)


def line_style(line) -> tuple:
    # Line2D.get_linestyle() says "--" for every custom dash; the pattern itself is kept here.
    return line.get_color(), line.get_marker(), line._unscaled_dash_pattern


def test_styles_are_stable_whoever_else_is_plotted(results_dir):
    import matplotlib.pyplot as plt

    rows = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)
    styles = []
    for others in (["annoy"], ["faiss-ivf"], []):
        subset = [r for r in rows if r["algorithm"] in ["hnswlib", *others]]
        fig, ax = plt.subplots()
        try:
            styles.append(line_style(draw(ax, subset)["hnswlib"]))
        finally:
            plt.close(fig)
    expected = algorithm_style("hnswlib")
    assert styles[0] == styles[1] == styles[2] == (expected.colour, expected.marker, expected.dash)


def test_every_entry_drawn_at_once_has_a_style_of_its_own(results_dir):
    """Issue 9: the plot of every entry of algorithms.yaml has no two lines alike, neither in
    colour and marker nor, printed in grey, in marker and dash."""
    import matplotlib.pyplot as plt

    registered = list(load_algorithms())
    template = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)[0]
    rows = [dict(template, algorithm=name) for name in registered]
    fig, ax = plt.subplots()
    try:
        lines = draw(ax, rows)
        drawn = [line_style(lines[name]) for name in registered]
    finally:
        plt.close(fig)
    assert len(set(drawn)) == len(registered)
    assert len({(colour, marker) for colour, marker, _ in drawn}) == len(registered)
    assert len({(marker, dash) for _, marker, dash in drawn}) == len(registered)
    # the site draws the same styles
    assert len({(algorithm_style(a).colour, algorithm_style(a).plotly_marker, algorithm_style(a).plotly_dash)
                for a in registered}) == len(registered)


def test_styles_of_names_outside_algorithms_yaml_are_stable():
    assert algorithm_style("not-an-entry") == algorithm_style("not-an-entry")
    assert algorithm_style("not-an-entry").colour in styles.COLOURS


def test_errorbars_run_from_the_slowest_pass_to_the_best(results_dir):
    import matplotlib.pyplot as plt

    rows = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)
    row = next(r for r in rows if r["algorithm"] == "annoy" and r["k-nn"] == 0.9)
    fig, ax = plt.subplots()
    try:
        draw(ax, [row], errorbars=True)
        (bars,) = [c for c in ax.collections if c.get_segments()]
        (segment,) = bars.get_segments()
        assert segment[:, 1].tolist() == pytest.approx([row["qps-slowest"], row["qps"]])
        assert row["qps-slowest"] == pytest.approx(1200 / 1.25)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_formats_and_paper_size(results_dir, fmt, magic, capsys):
    metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)  # "toy" has no dataset file: cache it
    code = plotting.main(["--dataset", "toy", "--results", str(results_dir), "--format", fmt, "--paper",
                          "--errorbars", "--data-dir", str(results_dir / "no-data")])
    assert code == 0, capsys.readouterr().err
    out = results_dir / f"toy.{fmt}"
    assert out.read_bytes().startswith(magic)
    if fmt == "svg":
        text = out.read_text()
        assert 'width="504pt"' in text and "hnswlib" in text  # 7 in at 72 pt; text kept as text
    if fmt == "png":
        from PIL import Image

        assert Image.open(out).size == (2100, 1290)  # 7 x 4.3 in at 300 dpi


def test_all_draws_every_dataset_k_and_mode(results_dir, capsys):
    write_synthetic(results_dir, "toy", "hnswlib", 10, 0.5, 20000, batch=True)
    write_synthetic(results_dir, "other", "annoy", 1, 0.5, 100)
    failed = write_synthetic(results_dir, "broken", "annoy", 1, 0.5, 100)
    write_result(failed, RunResult(attrs=dict(read_result(failed).attrs, status="failed", error="boom")))
    for dataset in ("toy", "other", "broken"):  # no dataset files: their metrics cached from TRUTH
        metrics_for_results(results_dir, dataset, K, true_distances=TRUTH)
    code = plotting.main(["--all", "--results", str(results_dir), "--format", "svg",
                          "--data-dir", str(results_dir / "no-data")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(p.name for p in results_dir.glob("*.svg")) == ["other.svg", "toy-batch.svg", "toy.svg"]
    assert "only 1 failed results for broken" in captured.err  # said, not skipped silently


def test_logit_scale_draws_perfect_recall(results_dir):
    import matplotlib.pyplot as plt

    rows = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)
    fig, ax = plt.subplots()
    try:
        lines = draw(ax, rows, x_scale="logit")
        assert max(lines["hnswlib"].get_xdata()) == 1.0 - plotting.LOGIT_CLAMP
    finally:
        plt.close(fig)
    # a recall nearer 1 than the clamp is still drawn left of a perfect one
    near = dict(rows[0], algorithm="near", **{"k-nn": 1.0 - 1e-6})
    perfect = dict(rows[0], algorithm="perfect", **{"k-nn": 1.0})
    fig, ax = plt.subplots()
    try:
        lines = draw(ax, [near, perfect], x_scale="logit")
        assert lines["near"].get_xdata()[0] < lines["perfect"].get_xdata()[0] < 1.0
    finally:
        plt.close(fig)
    with pytest.raises(plotting.UserError, match="outside"):
        fig, ax = plt.subplots()
        try:
            draw(ax, rows, x_metric="qps", x_scale="logit")
        finally:
            plt.close(fig)


def test_default_output_names():
    assert default_output("results", "glove-100-angular") == Path("results/glove-100-angular.png")
    assert default_output("r", "d", 100, True) == Path("r/d-k100-batch.png")
    assert default_output("r", "d", 10, False, "k-nn", "p99") == Path("r/d-k-nn-vs-p99.png")


def test_no_results_message_names_the_directory_and_the_command(tmp_path):
    message = no_results_message(tmp_path, "toy", 10, True)
    assert str(tmp_path / "toy" / "10") in message
    assert f"python run.py --dataset toy --batch --results {tmp_path}" in message
    assert "\n" not in message


def test_unknown_metric_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        plotting.main(["--dataset", "toy", "-x", "recall"])
    assert exit_info.value.code == 2
    assert "k-nn" in capsys.readouterr().err  # the choices are listed


def test_logit_axis_labels_the_drawn_ends(results_dir):
    import matplotlib.pyplot as plt

    rows = metrics_for_results(results_dir, "toy", K, true_distances=TRUTH)
    fig, ax = plt.subplots()
    try:
        draw(ax, rows, x_scale="logit")
        fig.canvas.draw()
        labels = {t.get_position()[0]: t.get_text() for t in ax.get_xticklabels()}
        assert labels[1.0 - plotting.LOGIT_CLAMP] == "1"
    finally:
        plt.close(fig)


def test_main_end_to_end_with_a_real_dataset(xs_euclidean, data_dir, tmp_path, capsys):
    """Results answering the real dataset exactly: recall 1, a PNG where the default says."""
    from ann_bench.datasets import load_dataset

    truth = load_dataset(xs_euclidean).distances
    results = tmp_path / "results"
    for algorithm, qps in (("exact-a", 1000.0), ("exact-b", 2000.0)):
        attrs = {"name": algorithm, "algo": algorithm, "count": K, "batch_mode": False, "build_args": {},
                 "query_args": [], "status": "ok", "best_search_time": 1.0 / qps, "build_time": 1.0,
                 "index_size": 1.0, "candidates": K, "run_count": 1}
        result = RunResult(attrs=attrs, neighbors=np.zeros((len(truth), K), dtype=np.int32),
                           distances=truth[:, :K], times=np.full(len(truth), 1.0 / qps))
        write_result(result_path(results, "random-xs-20-euclidean", K, algorithm, False, {}, []), result)
    code = plotting.main(["--dataset", "random-xs-20-euclidean", "--results", str(results),
                          "--data-dir", str(data_dir)])
    assert code == 0, capsys.readouterr().err
    out = results / "random-xs-20-euclidean.png"
    assert is_png(out) and "2 algorithms" in capsys.readouterr().out
    rows = metrics_for_results(results, "random-xs-20-euclidean", K, true_distances=lambda: 1 / 0)  # cached
    assert [r["k-nn"] for r in rows] == [1.0, 1.0]


def test_main_without_results_exits_2(tmp_path, capsys):
    code = plotting.main(["--dataset", "random-xs-20-euclidean", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "python run.py --dataset random-xs-20-euclidean" in err


def test_main_unknown_dataset_exits_2(tmp_path, capsys):
    code = plotting.main(["--dataset", "no-such-dataset-xyz", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no-such-dataset-xyz" in err


def test_unregistered_dataset_with_results_is_accepted(results_dir, capsys):
    """"toy" is no registered dataset, but it has results (a custom dataset): not an error."""
    assert plotting.dataset_name("toy", results_dir / "no-data", results_dir) == "toy"
    with pytest.raises(plotting.UserError):
        plotting.dataset_name("toy", results_dir / "no-data", results_dir / "elsewhere")

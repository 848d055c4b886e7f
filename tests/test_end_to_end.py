"""run.py, plot.py, the export and the site as a user runs them, in processes of their own, on a
local dataset."""

import csv
import subprocess
import sys

from ann_bench.paths import REPO as ROOT


def command(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_run_plot_and_export_in_local_mode(tmp_path, data_dir, xs_angular):
    common = ["--dataset", "random-xs-20-angular", "--data-dir", str(data_dir)]
    run = command(str(ROOT / "run.py"), "--local", "--quick", "--runs", "1", "--algorithm", "bruteforce",
                  "--algorithm", "hnswlib", *common, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "bruteforce" in run.stdout and "hnswlib" in run.stdout  # the summary table

    plot = command(str(ROOT / "plot.py"), *common, cwd=tmp_path)
    assert plot.returncode == 0, plot.stderr
    png = tmp_path / "results" / "random-xs-20-angular.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    table = tmp_path / "runs.csv"
    export = command("-m", "ann_bench.report.export", *common, "--results", str(tmp_path / "results"),
                     "--output", str(table), cwd=ROOT)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(table.open()))
    recall = {}
    for row in rows:
        if row["status"] == "ok":  # a set skipped past recall 1.0 has no metrics
            recall[row["algorithm"]] = max(recall.get(row["algorithm"], 0.0), float(row["k-nn"]))
    assert recall["bruteforce"] == 1.0
    assert recall["hnswlib"] >= 0.9
    assert len(rows) == 1 + 3  # bruteforce, and hnswlib's three quick query settings (run or skipped)

    site = command("-m", "ann_bench.website", "--data-dir", str(data_dir), cwd=tmp_path)
    assert site.returncode == 0, site.stderr
    page = (tmp_path / "site" / "datasets" / "random-xs-20-angular-k10.html").read_text()
    assert "hnswlib" in page and "bruteforce" in page and (tmp_path / "site" / "assets" / "plotly.min.js").is_file()

    # A second run finds everything done and runs nothing.
    again = command(str(ROOT / "run.py"), "--local", "--quick", "--runs", "1", "--algorithm", "bruteforce",
                    "--algorithm", "hnswlib", *common, cwd=tmp_path)
    assert again.returncode == 0 and "0 definition(s) to run" in again.stdout

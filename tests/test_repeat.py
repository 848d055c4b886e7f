"""`run.py --repeat R`: R builds of each definition, each with its own seed where the library
takes one, the first in the file ann-benchmarks reads and the others beside it, and their
spread in the export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ann_bench import cli
from ann_bench.report import repeats
from ann_bench.report.export import main as export_main
from ann_bench.report.website.cli import main as website_main
from ann_bench.results.files import iter_result_paths, read_result, repeat_paths

from .test_docker import definitions_file

DATASET = "random-xs-20-angular"


def sweep(tmp_path: Path, data_dir: Path, definitions: Path, *extra: str) -> int:
    return cli.main(["--local", "--dataset", DATASET, "--definitions", str(definitions), "--runs", "1",
                     "--results", str(tmp_path / "results"), "--data-dir", str(data_dir), "--no-progress", *extra])


@pytest.fixture
def hnswlib_repeated(tmp_path, data_dir, xs_angular) -> Path:
    """hnswlib built three times with a small graph (whose answers depend on its seed)."""
    definitions = definitions_file(tmp_path, "hnswlib", {"M": 4, "efConstruction": 10}, {"ef": [10]})
    assert sweep(tmp_path, data_dir, definitions, "--repeat", "3") == 0
    return definitions


def test_repeats_lie_beside_the_first_build_which_alone_is_listed(tmp_path, hnswlib_repeated):
    [first] = iter_result_paths(tmp_path / "results")  # what plots, the site and ann-benchmarks read
    assert first.suffix == ".hdf5" and read_result(first, arrays=False).attrs["repeat"] == 1
    others = repeat_paths(first)
    assert [p.name for p in others] == [first.stem + ".repeat2.h5", first.stem + ".repeat3.h5"]
    assert [read_result(p, arrays=False).attrs["repeat"] for p in others] == [2, 3]
    logs = sorted(p.name for p in (first.parent / "logs").iterdir())
    assert len(logs) == 3 and logs[1].endswith(".repeat2.log")


def test_each_build_after_the_first_has_its_own_seed(tmp_path, data_dir, hnswlib_repeated):
    [first] = iter_result_paths(tmp_path / "results")
    answers = [read_result(p).neighbors for p in [first, *repeat_paths(first)]]
    assert not np.array_equal(answers[0], answers[1]) and not np.array_equal(answers[1], answers[2])
    # The same seed builds the same graph (one thread): the difference is the seed's.
    assert sweep(tmp_path, data_dir, hnswlib_repeated, "--repeat", "3", "--force") == 0
    again = [read_result(p).neighbors for p in [first, *repeat_paths(first)]]
    for before, after in zip(answers, again):
        np.testing.assert_array_equal(before, after)


def test_a_larger_repeat_runs_only_the_new_builds(tmp_path, data_dir, hnswlib_repeated, capsys):
    [first] = iter_result_paths(tmp_path / "results")
    made = {p: p.stat().st_mtime_ns for p in [first, *repeat_paths(first)]}
    assert sweep(tmp_path, data_dir, hnswlib_repeated, "--repeat", "4") == 0
    assert {p: p.stat().st_mtime_ns for p in made} == made
    assert [p.name[-10:] for p in repeat_paths(first)] == ["repeat2.h5", "repeat3.h5", "repeat4.h5"]


def test_the_export_has_the_spread_across_builds(tmp_path, data_dir, hnswlib_repeated):
    output = tmp_path / "table.csv"
    assert export_main(["--dataset", DATASET, "--results", str(tmp_path / "results"), "--data-dir", str(data_dir),
                        "--output", str(output)]) == 0
    [row] = list(csv.DictReader(output.open()))
    assert row["repeats"] == "3"
    [first] = iter_result_paths(tmp_path / "results")
    builds = [read_result(p, arrays=False).attrs["build_time"] for p in [first, *repeat_paths(first)]]
    assert float(row["repeat-build-min"]) == min(builds) and float(row["repeat-build-max"]) == max(builds)
    assert float(row["repeat-build-mean"]) == pytest.approx(np.mean(builds))
    assert float(row["repeat-build-cv"]) == pytest.approx(np.std(builds, ddof=1) / np.mean(builds))
    assert float(row["repeat-k-nn-min"]) <= float(row["k-nn"]) <= float(row["repeat-k-nn-max"])
    flags = set(row["repeat-over-10pct"].split())
    assert ("build" in flags) == ((max(builds) - min(builds)) / np.mean(builds) > 0.10)


def test_spread_statistics_and_flags():
    stats = repeats.statistics([10.0, 11.0, 12.0])
    assert stats == {"mean": 11.0, "min": 10.0, "max": 12.0, "cv": pytest.approx(1 / 11)}
    assert repeats.flagged(stats)  # 2 / 11 > 10 %
    assert not repeats.flagged(repeats.statistics([100.0, 104.0, 109.0]))  # 9 / 104.3
    assert not repeats.flagged(repeats.statistics([0.0, 0.0]))


def test_one_build_has_no_spread_columns(tmp_path, data_dir, xs_angular):
    definitions = definitions_file(tmp_path, "bruteforce", [], [])
    assert sweep(tmp_path, data_dir, definitions) == 0
    [first] = iter_result_paths(tmp_path / "results")
    assert repeat_paths(first) == []
    row = {"path": str(first), "build": 1.0, "k-nn": 1.0, "qps": 5.0}
    assert set(repeats.spread(row, lambda: np.zeros((0, 10)), 10).values()) == {""}


def test_the_site_shows_the_spread_across_builds(tmp_path, data_dir, hnswlib_repeated):
    site = tmp_path / "site"
    assert website_main(["--results", str(tmp_path / "results"), "--data-dir", str(data_dir), "--output", str(site),
                         "--no-progress"]) == 0
    page = (site / "datasets" / f"{DATASET}-k10.html").read_text()
    assert "Spread across builds" in page and "1 run of 1 were built more than once" in page
    [line] = [line for line in page.splitlines() if line.startswith('<tr data-algorithm="hnswlib"><td>hnswlib(')]
    assert '<td class="num">3</td>' in line
    [row] = list(csv.DictReader((site / "datasets" / f"{DATASET}-k10.csv").open()))
    assert row["repeats"] == "3"


def test_a_dry_run_counts_every_build(tmp_path, data_dir, xs_angular, capsys):
    definitions = definitions_file(tmp_path, "hnswlib", {"M": 4, "efConstruction": 10}, {"ef": [10, 20]})
    assert sweep(tmp_path, data_dir, definitions, "--repeat", "3", "--dry-run") == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("hnswlib ")]
    assert line.split()[1:5] == ["3", "6", "0", "0"]  # builds, results to run, done, failed

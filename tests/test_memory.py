"""Peak memory of the build and of the queries (ann_bench/run/memory.py), measured for real:
the worker's VmHWM locally, the container's cgroup in Docker; the figure grows with the data."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from ann_bench import cli
from ann_bench.datasets.hdf5 import write_dataset
from ann_bench.report.metrics import compute_metrics
from ann_bench.results.acceptance import Rejected
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.memory import PeakMemory

from .test_acceptance import alter, check, written  # noqa: F401 (a fixture)
from .test_docker import built, definitions_file, engine  # noqa: F401 (fixtures)

SIZES = {"small": 2_000, "large": 120_000}
DIMENSION = 64


@pytest.fixture(scope="module")
def datasets_by_size(tmp_path_factory) -> dict[str, Path]:
    """Two datasets alike but for their number of points (the large one's train is 29 MB more)."""
    directory = tmp_path_factory.mktemp("memory-data")
    rng = np.random.default_rng(5)
    test = rng.standard_normal((50, DIMENSION), dtype=np.float32)
    return {name: write_dataset(directory / f"memory-{name}.hdf5",
                                rng.standard_normal((n, DIMENSION), dtype=np.float32), test, "euclidean", count=10,
                                progress=False)
            for name, n in SIZES.items()}


def peaks(results: Path) -> list[dict]:
    """The memory figures of every result under results."""
    out = []
    for path in iter_result_paths(results):
        result = read_result(path)
        assert result.ok, result.attrs.get("error")
        metrics = compute_metrics(np.zeros((50, 10)), result, 10, ["peak_build_mb", "peak_query_mb", "ondisk_mb"])
        out.append(dict(metrics, measure=result.attrs["memory_measure"]))
    return out


def run(tmp_path: Path, datasets: dict[str, Path], definitions: Path, *extra: str) -> dict[str, list[dict]]:
    out = {}
    for name, dataset in datasets.items():
        results = tmp_path / name
        assert cli.main(["--dataset", str(dataset), "--definitions", str(definitions), "--runs", "1",
                         "--results", str(results), "--no-progress", *extra]) == 0
        out[name] = peaks(results)
    return out


def assert_grows(figures: dict[str, list[dict]], measure: str) -> None:
    """Every figure is there; the large set's build peak exceeds the small one's by at least
    half of what its train takes more (float32 points, a copy of which every index holds)."""
    more_mb = (SIZES["large"] - SIZES["small"]) * DIMENSION * 4 / 2**20
    small, large = figures["small"], figures["large"]
    for row in small + large:
        assert row["measure"].startswith(measure), row
        assert row["peak_build_mb"] > 0 and row["peak_query_mb"] > 0 and math.isnan(row["ondisk_mb"]), row
    assert min(r["peak_build_mb"] for r in large) - max(r["peak_build_mb"] for r in small) > more_mb / 2, figures
    assert min(r["peak_query_mb"] for r in large) - max(r["peak_query_mb"] for r in small) > more_mb / 2, figures


def test_a_reset_forgets_the_earlier_peak():
    memory = PeakMemory(cgroup=False)
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MB, touched
    memory.reset()
    before = memory.peak_mb()
    del block
    memory.reset()
    assert memory.resettable and memory.measure == "vmhwm"
    assert memory.peak_mb() < before - 48, (memory.peak_mb(), before)
    block = np.ones(96 << 20, dtype=np.uint8)
    assert memory.peak_mb() > before + 16
    del block


@pytest.mark.parametrize("name, args, query_args", [
    ("bruteforce", [], []),
    ("hnswlib", {"M": 8, "efConstruction": 40}, {"ef": [10]}),
])
def test_peak_memory_grows_with_the_data_locally(tmp_path, datasets_by_size, name, args, query_args):
    definitions = definitions_file(tmp_path, name, args, query_args)
    assert_grows(run(tmp_path, datasets_by_size, definitions, "--local"), "vmhwm")


@pytest.mark.parametrize("name, args, query_args", [
    ("bruteforce", [], []),
    ("hnswlib", {"M": 8, "efConstruction": 40}, {"ef": [10]}),
])
def test_peak_memory_grows_with_the_data_in_docker(built, tmp_path, datasets_by_size, name, args,
                                                   query_args):
    definitions = definitions_file(tmp_path, name, args, query_args)
    assert_grows(run(tmp_path, datasets_by_size, definitions), "cgroup")


@pytest.mark.parametrize("change, message", [
    (lambda f: f.attrs.__delitem__("peak_build_mb"), "attribute peak_build_mb is 'None'"),
    (lambda f: f.attrs.__setitem__("peak_query_mb", -1.0), "attribute peak_query_mb is '-1.0'"),
    (lambda f: f.attrs.__setitem__("peak_query_mb", 1e12), "and < "),  # more than the machine has
    (lambda f: f.attrs.__setitem__("peak_build_mb", float("inf")), "attribute peak_build_mb"),
    (lambda f: f.attrs.__setitem__("ondisk_mb", float("nan")), "attribute ondisk_mb"),
    (lambda f: f.attrs.__setitem__("memory_measure", "trust me"), "attribute memory_measure is 'trust me'"),
])
def test_the_host_bounds_the_memory_figures(written, change, message):
    job, path = written
    accepted = check(job, path)
    assert accepted.attrs["peak_build_mb"] > 0 and accepted.attrs["memory_measure"] == "vmhwm"
    alter(path, change)
    with pytest.raises(Rejected, match=re.escape(message)):
        check(job, path)


def test_an_on_disk_size_is_kept(written):
    job, path = written
    alter(path, lambda f: f.attrs.__setitem__("ondisk_mb", 12.5))
    assert check(job, path).attrs["ondisk_mb"] == 12.5

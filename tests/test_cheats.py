"""Wrappers that cheat (ann_bench/algorithms/cheats/, tests/cheats-algorithms.yaml) gain
nothing: run as a sweep runs them, locally and in Docker, each is measured for the work it did.

- work outside the timer: an answer whose __array__ does the search, and a batch search done in
  get_batch_results, are timed (each does `seconds` of work per query, so its QPS stays under
  1 / seconds);
- answers remembered from an earlier call: the warm-up asks training points, so a single timed
  pass pays for every query; over several passes a remembered answer is fast, and the run is
  flagged as one whose passes disagree;
- writing into the arrays it was given: the inputs are read-only, so a wrapper that writes over
  train and queries to make its garbage answers look exact scores what its answers deserve on
  the untouched data, and an in-place normalisation fails with a read-only error (in a sweep
  and in the conformance suite alike).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ann_bench import cli, datasets
from ann_bench.datasets.distance import distances_to
from ann_bench.paths import REPO
from ann_bench.report import metrics, tables
from ann_bench.report.cache import results_table
from ann_bench.results.files import RunResult, iter_result_paths, read_result
from ann_bench.run.definitions import get_definitions, load_algorithms
from ann_bench.run.executors.docker import images
from tests.test_conformance import answer_both_ways, copy_points
from tests.test_docker import engine  # noqa: F401  (a fixture: the Docker engine, or a skip)

CHEATS = REPO / "tests" / "cheats-algorithms.yaml"
K = 10
# The work each timing cheat does per query (its `seconds` in the file): whatever it returns,
# no honest clock gives it more than 1 / SECONDS queries per second.
SECONDS = yaml.safe_load(CHEATS.read_text())["algorithms"]["cheat-lazy"]["run_groups"]["lazy"]["args"]["seconds"]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """100 queries, so that 10 ms of work per query is a second per pass."""
    points = np.random.default_rng(8).standard_normal((1100, 20)).astype(np.float32)
    path = tmp_path_factory.mktemp("cheats") / "cheats-1000-20-angular.hdf5"
    return datasets.write_dataset(path, points[:1000], points[1000:], "angular", progress=False)


@pytest.fixture(scope="session")
def cheats_image(engine) -> None:
    results = images.build_images(["cheats"], progress=None)
    if not all(r.ok for r in results):
        pytest.fail("could not build the cheats image:\n" + images.format_table(results))


def sweep(dataset: Path, results: Path, *options: str) -> dict[str, RunResult]:
    """Run every cheat of the file; algorithm -> its result."""
    code = cli.main(["--dataset", str(dataset), "--definitions", str(CHEATS), "--runs", "1", "--results", str(results),
                     "--data-dir", str(dataset.parent), "--no-progress", *options])
    assert code in (0, 1), "the sweep did not run (exit status 2): see its message above"
    return {(r := read_result(path)).attrs["algo"]: r for path in iter_result_paths(results, dataset.stem, K)}


SINGLE, BATCH = ["local", "docker"], ["local-batch", "docker-batch"]
every_sweep = pytest.mark.parametrize("swept", SINGLE + BATCH, indirect=True)
batch_sweeps = pytest.mark.parametrize("swept", BATCH, indirect=True)


@pytest.fixture(scope="module")
def swept(request, small, tmp_path_factory) -> dict[str, RunResult]:
    """The cheats' results of one sweep (request.param): locally or in Docker, one query at a
    time or batch. Made once per module for every test of the same sweep."""
    where, _, batch = request.param.partition("-")
    if where == "docker":
        request.getfixturevalue("cheats_image")
    options = (["--local"] if where == "local" else []) + (["--batch"] if batch else [])
    return sweep(small, tmp_path_factory.mktemp("results"), *options)


def qps(result: RunResult) -> float:
    assert result.ok, result.attrs.get("error")
    return 1 / result.attrs["best_search_time"]


@every_sweep
def test_a_lazy_answer_pays_for_its_search_inside_the_timer(swept, small):
    """Its search is done when its answer is turned into ids, inside the timer: exact, and slow."""
    lazy = swept["cheat-lazy"]
    assert qps(lazy) < 1 / SECONDS
    assert metrics.knn_recall(datasets.load_dataset(small).distances, lazy, K) == 1.0


@batch_sweeps
def test_a_search_in_get_batch_results_is_timed(swept):
    """Timed with batch_query."""
    assert qps(swept["cheat-batch-late"]) < 1 / SECONDS


@every_sweep
def test_the_warm_up_gives_away_no_timed_query(swept):
    """The warm-up asks training points, not test queries (here it would have asked all 100), so
    a wrapper that remembers answers meets every query of its one timed pass for the first time."""
    assert qps(swept["cheat-memo"]) < 1 / SECONDS


def test_answers_remembered_across_passes_are_flagged(small, tmp_path):
    """Every timed pass asks the same queries, so remembered answers make the passes after the
    first fast. Its fastest pass is its QPS, as in ann-benchmarks, but the run is flagged where it
    is shown (site, export): its passes disagree."""
    [memo] = sweep(small, tmp_path, "--local", "--runs", "3", "--algorithm", "cheat-memo").values()
    assert max(memo.run_times) > 10 * min(memo.run_times)
    [row] = results_table(tmp_path, small.stem, K, batch=False, data_dir=small.parent).rows
    assert tables.unsettled(row)


@every_sweep
def test_writing_over_the_inputs_does_not_change_the_score(swept, small):
    """Garbage ids over scribbled arrays: scored on the dataset's own vectors, whatever it wrote."""
    scribbler, data = swept["cheat-scribbler"], datasets.load_dataset(small)
    assert scribbler.ok, scribbler.attrs.get("error")
    found = distances_to(data.distance, data.test, data.train, scribbler.neighbors)
    assert np.array_equal(scribbler.distances, found)
    assert metrics.knn_recall(data.distances, scribbler, K) < 0.1


@every_sweep
def test_an_in_place_write_fails_with_the_reason(swept):
    error = swept["cheat-in-place"].attrs.get("error", "")
    assert error.startswith("fit failed: ValueError") and "read-only" in error, error


def test_the_conformance_suite_makes_an_in_place_write_an_error(xs_angular):
    """The conformance suite hands wrappers the read-only inputs a sweep hands them, so a wrapper
    that writes into its inputs fails there with the reason, before any sweep."""
    [definition] = get_definitions(load_algorithms(CHEATS), "angular", "float", K, 20, ["cheat-in-place"])
    data = datasets.load_dataset(xs_angular)
    with pytest.raises(ValueError, match="read-only"):
        answer_both_ways(definition, (), copy_points(data.train), copy_points(data.test[:10]))

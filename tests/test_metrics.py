"""The metric table, checked against values worked out by hand, and its cache."""

import math
import os

import numpy as np
import pytest

from ann_bench.datasets import write_dataset
from ann_bench.errors import UserError
from ann_bench.report import cache, metrics
from ann_bench.report.cache import MetricsCache, metrics_for_results, results_table
from ann_bench.report.metrics import METRICS, compute_metrics
from ann_bench.results.files import STATUS_FAILED, RunResult, result_path, write_result

INF = np.inf


def run(distances, **attrs):
    distances = np.asarray(distances, dtype=np.float64)
    ids = np.where(np.isfinite(distances), 0, -1).astype(np.int32)
    return RunResult(attrs=dict(attrs), neighbors=ids, distances=distances)


def metric(name, truth, result, count):
    return METRICS[name].function(np.asarray(truth, dtype=np.float64), result, count)


# --- recall ---------------------------------------------------------------------------------

def test_perfect_answer_has_recall_one():
    truth = [[1.0, 2.0, 3.0, 4.0], [0.5, 1.0, 4.0, 9.0]]
    result = run([[1.0, 2.0, 3.0], [0.5, 1.0, 4.0]])
    for name in ("k-nn", "epsilon-0.01", "epsilon-0.1"):
        assert metric(name, truth, result, 3) == 1.0
    assert metric("rel", truth, result, 3) == 1.0


def test_recall_is_tie_tolerant_and_uses_epsilon_1e3():
    truth = [
        [1.0, 2.0, 2.0, 3.0],  # two points tied at the 2nd distance
        [0.1, 0.2, 0.3, 0.4],
        [1.0, 2.0, 3.0, 4.0],
        [1.0, 2.0, 3.0, 4.0],
    ]
    result = run([
        [1.0, 2.0],     # the other tied point: a hit -> 1
        [0.1, 0.2005],  # within 2nd + 1e-3 -> 1
        [1.0, 2.01],    # beyond 2.001 -> 0.5
        [1.0, 2.1],     # -> 0.5
    ])
    assert metric("k-nn", truth, result, 2) == pytest.approx(3.0 / 4)
    # epsilon 0.01: thresholds 2.02, 0.202, 2.02, 2.02 -> 1, 1, 1, 0.5
    assert metric("epsilon-0.01", truth, result, 2) == pytest.approx(3.5 / 4)
    # epsilon 0.1: threshold 2.2 takes 2.1 too
    assert metric("epsilon-0.1", truth, result, 2) == 1.0


def test_recall_counts_only_the_first_count_answers():
    truth = [[1.0, 2.0, 3.0]]
    assert metric("k-nn", truth, run([[1.0, 5.0, 2.0]]), 2) == 0.5


def test_count_larger_than_the_true_neighbours_given():
    truth = [[1.0, 2.0, 3.0], [1.0, 2.0, INF]]  # second query: only two true neighbours exist
    result = run([[1.0, 2.0, 3.0, 10.0, 11.0], [1.0, 2.0, 7.0, 8.0, 9.0]])
    assert metric("k-nn", truth, result, 5) == 1.0
    half = run([[1.0, 9.0, 9.0, 9.0, 9.0], [1.0, 9.0, 9.0, 9.0, 9.0]])
    assert metric("k-nn", truth, half, 5) == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_padded_answers_never_count():
    truth = [[1.0, 2.0], [1.0, 2.0]]
    assert metric("k-nn", truth, run([[1.0, INF], [INF, INF]]), 2) == pytest.approx(0.25)
    # a result narrower than count: the missing columns are misses
    assert metric("k-nn", truth, run([[1.0], [1.0]]), 2) == 0.5


def test_result_for_another_number_of_queries_is_an_error():
    with pytest.raises(Exception, match="answers 1 queries but the dataset has 2"):
        metric("k-nn", [[1.0], [2.0]], run([[1.0]]), 1)


def test_no_distances_gives_nan():
    assert math.isnan(metric("k-nn", [[1.0]], RunResult(attrs={}), 1))


def test_relative_error():
    truth = [[1.0, 2.0, 9.0], [2.0, 4.0, 9.0]]
    assert metric("rel", truth, run([[1.0, 3.0], [2.0, 6.0]]), 2) == pytest.approx(12 / 9)
    # a missing answer is left out of both sums (recall charges for it)
    assert metric("rel", truth, run([[1.0, INF], [2.0, 4.0]]), 2) == pytest.approx(1.0)
    # zero true distances: exact answers are 1, anything else infinitely worse
    assert metric("rel", [[0.0, 0.0]], run([[0.0, 0.0]]), 2) == 1.0
    assert metric("rel", [[0.0, 0.0]], run([[0.0, 1.0]]), 2) == math.inf
    assert math.isnan(metric("rel", [[1.0]], run([[INF]]), 1))


def test_qps_and_latency_percentiles():
    result = run([[1.0]] * 100, best_search_time=0.002)
    result.times = np.arange(1, 101) / 1000.0  # 1 ms .. 100 ms
    assert metric("qps", [[1.0]] * 100, result, 1) == pytest.approx(500.0)
    # linear interpolation between order statistics: position 99 * q
    assert metric("p50", [[1.0]] * 100, result, 1) == pytest.approx(50.5)
    assert metric("p95", [[1.0]] * 100, result, 1) == pytest.approx(95.05)
    assert metric("p99", [[1.0]] * 100, result, 1) == pytest.approx(99.01)
    assert metric("p999", [[1.0]] * 100, result, 1) == pytest.approx(99.901)


def test_attribute_metrics():
    result = run([[1.0]] * 100, best_search_time=0.002, build_time=12.5, index_size=1000.0,
                 candidates=7.0, dist_comps=6000, run_count=2, peak_build_mb=80.5, peak_query_mb=60.25,
                 ondisk_mb=3.5)
    result.times = np.full(100, 0.002)
    got = compute_metrics(np.ones((100, 1)), result, 1)
    assert got["build"] == 12.5
    assert got["indexsize"] == 1000.0
    assert got["queriessize"] == pytest.approx(1000.0 / 500.0)
    assert got["candidates"] == 7.0
    assert got["distcomps"] == 6000  # wrappers report it per query already
    assert (got["peak_build_mb"], got["peak_query_mb"], got["ondisk_mb"]) == (80.5, 60.25, 3.5)
    bare = compute_metrics(np.ones((100, 1)), run([[1.0]] * 100), 1)
    for name in ("qps", "p50", "build", "indexsize", "queriessize", "candidates", "distcomps", "peak_build_mb",
                 "peak_query_mb", "ondisk_mb"):
        assert math.isnan(bare[name]), name


def test_a_run_better_in_every_respect_scores_better_on_every_metric():
    """Each metric's direction (`better`) is what frontiers and tables rank by: a run that is
    more accurate, faster, steadier and smaller in every figure must come out better on every
    metric of the table, by that metric's own direction."""
    truth = np.tile([1.0, 2.0, 3.0], (100, 1))

    def made(answers, seconds, passes, size):
        result = run(np.tile(answers, (100, 1)), best_search_time=seconds, build_time=size, index_size=size,
                     candidates=size, dist_comps=size, peak_build_mb=size, peak_query_mb=size, ondisk_mb=size)
        result.times = np.full(100, seconds)
        result.run_times = np.array(passes)
        return compute_metrics(truth, result, 2)

    good = made([1.0, 2.0], 0.001, [0.1, 0.1, 0.1], 1.0)
    worse = made([1.0, 3.0], 0.002, [0.2, 0.25, 0.3], 2.0)  # half the recall, slower, unsteady, larger
    for name, m in METRICS.items():
        assert m.description and m.better in ("higher", "lower"), name
        better = good[name] > worse[name] if m.better == "higher" else good[name] < worse[name]
        assert better, (name, m.better, good[name], worse[name])


def test_spread_of_the_timed_passes():
    result = run([[1.0]], best_search_time=0.5)
    result.run_times = np.array([0.5, 0.6, 0.7])  # one query: the best pass is best_search_time
    assert metric("qps", [[1.0]], result, 1) == 2.0
    assert metric("qps-slowest", [[1.0]], result, 1) == pytest.approx(2.0 * 0.5 / 0.7)
    assert metric("qps-cv", [[1.0]], result, 1) == pytest.approx(0.1 / 0.6)  # sample sd 0.1, mean 0.6
    result.run_times = np.array([0.5])
    assert metric("qps-slowest", [[1.0]], result, 1) == 2.0 and math.isnan(metric("qps-cv", [[1.0]], result, 1))
    result.run_times = None  # an ann-benchmarks file keeps only the best pass
    assert math.isnan(metric("qps-slowest", [[1.0]], result, 1)) and math.isnan(metric("qps-cv", [[1.0]], result, 1))


def test_compute_metrics_subset_and_unknown_name():
    result = run([[1.0]], best_search_time=0.5)
    assert compute_metrics([[1.0]], result, 1, names=["qps", "k-nn"]) == {"qps": 2.0, "k-nn": 1.0}
    with pytest.raises(ValueError, match="recall"):
        compute_metrics([[1.0]], result, 1, names=["recall"])


# --- cache ----------------------------------------------------------------------------------

TRUTH = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])


def write_run(results_dir, algorithm, build_args, query_args, distances, batch=False, status="ok", qps=100.0):
    path = result_path(results_dir, "toy", 2, algorithm, batch, build_args, query_args)
    attrs = {"name": f"{algorithm}({query_args})", "algo": algorithm, "dataset": "toy", "count": 2,
             "batch_mode": batch, "build_args": build_args, "query_args": query_args, "status": status,
             "best_search_time": 1.0 / qps, "build_time": 1.0, "index_size": 10.0, "candidates": 2.0,
             "run_count": 1, "environment": {"library_version": "1.2.3", "cpu_model": "Toy CPU"}}
    if status != "ok":
        return write_result(path, RunResult(attrs=dict(attrs, error="it broke")))
    result = run(distances, **attrs)
    result.times = np.full(len(distances), 1.0 / qps)
    return write_result(path, result)


def same_rows(a, b):
    """Equal, with nan equal to nan, and with the same key order."""
    return [list(r) for r in a] == [list(r) for r in b] and all(
        x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        for ra, rb in zip(a, b) for x, y in zip(ra.values(), rb.values()))


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return TRUTH


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "results"
    write_run(d, "alpha", {"n": 1}, [10], [[1.0, 2.0], [1.0, 9.0]])
    write_run(d, "alpha", {"n": 1}, [20], [[1.0, 2.0], [1.0, 2.0]])
    write_run(d, "beta", {}, [1], None, status=STATUS_FAILED)
    write_run(d, "beta", {}, [1], [[1.0, 2.0], [1.0, 2.0]], batch=True)
    return d


def test_rows_carry_description_and_metrics(results_dir):
    rows = metrics_for_results(results_dir, "toy", 2, true_distances=TRUTH)
    assert len(rows) == 3  # the failed one is left out
    by_query = {(r["algorithm"], str(r["query_args"])): r for r in rows}
    row = by_query[("alpha", "[10]")]
    assert row["build_args"] == {"n": 1} and row["batch_mode"] is False
    assert row["k-nn"] == 0.75 and row["qps"] == pytest.approx(100.0)
    assert row["library_version"] == "1.2.3" and row["cpu_model"] == "Toy CPU"
    assert row["path"].endswith(".hdf5")
    assert by_query[("beta", "[1]")]["batch_mode"] is True
    assert [r["algorithm"] for r in metrics_for_results(results_dir, "toy", 2, batch=True,
                                                         true_distances=TRUTH)] == ["beta"]


def test_cache_hit_does_not_load_the_dataset(results_dir):
    counter = Counter()
    first = metrics_for_results(results_dir, "toy", 2, true_distances=counter)
    assert counter.calls == 1
    assert MetricsCache(results_dir).path("toy", 2) == results_dir / ".cache" / "metrics-toy-2.json"
    assert (results_dir / ".cache" / "metrics-toy-2.json").is_file()
    second = metrics_for_results(results_dir, "toy", 2, true_distances=counter)
    assert counter.calls == 1
    assert same_rows(second, first)
    # the batch-only listing is cached too, and keeps the other mode's entries
    metrics_for_results(results_dir, "toy", 2, batch=True, true_distances=counter)
    metrics_for_results(results_dir, "toy", 2, true_distances=counter)
    assert counter.calls == 1


def test_cache_is_invalidated_when_a_file_changes(results_dir):
    counter = Counter()
    before = {str(r["query_args"]): r["k-nn"] for r in metrics_for_results(results_dir, "toy", 2,
                                                                          true_distances=counter)}
    assert before["[10]"] == 0.75
    path = write_run(results_dir, "alpha", {"n": 1}, [10], [[1.0, 9.0], [1.0, 9.0]])  # a rerun
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # whatever the clock's grain
    after = {str(r["query_args"]): r["k-nn"] for r in metrics_for_results(results_dir, "toy", 2,
                                                                         true_distances=counter)}
    assert counter.calls == 2
    assert after["[10]"] == 0.5 and after["[20]"] == 1.0


def test_cache_is_invalidated_by_a_new_metrics_version(results_dir, monkeypatch):
    counter = Counter()
    metrics_for_results(results_dir, "toy", 2, true_distances=counter)
    monkeypatch.setattr(cache, "METRICS_VERSION", metrics.METRICS_VERSION + 1)
    metrics_for_results(results_dir, "toy", 2, true_distances=counter)
    assert counter.calls == 2


def test_damaged_cache_is_ignored(results_dir):
    counter = Counter()
    cache_file = MetricsCache(results_dir).path("toy", 2)
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text("{not json")
    assert len(metrics_for_results(results_dir, "toy", 2, true_distances=counter)) == 3
    assert counter.calls == 1
    assert not [p for p in cache_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_no_results_needs_no_dataset(tmp_path):
    counter = Counter()
    assert metrics_for_results(tmp_path, "toy", 2, true_distances=counter) == []
    assert counter.calls == 0


def test_a_dataset_made_again_invalidates_the_cache(results_dir, tmp_path):
    """Metrics depend on the ground truth: new dataset file, new metrics."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    train, test = np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32)
    neighbors = np.array([[0, 1, 2], [0, 1, 2]])

    def make(distances):
        write_dataset(data_dir / "toy.hdf5", train, test, "euclidean", neighbors=neighbors,
                      distances=distances, progress=False)

    def recalls():
        rows = metrics_for_results(results_dir, "toy", 2, data_dir=data_dir)
        return sorted(r["k-nn"] for r in rows)

    make(TRUTH)
    assert recalls() == [0.75, 1.0, 1.0]
    make(TRUTH / 10)  # nothing returned is within the new, tighter truth
    os.utime(data_dir / "toy.hdf5", ns=(1, 1))  # a stamp unlike the first file's, however fast this runs
    assert recalls() == [0.0, 0.0, 0.0]


def test_results_table_lists_failures_and_unreadable_files(results_dir, caplog):
    damaged = results_dir / "toy" / "2" / "alpha" / "damaged.hdf5"
    damaged.write_bytes(b"not an HDF5 file")
    table = results_table(results_dir, "toy", 2, true_distances=TRUTH)
    assert len(table.rows) == 3
    (failure,) = table.failures
    assert failure["algorithm"] == "beta" and failure["status"] == STATUS_FAILED and failure["error"] == "it broke"
    assert failure["environment"]["cpu_model"] == "Toy CPU" and failure["mtime_ns"] > 0
    (unreadable,) = table.unreadable
    assert unreadable["path"] == str(damaged) and unreadable["error"]
    assert "cannot read or measure" in caplog.text and str(damaged) in caplog.text
    # cached: the failure's reason is read again without opening its file, the damaged file is not cached
    again = results_table(results_dir, "toy", 2, true_distances=lambda: 1 / 0)
    assert again.failures == table.failures and again.unreadable == table.unreadable


def test_results_table_without_the_dataset_says_so(results_dir, tmp_path):
    with pytest.raises(UserError):
        results_table(results_dir, "toy", 2, data_dir=tmp_path / "no-data")  # no toy.hdf5 there
    write_run(results_dir, "alpha", {"n": 1}, [10], [[1.0, 2.0, 3.0]])  # answers 1 query of the 2
    table = results_table(results_dir, "toy", 2, true_distances=TRUTH)
    assert "answers 1 queries but the dataset has 2" in table.unreadable[0]["error"]

"""The dry run's estimates: a range per algorithm from what it is based on, modelled per build and
per query-argument set, so that unmeasured costly settings are not priced like cheap ones."""

from dataclasses import replace

import numpy as np
import pytest

from ann_bench.datasets import write_dataset
from ann_bench.results.files import RunResult, result_dir, result_path, write_result
from ann_bench.run.definitions import Definition
from ann_bench.run.estimate import CostModel, Observation, Range, dry_run_table, flatten, past_costs, wall_time
from ann_bench.run.jobs import Settings
from ann_bench.run.plan import make_plan


def annoy_like(n_trees, search_ks):
    return Definition(algorithm="tree", run_group="g", module="m", constructor="C", image="i",
                      args={"n_trees": n_trees}, query_args=tuple({"search_k": k} for k in search_ks))


def settings_for(tmp_path, dataset_path, dataset="mine", runs=1, parallelism=1):
    return Settings(dataset=dataset, dataset_path=dataset_path, results_dir=tmp_path / "results", count=10,
                    runs=runs, parallelism=parallelism)


def write_dataset_of(path, n_train, n_test, dimension=4):
    rng = np.random.default_rng(0)
    write_dataset(path, rng.random((n_train, dimension)), rng.random((n_test, dimension)), "euclidean", count=10,
                  progress=False)


def record(results_dir, dataset, algorithm, build_args, query_args, build_time, library_seconds, run_count=1,
           queries=None):
    """A result with its costs; with `queries`, its per-query times too (how many queries it ran)."""
    path = result_path(results_dir, dataset, 10, algorithm, False, build_args, query_args)
    times = None if queries is None else np.zeros(queries)
    write_result(path, RunResult(attrs={"status": "ok", "build_time": build_time, "library_seconds": library_seconds,
                                        "run_count": run_count, "build_args": build_args, "query_args": query_args},
                                 times=times))


def test_a_measured_setting_costs_what_it_cost_give_or_take_noise():
    model = CostModel([Observation(flatten({"M": 16}), 10.0)])
    cost, basis = model.predict(flatten({"M": 16}))
    # Noise, and a busier machine than when it was measured: never more than 1.5x.
    assert basis == "measured" and 8.0 <= cost.low < 10.0 < cost.high <= 15.0


def test_an_unmeasured_costlier_setting_is_read_off_the_fitted_law_not_the_mean_of_cheap_ones():
    # Cost linear in search_k, measured up to 10,000: 400,000 must be priced near 40x the last.
    model = CostModel([Observation(flatten({"n": 100}, {"k": k}), k / 1000) for k in (100, 400, 1000, 4000, 10000)])
    cost, basis = model.predict(flatten({"n": 100}, {"k": 400_000}))
    assert basis == "fitted on 5 results"
    assert cost.low <= 400.0 <= cost.high and cost.high < 4000.0
    mean_of_done = np.mean([o.seconds for o in model.observations])
    assert cost.low > 10 * mean_of_done


def test_with_one_measured_setting_the_range_spans_constant_to_linear_effort():
    model = CostModel([Observation(flatten({"n": 100}, {"k": 1000}), 2.0)])
    cost, basis = model.predict(flatten({"n": 100}, {"k": 4000}))
    assert basis == "nearest setting" and cost.low <= 2.0 and 8.0 <= cost.high <= 12.0


def test_settings_that_differ_in_a_non_numeric_argument_say_little():
    model = CostModel([Observation(flatten({"metric": "l2"}, {"k": 10}), 1.0),
                       Observation(flatten({"metric": "l2"}, {"k": 20}), 3.0)])
    cost, basis = model.predict(flatten({"metric": "ip"}, {"k": 10}))
    assert basis == "other settings" and cost.low <= 1.0 and cost.high >= 3.0


def test_the_wall_time_shares_the_work_and_never_beats_the_longest_definition():
    from ann_bench.run.estimate import Estimate

    a = Estimate(Range(100, 200), Range(90, 180), ["measured"])
    b = Estimate(Range(10, 20), Range(10, 20), ["measured"])
    # Two workers: at most half the work plus half the longest (Graham's bound for list scheduling).
    assert wall_time([a, b], 2) == Range(90, 110 + 180 / 2)
    # One worker runs one definition after another: the wall time is the work, no more.
    assert wall_time([a, b], 1) == Range(110, 220)


def test_a_resume_of_a_costly_grid_is_estimated_from_its_effort_not_its_cheap_points(tmp_path):
    """The case of the issue: annoy's cheap search_k values done, the costly ones left."""
    data = tmp_path / "data"
    write_dataset_of(data / "mine.hdf5", 500, 50)
    settings = settings_for(tmp_path, data / "mine.hdf5")
    done = (100, 200, 400, 1000, 2000, 4000)
    for k in done:
        record(settings.results_dir, "mine", "tree", {"n_trees": 100}, {"search_k": k}, 5.0, k / 1000)
    plan = make_plan([annoy_like(100, done + (40_000, 100_000, 400_000))], settings)
    out = dry_run_table(plan, settings)
    line = next(line for line in out.splitlines() if line.startswith("tree"))
    assert line.split()[1:5] == ["1", "3", "6", "0"] and "fitted on 6 results" in line
    actual = 5.0 + (40 + 100 + 400)  # the build again, and the three costly sets at their true cost
    wall = out.splitlines()[-1]
    low, high = _range_seconds(wall.split("estimated wall time: ")[1].split(" with")[0])
    assert low <= actual <= high


def test_nothing_measured_anywhere_is_unknown_and_says_so(tmp_path):
    data = tmp_path / "data"
    write_dataset_of(data / "mine.hdf5", 100, 10)
    settings = settings_for(tmp_path, data / "mine.hdf5")
    out = dry_run_table(make_plan([annoy_like(10, (100,))], settings), settings)
    assert "unknown" in out and "not counting tree (unknown)" in out.splitlines()[-1]


def test_another_dataset_is_scaled_by_size_into_a_wide_range_and_says_so(tmp_path):
    data = tmp_path / "data"
    write_dataset_of(data / "big.hdf5", 400, 30)
    settings = settings_for(tmp_path, data / "big.hdf5", "big")
    plan = make_plan([annoy_like(10, (100, 200))], settings)
    for dataset, seconds in (("small", 1.0), ("tiny", 100.0)):
        for k in (100, 200):
            record(settings.results_dir, dataset, "tree", {"n_trees": 10}, {"search_k": k}, 2 * seconds, seconds)
    # Results without their dataset's file give nothing to scale by.
    assert "unknown" in dry_run_table(plan, settings).splitlines()[-2]
    write_dataset_of(data / "small.hdf5", 100, 10)
    write_dataset_of(data / "tiny.hdf5", 20, 10)
    out = dry_run_table(plan, settings)
    line = next(line for line in out.splitlines() if line.startswith("tree"))
    # small is nearer in size than tiny: a build of 2 s x 4 (train) and two sets of 1 s x 3 (test).
    assert "(scaled from small)" in line
    low, high = _range_seconds(line.split(None, 5)[5].split(" (")[0])
    assert low < 2 * 4 + 2 * 3 < high and high < 200
    assert "rough" in out.splitlines()[-1]


def test_a_wider_dataset_costs_its_dimension_once_per_query_set(tmp_path):
    """Same points and queries, ten times the dimension: each query reads ten times the values,
    so a query set costs about 10x, not 10x for the queries' width times 10x for the points'."""
    data = tmp_path / "data"
    write_dataset_of(data / "narrow.hdf5", 100, 10, dimension=4)
    write_dataset_of(data / "wide.hdf5", 100, 10, dimension=40)
    settings = settings_for(tmp_path, data / "wide.hdf5", "wide")
    record(settings.results_dir, "narrow", "tree", {"n_trees": 10}, {"search_k": 100}, 0.0001, 1.0)
    line = next(line for line in dry_run_table(make_plan([annoy_like(10, (100,))], settings), settings).splitlines()
                if line.startswith("tree"))
    low, high = _range_seconds(line.split(None, 5)[5].split(" (")[0])
    # 10 s, give or take timing noise, x/÷ 3 for the data's difficulty, plus a container's start-up; counting
    # the dimension twice would put the top near 400 s.
    assert low < 10 < high < 50


def test_the_warm_up_is_priced_as_the_share_of_a_pass_it_is(tmp_path):
    """10,000 queries: the warm-up is a tenth of a pass. 1.1 s for one timed pass and the warm-up
    is 5.1 s for five passes, not 1.1 x 6/2."""
    data = tmp_path / "data"
    write_dataset_of(data / "mine.hdf5", 100, 10)
    settings = settings_for(tmp_path, data / "mine.hdf5", runs=5)
    record(settings.results_dir, "mine", "tree", {"n_trees": 10}, {"search_k": 100}, 0.0001, 1.1, queries=10_000)
    costs = past_costs(result_dir(settings.results_dir, "mine", 10, "tree", False), runs=5)
    [observation] = costs.queries.observations
    assert observation.seconds == pytest.approx(5.1)


def _range_seconds(text):
    """"5.7 s-2 min" -> (5.7, 120.0)."""
    def seconds(part):
        value, unit = part.strip().split()
        return float(value) * {"s": 1, "min": 60, "h": 3600}[unit]
    low, _, high = text.partition("-")
    return seconds(low), seconds(high or low)


def test_run_py_dry_run_lists_definitions_runs_nothing_and_then_prices_what_it_measured(tmp_path, data_dir,
                                                                                          xs_angular, capsys):
    from ann_bench.results.files import iter_result_paths

    from .test_sweep import run

    assert run(tmp_path, data_dir, "good", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "     2     0      0  scripted(rule=good)" in out and "unknown" in out
    assert list(iter_result_paths(tmp_path / "results")) == []
    assert run(tmp_path, data_dir, "good", "--max-n-algorithms", "1") == 0
    capsys.readouterr()
    assert run(tmp_path, data_dir, "good, other", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "     0     2      0  scripted(rule=good)" in out and "     2     0      0  scripted(rule=other)" in out
    line = next(line for line in out.splitlines() if line.startswith("scripted"))
    assert line.split()[1:5] == ["1", "2", "2", "0"] and "(other settings)" in line and "unknown" not in out
    assert len(list(iter_result_paths(tmp_path / "results"))) == 2


def test_sets_the_grader_skipped_on_this_dataset_are_priced_as_skipped_again_unless_exhaustive(tmp_path):
    """A rerun (--force) of a build whose costlier sets were skipped once a cheaper one reached
    recall 1.0: they will be skipped again, so they cost nothing; --exhaustive runs them."""
    data = tmp_path / "data"
    write_dataset_of(data / "mine.hdf5", 100, 10)
    settings = settings_for(tmp_path, data / "mine.hdf5")
    record(settings.results_dir, "mine", "tree", {"n_trees": 10}, {"search_k": 100}, 1.0, 10.0)
    for k in (1000, 10_000):
        path = result_path(settings.results_dir, "mine", 10, "tree", False, {"n_trees": 10}, {"search_k": k})
        write_result(path, RunResult(attrs={"status": "skipped", "build_args": {"n_trees": 10},
                                            "query_args": {"search_k": k}}))

    def priced(**changes):
        rerun = replace(settings, force=True, **changes)
        line = next(line for line in dry_run_table(make_plan([annoy_like(10, (100, 1000, 10_000))], rerun),
                                                   rerun).splitlines() if line.startswith("tree"))
        return _range_seconds(line.split(None, 5)[5].split(" (")[0])

    low, high = priced()
    assert low < 11 < high < 25  # the build and the one set measured, give or take noise
    assert priced(exhaustive=True)[1] > 100  # search_k 1,000 and 10,000 cost more than 10x more

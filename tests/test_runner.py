import numpy as np
import pytest

from ann_bench.algorithms.faults.module import Scripted
from ann_bench.results.files import read_result
from ann_bench.run.definitions import Definition
from ann_bench.run.inputs import worker_input
from ann_bench.run.jobs import write_failure
from ann_bench.run.messages import receive
from ann_bench.run.runner import InvalidAnswer, Job, display_name, run_job, validate_answers


def test_valid_answers_are_padded():
    ids = validate_answers([np.array([3, 1]), [2, 0, 1]], 3, 5)
    np.testing.assert_array_equal(ids, [[3, 1, -1], [2, 0, 1]])


@pytest.mark.parametrize("answer, message", [
    ([1, 1], "duplicate"),
    ([5], "out of range"),
    ([-1], "out of range"),
    ([0, 1, 2, 3], "4 ids returned"),
    ([[0, 1]], "shape"),
    ([0.5], "type"),
])
def test_invalid_answers(answer, message):
    with pytest.raises(InvalidAnswer, match=message):
        validate_answers([[0], answer], 3, 5)


def test_equal_length_answers_are_checked_too():
    """The fast path (one id matrix) finds what the one-by-one path finds."""
    with pytest.raises(InvalidAnswer, match="query 1: duplicate ids"):
        validate_answers(np.array([[0, 1], [2, 2]]), 3, 5)
    with pytest.raises(InvalidAnswer, match="query 0: id 5 out of range"):
        validate_answers([np.array([5, 1]), np.array([2, 3])], 3, 5)


@pytest.mark.parametrize("answers, message", [(None, "no answers returned"), ([[0], [1]], "2 answers for 3 queries")])
def test_one_answer_per_query(answers, message):
    with pytest.raises(InvalidAnswer, match=message):
        validate_answers(answers, 3, 5, n_queries=3)


def make_job(tmp_path, dataset, rule, query_args=({"mode": "good"}, {"mode": "bad"})):
    definition = Definition(algorithm="scripted", run_group="g", module=Scripted.__module__,
                            constructor="Scripted", image="faults", base_args=("angular",),
                            args={"rule": rule}, query_args=tuple(query_args))
    return Job(definition=definition, dataset="random-xs-20-angular", dataset_path=str(worker_input(dataset)),
               results_dir=str(tmp_path), count=10, batch=False, runs=2, query_args=list(query_args),
               environment={})


def reason(tmp_path, query_args):
    """The failure the worker reported for a query-argument set."""
    [message] = [m for m in receive(tmp_path).values() if m.query_args == query_args]
    assert message.status == "failed"
    return message.reason


@pytest.mark.parametrize("rule, error", [
    ("duplicates", "invalid answer: query 0: duplicate ids"),
    ("out-of-range", "invalid answer: query 0: id 9000 out of range"),
    ("too-many", "invalid answer: query 0: 11 ids returned for k=10"),
    ("floats", "invalid answer: query 0: ids of type float64"),
    ("query-raises", "ValueError: query blew up"),
    # Only the warm-up's first answer is bad: the timed passes are fine, the set still fails.
    ("bad-in-warmup", "invalid answer: query 0: duplicate ids"),
])
def test_bad_query_set_is_a_recorded_failure_and_others_still_run(tmp_path, xs_angular, rule, error):
    job = make_job(tmp_path, xs_angular, rule)
    assert run_job(job) is False
    good = read_result(job.result_path({"mode": "good"}))
    assert good.ok and good.neighbors.shape == (1000, 10)
    assert not job.result_path({"mode": "bad"}).exists() and reason(tmp_path, {"mode": "bad"}).startswith(error)


def test_fit_failure_fails_every_query_set(tmp_path, xs_angular):
    job = make_job(tmp_path, xs_angular, "fit-raises")
    assert run_job(job) is False
    for q in job.query_args:
        assert not job.result_path(q).exists() and "cannot build this index" in reason(tmp_path, q)


def test_result_records_runs_times_and_environment(tmp_path, xs_angular):
    job = make_job(tmp_path, xs_angular, "good", [{"mode": "good"}])
    assert run_job(job) is True
    result = read_result(job.result_path({"mode": "good"}))
    assert result.run_times.shape == (2,) and result.times.shape == (1000,)
    assert result.attrs["best_search_time"] == pytest.approx(min(result.run_times) / 1000)
    env = result.environment
    assert env["cpu_model"] and env["python"] and env["numpy"]
    assert result.attrs["name"] == display_name(job.definition, {"mode": "good"}) == "scripted(rule=good, mode=good)"
    # The worker has no ground truth and its distances would not be trusted: the host computes them.
    assert result.attrs["distance"] == "angular" and result.distances is None


def test_a_failed_rerun_keeps_the_earlier_good_result(tmp_path, xs_angular):
    """--force runs a finished set again; if that run fails, the host keeps the good result."""
    job = make_job(tmp_path, xs_angular, "good", [{"mode": "good"}])
    assert run_job(job) is True
    path = job.result_path({"mode": "good"})
    before = path.stat().st_mtime_ns
    assert write_failure(job, {"mode": "good"}, "broken this time") == path
    assert read_result(path).ok and path.stat().st_mtime_ns == before

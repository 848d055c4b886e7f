import re
import time

import numpy as np
import pytest

from ann_bench.algorithms.base import BaseANN, rss_kb
from ann_bench.algorithms.faults.module import Scripted
from ann_bench.results.files import read_result
from ann_bench.run.definitions import Definition
from ann_bench.run.inputs import worker_input
from ann_bench.run.jobs import write_failure
from ann_bench.run.messages import receive
from ann_bench.run.runner import InvalidAnswer, Job, display_name, run_job, time_batch, time_single, validate_answers
from ann_bench.run.sealed import handout, seal, seal_points


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


# -- the clock covers all of a wrapper's work --------------------------------------------------

class Lazy:
    """An answer that does its work (here: notes the time) when it is made an array."""

    def __init__(self, events: list, ids):
        self.events, self.ids = events, ids

    def __array__(self, dtype=None, copy=None):
        self.events.append(time.perf_counter_ns())
        return np.asarray(self.ids, dtype=dtype)


def test_a_lazy_answer_is_made_an_array_inside_the_timer():
    events: list[int] = []

    def query(q, k):
        events.append(time.perf_counter_ns())
        return Lazy(events, [0, 1, 2])

    times, answers = time_single(query, [np.zeros(2)], 3)
    assert len(events) == 2 and times[0] >= events[1] - events[0]
    assert type(answers[0]) is np.ndarray and answers[0].tolist() == [0, 1, 2]


class LateBatch(BaseANN):
    """Notes when batch_query and get_batch_results run, and answers lazily."""

    def __init__(self):
        super().__init__()
        self.events: list[int] = []

    def batch_query(self, Q, k):
        self.events.append(time.perf_counter_ns())

    def get_batch_results(self):
        self.events.append(time.perf_counter_ns())
        return Lazy(self.events, [[0, 1], [1, 2]])


def test_get_batch_results_and_its_conversion_are_timed_with_batch_query():
    algo = LateBatch()
    elapsed, answers = time_batch(algo, np.zeros((2, 2)), 2)
    assert len(algo.events) == 3 and elapsed >= algo.events[2] - algo.events[0]
    np.testing.assert_array_equal(answers, [[0, 1], [1, 2]])


def test_an_answer_is_a_copy_taken_in_the_timer():
    """A wrapper that returns its own buffer and writes the next answer into it keeps no
    hold on the answers already given (nor could it fill them in after the timer stops)."""
    buffer = np.zeros(2, dtype=np.int64)

    def query(q, k):
        buffer[:] = q
        return buffer

    _, answers = time_single(query, [np.array([0, 1]), np.array([2, 3])], 2)
    assert [a.tolist() for a in answers] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("answer, message", [
    ([[0, 1], [2]], "query 0: answer is not an array of ids"),
    ([object()], "ids of type object"),
    (None, "answer has shape ()"),
    (Lazy([], [0.5, 1.5]), "ids of type float64"),
])
def test_answers_that_are_no_id_arrays_are_invalid(answer, message):
    with pytest.raises(InvalidAnswer, match=re.escape(message)):
        _, answers = time_single(lambda q, k: answer, [np.zeros(2)], 2)
        validate_answers(answers, 2, 5, 1)


@pytest.mark.parametrize("answers, expected", [
    ([[0, 1], [2]], [[0, 1], [2, -1]]),  # of different lengths: one array each
    (np.array([[0, 1], [2, 3]], dtype=np.uint64), [[0, 1], [2, 3]]),
])
def test_batch_answers_are_arrays(answers, expected):
    algo = BaseANN()
    algo._batch_results = answers
    algo.batch_query = lambda Q, k: None
    _, arrays = time_batch(algo, np.zeros((2, 2)), 2)
    np.testing.assert_array_equal(validate_answers(arrays, 2, 5, 2), expected)


@pytest.mark.parametrize("answers, message", [(None, "no answers returned"), (5, "expected one list of ids per query")])
def test_a_batch_without_answers_is_invalid(answers, message):
    algo = BaseANN()
    algo._batch_results = answers
    algo.batch_query = lambda Q, k: None
    with pytest.raises(InvalidAnswer, match=message):
        validate_answers(time_batch(algo, np.zeros((2, 2)), 2)[1], 2, 5, 2)


# -- the inputs a wrapper gets -----------------------------------------------------------------

@pytest.mark.parametrize("points", [
    np.arange(12, dtype=np.float32).reshape(4, 3),
    [np.array([1, 2], dtype=np.int32), np.array([], dtype=np.int32), np.array([5], dtype=np.int32)],
], ids=["dense", "sets"])
def test_sealed_points_cannot_be_made_writable(points):
    sealed = seal_points(points)
    for given in (sealed, handout(sealed)):
        arrays = [given] if isinstance(given, np.ndarray) else given
        for array in arrays:
            chain = [array]
            while isinstance(chain[-1].base, np.ndarray):
                chain.append(chain[-1].base)
            for view in chain:
                with pytest.raises(ValueError, match="WRITEABLE"):
                    view.flags.writeable = True
            if array.size:
                with pytest.raises(ValueError, match="read-only"):
                    array[...] = 0
    for a, b in zip(sealed, points):
        np.testing.assert_array_equal(a, b)


def test_a_handout_is_a_view_of_its_own():
    """Reshaping what a wrapper was given does not reshape the worker's array."""
    sealed = seal(np.zeros((4, 3), dtype=np.float32))
    given = handout(sealed)
    given.shape = (3, 4)
    assert sealed.shape == (4, 3)


def test_sealed_memory_is_resident_before_fit():
    """Its pages are mapped when sealed, so a wrapper reading them in fit adds nothing to the
    memory measured around fit (the index size)."""
    sealed = seal(np.ones(16 << 20, dtype=np.float32))  # 64 MiB
    before = rss_kb()
    assert sealed.sum() == 16 << 20
    assert rss_kb() - before < 16 << 10

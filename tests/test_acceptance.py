"""The host's check of a worker's result file (ann_bench/results/acceptance.py), on files a real
worker wrote and then altered as a hostile wrapper could."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from ann_bench import datasets
from ann_bench.algorithms.faults.module import Scripted
from ann_bench.datasets.distance import distances_to
from ann_bench.results.acceptance import Reference, Rejected, accept, size_bound
from ann_bench.run.definitions import Definition
from ann_bench.run.inputs import load_inputs, worker_input
from ann_bench.run.jobs import Job, base_attrs, display_name
from ann_bench.run.runner import run_job

QUERY = {"mode": "good"}


@pytest.fixture
def written(tmp_path, xs_angular):
    """A job as the host sees it, and the file its worker wrote in its private output."""
    definition = Definition(algorithm="scripted", run_group="g", module=Scripted.__module__, constructor="Scripted",
                            image="faults", base_args=("angular",), args={"rule": "good"}, query_args=(QUERY,))
    job = Job(definition=definition, dataset="random-xs-20-angular", dataset_path=str(xs_angular),
              results_dir=str(tmp_path / "results"), count=10, batch=False, runs=2, query_args=[QUERY],
              environment={"executor": "test"})
    output = tmp_path / "output"
    output.mkdir()
    worker = Job(**dict(vars(job), dataset_path=str(worker_input(xs_angular)), results_dir=str(output)))
    assert run_job(worker)
    return job, worker.result_path(QUERY)


def check(job: Job, path, root=None):
    expected = base_attrs(job, display_name(job.definition, QUERY), QUERY)
    return accept(path, root or path.parents[3], expected, Reference(job.dataset_path), job.runs)


def test_the_worker_gets_train_and_test_only(xs_angular):
    inputs = worker_input(xs_angular)
    assert inputs.parent.name == ".worker-inputs" and worker_input(xs_angular) == inputs
    with h5py.File(inputs, "r") as f:
        assert sorted(f) == ["test", "train"] and f.attrs["distance"] == "angular"
    data, full = load_inputs(inputs), datasets.load_dataset(xs_angular)
    np.testing.assert_array_equal(data.train, full.train)
    np.testing.assert_array_equal(data.test, full.test)


def test_a_dataset_kept_in_the_inputs_folder_gets_its_copy_beside_it(xs_angular, tmp_path):
    # A cluster worker keeps the file a client sent in data/.worker-inputs/.
    received = tmp_path / ".worker-inputs" / "sent.received.hdf5"
    received.parent.mkdir()
    shutil.copyfile(xs_angular, received)
    assert worker_input(received).parent == received.parent


def test_a_good_file_is_accepted_with_the_hosts_distances_and_attributes(written, xs_angular):
    job, path = written
    result = check(job, path)
    data = datasets.load_dataset(xs_angular)
    ids = result.neighbors.astype(np.int64)
    np.testing.assert_array_equal(result.distances, distances_to("angular", data.test, data.train, ids))
    assert result.attrs["algo"] == "scripted" and result.attrs["distance"] == "angular"
    environment = result.attrs["environment"]  # the host's over the worker's
    assert environment["executor"] == "test" and environment["cpu_model"]


def alter(path, change):
    with h5py.File(path, "a") as f:
        change(f)


def replace_dataset(name, data):
    def change(f):
        del f[name]
        f.create_dataset(name, data=data)
    return change


@pytest.mark.parametrize("change, message", [
    (lambda f: f.attrs.__setitem__("algo", "bruteforce"), "attribute algo is 'bruteforce'"),
    (lambda f: f.attrs.__setitem__("query_args", '{"mode":"bad"}'), "attribute query_args"),
    (lambda f: f.attrs.__setitem__("count", 100), "attribute count"),
    (lambda f: f.attrs.__setitem__("best_search_time", float("nan")), "attribute best_search_time"),
    (lambda f: f.attrs.__setitem__("status", "failed"), "status is 'failed'"),
    (lambda f: f.create_dataset("answers", data=np.zeros(3)), "unexpected dataset 'answers'"),
    (replace_dataset("neighbors", np.zeros((1000, 9), dtype=np.int32)), "neighbors is int32 (1000, 9)"),
    (replace_dataset("neighbors", np.zeros((1000, 10), dtype=np.float32)), "neighbors is float32"),
    (replace_dataset("neighbors", np.tile(np.arange(10), (1000, 1)) * 0 + 3), "repeats an id"),
    (replace_dataset("neighbors", np.tile(np.arange(10) + 9000, (1000, 1))), "ids outside [-1, 9000)"),
    (replace_dataset("neighbors", np.tile([-1] + list(range(9)), (1000, 1))), "an id after a -1"),
    (replace_dataset("times", np.full(1000, -1.0)), "times has a value"),
    (lambda f: f.attrs.__setitem__("note", "x" * 100_000), "extra attribute 'note'"),
])
def test_a_file_that_is_not_what_was_asked_for_is_rejected(written, change, message):
    job, path = written
    alter(path, change)
    with pytest.raises(Rejected, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check(job, path)


def test_a_link_or_a_huge_file_is_not_read(written, tmp_path):
    job, path = written
    target = tmp_path / "elsewhere.hdf5"
    path.rename(target)
    path.symlink_to(target)
    with pytest.raises(Rejected, match="cannot open"):
        check(job, path)
    path.unlink()
    with open(path, "wb") as f:
        f.truncate(size_bound(1000, 10, job.runs) + 1)
    with pytest.raises(Rejected, match="more than"):
        check(job, path)


def test_a_directory_that_is_a_link_is_not_followed(written, tmp_path):
    """The worker's output/<dataset> made a link to a directory of the host's, where a file of
    the expected name waits (the host's own results, say)."""
    job, path = written
    elsewhere = tmp_path / "elsewhere"
    path.parents[2].rename(elsewhere)
    path.parents[2].symlink_to(elsewhere)
    assert path.is_file()
    with pytest.raises(Rejected, match="is a link"):
        check(job, path)

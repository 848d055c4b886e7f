"""Concurrent clients (run.py --clients N; ann_bench/run/clients.py, report/concurrency.py).

- Conformance, generated from algorithms.yaml like tests/test_conformance.py: every entry whose
  wrapper declares clients = "threads" or "connections" answers the same ids with 4 clients at
  once as one by one, on its metric's local dataset at its most accurate quick point; forked
  processes (the default) are checked on bruteforce.
- The burst itself: a duration runs whole rounds, a client's error reaches the caller.
- A real sweep with --clients, locally (hnswlib, 1 and 2 clients) and in Docker (bruteforce,
  hnswlib and pgvector-hnsw: processes, threads, connections; 2 clients): results in <algorithm>-c<N>/
  that the host accepted, kept apart from the single-query results, and read by plot.py and
  the site.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from ann_bench import cli
from ann_bench.algorithms.base import BaseANN
from ann_bench.algorithms.faults.module import Scripted
from ann_bench.errors import ConfigError
from ann_bench.paths import REPO
from ann_bench.report.cache import metrics_for_results
from ann_bench.report.concurrency import clients_points, scaling
from ann_bench.results.acceptance import Reference, Rejected, accept
from ann_bench.results.files import algorithm_of, clients_of, iter_result_paths, read_result, result_dir
from ann_bench.run import clients
from ann_bench.run.definitions import Definition, definitions_for_entry, load_algorithms
from ann_bench.run.executors.docker import images
from ann_bench.run.inputs import worker_input
from ann_bench.run.jobs import Job, base_attrs, display_name
from ann_bench.run.runner import instantiate, run_job, time_single

from .test_acceptance import QUERY, alter
from .test_conformance import (  # noqa: F401 (local_data is a fixture)
    ENTRIES,
    LOCAL_DATASETS,
    QUERIES,
    K,
    best_quick_point,
    copy_points,
    import_wrapper,
    local_data,
    set_query_arguments,
)
from .test_docker import engine  # noqa: F401 (a fixture)

CLIENTS = 4
DATASET = "random-xs-20-angular"


def _cases(kinds: tuple[str, ...]):
    for name, entry in ENTRIES.items():
        if entry.declared.clients not in kinds:
            continue
        metric = next((m for m in entry.metrics if m in LOCAL_DATASETS), None)
        marks = () if metric else pytest.mark.skip(reason=f"no local dataset for {name}'s metrics")
        yield pytest.param((name, metric), id=f"{name}-{metric}", marks=marks)


def sequential_and_concurrent(name: str, metric: str, local_data, n_clients: int = CLIENTS):
    """The entry's most accurate quick point, answering QUERIES queries one by one and then
    with n_clients at once (as run.py --clients does)."""
    entry = ENTRIES[name]
    import_wrapper(entry)
    data = local_data(metric)
    definition, query_args = best_quick_point(entry, metric, data)
    test = list(copy_points(data.test[:QUERIES]))
    algo = instantiate(definition)
    try:
        algo.fit(copy_points(data.train))
        set_query_arguments(algo, query_args)
        sequential = [np.asarray(algo.query(q, K)) for q in test]
        burst = clients.run_burst(algo, test, K, n_clients, None, time_single)
    finally:
        algo.done()
    return sequential, burst


def assert_same_answers(name: str, sequential: list, burst: clients.Burst) -> None:
    assert burst.answered == len(sequential)
    assert burst.wall_ns > 0 and (burst.times_ns > 0).all()
    for i, (one, many) in enumerate(zip(sequential, burst.answers)):
        assert np.array_equal(one, many), f"{name}: query {i}: {one} one by one, {many} with {CLIENTS} clients"


@pytest.mark.parametrize("case", list(_cases(("threads", "connections"))))
def test_concurrent_answers_equal_sequential_ones(case, local_data):
    name, metric = case
    sequential, burst = sequential_and_concurrent(name, metric, local_data)
    assert_same_answers(name, sequential, burst)


def test_forked_clients_answer_as_one_by_one(local_data):
    assert ENTRIES["bruteforce"].declared.clients == "processes"
    sequential, burst = sequential_and_concurrent("bruteforce", "angular", local_data)
    assert_same_answers("bruteforce", sequential, burst)


def test_the_libraries_asked_for_declare_threads_or_connections():
    declared = {entry.library: entry.declared.clients for entry in load_algorithms().values()}
    for library in ("hnswlib", "faiss", "voyager"):
        assert declared[library] == "threads", library
    for library in ("pgvector", "milvus", "lancedb", "chromadb"):
        assert declared[library] == "connections", library


class _Exact(BaseANN):
    """A tiny exact search over 2-D points: what the burst's own checks need, nothing else."""

    def fit(self, X: np.ndarray) -> None:
        self.points = np.asarray(X)

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        return np.argsort(((self.points - q) ** 2).sum(axis=1))[:k]


class _FailsOnFifth(_Exact):
    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        if q[0] == 5.0:
            raise ValueError("no answer to the fifth query")
        return super().query(q, k)


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_duration_runs_whole_rounds_until_it_has_passed(kind):
    algo = type("Exact", (_Exact,), {"clients": kind})()
    algo.fit(np.arange(40, dtype=np.float64).reshape(20, 2))
    rows = [np.array([float(i), 0.0]) for i in range(10)]
    burst = clients.run_burst(algo, rows, 3, 2, 0.05, time_single)
    assert burst.wall_ns >= 0.05e9
    assert burst.answered > len(rows) and burst.answered % 5 == 0  # whole rounds of 5 queries per client
    assert [list(a) for a in burst.answers] == [list(algo.query(q, 3)) for q in rows]


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_clients_error_reaches_the_runner(kind):
    algo = type("Failing", (_FailsOnFifth,), {"clients": kind})()
    algo.fit(np.zeros((20, 2)))
    rows = [np.array([float(i), 0.0]) for i in range(10)]
    with pytest.raises(ValueError, match="fifth query"):
        clients.run_burst(algo, rows, 3, 3, None, time_single)


class _Dies(_Exact):
    """Ends its process on the query (4, 0): by exit (SystemExit) or killed outright."""

    clients = "processes"
    kill = False

    def query(self, q: np.ndarray, k: int) -> np.ndarray:
        if q[0] == 4.0:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            sys.exit(3)
        return np.arange(k)


@pytest.mark.parametrize("kill, message", [(False, "client 0 ended: SystemExit: 3"),
                                           (True, "client 0 ended without answering .killed by signal 9")])
def test_a_client_process_that_ends_is_named_and_goes_no_further(kill, message):
    algo = type("Dies", (_Dies,), {"kill": kill})()
    rows = [np.array([float(i), 0.0]) for i in range(6)]
    with pytest.raises(clients.ClientFailed, match=message):
        clients.run_burst(algo, rows, 2, 2, None, time_single)


def test_the_mode_is_in_the_directory_name_and_reserved(tmp_path):
    directory = result_dir(tmp_path, "d", 10, "hnswlib", False, 8)
    assert directory.name == "hnswlib-c8" and clients_of(directory.name) == 8
    assert algorithm_of("hnswlib-c8") == algorithm_of("hnswlib-batch") == "hnswlib"
    assert clients_of("hnswlib-batch") is None and clients_of("hnswlib") is None
    bad = tmp_path / "algorithms.yaml"
    bad.write_text((REPO / "algorithms.yaml").read_text().replace("\n  hnswlib:\n", "\n  hnswlib-c2:\n", 1))
    with pytest.raises(ConfigError, match="-c<number>"):
        load_algorithms(bad)


def test_clients_and_batch_are_refused_together(capsys, xs_angular, data_dir, tmp_path):
    code = cli.main(["--dataset", DATASET, "--data-dir", str(data_dir), "--results", str(tmp_path),
                     "--local", "--clients", "2", "--batch"])
    assert code == 2 and "--clients and --batch" in capsys.readouterr().err


def quick_points(algorithm: str) -> int:
    """How many results run.py --quick makes for an entry on the local angular set."""
    return sum(len(d.query_args) for d in definitions_for_entry(ENTRIES[algorithm], "angular", 10, 20, quick=True))


def check_sweep(results, data_dir, algorithms: tuple[str, ...], counts: tuple[int, ...]) -> list:
    """The -c<N> results of the entries' quick grids: accepted by the host with their clients,
    apart from the single-query results, and drawn by the report code."""
    for algorithm in algorithms:
        for n in counts:
            paths = list((results / DATASET / "10" / f"{algorithm}-c{n}").glob("*.hdf5"))
            assert len(paths) == quick_points(algorithm), (algorithm, n, paths)
            for path in paths:
                result = read_result(path)
                assert result.ok, result.attrs.get("error")
                assert result.attrs["clients"] == n and not result.attrs["batch_mode"]
                assert result.distances is not None  # the host's check recomputed them
    assert not list(iter_result_paths(results, DATASET, 10))  # not mixed into the single-query results
    rows = metrics_for_results(results, DATASET, 10, data_dir=data_dir, clients=True)
    points = clients_points(rows, recall=0.5)
    assert sorted({(p.algorithm, p.clients) for p in points}) == sorted((a, n) for a in algorithms for n in counts)
    assert all(p.qps > 0 and p.p99 > 0 for p in points)
    return points


def test_a_local_sweep_with_clients_writes_each_mode_and_plots_it(tmp_path, data_dir, xs_angular):
    results = tmp_path / "results"
    # --exhaustive: every point of the quick grid is a result to check, even past recall 1.0.
    run = subprocess.run([sys.executable, str(REPO / "run.py"), "--local", "--quick", "--exhaustive", "--runs", "2",
                          "--algorithm", "hnswlib", "--dataset", DATASET, "--data-dir", str(data_dir),
                          "--results", str(results), "--clients", "1,2", "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    points = check_sweep(results, data_dir, ("hnswlib",), (1, 2))
    assert [n for n, _ in scaling(points)["hnswlib"]] == [1, 2]

    plot = subprocess.run([sys.executable, str(REPO / "plot.py"), "--dataset", DATASET, "--data-dir", str(data_dir),
                           "--results", str(results), "--clients", "--recall", "0.5"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert plot.returncode == 0, plot.stderr
    png = results / f"{DATASET}-clients.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    site = subprocess.run([sys.executable, "-m", "ann_bench.website", "--data-dir", str(data_dir), "--results",
                           str(results), "--output", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert site.returncode == 0, site.stderr
    page = next((tmp_path / "site" / "datasets").glob("*.html")).read_text()
    assert "Concurrent clients" in page and "p99 latency vs clients" in page


# In Docker, one of each kind of client: forked processes, threads, connections.
DOCKER_ALGORITHMS = ("bruteforce", "hnswlib", "pgvector-hnsw")


def test_a_docker_sweep_with_clients(engine, tmp_path, data_dir, xs_angular):
    assert [ENTRIES[a].declared.clients for a in DOCKER_ALGORITHMS] == ["processes", "threads", "connections"]
    built = images.build_images(list(dict.fromkeys(ENTRIES[a].image for a in DOCKER_ALGORITHMS)), proc=2,
                                progress=None)
    assert all(r.ok for r in built), images.format_table(built)
    results = tmp_path / "results"
    code = cli.main(["--dataset", DATASET, "--data-dir", str(data_dir), "--results", str(results), "--quick",
                     "--exhaustive", "--runs", "1", "--clients", "2", "--no-progress",
                     *(f"--algorithm={a}" for a in DOCKER_ALGORITHMS)])
    assert code == 0
    check_sweep(results, data_dir, DOCKER_ALGORITHMS, (2,))


def test_the_host_accepts_a_clients_result_only_with_the_clients_it_asked_for(tmp_path, xs_angular):
    definition = Definition(algorithm="scripted", run_group="g", module=Scripted.__module__, constructor="Scripted",
                            image="faults", base_args=("angular",), args={"rule": "good"}, query_args=(QUERY,))
    job = Job(definition=definition, dataset=DATASET, dataset_path=str(xs_angular), results_dir=str(tmp_path / "r"),
              count=10, batch=False, runs=2, query_args=[QUERY], environment={}, clients=3)
    output = tmp_path / "output"
    output.mkdir()
    worker = Job(**dict(vars(job), dataset_path=str(worker_input(xs_angular)), results_dir=str(output)))
    assert run_job(worker)
    path = worker.result_path(QUERY)
    assert path.parent.name == "scripted-c3"
    expected = base_attrs(job, display_name(definition, QUERY), QUERY)
    result = accept(path, output, expected, Reference(xs_angular), job.runs)
    assert result.attrs["clients"] == 3 and result.attrs["duration"] is None
    alter(path, lambda f: f.attrs.__setitem__("clients", 1))
    with pytest.raises(Rejected, match="attribute clients is '1', not '3'"):
        accept(path, output, expected, Reference(xs_angular), job.runs)

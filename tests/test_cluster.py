"""run.py --cluster on a real Dask cluster on loopback: a scheduler and workers started here as
separate processes (`dask scheduler`, `dask worker --nthreads 1 --resources bench=1`), each
definition run in a local process on its worker (--local), results written by run.py alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from distributed import Client

from ann_bench.datasets import load_dataset
from ann_bench.paths import REPO
from ann_bench.report import plotting
from ann_bench.results.files import read_result
from ann_bench.run.executors.cluster import ClusterError, slot_cores
from tests import test_effort_sweep as effort_sweep
from tests.site_results import DATASET, make_tree
from tests.waiting import wait_for

DASK = str(Path(sys.executable).parent / "dask")
DEFINITIONS = REPO / "tests" / "cluster-algorithms.yaml"
TIMINGS = {"build_time", "best_search_time", "library_seconds", "environment", "index_size",
           "peak_build_mb", "peak_query_mb"}  # measured, like the times: they differ run to run


class Cluster:
    """A scheduler on 127.0.0.1 and the workers added to it, each a process of its own, all
    killed at the end."""

    def __init__(self, root: Path, allowed_failures: int = 3):
        self.root = root
        self.processes: list[subprocess.Popen] = []
        scheduler_file = root / "scheduler.json"
        self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)], "scheduler",
                    {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)})
        self.address = wait_for(lambda: scheduler_file.is_file() and json.loads(scheduler_file.read_text() or "{}")
                                .get("address"))
        assert self.address, (root / "scheduler.log").read_text()

    def _start(self, arguments: list[str], name: str, env: dict[str, str]) -> subprocess.Popen:
        with open(self.root / f"{name}.log", "wb") as log:
            process = subprocess.Popen([DASK, *arguments], stdout=log, stderr=subprocess.STDOUT,
                                       env=dict(os.environ, **env), cwd=self.root)
        self.processes.append(process)
        return process

    def worker(self, name: str, data_dir: Path, pythonpath: Path | None = None, slots: int = 1) -> subprocess.Popen:
        """A worker slot with its own temporary directory (where its private outputs are) and
        data directory; pythonpath: import the harness from there instead of this checkout (the
        one under test, which need not be the one the venv's editable install names); slots: its
        `bench` resource."""
        tmp = self.root / name
        tmp.mkdir()
        env = {"TMPDIR": str(tmp), "ANN_BENCH_DATA_DIR": str(data_dir), "PYTHONPATH": str(pythonpath or REPO)}
        process = self._start(["worker", self.address, "--nthreads", "1", "--resources", f"bench={slots}", "--no-nanny",
                               "--no-dashboard", "--name", name], name, env)
        assert wait_for(lambda: self.address_of(name)), (self.root / f"{name}.log").read_text()
        return process

    def address_of(self, name: str) -> str | None:
        with Client(self.address, set_as_default=False) as client:
            workers = client.scheduler_info(n_workers=-1)["workers"]
        return next((address for address, w in workers.items() if w["name"] == name), None)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


def started(root: Path, allowed_failures: int = 3):
    root.mkdir()
    cluster = Cluster(root, allowed_failures)
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(tmp_path):
    yield from started(tmp_path / "cluster")


@pytest.fixture
def unforgiving_cluster(tmp_path):
    """A scheduler that gives up on a task the first time a worker running it dies."""
    yield from started(tmp_path / "cluster", allowed_failures=0)


def run_py(*arguments: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "run.py"), "--no-progress", "--runs", "1", *arguments],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def sweep(*arguments: str) -> tuple[int, str]:
    process = run_py(*arguments)
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def results(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): read_result(p) for p in sorted(root.rglob("*.hdf5"))}


def comparable(result) -> tuple[dict, np.ndarray, np.ndarray]:
    attrs = {key: value for key, value in result.attrs.items() if key not in TIMINGS}
    return attrs, result.neighbors, result.distances


def test_a_cluster_sweep_writes_the_results_a_local_sweep_writes(cluster, tmp_path, xs_angular):
    cluster.worker("has-data", xs_angular.parent)
    cluster.worker("no-data", tmp_path / "empty")
    common = ("--dataset", str(xs_angular), "--algorithm", "bruteforce", "--algorithm", "hnswlib", "--quick",
              "--local")
    code, output = sweep(*common, "--results", str(tmp_path / "local"))
    assert code == 0, output
    code, output = sweep(*common, "--cluster", cluster.address, "--results", str(tmp_path / "cluster"))
    assert code == 0, output
    local, distributed = results(tmp_path / "local"), results(tmp_path / "cluster")
    assert sorted(local) == sorted(distributed) and len(local) >= 3
    for name, result in local.items():
        attrs, neighbors, distances = comparable(result)
        other_attrs, other_neighbors, other_distances = comparable(distributed[name])
        assert other_attrs == attrs, name
        assert np.array_equal(other_neighbors, neighbors) and np.array_equal(other_distances, distances), name
        environment = distributed[name].environment
        assert environment["executor"] == "cluster-local" and environment["dask_worker"].startswith("tcp://")
        assert environment["host"] and environment["cpu_model"]
    # The two workers were started without taskset: each slot still has a core of its own.
    cores = {r.environment["dask_worker"]: r.environment["cpus_allowed"] for r in distributed.values()}
    assert all(len(c) == 1 for c in cores.values()) and len({c[0] for c in cores.values()}) == len(cores), cores
    assert f"made on 1 machine: {environment['host']} ({environment['cpu_model']}): {len(local)} results" in output
    logs = "".join(p.read_text() for p in (tmp_path / "cluster").rglob("*.log"))
    assert "dataset this machine's" in logs or "dataset sent by the client" in logs


def test_slots_of_one_machine_started_without_taskset_share_its_cores_out():
    hosts = {"tcp://a:1": "a", "tcp://a:2": "a", "tcp://b:1": "b", "tcp://b:2": "b"}
    shared = slot_cores(hosts, {"tcp://a:1": [0, 1, 2, 3], "tcp://a:2": [0, 1, 2, 3],
                                "tcp://b:1": [0, 1], "tcp://b:2": [2, 3]})
    assert shared == {"tcp://a:1": [0, 1], "tcp://a:2": [2, 3], "tcp://b:1": [0, 1], "tcp://b:2": [2, 3]}
    with pytest.raises(ClusterError, match="a has 2 worker slots and 1 cores"):
        slot_cores(hosts, {"tcp://a:1": [0], "tcp://a:2": [0]})


@pytest.mark.parametrize("has_data", [True, False], ids=["own-copy", "sent-by-the-client"])
def test_a_worker_skips_past_recall_1_as_one_machine_does(cluster, tmp_path, xs_angular, has_data):
    """Graded on the worker, with its own copy of the dataset or the one the client sent."""
    empty = tmp_path / "empty"
    empty.mkdir()
    cluster.worker("grader", xs_angular.parent if has_data else empty)
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(effort_sweep.DEFINITIONS)
    code, output = sweep("--dataset", str(xs_angular), "--definitions", str(definitions), "--algorithm",
                         "exact-effort", "--local", "--cluster", cluster.address,
                         "--results", str(tmp_path / "results"))
    assert code == 0, output
    ran = effort_sweep.assert_skipped_past_the_least_effort(tmp_path)
    assert f"{len(effort_sweep.EFFORTS) - ran} result(s) not run: a cheaper set" in output, output
    logs = "".join(p.read_text() for p in (tmp_path / "results").rglob("*.log"))
    assert ("dataset this machine's" if has_data else "dataset sent by the client") in logs, logs


def running_job(worker: subprocess.Popen, algorithm: str) -> dict | None:
    """The job of `algorithm` a child of the worker process runs (a job is on its command line)."""
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != worker.pid:
                continue
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if b"--job" in command:
            job = json.loads(command[command.index(b"--job") + 1])
            if job["definition"]["algorithm"] == algorithm:
                return job
    return None


def kill_a_worker_running(workers: dict[str, subprocess.Popen], algorithm: str,
                          process: subprocess.Popen) -> tuple[str, dict]:
    """SIGKILL the worker that runs a definition of `algorithm`: its name and the job."""
    found = wait_for(lambda: next(((name, job) for name, w in workers.items()
                                   if (job := running_job(w, algorithm))), None), attempts=3000)
    assert found is not None, process.poll()
    workers[found[0]].send_signal(signal.SIGKILL)
    return found


def test_a_worker_killed_mid_definition_loses_and_duplicates_nothing(cluster, tmp_path, xs_angular):
    workers = {name: cluster.worker(name, tmp_path / "empty") for name in ("w1", "w2")}
    results_dir = tmp_path / "results"
    process = run_py("--dataset", str(xs_angular), "--definitions", str(DEFINITIONS), "--local",
                     "--cluster", cluster.address, "--results", str(results_dir))
    victim, job = kill_a_worker_running(workers, "sleeper", process)
    survivor = cluster.address_of(next(name for name in workers if name != victim))
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    written = results(results_dir)
    assert len(written) == 3 and all(r.attrs["status"] == "ok" for r in written.values()), output
    interrupted = [r for r in written.values() if r.build_args == job["definition"]["args"]]
    assert len(interrupted) == 1 and interrupted[0].environment["dask_worker"] == survivor
    assert sorted(p.name for p in results_dir.rglob("*") if p.is_file() and p.suffix != ".log") == \
        sorted(Path(name).name for name in written), "a stray or half-written file was left"


def test_a_definition_whose_workers_keep_dying_fails_with_the_reason(unforgiving_cluster, tmp_path, xs_angular):
    cluster = unforgiving_cluster
    workers = {name: cluster.worker(name, tmp_path / "empty") for name in ("w1", "w2")}
    results_dir = tmp_path / "results"
    process = run_py("--dataset", str(xs_angular), "--definitions", str(DEFINITIONS), "--local",
                     "--cluster", cluster.address, "--results", str(results_dir))
    _, job = kill_a_worker_running(workers, "sleeper", process)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1, output
    written = results(results_dir)
    assert len(written) == 3, output
    interrupted = [r for r in written.values() if r.build_args == job["definition"]["args"]]
    assert interrupted[0].attrs["status"] == "failed", output
    # What the scheduler had queued on the dead worker fails alike (Dask counts it as run there).
    for result in written.values():
        assert result.attrs["status"] == "ok" or "Dask worker" in result.attrs["error"], result.attrs
    assert "allowed-failures" in interrupted[0].attrs["error"]
    assert "FAILED sleeper" in output


def test_a_plot_of_results_from_two_machines_says_so(tmp_path, data_dir, xs_euclidean):
    truth = load_dataset(xs_euclidean).distances
    make_tree(tmp_path / "results", truth)  # its faiss-ivf runs come from another CPU, one file from no known one
    output = tmp_path / "plot.svg"
    assert plotting.main(["--dataset", DATASET, "--results", str(tmp_path / "results"), "--data-dir",
                          str(data_dir), "-o", str(output)]) == 0
    title = next(line for line in output.read_text().splitlines() if "mixes results of" in line)
    assert "Other CPU @ 2.0GHz" in title and "Test CPU @ 3.0GHz" in title  # and "unknown": a file that does not say


def test_a_worker_with_another_harness_is_refused(cluster, tmp_path, xs_angular, project_copy):
    module = project_copy / "ann_bench" / "run" / "runner.py"
    module.write_text(module.read_text() + "\n# another revision\n")
    cluster.worker("foreign", tmp_path / "empty", pythonpath=project_copy)
    common = ("--dataset", str(xs_angular), "--algorithm", "bruteforce", "--local", "--cluster", cluster.address,
              "--results", str(tmp_path / "results"))
    code, output = sweep(*common)
    assert code == 2 and "another harness" in output, output
    cluster.worker("same", tmp_path / "empty")
    code, output = sweep(*common)
    assert code == 0 and "refused worker" in output, output
    with Client(cluster.address, set_as_default=False) as client:
        same = [a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "same"]
    assert {r.environment["dask_worker"] for r in results(tmp_path / "results").values()} == set(same)


def test_a_worker_offering_two_slots_is_refused(cluster, tmp_path, xs_angular):
    """Its definitions would share its one set of cores: one worker per slot is the rule."""
    cluster.worker("double", tmp_path / "empty", slots=2)
    code, output = sweep("--dataset", str(xs_angular), "--algorithm", "bruteforce", "--local", "--cluster",
                         cluster.address, "--results", str(tmp_path / "results"))
    assert code == 2 and "offers 2 'bench' slots" in output and "--resources bench=1" in output, output
    assert not (tmp_path / "results").exists() or not results(tmp_path / "results")


def test_a_client_killed_and_run_again_resumes(cluster, tmp_path, xs_angular):
    for name in ("w1", "w2"):
        cluster.worker(name, tmp_path / "empty")
    results_dir = tmp_path / "results"
    command = ("--dataset", str(xs_angular), "--definitions", str(DEFINITIONS), "--local",
               "--cluster", cluster.address, "--results", str(results_dir))
    first = run_py(*command)
    done = wait_for(lambda: [p for p in results_dir.rglob("*.hdf5") if "seconds=1" in p.name]
                    and len(list(results_dir.rglob("*.hdf5"))) == 2)
    assert done, first.poll()
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = {p: p.stat().st_mtime_ns for p in results_dir.rglob("*.hdf5")}
    code, output = sweep(*command)
    assert code == 0 and "1 definition(s) to run" in output, output
    after = results(results_dir)
    assert len(after) == 3 and all(r.attrs["status"] == "ok" for r in after.values())
    assert {p: p.stat().st_mtime_ns for p in before} == before, "a finished result was written again"
    with h5py.File(next(p for p in results_dir.rglob("*.hdf5") if "seconds=8" in p.name)) as f:
        assert f.attrs["status"] == "ok"

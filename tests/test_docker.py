"""The Docker side against the real engine: images, containers, faults, isolation.

Skipped, with a message saying so, only when no Docker engine answers. The images the tests
need (OS image, base, bruteforce, hnswlib, faults, hostile) are built once per session through
images.build_images: from nothing on a fresh machine (a few minutes, as root for debootstrap),
in seconds from the layer cache after that. scripts/build-test-images does the same up front.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml

from ann_bench import cli, datasets
from ann_bench.algorithms.declared import library_imports
from ann_bench.algorithms.folders import LibraryFolder
from ann_bench.paths import REPO
from ann_bench.report import metrics
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.definitions import Definition, get_definitions, load_algorithms
from ann_bench.run.environment import harness_digest
from ann_bench.run.executors import DockerExecutor
from ann_bench.run.executors.docker import images
from ann_bench.run.executors.docker.executor import PIDS_LIMIT, TIMEOUT_MARGIN
from ann_bench.run.jobs import Job, Settings
from ann_bench.run.plan import make_plan
from ann_bench.run.sweep import run_plan

from .waiting import wait_for

ROOT = REPO
FAULTS = ROOT / "tests" / "fault-algorithms.yaml"
DATASET = "random-xs-20-angular"
TEST_IMAGES = ["bruteforce", "hnswlib", "faults", "hostile"]


@pytest.fixture(scope="session")
def engine():
    try:
        return images.docker_client()
    except images.DockerUnavailable as e:
        if os.environ.get("CI") == "true":  # this project's CI machines always have one
            pytest.fail(f"CI without a Docker engine: the Docker tests must run ({e})")
        pytest.skip(f"Docker tests skipped: no Docker engine is reachable here ({e})")


@pytest.fixture(scope="session")
def built(engine, tmp_path_factory):
    # Build logs under pytest's temporary folder: a test writes nothing into the checkout.
    results = images.build_images(TEST_IMAGES, proc=2, progress=None, log_dir=tmp_path_factory.mktemp("build-logs"))
    if not all(r.ok for r in results):
        pytest.fail("could not build the test images:\n" + images.format_table(results))
    return {r.image: r for r in results}


@pytest.fixture(scope="session")
def dataset(xs_angular) -> Path:
    return xs_angular


def true_distances(path: Path) -> np.ndarray:
    return np.asarray(datasets.load_dataset(path).distances)


def recalls(results_dir: Path, truth: np.ndarray, count: int = 10) -> dict[str, float]:
    """name -> k-nn recall of every ok result under results_dir."""
    out = {}
    for path in iter_result_paths(results_dir, DATASET, count):
        result = read_result(path)
        assert result.ok, (path, result.attrs.get("error"))
        out[result.attrs["name"]] = metrics.knn_recall(truth, result, count)
    return out


def sweep(tmp_path: Path, data_dir: Path, results: Path, definitions: Path, *extra: str) -> int:
    return cli.main(["--dataset", DATASET, "--definitions", str(definitions), "--runs", "1",
                     "--results", str(results), "--data-dir", str(data_dir), "--no-progress", *extra])


def definitions_file(tmp_path: Path, name: str, args: dict, query_args: dict) -> Path:
    """A one-entry algorithms file for an algorithms.yaml entry with a small grid."""
    entry = load_algorithms()[name]
    path = tmp_path / f"{name}.yaml"
    template = {"docker": entry.docker} if entry.docker != "wheel" else {}
    path.write_text(yaml.safe_dump({"algorithms": {name: {
        "library": entry.library, "constructor": entry.constructor, "base_args": list(entry.base_args),
        "exact": entry.exact, "run_groups": {"test": {"args": args, "query_args": query_args}}, **template,
    }}}))
    return path


def job_for(definition: Definition, dataset: Path, results: Path) -> Job:
    return Job(definition=definition, dataset=DATASET, dataset_path=str(dataset), results_dir=str(results), count=10,
               batch=False, runs=1, query_args=[list(q) if isinstance(q, tuple) else q for q in definition.query_args],
               environment={})


def fault_definition(name: str, **args) -> Definition:
    [definition] = get_definitions(load_algorithms(FAULTS), "angular", "float", 10, 20, [name])
    if args:
        definition = Definition.from_dict(dict(definition.to_dict(), args=dict(definition.args, **args)))
    return definition


# -- images --------------------------------------------------------------------------------

def test_base_image_pins_match_requirements():
    required = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    pinned = dict(re.findall(r"^\s+([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "install" / "Dockerfile").read_text(), re.M))
    assert {"numpy", "h5py", "PyYAML"} <= set(pinned)
    for package, version in pinned.items():
        if package in required:
            assert version == required[package], f"install/Dockerfile pins {package}=={version}, " \
                                                 f"requirements.txt {required[package]}"


def test_install_py_rebuilds_from_cache_and_reports_failures(built, tmp_path):
    run = subprocess.run([sys.executable, "install.py", "--image", "bruteforce", "--log-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"ann-bench-bruteforce\s+built", run.stdout)
    assert "Using cache" in (tmp_path / "bruteforce.log").read_text()

    run = subprocess.run([sys.executable, "install.py", "--image", "no_such_library", "--log-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert re.search(r"ann-bench-no_such_library\s+failed", run.stdout)
    assert "no library folder ann_bench/algorithms/no_such_library" in run.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text("algorithms:\n  nothing:\n    library: no_such_library\n    constructor: C\n"
                      "    run_groups: {g: {args: [], query_args: []}}\n")
    run = subprocess.run([sys.executable, "install.py", "--definitions", str(broken)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "'library'" in run.stderr and "no_such_library/module.py" in run.stderr

    run = subprocess.run([sys.executable, "install.py", "--algorithm", "hnswlibb"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown algorithm 'hnswlibb'" in run.stderr


def test_missing_image_is_reported_with_the_command_to_build_it(engine, tmp_path, data_dir, request):
    definition = Definition("ghost", "g", "m", "C", "not-built-xyz")
    message = "image ann-bench-not-built-xyz is not built: run `.venv/bin/python install.py --algorithm ghost`"
    assert DockerExecutor().problems([definition]) == [message]
    assert DockerExecutor(definitions_file=ROOT / "algorithms.yaml").problems([definition]) == [message]
    assert images.missing_images([definition]) == ["not-built-xyz"]

    # From another algorithms file, the command names it: install.py would not know the algorithm.
    # The library must exist and its image not: a fresh one, in a copy of the project.
    copy = request.getfixturevalue("project_copy")
    library = f"ghost_{uuid.uuid4().hex[:8]}"
    shutil.copytree(copy / "ann_bench" / "algorithms" / "faults", copy / "ann_bench" / "algorithms" / library)
    ghosts = tmp_path / "ghosts.yaml"
    ghosts.write_text(f"algorithms:\n  ghost:\n    library: {library}\n    constructor: Probe\n"
                      "    base_args: ['@metric']\n    run_groups: {g: {args: [], query_args: []}}\n")
    run = run_in(copy, "run.py", "--dataset", DATASET, "--definitions", str(ghosts), "--data-dir", str(data_dir),
                 "--results", str(tmp_path / "results"), "--no-progress")
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"run `.venv/bin/python install.py --definitions {ghosts} --algorithm ghost`" in run.stderr


def run_in(project: Path, script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """A CLI of a copy of the project, started there (so it imports the copy's ann_bench)."""
    return subprocess.run([sys.executable, script, *args], cwd=project, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_build_builds_only_the_missing_image_on_the_existing_base(built, engine, project_copy, tmp_path, data_dir):
    """run.py --build leaves an existing base as it is, whatever it was built from."""
    # A library under a fresh name, a copy of bruteforce (in a copy of the project): its image is
    # missing, and building it from the wheel template is a layer-cache hit, with no network.
    library = f"buildtest_{uuid.uuid4().hex[:8]}"
    tag = images.image_tag(library)
    algorithms = project_copy / "ann_bench" / "algorithms"
    shutil.copytree(algorithms / "bruteforce", algorithms / library)
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(yaml.safe_dump({"algorithms": {"exact": {
        "library": library, "constructor": "BruteForce", "base_args": ["@metric"],
        "run_groups": {"exact": {"args": [], "query_args": []}},
    }}}))
    base_id = engine.images.get(images.image_tag(images.BASE)).id
    assert not images.image_exists(engine, tag)
    try:
        run = run_in(project_copy, "run.py", "--dataset", DATASET, "--definitions", str(definitions), "--runs", "1",
                     "--data-dir", str(data_dir), "--results", str(tmp_path / "results"), "--no-progress", "--build")
        assert run.returncode == 0, run.stdout + run.stderr
        assert images.image_exists(engine, tag)
        said = run.stdout + run.stderr  # the build's progress is logged, on stderr
        assert re.search(rf"{tag}: built", run.stderr), said
        assert images.image_tag(images.BASE) not in said and images.OS_IMAGE not in said, said
        assert engine.images.get(images.image_tag(images.BASE)).id == base_id
        [path] = iter_result_paths(tmp_path / "results")
        assert read_result(path, arrays=False).ok
    finally:
        if images.image_exists(engine, tag):
            engine.images.remove(tag)  # only the tag: the image is ann-bench-bruteforce's too


# -- same numbers as local ------------------------------------------------------------------

def test_bruteforce_in_docker_matches_local(built, engine, tmp_path, data_dir, dataset):
    definitions = definitions_file(tmp_path, "bruteforce", [], [])
    assert sweep(tmp_path, data_dir, tmp_path / "docker", definitions) == 0
    assert sweep(tmp_path, data_dir, tmp_path / "local", definitions, "--local") == 0
    truth = true_distances(dataset)
    in_docker, local = recalls(tmp_path / "docker", truth), recalls(tmp_path / "local", truth)
    assert in_docker == local and list(in_docker.values()) == [1.0]
    # Accepted and written by the host, owned by whoever ran the sweep.
    for path in iter_result_paths(tmp_path / "docker"):
        assert path.stat().st_uid == os.getuid()
        environment = read_result(path, arrays=False).environment
        assert environment["image_id"] == engine.images.get("ann-bench-bruteforce").id
        assert environment["harness_digest"] == harness_digest() and environment["harness_revision"]
        assert environment["cpus_allowed"] == [0] and environment["omp_num_threads"] == "1"


def test_hnswlib_in_docker_matches_local(built, tmp_path, data_dir, dataset):
    definitions = definitions_file(tmp_path, "hnswlib", {"M": 16, "efConstruction": 200}, {"ef": [20, 80]})
    assert sweep(tmp_path, data_dir, tmp_path / "docker", definitions) == 0
    assert sweep(tmp_path, data_dir, tmp_path / "local", definitions, "--local") == 0
    truth = true_distances(dataset)
    in_docker, local = recalls(tmp_path / "docker", truth), recalls(tmp_path / "local", truth)
    assert in_docker.keys() == local.keys() and len(in_docker) == 2
    for name in in_docker:
        assert abs(in_docker[name] - local[name]) <= 0.02, (name, in_docker[name], local[name])


def ours(engine, results, all=False):
    """This test's containers only: other sweeps may run on the same engine meanwhile."""
    return engine.containers.list(all=all, filters={"label": f"ann-bench.results={Path(results).resolve()}"})


# -- failures are results -------------------------------------------------------------------

def test_faults_are_recorded_failures_and_the_sweep_goes_on(built, engine, tmp_path, data_dir, dataset, capsys):
    results = tmp_path / "results"
    # The timeout leaves the other faults room to fail their own way on a loaded machine
    # (an OOM at 10 s once timed out while builds ran beside it).
    code = sweep(tmp_path, data_dir, results, FAULTS, "--timeout", "30", "--memory", "512m", "--parallelism", "2",
                 *[a for name in ("bruteforce", "fault-segfault", "fault-timeout", "fault-oom")
                   for a in ("--algorithm", name)])
    out = capsys.readouterr().out
    assert code == 1, out
    by_algorithm = {}
    for path in iter_result_paths(results, DATASET, 10):
        result = read_result(path, arrays=False)
        by_algorithm[result.attrs["algo"]] = result
    assert by_algorithm["bruteforce"].ok
    assert {a: r.status for a, r in by_algorithm.items() if a != "bruteforce"} == dict.fromkeys(
        ["fault-segfault", "fault-timeout", "fault-oom"], "failed")
    assert by_algorithm["fault-segfault"].attrs["error"] == "crashed with SIGSEGV (exit code 139)"
    assert by_algorithm["fault-timeout"].attrs["error"] == "timed out after 30 s"
    assert by_algorithm["fault-oom"].attrs["error"] == "out of memory at the 512 MiB limit"
    assert "FAILED fault-oom" in out and "out of memory at the 512 MiB limit" in out
    # The summary shows the end of the memory hog's log: how far it got before it was killed.
    assert re.search(r"allocated \d+ MiB", out)
    # Every container is gone, however it ended.
    assert ours(engine, results, all=True) == []


def test_sweep_results_belong_to_the_invoking_user_whoever_the_container_runs_as(built, tmp_path, dataset):
    """The container runs as another uid (as root: 65534); what the host accepts is its own."""
    results = tmp_path / "results"
    definitions = get_definitions(load_algorithms(FAULTS), "angular", "float", 10, 20, ["bruteforce"])
    settings = Settings(dataset=DATASET, dataset_path=dataset, results_dir=results, count=10, runs=1)
    executor = DockerExecutor()
    assert executor.user.partition(":")[0] != "0"
    records = run_plan(make_plan(definitions, settings), executor, settings, "angular", progress=False)
    assert [(r.status, r.reason) for r in records] == [("ran", "")]
    # Results, logs and the directories holding them: nothing left to the container's user.
    owners = {str(p.relative_to(results)): (p.stat().st_uid, p.stat().st_gid) for p in [results, *results.rglob("*")]}
    assert len(list(iter_result_paths(results))) == 1
    assert owners == dict.fromkeys(owners, (os.getuid(), os.getgid()))


def test_segfault_in_query_is_a_crash(built, tmp_path, dataset):
    definition = fault_definition("fault-segfault", where="query")
    log = tmp_path / "segv.log"
    outcome = DockerExecutor().run(job_for(definition, dataset, tmp_path / "results"), [1], log, 60)
    assert (outcome.status, outcome.exit_code) == ("crashed", 139)
    assert "built fault-segfault" in log.read_text()


# -- the sandbox ------------------------------------------------------------------------------

@pytest.fixture
def host_server():
    """A real TCP server on the host's 127.0.0.1, which the container must not reach."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    accepted = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(1)
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with socket.create_connection(server.getsockname(), timeout=2):
        pass  # reachable from the host itself
    for _ in range(50):
        if accepted:
            break
        stop.wait(0.1)
    assert accepted == [1]
    accepted.clear()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    server.close()


def test_container_sandbox(built, tmp_path, dataset, host_server):
    """No network, train and test only, read-only harness and root, a private output, an
    unprivileged user without capabilities, cores, memory and no swap."""
    port, accepted = host_server
    results = tmp_path / "results"
    limit = 768 << 20
    executor = DockerExecutor(memory_limit_bytes=limit)
    uid = 65534 if os.getuid() == 0 else os.getuid()
    job = job_for(fault_definition("probe", port=port), dataset, results)
    outcome = executor.run(job, [1], tmp_path / "probe.log", 60)
    assert outcome.ok, (tmp_path / "probe.log").read_text()
    assert outcome.environment["image_id"].startswith("sha256:")

    [path] = iter_result_paths(results)
    assert path.stat().st_uid == os.getuid() and outcome.accepted == [path]
    result = read_result(path, arrays=False)
    assert result.environment["image_id"] == outcome.environment["image_id"]
    probe = json.loads(result.attrs["probe"])
    assert probe["uid"] == uid and probe["home_writable"] and not probe["root_writable"]
    assert probe["interfaces"] == ["lo"]
    assert probe["connect_127.0.0.1"].startswith("ConnectionRefusedError") and not accepted
    [inputs] = [target for target in probe["mounts"] if target.startswith("/input/")]
    assert inputs.endswith(".hdf5") and ".worker-inputs" not in inputs
    # /output.log: the pipe its output goes through (a pipe takes writes on a read-only mount).
    assert probe["mounts"] == {inputs: "ro", "/output": "rw", "/tmp": "rw", "/opt/ann-bench/ann_bench": "ro",
                               "/output.log": "ro"}
    assert probe["readonly"] == {inputs: True, "/output": False, "/tmp": False, "/opt/ann-bench/ann_bench": True,
                                 "/output.log": True}
    assert probe["writes"][inputs].endswith(("Read-only file system", "Permission denied"))
    assert probe["writes"]["/opt/ann-bench/ann_bench"].endswith(("Read-only file system", "Permission denied"))
    assert probe["writes"]["/output"] == probe["writes"]["/tmp"] == "written"
    assert not probe["docker_socket"]
    assert int(probe["capabilities"], 16) == 0 and probe["no_new_privs"] == "1"
    assert probe["pids_max"] == str(PIDS_LIMIT)
    assert probe["cpus"] == [1]
    assert probe["threads"] == dict.fromkeys(["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"], "1")
    assert int(probe["memory_limit"]) == limit
    if "memory_swap_limit" in probe:  # memory + swap equal to memory: no swap
        assert int(probe["memory_swap_limit"]) == limit


def test_container_config_has_no_privilege_and_a_time_limit_of_its_own(built, engine, tmp_path, dataset):
    """What the engine was told, read back from the running container."""
    results = tmp_path / "results"
    executor = DockerExecutor()
    job = job_for(fault_definition("fault-timeout"), dataset, results)
    thread = threading.Thread(target=executor.run, args=(job, [0], tmp_path / "x.log", 600))
    thread.start()
    try:
        running = wait_for(lambda: ours(engine, results))
        assert running, "no container started"
        config = running[0].attrs
    finally:
        executor.stop_all()
        thread.join(60)
    host = config["HostConfig"]
    assert config["Config"]["User"].partition(":")[0] not in ("", "0", "root")
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd") and not host["Privileged"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == PIDS_LIMIT and host["ReadonlyRootfs"] is True
    assert list(host["Tmpfs"]) == ["/tmp"] and host["NetworkMode"] == "none"
    command = config["Config"]["Cmd"]
    assert command[command.index("timeout"):][:4] == ["timeout", "-s", "KILL", str(600 + TIMEOUT_MARGIN)]
    assert config["Config"]["Labels"]["ann-bench.results"] == str(results.resolve())
    writable = [m["Destination"] for m in config["Mounts"] if m["RW"]]
    assert writable == ["/output"]
    assert ours(engine, results, all=True) == []


def test_default_memory_limit_comes_from_total_memory(engine):
    total = int(engine.info()["MemTotal"])
    assert DockerExecutor(parallelism=2).memory_limit_bytes == int(total * 0.9 / 2)
    assert DockerExecutor(memory_limit_bytes=1 << 30, parallelism=2).memory_limit_bytes == 1 << 30


def test_missing_dataset_is_a_failure_not_a_root_owned_directory(built, tmp_path):
    missing = tmp_path / "nowhere" / "random.hdf5"
    definition = get_definitions(load_algorithms(FAULTS), "angular", "float", 10, 20, ["bruteforce"])[0]
    outcome = DockerExecutor().run(job_for(definition, missing, tmp_path / "results"), [0], tmp_path / "x.log", 60)
    assert outcome.status == "failed" and "not found" in outcome.reason
    assert not missing.exists() and not missing.parent.exists()


class EngineRelay:
    """A unix socket relaying to the real engine until cut: the engine lost in mid-request."""

    def __init__(self, path: Path, engine_socket: str):
        self.path, self.engine_socket = path, engine_socket
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # cut
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(self.engine_socket)
            self.sockets += [client, engine]
            for source, target in ((client, engine), (engine, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        for s in [self.server, *self.sockets]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.path.unlink()


def test_engine_lost_while_waiting_is_an_engine_error_not_a_timeout(built, engine, tmp_path, dataset):
    import docker

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip(f"the relay speaks to a unix-socket engine, not {host}")
    relay = EngineRelay(tmp_path / "engine.sock", host[len("unix://"):])
    executor = DockerExecutor(client=docker.DockerClient(base_url=f"unix://{relay.path}", timeout=30))
    results = tmp_path / "results"
    job = job_for(fault_definition("fault-timeout"), dataset, results)
    outcomes = []
    thread = threading.Thread(target=lambda: outcomes.append(executor.run(job, [0], tmp_path / "x.log", 600)))
    thread.start()
    try:
        assert wait_for(lambda: ours(engine, results)), "no container started"
        relay.cut()
        thread.join(60)
    finally:
        for container in ours(engine, results, all=True):
            container.remove(force=True)  # the executor could not: it lost the engine
    assert not thread.is_alive() and len(outcomes) == 1, "run() raised or hung"
    assert outcomes[0].status == "failed" and outcomes[0].reason.startswith("Docker engine error: "), outcomes
    assert "[ann-bench] Docker engine error" in (tmp_path / "x.log").read_text()


def test_stop_all_kills_running_containers(built, engine, tmp_path, dataset):
    """An interrupted sweep (Ctrl-C, SIGTERM) leaves no container behind."""
    executor = DockerExecutor()
    outcomes = []
    job = job_for(fault_definition("fault-timeout"), dataset, tmp_path / "results")
    thread = threading.Thread(target=lambda: outcomes.append(executor.run(job, [0], tmp_path / "x.log", 600)))
    thread.start()
    assert wait_for(lambda: ours(engine, tmp_path / "results")), "no container started"
    executor.stop_all()
    thread.join(30)
    assert not thread.is_alive() and outcomes[0].status == "crashed"
    assert ours(engine, tmp_path / "results", all=True) == []


def test_sigterm_to_run_py_leaves_no_container(built, engine, tmp_path, data_dir, dataset):
    command = [sys.executable, "run.py", "--dataset", DATASET, "--definitions", str(FAULTS), "--algorithm",
               "fault-timeout", "--results", str(tmp_path / "results"), "--data-dir", str(data_dir), "--no-progress"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: ours(engine, tmp_path / "results")), "no container started"
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert ours(engine, tmp_path / "results", all=True) == []
    assert list(iter_result_paths(tmp_path / "results")) == []  # unfinished work is still to do, not failed


def test_harness_digest_names_the_code(tmp_path):
    """What the containers mount: paths and contents of the *.py files count, nothing else does."""
    (tmp_path / "algorithms").mkdir()
    (tmp_path / "runner.py").write_text("x = 1\n")
    (tmp_path / "algorithms" / "a.py").write_text("y = 2\n")
    digest = harness_digest(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    (tmp_path / "runner.pyc").write_bytes(b"bytecode")
    (tmp_path / "notes.txt").write_text("not code")
    assert harness_digest(tmp_path) == digest
    (tmp_path / "algorithms" / "a.py").write_text("y = 3\n")
    assert harness_digest(tmp_path) != digest
    (tmp_path / "algorithms" / "a.py").write_text("y = 2\n")
    (tmp_path / "algorithms" / "a.py").rename(tmp_path / "algorithms" / "b.py")
    assert harness_digest(tmp_path) != digest


def test_every_library_image_installs_its_folders_pins_and_checks_its_imports():
    """Each image starts from the base and installs its folder's requirements.txt (every line
    pinned), never a pin of its own; one made from a template checks that every import of the
    wrapper's module.py works, so a missing package fails the build, not the first run."""
    for path in (ROOT / "algorithms.yaml", FAULTS):
        for library, recipe in images.recipes(load_algorithms(path).values()).items():
            text = recipe.dockerfile()
            assert "ARG BASE=ann-bench-base" in text and "FROM ${BASE}" in text, library
            installs = re.findall(r"pip install[^\n]*", text)
            assert installs and all("-r /tmp/requirements.txt" in line for line in installs), library
            pins = [line for line in recipe.folder.pins().splitlines() if line and not line.startswith("#")]
            assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==\S+", line) for line in pins), f"{library}: {pins}"
            if recipe.source != recipe.folder.dockerfile:
                check = "; ".join(library_imports(recipe.folder.module_file))
                assert f'python -c "{check}"' in text and "{{" not in text, text


def test_the_compile_template_builds_the_library_from_source_with_its_apt_packages(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "module.py").write_text("import numpy as np\nimport mylib.core\n")
    recipe = images.Recipe(LibraryFolder("lib", tmp_path), "compile", ("libopenblas-dev",), "my-lib")
    text = recipe.dockerfile()
    assert "install -y --no-install-recommends g++ python3-dev libopenblas-dev \\" in text
    assert "--no-binary my-lib -r /tmp/requirements.txt" in text
    assert 'python -c "import numpy as np; import mylib.core"' in text


PROGRESS = """\
import argparse, sys
from pathlib import Path
from ann_bench import log
from ann_bench.run.executors.docker import images
parser = argparse.ArgumentParser()
log.add_arguments(parser)
log.setup_from(parser.parse_args(sys.argv[2:]))
images.build_images(["no_such_library"], base=False, log_dir=Path(sys.argv[1]), recipes={})
"""


@pytest.mark.parametrize("flags, says", [((), True), (("-q",), False)])
def test_build_progress_is_logged_on_stderr_and_quiet_silences_it(tmp_path, flags, says):
    """install.py's progress goes through the one logging set-up (stderr, silenced by -q), so
    that stdout holds its table alone. No engine is needed: a missing folder fails first."""
    run = subprocess.run([sys.executable, "-c", PROGRESS, str(tmp_path), *flags], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stdout == "", run.stdout + run.stderr
    assert ("ann-bench-no_such_library: failed" in run.stderr) == says, run.stderr

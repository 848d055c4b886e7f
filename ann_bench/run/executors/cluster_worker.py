"""The worker's side of `run.py --cluster`: what a Dask task does on the machine it lands on.

It runs one definition there exactly as a one-machine sweep would (that machine's Docker
engine, or a local process with --local) in a private output directory of its own, pinned to
the worker slot's cores (as the client shared them out: cluster.slot_cores), and hands back the
bytes of what the worker wrote (its result files, its messages, its log): it accepts nothing and
writes nothing into any results tree; the client checks every file as in a local sweep and alone
writes results/.

A machine is refused when its harness (the ann_bench package it imports) differs from the
client's: its digest names the code, and results of other code are not the same benchmark.

The dataset reaches a worker once: the machine's own copy when it has the file with the sha256
the client named (`ANN_BENCH_DATA_DIR`, default the checkout's data/), else the client's
train-and-test file, fetched from the cluster once, checked against its sha256 and kept.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ...atomic import atomic_path
from ...datasets.sources import sha256_file
from ...paths import REPO
from ...results.acceptance import Reference, Rejected, read_bytes, size_bound
from .. import environment
from ..grading import Grader
from ..inputs import CACHE_DIR, cached_sha256, worker_input
from ..jobs import Job
from ..messages import MAX_BYTES, MESSAGES
from ..plan import cpu_slots
from .base import Executor, private_directory
from .logs import CappedLog

DATA_VARIABLE = "ANN_BENCH_DATA_DIR"  # where this machine keeps datasets, for a worker's use
SWEEP_ROOT = "/ann-bench-cluster"  # the sweep a worker's processes belong to: SWEEP_ROOT/<client host>/<results>


class InputsLost(Exception):
    """The dataset the client sent did not arrive whole (its sha256 differs): Dask retries."""


@dataclass(frozen=True)
class Inputs:
    """Which dataset a job needs: its name, the sha256 of the client's file, and the Dask
    Variable that holds the future of that file's bytes."""

    dataset: str
    dataset_sha256: str
    key: str


@dataclass(frozen=True)
class Request:
    """One definition for a worker: the job (paths as the client sees them), its dataset, the
    executor to run it with, the client's harness digest and the sweep it belongs to."""

    job_json: str
    inputs: Inputs
    local: bool
    memory_limit_bytes: int | None
    slots_per_host: dict[str, int]
    slot_cores: dict[str, list[int]]  # by worker address (the client's share-out, cluster.slot_cores)
    harness_digest: str
    sweep: str
    timeout: float | None
    grade: bool  # skip the sets a cheaper one at recall 1.0 makes pointless (not --exhaustive)


@dataclass
class Reply:
    """What came of it: how the worker ended, where it ran, and the bytes of its output (each
    file by its path relative to the private output directory)."""

    status: str
    reason: str = ""
    exit_code: int | None = None
    environment: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    log: bytes = b""
    skipped: dict[str, str] = field(default_factory=dict)  # the grader's, as Outcome.skipped


def machine() -> dict:
    """Where this worker runs, stored in every result it made."""
    from distributed import get_worker

    return {"host": socket.gethostname(), "cpu_model": environment.cpu_model(), "dask_worker": get_worker().address}


def data_dir() -> Path:
    return Path(os.environ.get(DATA_VARIABLE) or REPO / "data")


def affinity() -> list[int]:
    """The cores this worker process may use (each slot started under a `taskset -c` of its own,
    or the whole machine)."""
    return sorted(os.sched_getaffinity(0))


def sweep_label(client_host: str, results_dir: str) -> Path:
    """What marks a sweep's processes and containers on a worker machine (see remove_leftovers)."""
    return Path(SWEEP_ROOT) / client_host / str(results_dir).lstrip("/")


def make_executor(local: bool, memory_limit_bytes: int | None, slots_on_host: int) -> Executor:
    """This machine's executor; its default memory limit is shared by the host's slots."""
    if local:
        from .local import LocalExecutor

        return LocalExecutor(memory_limit_bytes=memory_limit_bytes, parallelism=slots_on_host)
    from .docker.executor import DockerExecutor

    return DockerExecutor(memory_limit_bytes=memory_limit_bytes, parallelism=slots_on_host)


def harness_digest() -> str:
    return environment.harness_digest()


def find_dataset(inputs: Inputs) -> tuple[Path, str]:
    """This machine's copy of the client's dataset file, and where it came from. The whole file,
    ground truth included, is the grader's; the worker itself gets its train and test only."""
    own = data_dir() / f"{inputs.dataset}.hdf5"
    if own.is_file() and cached_sha256(own) == inputs.dataset_sha256:
        return own, f"this machine's {own}"
    received = data_dir() / CACHE_DIR / f"{inputs.dataset}-{inputs.dataset_sha256[:16]}.received.hdf5"
    if received.is_file() and cached_sha256(received) == inputs.dataset_sha256:
        return received, f"sent by the client earlier ({received})"
    from distributed import Variable, get_client, rejoin, secede

    secede()  # the file is a task of its own, which may have to run in this worker's one thread
    try:
        data = Variable(inputs.key, client=get_client()).get().result()
    finally:
        rejoin()
    received.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(received) as tmp:
        Path(tmp).write_bytes(data)
    if sha256_file(received) != inputs.dataset_sha256:
        received.unlink()
        raise InputsLost(f"the file of {inputs.dataset} arrived damaged (its sha256 differs)")
    return received, f"sent by the client ({received})"


def run_definition(request: Request) -> Reply:
    """The Dask task: run the job here and return its worker's output as bytes."""
    here = machine()
    mine = harness_digest()
    if mine != request.harness_digest:
        return Reply("failed", f"refused by {here['host']}: its harness digest {mine} is not the client's "
                               f"{request.harness_digest}", environment=here)
    job = Job.from_json(request.job_json)
    dataset, source = find_dataset(request.inputs)
    path = worker_input(dataset)
    # The sets a cheaper set at recall 1.0 makes pointless are skipped as on one machine, graded
    # here while the worker runs: the client sees its files only at the end.
    graded = replace(job, dataset_path=str(dataset))
    executor = make_executor(request.local, request.memory_limit_bytes,
                             request.slots_per_host.get(here["host"], 1))
    # Within the slot's cores as on one machine: the first for single queries, all for --batch,
    # one per client for --clients.
    cpus = cpu_slots(1, job.batch, job.clients, request.slot_cores.get(here["dask_worker"]))[0]
    with private_directory() as output, tempfile.TemporaryDirectory(prefix="ann-bench-log-") as logs:
        worker_job = replace(job, dataset_path=str(path), results_dir=str(output))
        log_path = Path(logs) / "worker.log"
        with CappedLog(log_path) as log, Grader(graded, output, enabled=request.grade) as grader:
            log.note(f"on {here['host']} ({here['cpu_model']}), cores {cpus}, dataset {source}")
            ended = executor.execute(worker_job, cpus, log, request.timeout, Path(request.sweep), request.grade)
        files = output_files(worker_job, output, size_bound(Reference(path).n_test, job.count, job.runs))
        return Reply(ended.status, ended.reason, ended.exit_code, dict(ended.environment, **here), files,
                     log_path.read_bytes(), grader.skipped)


def output_files(job: Job, output: Path, limit: int) -> dict[str, bytes]:
    """The bytes of the result files and messages the worker wrote, each read only as a plain
    file within its bound (what is not is left out: the client then records it failed)."""
    wanted = [job.result_path(query_args).relative_to(output) for query_args in job.query_args]
    files = {}
    for relative, bound in [(p, limit) for p in wanted] + [(Path(MESSAGES), MAX_BYTES)]:
        if not os.path.lexists(output / relative):
            continue
        try:
            files[relative.as_posix()] = read_bytes(output / relative, bound, output)
        except Rejected:
            continue
    return files


def remove_leftovers(local: bool, sweep: str) -> list[str]:
    """On a worker machine: what earlier runs of this sweep left running there (a client or a
    worker killed mid-definition), and the private directories of workers gone."""
    from .base import remove_orphaned_outputs

    removed = make_executor(local, None, 1).remove_leftovers(Path(sweep))
    return removed + [str(path) for path in remove_orphaned_outputs()]


def worker_problems(definitions_json: list[dict], local: bool, build: bool) -> list[str]:
    """What stops these definitions from running on this machine (a missing image: built with
    --build, else the command to build it here), each naming the machine."""
    from ..definitions import Definition

    definitions = [Definition.from_dict(d) for d in definitions_json]
    host = socket.gethostname()
    return [f"on {host}: {problem}" for problem in make_executor(local, None, 1).problems(definitions, build)]

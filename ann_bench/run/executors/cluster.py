"""Run each definition as a Dask task on a Dask distributed cluster (`run.py --cluster ADDRESS`).

The sweep does not know it is distributed: this executor's `execute` sends the job to a worker
slot (a task with resources={"bench": 1}, so one definition per slot at a time), which runs it
with that machine's executor (cluster_worker.py) and returns its output as bytes; they are put
into this process's private output directory, and `Executor.run` then accepts each result file
as in a local sweep, so only the client writes results/.

Faults: a worker that dies mid-definition (its process SIGKILLed, its machine gone) makes the
scheduler run the task again on another worker, up to the scheduler's
`distributed.scheduler.allowed-failures` (3 by default); past that the definition is recorded as
crashed with the reason. An error in the task itself (the dataset arrived damaged) is retried
RETRIES times. A worker whose harness digest differs from the client's is refused: no task is
sent to it.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
import warnings
from collections import Counter
from pathlib import Path

from ...errors import UserError
from ..definitions import Definition
from ..inputs import cached_sha256, worker_input
from ..jobs import Job
from ..messages import MESSAGES, one_line
from ..plan import cpu_slots
from . import cluster_worker
from .base import Executor, Outcome
from .cluster_worker import Inputs, Reply, Request
from .logs import CappedLog

log = logging.getLogger(__name__)

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
RESOURCE = "bench"
RETRIES = 2
CONNECT_SECONDS = 30
INSTALL = "pip install .[cluster] (or .venv/bin/pip install -r requirements-cluster.txt)"


class ClusterError(UserError):
    """The cluster cannot run this sweep (unreachable, no worker slot, every worker refused)."""


def connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(f"--cluster needs Dask distributed, which is not installed: {INSTALL}") from None
    try:
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({one_line(str(e))}); start it with "
                           f"`dask scheduler` and give its address") from None


def slot_cores(hosts: dict[str, str], affinities: dict[str, list[int]]) -> dict[str, list[int]]:
    """The cores of each worker slot (by worker address): its own CPU affinity where the slots of
    its machine have disjoint ones (each started under a `taskset -c` of its own); where they
    overlap (slots started without taskset all see the whole machine) that machine's cores
    shared out among its slots, so that no two definitions run on one core."""
    by_host: dict[str, list[str]] = {}
    for address in sorted(affinities):
        by_host.setdefault(hosts[address], []).append(address)
    cores: dict[str, list[int]] = {}
    for host, addresses in by_host.items():
        union = sorted({core for address in addresses for core in affinities[address]})
        if sum(len(affinities[address]) for address in addresses) == len(union):
            cores.update((address, affinities[address]) for address in addresses)
            continue
        if len(addresses) > len(union):
            raise ClusterError(f"{host} has {len(addresses)} worker slots and {len(union)} cores for them: start "
                               f"at most {len(union)} `dask worker` there, each under a `taskset -c` of its own")
        cores.update(zip(addresses, cpu_slots(len(addresses), batch=True, cores=union)))
    return cores


class ClusterExecutor(Executor):
    # The worker's files reach this client only when it ends: the grader is the worker's
    # (cluster_worker.run_definition), whose skipped sets come back with its files.
    grades_on_host = False

    def __init__(self, address: str, local: bool = False, memory_limit_bytes: int | None = None):
        """`local`: the workers run each definition in a local process instead of Docker."""
        self.name = f"cluster-{'local' if local else 'docker'}"
        self.address = address
        self.local = local
        self.memory_limit_bytes = memory_limit_bytes
        self.client = connect(address)
        self.digest = cluster_worker.harness_digest()
        self.workers, self.hosts = self._admit()
        self.slots_per_host: Counter[str] = Counter()
        for address in self.workers:
            self.slots_per_host[self.hosts[address]] += self._slots[address]
        self.slot_cores = slot_cores(self.hosts, self.client.run(cluster_worker.affinity, workers=self.workers))
        self._inputs: dict[str, Inputs] = {}
        self._held: list = []  # futures of the datasets sent: kept so the cluster keeps them
        self._futures: set = set()
        self._sweeps: set[str] = set()
        self._lock = threading.Lock()

    def _admit(self) -> tuple[list[str], dict[str, str]]:
        """The workers this sweep may use (with a `bench` resource and the client's harness; one
        per slot), and each worker's host."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        self._slots = {address: int(worker.get("resources", {}).get(RESOURCE, 0)) for address, worker in info.items()}
        slots = [address for address, count in self._slots.items() if count]
        if not slots:
            raise ClusterError(f"no worker of the cluster at {self.address} has a '{RESOURCE}' slot: start each "
                               f"with `dask worker {self.address} --nthreads 1 --resources {RESOURCE}=1`")
        digests = self.client.run(cluster_worker.harness_digest, workers=slots)
        hosts = self.client.run(socket.gethostname, workers=slots)
        refused = {address: digest for address, digest in digests.items() if digest != self.digest}
        for address, digest in refused.items():
            log.warning("refused worker %s on %s: its harness digest %s is not this client's %s; run the same "
                        "revision of ann-bench there", address, hosts[address], digest, self.digest)
        if slots and all(address in refused for address in slots):
            raise ClusterError(f"every worker of the cluster at {self.address} runs another harness (digests "
                               f"{', '.join(sorted(set(refused.values())))}, this client's {self.digest}): "
                               f"check out this client's revision on the workers and restart them")
        # A worker's definitions all get its one set of cores: two at once would share them.
        shared = [address for address in slots if address not in refused and self._slots[address] > 1]
        for address in shared:
            log.warning("refused worker %s on %s: it offers %d '%s' slots, whose definitions would share its "
                        "cores; start one worker per slot with --nthreads 1 --resources %s=1", address,
                        hosts[address], self._slots[address], RESOURCE, RESOURCE)
        admitted = [address for address in slots if address not in refused and address not in shared]
        if not admitted:
            raise ClusterError(f"no worker of the cluster at {self.address} offers one '{RESOURCE}' slot: start "
                               f"one worker per slot with `dask worker {self.address} --nthreads 1 --resources "
                               f"{RESOURCE}=1`")
        return admitted, hosts

    @property
    def slot_count(self) -> int:
        return sum(self._slots[w] for w in self.workers)

    def slots(self, parallelism: int, batch: bool, clients: int | None = None) -> list[list[int]]:
        """One per admitted worker slot; its cores are chosen on its machine (cluster_worker)."""
        return [[] for _ in range(self.slot_count)]

    def _on_each_host(self, function, *args) -> dict[str, object]:
        """Run `function` once per host (as a task on one of its slots), its answer by host."""
        chosen = {self.hosts[w]: w for w in self.workers}
        futures = {host: self.client.submit(function, *args, workers=[address], allow_other_workers=False,
                                            pure=False, key=f"ann-bench-{function.__name__}-{uuid.uuid4().hex}")
                   for host, address in chosen.items()}
        return {host: future.result() for host, future in futures.items()}

    def problems(self, definitions: list[Definition], build: bool = False) -> list[str]:
        if not definitions:
            return []
        found = self._on_each_host(cluster_worker.worker_problems, [d.to_dict() for d in definitions],
                                   self.local, build)
        return [problem for problems in found.values() for problem in problems]  # type: ignore[attr-defined]

    def _sweep(self, results_dir: Path) -> str:
        return str(cluster_worker.sweep_label(socket.gethostname(), str(Path(results_dir).resolve())))

    def _remove(self, sweep: str) -> list[str]:
        found = self.client.run(cluster_worker.remove_leftovers, self.local, sweep, workers=self.workers)
        return [f"{name} on {self.hosts[address]}" for address, names in found.items() for name in names]

    def remove_leftovers(self, results_dir: Path) -> list[str]:
        """What an earlier client of this sweep (killed, its tasks running on) left on the workers."""
        return self._remove(self._sweep(results_dir))

    def stop_all(self) -> None:
        """Cancel what is queued, and stop what runs (Dask cannot stop a running task's thread)."""
        with self._lock:
            futures, sweeps = list(self._futures), list(self._sweeps)
        self.client.cancel(futures)
        for sweep in sweeps:
            self._remove(sweep)

    def _send_inputs(self, job: Job) -> None:
        """Name the job's dataset (the sha256 of its file) and hand the file to the cluster once,
        as a task holding its bytes (so that the scheduler makes it again if the worker keeping it
        dies); a worker fetches it only when its machine lacks the dataset. Registered by the
        train-and-test file, the path execute() is given."""
        path = worker_input(job.dataset_path)
        with self._lock:
            if str(path) not in self._inputs:
                dataset = Path(job.dataset_path)
                digest = cached_sha256(dataset)
                from distributed import Variable

                with warnings.catch_warnings():  # a big graph is the point here: the bytes travel once
                    warnings.filterwarnings("ignore", message="Sending large graph")
                    future = self.client.submit(bytes, dataset.read_bytes(), key=f"ann-bench-inputs-{digest}",
                                                pure=False)
                name = f"ann-bench-inputs-{uuid.uuid4().hex}"
                Variable(name, client=self.client).set(future)
                self._held.append(future)
                self._inputs[str(path)] = Inputs(job.dataset, digest, name)

    def run(self, job: Job, cpus: list[int], log_path: Path, timeout: float | None,
            grade: bool = True) -> Outcome:
        if Path(job.dataset_path).is_file():
            self._send_inputs(job)
        return super().run(job, cpus, log_path, timeout, grade)

    def execute(self, job: Job, cpus: list[int], log: CappedLog, timeout: float | None,
                results_dir: Path, grade: bool) -> Outcome:
        """Send the job to a worker slot, and put what its worker wrote into this process's
        private output directory (`job.results_dir`) and `log`."""
        from distributed import KilledWorker

        sweep = self._sweep(results_dir)
        request = Request(job.to_json(), self._inputs[job.dataset_path], self.local, self.memory_limit_bytes,
                          dict(self.slots_per_host), self.slot_cores, self.digest, sweep, timeout,
                          grade)
        future = self.client.submit(cluster_worker.run_definition, request, resources={RESOURCE: 1},
                                    workers=self.workers, allow_other_workers=False, retries=RETRIES, pure=False,
                                    key=f"ann-bench-{job.definition.algorithm}-{uuid.uuid4().hex}")
        with self._lock:
            self._futures.add(future)
            self._sweeps.add(sweep)
        try:
            reply: Reply = future.result()
        except KilledWorker as e:
            return Outcome("crashed", f"the Dask worker running it died {e.allowed_failures + 1} time(s), the last "
                                      f"{e.last_worker.address}: the scheduler's allowed-failures "
                                      f"(distributed.scheduler.allowed-failures) were used up")
        finally:
            with self._lock:
                self._futures.discard(future)
        log.write(reply.log)
        output = Path(job.results_dir)
        expected = {job.result_path(q).relative_to(output).as_posix() for q in job.query_args} | {MESSAGES}
        for name, data in reply.files.items():
            if name in expected:  # only the files asked for, at the paths this client chose
                (output / name).parent.mkdir(parents=True, exist_ok=True)
                (output / name).write_bytes(data)
        return Outcome(reply.status, reply.reason, reply.exit_code, environment=reply.environment,
                       skipped=reply.skipped)

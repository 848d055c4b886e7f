"""Run each definition in a fresh container of its algorithm's image (the default executor).

What a container gets, and nothing more:
- the cores it is given (cpuset) and thread pools sized to match;
- a memory limit derived from the machine's TOTAL memory and the parallelism (never from what
  happens to be free), overridable, with no swap on top;
- no network at all (network_mode "none": only its own loopback);
- its dataset's train and test only (a file without the ground truth, read-only), its private
  output directory (read-write, the only writable mount), a tmpfs /tmp, and the ann_bench
  package read-only (so editing the harness needs no image rebuild); never the Docker socket
  nor anything else of results/;
- no privilege: never uid 0 (65534 when the sweep runs as root, else the invoking user's
  uid), no capabilities, no-new-privileges (a setuid binary gains nothing), a pids limit, a
  read-only root filesystem;
- a time limit of its own: the command runs under coreutils `timeout -s KILL` with the sweep's
  timeout and a margin, so that a container outlives a SIGKILLed run.py by at most that.
Every container is labelled with the sweep's results tree, so that the next sweep of that tree
removes any left behind. The container is removed however it ended; its output goes to the log
file the sweep names.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from dataclasses import replace
from pathlib import Path

from ....paths import PACKAGE, PYTHON
from ...definitions import DEFAULT_FILE, Definition
from ...jobs import Job
from ...memory import CGROUP_VARIABLE
from ..base import MEMORY_SHARE, Executor, Outcome, outcome_from_exit, thread_environment, worker_command
from ..logs import CappedLog
from . import images
from .images import DockerUnavailable, image_tag
from .output import OutputPipe, redirected

HARNESS_DIR = PACKAGE  # the ann_bench package on the host
CONTAINER_HARNESS = "/opt/ann-bench/ann_bench"  # PYTHONPATH=/opt/ann-bench in the base image
CONTAINER_INPUT = "/input"
CONTAINER_OUTPUT = "/output"
UNPRIVILEGED = "65534:65534"  # nobody:nogroup, the uid containers run as when root runs the sweep
PIDS_LIMIT = 1024
TIMEOUT_MARGIN = 60  # seconds the in-container timeout allows past the sweep's own
LABEL = "ann-bench"
RESULTS_LABEL = "ann-bench.results"


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def _algorithms_by_image(definitions: list[Definition]) -> dict[str, list[str]]:
    by_image: dict[str, list[str]] = {}
    for d in definitions:
        names = by_image.setdefault(d.image, [])
        if d.algorithm not in names:
            names.append(d.algorithm)
    return by_image


def not_built_message(image: str, algorithm: str, definitions_file: Path | str | None = None) -> str:
    """What to run to build the image, naming the algorithms file unless it is the default."""
    options = ""
    if definitions_file is not None and Path(definitions_file).resolve() != DEFAULT_FILE:
        options = f" --definitions {shlex.quote(str(definitions_file))}"
    return f"image {image_tag(image)} is not built: run `{PYTHON} install.py{options} --algorithm {algorithm}`"


def engine_error(error: Exception) -> str:
    return f"Docker engine error: {' '.join(str(error).split())[:300]}"


def read_timed_out(error: Exception) -> bool:
    """Whether a request ended by its own read timeout, and not by any other engine trouble.

    docker-py 7.2 over the unix socket reports a wait's timeout as a requests ConnectionError
    wrapping urllib3's ReadTimeoutError; over TCP it is a requests ReadTimeout.
    """
    from requests.exceptions import ConnectionError, ReadTimeout
    from urllib3.exceptions import ReadTimeoutError

    if isinstance(error, ReadTimeout):
        return True
    return isinstance(error, ConnectionError) and any(isinstance(a, ReadTimeoutError) for a in error.args)


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, memory_limit_bytes: int | None = None, parallelism: int = 1,
                 data_dir: Path | str | None = None, results_dir: Path | str | None = None,
                 user: str | None = None, definitions_file: Path | str | None = None, client=None):
        """data_dir and results_dir are informational: what is mounted is what each job names.
        `user` ("uid:gid") is who containers run as: by default the invoking user, or 65534 when
        that is root; never uid 0. `definitions_file` is the algorithms file the definitions
        come from, named in the command that builds a missing image. `client` is a
        docker.DockerClient to use instead of the local engine's."""
        self.parallelism = max(1, parallelism)
        self.data_dir = Path(data_dir) if data_dir else None
        self.results_dir = Path(results_dir) if results_dir else None
        self.user = user or (UNPRIVILEGED if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}")
        if self.user.partition(":")[0] in ("0", "root"):
            raise ValueError("containers never run as uid 0")
        self.definitions_file = definitions_file
        self._memory_limit = memory_limit_bytes
        self._client = client
        self._lock = threading.Lock()
        self._running: set[str] = set()  # ids of the containers started and not yet removed
        self._stopped = False

    # -- engine -----------------------------------------------------------------------------

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = images.docker_client()
            return self._client

    @property
    def memory_limit_bytes(self) -> int:
        """The given limit, or MEMORY_SHARE of the engine's total memory / parallelism."""
        if self._memory_limit is None:
            total = int(self.client.info()["MemTotal"])
            self._memory_limit = int(total * MEMORY_SHARE / self.parallelism)
        return self._memory_limit

    def problems(self, definitions: list[Definition], build: bool = False) -> list[str]:
        from ....errors import UserError

        try:
            client = self.client
            missing = images.missing_images(definitions, client)
        except UserError as e:
            return [str(e)]
        by_image = _algorithms_by_image(definitions)
        failed: dict[str, str] = {}
        if build and missing:
            results = images.build_missing(missing, client, self.definitions_file)
            failed = {images.bare_name(r.image): str(r.log_path or r.error) for r in results if not r.ok}
            missing = images.missing_images(definitions, client)
        return [
            f"image {image_tag(image)} failed to build (see {failed[image]})" if image in failed
            else not_built_message(image, by_image[image][0], self.definitions_file)
            for image in missing
        ]

    def stop_all(self) -> None:
        """Kill every container of this executor still running; each run() then removes its own."""
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        with self._lock:
            self._stopped = True  # and start no more
            running = list(self._running)
        for container_id in running:
            try:
                self.client.api.kill(container_id)
            except (DockerException, RequestException):
                pass  # already ended, or the engine is gone and nothing more can be done

    def remove_leftovers(self, results_dir: Path) -> list[str]:
        """Remove the containers earlier sweeps of this results tree left (a SIGKILLed run.py)."""
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        removed = []
        try:
            containers = self.client.containers.list(
                all=True, filters={"label": f"{RESULTS_LABEL}={Path(results_dir).resolve()}"})
            for container in containers:
                container.remove(force=True)
                removed.append(container.name)
        except (DockerException, RequestException, DockerUnavailable):
            pass  # no engine: nothing of ours can be running there either
        return removed

    # -- one definition ---------------------------------------------------------------------

    def container_job(self, job: Job) -> tuple[Job, dict]:
        """The job as the container sees it, and the mounts (host path -> bind) it needs: its
        inputs read-only, its private output read-write, the harness read-only."""
        inputs = Path(job.dataset_path).resolve()
        inside = replace(job, dataset_path=f"{CONTAINER_INPUT}/{inputs.name}", results_dir=CONTAINER_OUTPUT)
        volumes = {
            str(inputs): {"bind": inside.dataset_path, "mode": "ro"},
            str(Path(job.results_dir).resolve()): {"bind": CONTAINER_OUTPUT, "mode": "rw"},
            str(HARNESS_DIR): {"bind": CONTAINER_HARNESS, "mode": "ro"},
        }
        return inside, volumes

    def _foreign_ids(self) -> tuple[int, int] | None:
        """The container user's (uid, gid) when root runs containers as someone else, else None."""
        uid, _, gid = self.user.partition(":")
        if os.geteuid() != 0 or not (uid.isdigit() and gid.isdigit()):
            return None  # only root can give files away; a user name is not ours to resolve
        ids = (int(uid), int(gid))
        return None if ids == (os.getuid(), os.getgid()) else ids

    def command(self, job: Job, timeout: float | None) -> list[str]:
        """The worker's command, its output sent into the pipe, under a time limit of its own
        when the sweep has one."""
        command = worker_command("python", job)
        if timeout is not None:
            command = ["timeout", "-s", "KILL", str(int(timeout) + TIMEOUT_MARGIN), *command]
        return redirected(command)

    def execute(self, job: Job, cpus: list[int], log: CappedLog, timeout: float | None,
                results_dir: Path, grade: bool) -> Outcome:
        """Never raises for the worker's faults nor for the engine's: each is an Outcome."""
        from docker.errors import DockerException, ImageNotFound
        from requests.exceptions import RequestException

        definition = job.definition
        tag = image_tag(definition.image)
        try:
            image = self.client.images.get(tag)
            limit = self.memory_limit_bytes
        except ImageNotFound:
            return Outcome("failed", not_built_message(definition.image, definition.algorithm, self.definitions_file))
        except (DockerException, RequestException, DockerUnavailable) as e:
            return Outcome("failed", engine_error(e))
        environment = {"image_id": image.id, "image": tag, "memory_limit_bytes": limit}
        inside, volumes = self.container_job(job)
        ids = self._foreign_ids()
        if ids:
            os.chown(job.results_dir, *ids)  # its private output: the container's user writes there
        output = OutputPipe(log, ids)

        container = None
        try:
            container = self.client.containers.create(
                image.id,
                command=self.command(inside, timeout),
                user=self.user,
                # The container's cgroup is the worker's alone: its peak is the worker's memory.
                environment=dict(thread_environment(len(cpus)), HOME="/tmp", **{CGROUP_VARIABLE: "1"}),
                working_dir="/tmp",
                cpuset_cpus=",".join(str(c) for c in cpus),
                mem_limit=limit,
                memswap_limit=limit,  # equal to the memory limit: no swap
                network_mode="none",
                volumes={**volumes, **output.volume},
                # /tmp is where on-disk engines keep their index; its pages count against the
                # memory limit, which bounds it.
                tmpfs={"/tmp": f"size={limit},mode=1777"},
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                pids_limit=PIDS_LIMIT,
                # The output goes through the pipe, not kept by the engine, whose rotating log
                # loses and repeats lines of a chatty worker.
                log_config={"type": "none", "config": {}},
                # Which sweep a container belongs to: its results directory on the host.
                labels={LABEL: "worker", "ann-bench.algorithm": definition.algorithm,
                        RESULTS_LABEL: str(Path(results_dir).resolve())},
                detach=True,
            )
            with self._lock:
                if self._stopped:
                    return Outcome("failed", "interrupted before it started", environment=environment)
                self._running.add(container.id)
            output.start()
            container.start()
            return replace(self._await(container, output, log, limit, timeout), environment=environment)
        except (DockerException, RequestException) as e:
            message = engine_error(e)
            log.note(message)
            return Outcome("failed", message, environment=environment)
        finally:
            ended = True
            if container is not None:
                with self._lock:
                    self._running.discard(container.id)
                try:
                    container.remove(force=True)
                except (DockerException, RequestException):
                    ended = False  # gone already, or the engine is: nothing more to do here
            output.remove(wait=ended)

    def _await(self, container, output: OutputPipe, log: CappedLog, limit: int,
               timeout: float | None) -> Outcome:
        """Wait for a started container to end, killing it at the timeout, and say how it ended."""
        from docker.errors import APIError, DockerException
        from requests.exceptions import RequestException

        started = time.monotonic()
        try:
            code = int(container.wait(timeout=timeout).get("StatusCode", -1))
        except RequestException as e:
            if timeout is None or not read_timed_out(e):
                raise DockerException(f"waiting for the container failed: {e}") from e
            # The API call's own timeout: the worker ran past its time.
            try:
                container.kill()
                killed = True
            except APIError:
                killed = False  # it ended by itself in the meantime: say how
            code = int(container.wait(timeout=60).get("StatusCode", -1))
            if killed:
                output.finish()
                log.note(f"killed after {time.monotonic() - started:.1f} s: timeout {timeout:g} s")
                return Outcome("timeout", f"timed out after {timeout:g} s")
        output.finish()
        container.reload()
        if container.attrs["State"].get("OOMKilled"):
            log.note(f"killed by the kernel: memory limit {limit} bytes")
            return Outcome("oom", f"out of memory at the {format_bytes(limit)} limit", code)
        return outcome_from_exit(code)

"""Run each definition in a fresh container of its algorithm's image (the default executor).

What a container gets, and nothing more:
- the cores it is given (cpuset) and thread pools sized to match;
- a memory limit derived from the machine's TOTAL memory and the parallelism (never from what
  happens to be free), overridable, with no swap on top;
- no network at all (network_mode "none": only its own loopback);
- the dataset file read-only, the results directory read-write, the ann_bench package
  read-only (so editing the harness needs no image rebuild); never the Docker socket;
- the invoking user's uid:gid, so the results it writes belong to that user (or the given
  user's: when root runs the sweep, the directories the executor makes go to that user too).
The container is removed however it ended; its output goes to the log file the sweep names.
"""

from __future__ import annotations

import copy
import os
import shlex
import threading
import time
from pathlib import Path

from ....paths import PACKAGE, PYTHON
from ...definitions import DEFAULT_FILE, Definition
from ..base import Executor, Outcome, outcome_from_exit, thread_environment, worker_command
from . import images
from .images import DockerUnavailable, image_tag

HARNESS_DIR = PACKAGE  # the ann_bench package on the host
CONTAINER_HARNESS = "/opt/ann-bench/ann_bench"  # PYTHONPATH=/opt/ann-bench in the base image
CONTAINER_DATA = "/data"
CONTAINER_RESULTS = "/results"
MEMORY_SHARE = 0.9  # of total memory, split between parallel containers
LOG_JOIN_SECONDS = 30


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
        """data_dir and results_dir are informational: what is mounted is what each job names
        (its dataset file, read-only, and its results directory). `user` ("uid:gid") defaults
        to the invoking user's. `definitions_file` is the algorithms file the definitions come
        from, named in the command that builds a missing image. `client` is a docker.DockerClient
        to use instead of the local engine's."""
        self.parallelism = max(1, parallelism)
        self.data_dir = Path(data_dir) if data_dir else None
        self.results_dir = Path(results_dir) if results_dir else None
        self.user = user or f"{os.getuid()}:{os.getgid()}"
        self.definitions_file = definitions_file
        self._memory_limit = memory_limit_bytes
        self._client = client
        self._log_client = None
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
    def log_client(self):
        """A client whose reads never time out: a worker may print nothing for hours."""
        with self._lock:
            if self._log_client is None:
                import docker

                self._log_client = docker.from_env(timeout=None)
            return self._log_client

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

    # -- one definition ---------------------------------------------------------------------

    def container_job(self, job: dict) -> tuple[dict, dict]:
        """The job as the container sees it, and the mounts (host path -> bind) it needs."""
        dataset = Path(job["dataset_path"]).resolve()
        results = Path(job["results_dir"]).resolve()
        inside = copy.deepcopy(job)
        inside["dataset_path"] = f"{CONTAINER_DATA}/{dataset.name}"
        inside["results_dir"] = CONTAINER_RESULTS
        volumes = {
            str(dataset): {"bind": inside["dataset_path"], "mode": "ro"},
            str(results): {"bind": CONTAINER_RESULTS, "mode": "rw"},
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

    def _make_dir(self, directory: Path) -> None:
        """mkdir -p here, not by Docker (which would make a missing bind source root-owned); the
        directories made go to the container's user, who writes in them."""
        new = [p for p in (directory, *directory.parents) if not p.exists()]
        directory.mkdir(parents=True, exist_ok=True)
        self._give(new)

    def _give(self, paths: list[Path]) -> None:
        ids = self._foreign_ids()
        for path in paths if ids else []:
            os.chown(path, *ids)

    def run(self, job: dict, cpus: list[int], log_path: Path, timeout: float | None) -> Outcome:
        """Never raises for the worker's faults nor for the engine's: each is an Outcome."""
        from docker.errors import DockerException, ImageNotFound
        from requests.exceptions import RequestException


        definition = job["definition"]
        tag = image_tag(definition["image"])
        log_path = Path(log_path)
        self._make_dir(log_path.parent)
        try:
            image = self.client.images.get(tag)
            limit = self.memory_limit_bytes
        except ImageNotFound:
            message = not_built_message(definition["image"], definition["algorithm"], self.definitions_file)
            return Outcome("failed", message, None, log_path)
        except (DockerException, RequestException, DockerUnavailable) as e:
            return Outcome("failed", engine_error(e), None, log_path)

        if not Path(job["dataset_path"]).is_file():
            # Docker would make a missing bind source as an empty root-owned directory.
            return Outcome("failed", f"dataset file {job['dataset_path']} not found", None, log_path)
        job.setdefault("environment", {}).update(image_id=image.id, image=tag, memory_limit_bytes=limit)
        inside, volumes = self.container_job(job)
        self._make_dir(Path(job["results_dir"]))

        container = None
        with open(log_path, "ab") as log:
            self._give([log_path])
            try:
                container = self.client.containers.create(
                    image.id,
                    command=worker_command("python", inside),
                    user=self.user,
                    environment=thread_environment(len(cpus)),
                    cpuset_cpus=",".join(str(c) for c in cpus),
                    mem_limit=limit,
                    memswap_limit=limit,  # equal to the memory limit: no swap
                    network_mode="none",
                    volumes=volumes,
                    # Which sweep a container belongs to: its results directory on the host.
                    labels={"ann-bench": "worker", "ann-bench.algorithm": definition["algorithm"],
                            "ann-bench.results": str(Path(job["results_dir"]).resolve())},
                    detach=True,
                )
                with self._lock:
                    if self._stopped:
                        return Outcome("failed", "interrupted before it started", None, log_path)
                    self._running.add(container.id)
                container.start()
                return self._await(container, log, log_path, limit, timeout)
            except (DockerException, RequestException) as e:
                message = engine_error(e)
                log.write(f"\n[ann-bench] {message}\n".encode())
                return Outcome("failed", message, None, log_path)
            finally:
                if container is not None:
                    with self._lock:
                        self._running.discard(container.id)
                    try:
                        container.remove(force=True)
                    except (DockerException, RequestException):
                        pass  # gone already, or the engine is: nothing more to do here

    def _await(self, container, log, log_path: Path, limit: int, timeout: float | None) -> Outcome:
        """Wait for a started container to end, killing it at the timeout, and say how it ended."""
        from docker.errors import APIError, DockerException
        from requests.exceptions import RequestException

        started = time.monotonic()
        reader = threading.Thread(target=_copy_logs, args=(self.log_client, container.id, log), daemon=True)
        reader.start()
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
                reader.join(LOG_JOIN_SECONDS)
                elapsed = time.monotonic() - started
                log.write(f"\n[ann-bench] killed after {elapsed:.1f} s: timeout {timeout:g} s\n".encode())
                return Outcome("timeout", f"timed out after {timeout:g} s", None, log_path)
        reader.join(LOG_JOIN_SECONDS)
        container.reload()
        if container.attrs["State"].get("OOMKilled"):
            log.write(f"\n[ann-bench] killed by the kernel: memory limit {limit} bytes\n".encode())
            return Outcome("oom", f"out of memory at the {format_bytes(limit)} limit", code, log_path)
        return outcome_from_exit(code, log_path)


def _copy_logs(client, container_id: str, log) -> None:
    """Stream the container's output into the log file as it comes."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        for chunk in client.api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True):
            log.write(chunk)
            log.flush()
    except (DockerException, RequestException, ValueError):
        pass  # the stream ended, or run() closed the log when it lost the engine

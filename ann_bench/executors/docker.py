"""Run each definition in a fresh container of its algorithm's image (the default executor).

What a container gets, and nothing more:
- the cores it is given (cpuset) and thread pools sized to match;
- a memory limit derived from the machine's TOTAL memory and the parallelism (never from what
  happens to be free), overridable, with no swap on top;
- no network at all (network_mode "none": only its own loopback);
- the dataset file read-only, the results directory read-write, the ann_bench package
  read-only (so editing the harness needs no image rebuild); never the Docker socket;
- the invoking user's uid:gid, so the results it writes belong to that user.
The container is removed however it ended; its output goes to the log file the sweep names.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from pathlib import Path

from ..definitions import Definition
from .base import Executor, Outcome, outcome_from_exit, thread_environment

HARNESS_DIR = Path(__file__).resolve().parents[1]  # the ann_bench package on the host
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
    images: dict[str, list[str]] = {}
    for d in definitions:
        names = images.setdefault(d.image, [])
        if d.algorithm not in names:
            names.append(d.algorithm)
    return images


def not_built_message(image: str, algorithm: str) -> str:
    return f"image ann-bench-{image} is not built: run `python install.py --algorithm {algorithm}`"


class DockerExecutor(Executor):
    name = "docker"

    def __init__(self, memory_limit_bytes: int | None = None, parallelism: int = 1,
                 data_dir: Path | str | None = None, results_dir: Path | str | None = None,
                 user: str | None = None):
        """data_dir and results_dir are informational: what is mounted is what each job names
        (its dataset file, read-only, and its results directory). `user` ("uid:gid") defaults
        to the invoking user's."""
        self.parallelism = max(1, parallelism)
        self.data_dir = Path(data_dir) if data_dir else None
        self.results_dir = Path(results_dir) if results_dir else None
        self.user = user or f"{os.getuid()}:{os.getgid()}"
        self._memory_limit = memory_limit_bytes
        self._client = None
        self._log_client = None
        self._lock = threading.Lock()
        self._running: set[str] = set()  # ids of the containers started and not yet removed
        self._stopped = False

    # -- engine -----------------------------------------------------------------------------

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                from ..images import docker_client

                self._client = docker_client()
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
        from .. import images
        from ..errors import UserError

        try:
            client = self.client
            missing = images.missing_images(definitions, client)
        except UserError as e:
            return [str(e)]
        by_image = _algorithms_by_image(definitions)
        failed: dict[str, str] = {}
        if build and missing:
            results = images.build_images(missing)
            failed = {images.bare_name(r.image): str(r.log_path or r.error) for r in results if not r.ok}
            missing = images.missing_images(definitions, client)
        return [
            f"image ann-bench-{image} failed to build (see {failed[image]})" if image in failed
            else not_built_message(image, by_image[image][0])
            for image in missing
        ]

    def stop_all(self) -> None:
        """Kill every container of this executor still running; each run() then removes its own."""
        from docker.errors import DockerException

        with self._lock:
            self._stopped = True  # and start no more
            running = list(self._running)
        for container_id in running:
            try:
                self.client.api.kill(container_id)
            except DockerException:
                pass  # already ended

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

    def run(self, job: dict, cpus: list[int], log_path: Path, timeout: float | None) -> Outcome:
        from docker.errors import APIError, DockerException, ImageNotFound
        from requests.exceptions import RequestException

        definition = job["definition"]
        tag = f"ann-bench-{definition['image']}"
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            client = self.client
            image = client.images.get(tag)
        except ImageNotFound:
            return Outcome("failed", not_built_message(definition["image"], definition["algorithm"]), None, log_path)
        except DockerException as e:
            return Outcome("failed", f"Docker engine error: {' '.join(str(e).split())[:300]}", None, log_path)

        if not Path(job["dataset_path"]).is_file():
            # Docker would make a missing bind source as an empty root-owned directory.
            return Outcome("failed", f"dataset file {job['dataset_path']} not found", None, log_path)
        limit = self.memory_limit_bytes
        job.setdefault("environment", {}).update(image_id=image.id, image=tag, memory_limit_bytes=limit)
        inside, volumes = self.container_job(job)
        # Likewise the results directory: make it as the invoking user.
        Path(job["results_dir"]).mkdir(parents=True, exist_ok=True)

        container = None
        with open(log_path, "ab") as log:
            try:
                container = client.containers.create(
                    image.id,
                    command=["--job", json.dumps(inside)],
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
                started = time.monotonic()
                reader = threading.Thread(target=_copy_logs, args=(self.log_client, container.id, log),
                                          daemon=True)
                reader.start()
                try:
                    code = int(container.wait(timeout=timeout).get("StatusCode", -1))
                except RequestException as e:
                    if timeout is None:
                        raise DockerException(f"lost the engine while waiting: {e}") from e
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
            except DockerException as e:
                message = " ".join(str(e).split())[:300]
                log.write(f"\n[ann-bench] Docker engine error: {message}\n".encode())
                return Outcome("failed", f"Docker engine error: {message}", None, log_path)
            finally:
                if container is not None:
                    with self._lock:
                        self._running.discard(container.id)
                    try:
                        container.remove(force=True)
                    except DockerException:
                        pass


def _copy_logs(client, container_id: str, log) -> None:
    """Stream the container's output into the log file as it comes."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        for chunk in client.api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True):
            log.write(chunk)
            log.flush()
    except (DockerException, RequestException):
        pass

"""Docker images: the base OS image, the base image and one image per library.

    ann-bench-os:bookworm   made locally by install/base-os.sh (debootstrap + docker import),
                            for an engine that can pull nothing; not needed when the base is
                            built FROM an official image (--build-arg BASE_IMAGE=debian:bookworm-slim)
    ann-bench-base          install/Dockerfile: Python with the runner's dependencies
    ann-bench-<library>     the base plus one library's pins (ann_bench/algorithms/<library>/
                            requirements.txt), from the library folder's own Dockerfile, or else
                            from the standard template its entries name (`docker: wheel`, the
                            default, or `docker: compile`: install/Dockerfile.<template>)

`python install.py` (a thin CLI over `main`) builds them; the run CLI calls `missing_images`
and, for --build, `build_missing`. Builds go through the Docker SDK with the host's network
(so pip reaches PyPI through whatever the host uses) and the host's CA bundle in the context;
each build's output goes to build/logs/<image>.log, after the Dockerfile it built.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .... import log as logsetup
from ....algorithms.declared import library_imports
from ....algorithms.folders import LibraryFolder
from ....errors import UserError, report
from ....paths import BUILD_LOG_DIR, INSTALL_DIR, REPO
from ...definitions import DEFAULT_FILE, AlgorithmEntry, Definition, load_algorithms, select

IMAGE_PREFIX = "ann-bench-"
LOG_DIR = BUILD_LOG_DIR
OS_IMAGE = "ann-bench-os:bookworm"
BASE = "base"  # the image built from install/Dockerfile
BUILD_TIMEOUT = 3600  # seconds the SDK waits on a silent build step (a long compile)
CA_CANDIDATES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"

log = logging.getLogger(__name__)


class DockerUnavailable(UserError):
    """No Docker engine answers."""


@dataclass
class BuildResult:
    image: str  # the tag, e.g. ann-bench-hnswlib
    status: str  # built, failed or exists
    seconds: float
    log_path: Path | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def image_tag(name: str) -> str:
    """ann-bench-<name> for a bare image name; a full tag is returned as it is."""
    return name if name.startswith(IMAGE_PREFIX) or ":" in name else IMAGE_PREFIX + name


def bare_name(name: str) -> str:
    return name[len(IMAGE_PREFIX):] if name.startswith(IMAGE_PREFIX) else name


@dataclass(frozen=True)
class Recipe:
    """How one library's image is made: its folder, and what its entries say of its image."""

    folder: LibraryFolder
    template: str = "wheel"  # install/Dockerfile.<template>, unless the folder has a Dockerfile
    apt: tuple[str, ...] = ()  # Debian packages the compile template installs too
    package: str | None = None  # the distribution the compile template builds from source

    @classmethod
    def of(cls, entry: AlgorithmEntry) -> "Recipe":
        return cls(entry.folder, entry.docker, entry.apt, entry.declared.package)

    @property
    def source(self) -> Path:
        """The Dockerfile it is made from: the folder's own, or the template."""
        own = self.folder.dockerfile
        return own if own.is_file() else INSTALL_DIR / f"Dockerfile.{self.template}"

    def dockerfile(self) -> str:
        """The Dockerfile's text: the folder's own, or the template with its fields filled in
        (the import check is every top-level import of an installed package in module.py)."""
        text = self.source.read_text()
        if self.source == self.folder.dockerfile:
            return text
        text = text[text.index("ARG BASE"):]  # the template's own comments describe the template
        fields = {"IMPORTS": "; ".join(library_imports(self.folder.module_file)) or "pass",
                  "APT": "".join(f" {package}" for package in self.apt), "PACKAGE": self.package or ""}
        for field, value in fields.items():
            text = text.replace("{{" + field + "}}", value)
        header = f"# ann-bench-{self.folder.name}: made by install.py from {self.source.relative_to(REPO)}\n"
        return header + text


def recipes(entries: Iterable[AlgorithmEntry]) -> dict[str, Recipe]:
    """library name -> its recipe (the entries of a library agree on it: definitions checks)."""
    found: dict[str, Recipe] = {}
    for entry in entries:
        found.setdefault(entry.library, Recipe.of(entry))
    return found


def docker_client(timeout: int = 120):
    """A client of the local engine, or DockerUnavailable saying what to do."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as e:
        raise DockerUnavailable(
            f"cannot reach the Docker engine ({' '.join(str(e).split())[:200]}): start it, "
            f"or run with --local"
        ) from e
    return client


def image_exists(client, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def missing_images(definitions: Iterable[Definition], client=None) -> list[str]:
    """Bare names of the images these definitions need that are not built, in order."""
    client = client or docker_client()
    missing: list[str] = []
    for definition in definitions:
        if definition.image not in missing and not image_exists(client, image_tag(definition.image)):
            missing.append(definition.image)
    return missing


def host_ca_bundle() -> bytes:
    """The CA bundle the host's own pip trusts, so pip in a build reaches PyPI the same way."""
    for variable in CA_CANDIDATES:
        path = os.environ.get(variable)
        if path and os.path.isfile(path):
            return Path(path).read_bytes()
    if os.path.isfile(SYSTEM_CA):
        return Path(SYSTEM_CA).read_bytes()
    return b""  # pip falls back to its own bundle


def build_context(dockerfile: str, requirements: str | None = None) -> io.BytesIO:
    """A tar with the Dockerfile, ca/ with the host's CA bundle, and for a library image its
    folder's requirements.txt (empty when it has none: the base image has what it needs)."""
    files = [("Dockerfile", dockerfile.encode()), ("ca/host-ca.crt", host_ca_bundle())]
    if requirements is not None:
        files.append(("requirements.txt", requirements.encode()))
    files += [(f"ca/{p.name}", p.read_bytes()) for p in sorted((INSTALL_DIR / "ca").glob("*"))
              if p.is_file() and p.name != "host-ca.crt"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def build_os_image(log_dir: Path = LOG_DIR, force: bool = False) -> BuildResult:
    """Run install/base-os.sh (which skips an existing image unless forced)."""
    import docker  # noqa: F401  (fail early with the SDK's error if it is missing)

    client = docker_client()
    if not force and image_exists(client, OS_IMAGE):
        return BuildResult(OS_IMAGE, "exists", 0.0, None)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "os.log"
    start = time.perf_counter()
    with open(log_path, "wb") as log_file:
        command = ["bash", str(INSTALL_DIR / "base-os.sh")] + (["--force"] if force else [])
        code = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        return BuildResult(OS_IMAGE, "failed", seconds, log_path, f"install/base-os.sh exited with code {code}")
    return BuildResult(OS_IMAGE, "built", seconds, log_path)


def build_image(name: str, build_args: dict[str, str] | None = None, nocache: bool = False,
                log_dir: Path = LOG_DIR, recipe: Recipe | None = None, tag: str | None = None) -> BuildResult:
    """docker build the base (name "base") or a library's image (by its recipe, by default
    the wheel template's) as `tag`, by default ann-bench-<name>; never raises for a failed build."""
    from docker.errors import APIError, DockerException

    name = bare_name(name)
    tag = tag or image_tag(name)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    start = time.perf_counter()
    if name == BASE:
        source, dockerfile, requirements = INSTALL_DIR / "Dockerfile", (INSTALL_DIR / "Dockerfile").read_text(), None
    else:
        recipe = recipe or Recipe(LibraryFolder(name))
        if not recipe.folder.module_file.is_file():
            error = f"no library folder {recipe.folder.path.relative_to(REPO)} (with a module.py)"
            log_path.write_text(error + "\n")
            return BuildResult(tag, "failed", 0.0, log_path, error)
        source, dockerfile, requirements = recipe.source, recipe.dockerfile(), recipe.folder.pins()
    error = ""
    with open(log_path, "w") as log_file:
        log_file.write(f"building {tag} from {source.relative_to(REPO)} with {build_args or {}}\n{dockerfile}\n")
        try:
            client = docker_client(timeout=BUILD_TIMEOUT)
            stream = client.api.build(
                fileobj=build_context(dockerfile, requirements), custom_context=True, tag=tag,
                buildargs=dict(build_args or {}), network_mode="host", nocache=nocache,
                rm=True, forcerm=True, pull=False, decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    log_file.write(chunk["stream"])
                elif "status" in chunk:
                    log_file.write(chunk["status"] + "\n")
                if "error" in chunk:
                    error = " ".join(str(chunk["error"]).split())
                    log_file.write(f"ERROR: {chunk['error']}\n")
                log_file.flush()
        except (APIError, DockerException) as e:
            error = " ".join(str(e).split())
            log_file.write(f"ERROR: {e}\n")
    seconds = time.perf_counter() - start
    if error:
        return BuildResult(tag, "failed", seconds, log_path, error[:300])
    return BuildResult(tag, "built", seconds, log_path)


def _uses_local_os(build_args: dict[str, str]) -> bool:
    return build_args.get("BASE_IMAGE", OS_IMAGE) == OS_IMAGE


def build_images(image_names: Iterable[str], build_args: dict[str, str] | None = None, proc: int = 1,
                 nocache: bool = False, log_dir: Path = LOG_DIR, base: bool = True,
                 progress: Callable[[str], None] | None = log.info,
                 recipes: dict[str, Recipe] | None = None) -> list[BuildResult]:
    """Build the OS image if it is missing, then the base, then the named libraries' images
    (by `recipes`, by default those of algorithms.yaml).

    With base=True the base is rebuilt every time (the layer cache makes that a second or two
    when nothing changed); library images are built `proc` at a time once the base is there.
    """
    build_args = dict(build_args or {})
    known = recipes if recipes is not None else recipes_of(DEFAULT_FILE)
    names = [bare_name(n) for n in dict.fromkeys(image_names) if bare_name(n) != BASE]
    say = progress or (lambda message: None)
    lock = threading.Lock()
    results: list[BuildResult] = []

    def record(result: BuildResult) -> BuildResult:
        with lock:
            results.append(result)
            where = f" (log: {_relative(result.log_path)})" if result.log_path else ""
            say(f"{result.image}: {result.status} in {result.seconds:.1f} s{where}")
        return result

    if base:
        if _uses_local_os(build_args):
            say(f"{OS_IMAGE}: checking (debootstrap when missing, about a minute)")
            if not record(build_os_image(log_dir)).ok:
                return results + [_not_built(n, "the OS image failed") for n in [BASE] + names]
        say(f"{image_tag(BASE)}: building")
        if not record(build_image(BASE, build_args, nocache, log_dir)).ok:
            return results + [_not_built(n, "the base image failed") for n in names]

    def one(name: str) -> BuildResult:
        say(f"{image_tag(name)}: building")
        return record(build_image(name, build_args, nocache, log_dir, known.get(name)))

    with ThreadPoolExecutor(max_workers=max(1, proc)) as pool:
        list(pool.map(one, names))
    return results


def build_missing(image_names: Iterable[str], client=None,
                  definitions_file: Path | str | None = None) -> list[BuildResult]:
    """Build only what is missing (run.py --build): the named images, by the recipes of the
    definitions file (default algorithms.yaml), on the existing base, whatever it was built from
    (install.py --build-arg BASE_IMAGE=...), which is left as it is; with no base yet, the base
    first, as `python install.py` would."""
    client = client or docker_client()
    return build_images(image_names, base=not image_exists(client, image_tag(BASE)),
                        recipes=recipes_of(definitions_file or DEFAULT_FILE))


def recipes_of(definitions_file: Path | str) -> dict[str, Recipe]:
    return recipes(load_algorithms(definitions_file).values())


def _not_built(name: str, why: str) -> BuildResult:
    return BuildResult(image_tag(name), "failed", 0.0, None, f"not built: {why}")


def _relative(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def format_table(results: list[BuildResult]) -> str:
    rows = [("image", "status", "seconds", "log")] + [
        (r.image, r.status, f"{r.seconds:.1f}", _relative(r.log_path)) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for r in results:
        if r.status == "failed":
            lines.append(f"{r.image} failed: {r.error}")
    return "\n".join(lines)


def _parse_build_args(pairs: list[str]) -> dict[str, str]:
    args = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--build-arg {pair!r}: expected KEY=VALUE, e.g. BASE_IMAGE=debian:bookworm-slim")
        args[key] = value
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Build the Docker images: the OS image (if missing), ann-bench-base, and one "
                    "image per library (all of algorithms.yaml's unless --algorithm/--image is given).",
    )
    parser.add_argument("--algorithm", action="append", default=[], metavar="NAME",
                        help="build the image of this algorithm's library (repeatable)")
    parser.add_argument("--image", action="append", default=[], metavar="NAME",
                        help="build this library's image, e.g. hnswlib (repeatable)")
    parser.add_argument("--definitions", default=str(DEFAULT_FILE), metavar="FILE",
                        help="the algorithms file (default: algorithms.yaml)")
    parser.add_argument("--proc", type=int, default=1, metavar="N", help="build N images in parallel")
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to every build, e.g. BASE_IMAGE=debian:bookworm-slim")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    parser.add_argument("--log-dir", default=str(LOG_DIR), help="where build logs go (default: build/logs)")
    logsetup.add_arguments(parser)
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    try:
        build_args = _parse_build_args(args.build_arg)
        entries = load_algorithms(args.definitions)
        images = list(args.image)
        if args.algorithm or not args.image:
            images += [entry.library for entry in select(entries, args.algorithm or None)]
        docker_client()  # say plainly when there is no engine, before anything starts
        results = build_images(images, build_args, proc=args.proc, nocache=args.no_cache,
                               log_dir=Path(args.log_dir), recipes=recipes(entries.values()))
    except UserError as e:
        return report(e)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1

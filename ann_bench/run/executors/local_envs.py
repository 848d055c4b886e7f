"""The environments `run.py --local` runs in: made sure of here (`scripts/setup-env` calls this).

As asv has it, one environment per need:

- .venv, shared by every library that can share it: requirements-test.txt (which includes the
  harness's requirements.txt) and the pins of every library folder
  (ann_bench/algorithms/<library>/requirements.txt) whose entries do not say `local: own`.
  `--harness` installs requirements.txt alone, which is all a Docker run needs on the host.
- .venvs/<library> for each library marked `local: own`, whose pins conflict with the others'
  (diskannpy needs numpy 1.25): requirements.txt, leaving out what the library pins itself (its
  pins win), the library's pins, and requirements-test.txt's pytest, so that the conformance
  suite runs there too (tests/test_local_envs.py).

An environment is installed again only when one of its requirements files is newer than its
stamp, so running this again is a no-op until a pin changes.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from ... import log as logsetup
from ...algorithms.folders import LibraryFolder, library_names
from ...errors import UserError, report
from ...paths import ALGORITHMS_DIR, DEFAULT_DEFINITIONS, REPO, VENVS_DIR
from ..definitions import AlgorithmEntry, load_algorithms

SHARED = REPO / ".venv"
HARNESS_REQUIREMENTS = REPO / "requirements.txt"
TEST_REQUIREMENTS = REPO / "requirements-test.txt"
_PIN = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==")

log = logging.getLogger(__name__)


def own_environment_libraries(entries: Iterable[AlgorithmEntry] | None = None) -> list[str]:
    """The libraries (of algorithms.yaml by default) marked `local: own`."""
    entries = load_algorithms().values() if entries is None else entries
    return sorted({entry.library for entry in entries if entry.own_environment})


def shared_requirements(entries: Iterable[AlgorithmEntry] | None = None,
                        root: Path = ALGORITHMS_DIR) -> list[Path]:
    """What the shared .venv installs: the test requirements and every library folder's pins
    but those of libraries with an environment of their own."""
    own = set(own_environment_libraries(entries))
    pins = [LibraryFolder(name, root).requirements for name in library_names(root) if name not in own]
    return [TEST_REQUIREMENTS] + [path for path in pins if path.is_file()]


def _pinned(line: str) -> str | None:
    """The package a `name==version` line pins, in canonical form; None for any other line."""
    match = _PIN.match(line)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def own_requirements(folder: LibraryFolder) -> str:
    """A library's own environment: requirements.txt without what the library pins itself,
    then the library's pins, then the tests' pytest."""
    library = folder.pins()
    if not library.strip():
        raise UserError(f"{folder.requirements} is missing or empty: a library with an environment of its own "
                        f"(local: own) pins what it needs there")
    mine = {_pinned(line) for line in library.splitlines()} - {None}
    harness = [line for line in HARNESS_REQUIREMENTS.read_text().splitlines() if _pinned(line) not in mine]
    pytest = [line for line in TEST_REQUIREMENTS.read_text().splitlines() if _pinned(line) == "pytest"]
    return "\n".join(harness + [f"# {folder.requirements.relative_to(REPO)}", library.rstrip()] + pytest) + "\n"


def _stale(stamp: Path, sources: list[Path]) -> bool:
    if not stamp.exists():
        return True
    made = stamp.stat().st_mtime_ns
    return any(source.stat().st_mtime_ns > made for source in sources)


def _pip_install(python: Path, requirements: list[Path]) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for path in requirements:
        command += ["-r", str(path)]
    if subprocess.run(command).returncode != 0:
        raise UserError(f"pip could not install {', '.join(str(p) for p in requirements)} into "
                        f"{python.parent.parent}; see pip's message above")


def _make_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return python


def ensure_shared(harness_only: bool = False, entries: Iterable[AlgorithmEntry] | None = None,
                  venv: Path = SHARED) -> bool:
    """Make sure .venv has what it needs; True when something was installed."""
    requirements = [HARNESS_REQUIREMENTS] if harness_only else shared_requirements(entries)
    stamp = venv / (".installed-harness" if harness_only else ".installed-all")
    python = _make_venv(venv)
    installed = False
    # Any of the project's requirements files: requirements-test.txt includes others with -r.
    if _stale(stamp, requirements + sorted(REPO.glob("requirements*.txt"))):
        log.info("installing into %s: %s", venv.name, ", ".join(str(p.relative_to(REPO)) for p in requirements))
        _pip_install(python, requirements)
        stamp.touch()
        installed = True
    _install_project(python)
    return installed


def _install_project(python: Path) -> None:
    """The project itself, editable, so that bench/ scripts import it from this checkout
    wherever they run (checked from /, where the current directory cannot stand in for it)."""
    check = subprocess.run([str(python), "-c", "import ann_bench.paths as p; print(p.REPO)"], cwd="/",
                           capture_output=True, text=True)
    if check.stdout.strip() != str(REPO):
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
                        "-e", str(REPO)], check=True)


def ensure_own(library: str, venvs: Path = VENVS_DIR) -> bool:
    """Make sure .venvs/<library> exists and is up to date; True when something was installed."""
    folder = LibraryFolder(library)
    if not folder.module_file.is_file():
        raise UserError(f"no library '{library}': there is no {folder.module_file}")
    venv = venvs / library
    stamp = venv / ".installed"
    if not _stale(stamp, [HARNESS_REQUIREMENTS, TEST_REQUIREMENTS, folder.requirements]):
        return False
    text = own_requirements(folder)
    python = _make_venv(venv)
    log.info("installing into .venvs/%s: requirements.txt with %s winning", library,
             folder.requirements.relative_to(REPO))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix=f"{library}-", delete=False) as merged:
        merged.write(text)
    try:
        _pip_install(python, [Path(merged.name)])
    finally:
        os.unlink(merged.name)
    stamp.touch()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/setup-env",
        description="Make sure the local environments exist and are up to date: .venv with the harness, the "
                    "test tools and every library that can share it, and .venvs/<library> for each library "
                    "marked `local: own` in algorithms.yaml.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--harness", action="store_true",
                       help="only .venv with the harness's requirements.txt (enough to run in Docker)")
    which.add_argument("--library", metavar="NAME", help="only .venvs/NAME, a library's own environment")
    logsetup.add_arguments(parser)
    args = parser.parse_args(argv)
    logsetup.setup_from(args)
    try:
        if args.library:
            ensure_own(args.library)
        elif args.harness:
            ensure_shared(harness_only=True)
        else:
            entries = load_algorithms(DEFAULT_DEFINITIONS).values()
            ensure_shared(entries=entries)
            for library in own_environment_libraries(entries):
                ensure_own(library)
    except UserError as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())

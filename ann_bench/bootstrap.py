"""Started with any python, the tools run with the project's.

run.py, plot.py and install.py call `ensure_requirements()` before importing anything that
needs a third-party package. Where the running interpreter lacks a package of requirements.txt
or has another version of it, they re-execute under `.venv/bin/python` (made by
scripts/setup-env), saying so on one line; with no `.venv`, a missing package is an error that
names the command to make it, and another version only a warning.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

from .paths import REPO

VENV = REPO / ".venv"
SETUP_COMMAND = "scripts/setup-env"


def pinned(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", requirements.read_text(), re.M))


def requirement_problems(pins: dict[str, str]) -> tuple[list[str], list[str]]:
    """(packages missing, packages at another version than pinned) in this interpreter."""
    missing, other = [], []
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if installed != version:
            other.append(f"{name} {installed} (pinned {version})")
    return missing, other


def _in_venv(venv: Path) -> bool:
    return Path(sys.prefix).resolve() == venv.resolve()


def ensure_requirements(venv: Path = VENV) -> None:
    missing, other = requirement_problems(pinned())
    if not missing and not other:
        return
    python = venv / "bin" / "python"
    what = "; ".join(filter(None, [f"lacks {', '.join(missing)}" if missing else "",
                                   f"has {', '.join(other)}" if other else ""]))
    if python.exists() and not _in_venv(venv):
        print(f"note: {sys.executable} {what}; running with {python}", file=sys.stderr, flush=True)
        os.execv(python, [str(python), *sys.argv])
    if missing:
        print(f"error: {sys.executable} {what}: run {SETUP_COMMAND} to make .venv, or install "
              f"requirements.txt into this python", file=sys.stderr)
        sys.exit(2)
    print(f"warning: {sys.executable} {what}; figures may differ from a run in .venv", file=sys.stderr)

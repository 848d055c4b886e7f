"""A library's folder, ann_bench/algorithms/<library>/: all there is of one library.

    module.py          the wrapper: the classes algorithms.yaml's entries name as constructors
    requirements.txt   its pins, which its image installs, and `scripts/setup-env` into .venv
                       (none where the base image has what it needs, as for bruteforce)
    Dockerfile         only where install/'s standard templates (wheel, compile) do not serve

The folder's name is the library's, its image's (ann-bench-<name>) and its own local
environment's (.venvs/<name>, for a library marked `local: own`), hence a lowercase Python
identifier. Helper modules shared by several libraries stay in ann_bench/algorithms/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..paths import ALGORITHMS_DIR, PACKAGE

NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class LibraryFolder:
    name: str
    root: Path = ALGORITHMS_DIR

    @property
    def path(self) -> Path:
        return self.root / self.name

    @property
    def module_file(self) -> Path:
        return self.path / "module.py"

    @property
    def requirements(self) -> Path:
        return self.path / "requirements.txt"

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def module(self) -> str:
        """The wrapper's import path, e.g. ann_bench.algorithms.hnswlib.module."""
        return f"{PACKAGE.name}.{ALGORITHMS_DIR.name}.{self.name}.module"

    def pins(self) -> str:
        """The text of requirements.txt, or "" when the folder has none."""
        return self.requirements.read_text() if self.requirements.is_file() else ""


def library_names(root: Path = ALGORITHMS_DIR) -> list[str]:
    """Every library folder under root (a folder with a module.py)."""
    return sorted(p.parent.name for p in root.glob("*/module.py") if NAME.fullmatch(p.parent.name))

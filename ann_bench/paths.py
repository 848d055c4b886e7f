"""Where the project's own files are: computed once, here."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # the ann_bench package
REPO = PACKAGE.parent  # the checkout: algorithms.yaml, install/, scripts/
ALGORITHMS_DIR = PACKAGE / "algorithms"  # one folder per library: module.py, requirements.txt
DEFAULT_DEFINITIONS = REPO / "algorithms.yaml"
INSTALL_DIR = REPO / "install"
BUILD_LOG_DIR = REPO / "build" / "logs"
# How the README and every message spell the project's python (scripts/setup-env makes it);
# run.py, plot.py and install.py also work with any python (ann_bench/bootstrap.py).
PYTHON = ".venv/bin/python"
VENVS_DIR = REPO / ".venvs"  # .venvs/<library>: the environments of libraries that need their own

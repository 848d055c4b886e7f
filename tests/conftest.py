import shutil
from pathlib import Path

import pytest

from ann_bench import datasets
from ann_bench.paths import REPO


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Datasets built once per test session and shared by every test that only reads them; under
    pytest's temporary folder, never the user's data/."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def xs_angular(data_dir) -> Path:
    return datasets.get_dataset("random-xs-20-angular", data_dir, progress=False)


@pytest.fixture(scope="session")
def xs_euclidean(data_dir) -> Path:
    return datasets.get_dataset("random-xs-20-euclidean", data_dir, progress=False)


# What a copy of the project needs to run its CLIs and its tests: not .venv, data, results,
# build logs or .git.
PROJECT_PARTS = ("ann_bench", "install", "tests", "scripts", "algorithms.yaml", "run.py", "install.py", "plot.py",
                 "requirements.txt", "requirements-test.txt", "pyproject.toml", "README.md")


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A copy of the project under tmp_path, for tests that add a library or an entry as a user
    does and run the CLIs there: started from the copy, they import the copy's ann_bench (a
    script's directory comes first on sys.path), and Docker mounts the copy's package."""
    root = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, root / part, ignore=ignore)
        else:
            root.mkdir(exist_ok=True)
            shutil.copy2(source, root / part)
    return root

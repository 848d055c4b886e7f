from pathlib import Path

import pytest

from ann_bench import datasets
from ann_bench.paths import REPO

# Datasets built once per machine and shared by every test that only reads them.
DATA_DIR = REPO / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def xs_angular(data_dir) -> Path:
    return datasets.get_dataset("random-xs-20-angular", data_dir, progress=False)


@pytest.fixture(scope="session")
def xs_euclidean(data_dir) -> Path:
    return datasets.get_dataset("random-xs-20-euclidean", data_dir, progress=False)

from pathlib import Path

import pytest

from ann_bench import datasets


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

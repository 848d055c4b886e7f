"""Datasets: the registry, download or local build, the HDF5 layout, exact ground truth and
the check every file passes before a sweep trusts it.

The names most callers need are here; the modules hold the rest (registry, builders, real,
sources, minilm, importer, download, hdf5, groundtruth, distance, verify).
`python -m ann_bench.datasets` is the command line.
"""

from .hdf5 import Dataset, load_dataset, validate, write_dataset
from .registry import DATASETS, DatasetSpec, dataset_path, get_dataset, locate, resolve_name
from .verify import check_dataset

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "check_dataset", "dataset_path", "get_dataset",
           "load_dataset", "locate", "resolve_name", "validate", "write_dataset"]

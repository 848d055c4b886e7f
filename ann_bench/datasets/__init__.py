"""Datasets: the registry, download or local build, the HDF5 layout and exact ground truth.

The names most callers need are here; the modules hold the rest (registry, builders,
download, hdf5, groundtruth, distance). `python -m ann_bench.datasets` is the command line.
"""

from .hdf5 import Dataset, load_dataset, validate, write_dataset
from .registry import DATASETS, DatasetSpec, dataset_path, get_dataset, resolve_name

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "dataset_path", "get_dataset", "load_dataset",
           "resolve_name", "validate", "write_dataset"]

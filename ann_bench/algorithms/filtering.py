"""The filter of a filtered query: which labels a point may carry to be an answer.

A filtered dataset (ann_bench/datasets/filtered.py) gives every training point one integer
label and every query a range of labels [lo, hi). A wrapper that declares supports_filter is
given the labels before fit (set_labels) and each query's LabelRange with the query
(filtered_query), and hands the filter to its library: a predicate, an id selector, a WHERE
clause. It never asks for more neighbours and drops those that fail.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LabelRange(NamedTuple):
    """The labels lo <= label < hi pass."""

    lo: int
    hi: int

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """Which of the points with these labels pass."""
        return (labels >= self.lo) & (labels < self.hi)

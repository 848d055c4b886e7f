"""Wrappers that break the interface in one way each, for the runner's validation tests."""

import ctypes
import time

import numpy as np

from ann_bench.algorithms.base import BaseANN


class Scripted(BaseANN):
    """Answers each query with ids from a rule named in the constructor."""

    metrics = ("euclidean", "angular")

    def __init__(self, metric, rule):
        super().__init__()
        self.rule = rule

    def fit(self, X):
        if self.rule == "fit-raises":
            raise RuntimeError("cannot build this index")
        self.n = len(X)

    def set_query_arguments(self, mode="good"):
        self.mode = mode
        self.calls = 0

    def query(self, q, k):
        rule = self.rule if self.mode == "bad" else "good"
        self.calls += 1
        if rule == "duplicates" or (rule == "bad-in-warmup" and self.calls == 1):
            return np.array([0, 0] + list(range(2, k)))
        if rule == "out-of-range":
            return np.array([self.n] + list(range(1, k)))
        if rule == "too-many":
            return np.arange(k + 1)
        if rule == "floats":
            return np.arange(k) + 0.5
        if rule == "hang":
            time.sleep(3600)
        if rule == "segfault":
            ctypes.string_at(0)
        if rule == "query-raises":
            raise ValueError("query blew up")
        return np.arange(k)

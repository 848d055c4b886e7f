"""The host's grader: while a worker runs, it measures the recall of each query set the worker
finishes and tells the worker which costlier sets have nothing left to gain.

A definition whose entry names an effort argument runs its sets from least to most effort
(run/effort.py). The worker never sees the ground truth, so the host measures: a thread polls
the worker's private output for new "ok" sets, checks each file as it will be accepted
(results/acceptance.py, distances from the host's copy of the dataset) and computes its k-NN
recall against the host's ground truth. When a set reaches recall 1.0 it writes, atomically,
SKIP (the costlier sets, as JSON) into the output directory, which the worker reads before each
set (runner.py). Only the sets this grader chose are recorded as skipped: a worker that writes
SKIP itself merely leaves sets missing, and those are failures.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from ..atomic import write_atomically
from ..report.metrics import knn_recall
from ..results.acceptance import Reference, Rejected, accept
from ..results.files import canonical_json
from .effort import SATURATED, costlier
from .jobs import Job, base_attrs, display_name
from .messages import STATUS_OK, receive

log = logging.getLogger(__name__)

SKIP = "skip.json"
POLL_SECONDS = 0.2  # how often the worker's messages are read: a set takes longer than that


def skip_reason(reached: Any) -> str:
    return f"recall 1.0 at {canonical_json(reached)}: costlier sets have nothing to gain; --exhaustive runs them"


def read_skip(output_dir: Path | str) -> set[str]:
    """The worker's side: the sets (by canonical JSON) the host said to skip, none if unreadable."""
    try:
        with open(Path(output_dir) / SKIP) as f:
            listed = json.load(f)
    except (OSError, ValueError):
        return set()
    return {canonical_json(q) for q in listed} if isinstance(listed, list) else set()


class Grader:
    """Grades a job's finished sets while its worker runs (a context manager around execute).

    `skipped` maps each set the grader told the worker to skip (by canonical JSON) to the
    reason; it is final once the context is left.
    """

    def __init__(self, job: Job, output_dir: Path, enabled: bool = True):
        """`job` as the host sees it (the whole dataset); `output_dir` the worker's private output."""
        self.job = job
        self.output_dir = Path(output_dir)
        self._worker_job = replace(job, results_dir=str(output_dir))  # where the worker writes each file
        self.enabled = enabled and job.definition.effort is not None and len(job.query_args) > 1
        self.skipped: dict[str, str] = {}
        self._graded: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"grader {job.definition.algorithm}", daemon=True)

    def __enter__(self) -> Grader:
        if self.enabled:
            self._reference = Reference(self.job.dataset_path)
            with h5py.File(self.job.dataset_path, "r") as f:
                self._truth = np.asarray(f["distances"])
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.grade_new()

    def grade_new(self) -> None:
        """Grade every set reported ok since the last look that still has costlier sets to run."""
        finished = receive(self.output_dir)
        for query_args in self.job.query_args:
            key = canonical_json(query_args)
            message = finished.get(key)
            if message is None or message.status != STATUS_OK or key in self._graded or key in self.skipped:
                continue
            self._graded.add(key)
            pending = [q for q in costlier(self.job.query_args, query_args, self.job.definition.effort)
                       if canonical_json(q) not in self.skipped]
            if pending and self._recall(query_args) >= SATURATED:
                self._skip(query_args, pending)

    def _recall(self, query_args: Any) -> float:
        """The set's k-NN recall as the host will measure it, or 0 where its file is not acceptable."""
        expected = base_attrs(self.job, display_name(self.job.definition, query_args), query_args)
        try:
            result = accept(self._worker_job.result_path(query_args), self.output_dir, expected, self._reference,
                            self.job.runs)
        except Rejected as e:
            log.info("%s %s not graded: %s", self.job.definition.algorithm, canonical_json(query_args), e)
            return 0.0
        return knn_recall(self._truth, result, self.job.count)

    def _skip(self, reached: Any, pending: list) -> None:
        listed = dict(self.skipped)
        listed.update({canonical_json(q): skip_reason(reached) for q in pending})
        try:
            write_atomically(self.output_dir / SKIP, json.dumps([json.loads(key) for key in listed]))
        except OSError as e:  # the worker put something in the way: it runs every set
            log.warning("could not tell the worker to skip sets: %s", e)
            return
        self.skipped = listed
        log.debug("%s: %s; skipping %d costlier set(s)", self.job.definition.algorithm, skip_reason(reached),
                 len(pending))

"""Wrappers written to cheat or to break out, for tests/test_hostile.py (tests/hostile-algorithms.yaml).

A wrapper is code from many hands, so the harness must hold against one that tries, from inside
the worker, what an adversary would: read the ground truth, forge distances, rewrite or plant
other results, plant a setuid binary or a device node, write outside its output, replace its
log with a link, flood its log, leave processes behind. Each class here tries one of those in
`fit` and otherwise answers like a (bad) index; the tests check that nothing of it reaches the
host's results, logs or processes. They find their way around as a real one would: from the
job on the worker's command line (`--job JSON`) and the filesystem they can see. They need only
numpy and h5py, which the base image has.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from ..base import BaseANN


def the_job() -> dict:
    """The job the worker was started with, as it appears on its command line."""
    return json.loads(sys.argv[sys.argv.index("--job") + 1])


def _try(action) -> str:
    try:
        action()
        return "done"
    except (OSError, ValueError) as e:
        return f"{type(e).__name__}: {e}"


class _Hostile(BaseANN):
    metrics = ("euclidean", "angular")
    package = "numpy"

    def __init__(self, metric: str):
        super().__init__()
        self.metric = metric
        self.tried: dict[str, str] = {}

    def fit(self, X: np.ndarray) -> None:
        self.n = len(X)

    def query(self, q: np.ndarray, k: int):
        return np.arange(min(k, self.n))

    def get_additional(self) -> dict:
        return {"tried": json.dumps(self.tried, sort_keys=True)}


class AnswerReader(_Hostile):
    """Looks for the ground truth in every dataset file it can see, and answers from it."""

    def fit(self, X: np.ndarray) -> None:
        super().fit(X)
        self.answers: dict[bytes, np.ndarray] = {}
        given = Path(the_job()["dataset_path"])
        for path in [given, *given.parent.glob("*.hdf5"), *Path("/data").glob("*.hdf5")]:
            try:
                with h5py.File(path, "r") as f:
                    if "neighbors" in f:
                        truth, test = f["neighbors"][:], f["test"][:]
                        self.answers = {row.tobytes(): ids for row, ids in zip(test, truth)}
                        self.tried["ground truth"] = str(path)
                        return
            except OSError:
                continue
        self.tried["ground truth"] = "not found"

    def query(self, q: np.ndarray, k: int):
        found = self.answers.get(np.asarray(q).tobytes())
        return found[:k] if found is not None else super().query(q, k)


class TrainWriter(_Hostile):
    """Copies each query over train rows it was given and answers with those rows: distances
    computed from its arrays say every answer is exact."""

    def fit(self, X: np.ndarray) -> None:
        super().fit(X)
        self.X = X
        self.slots: dict[bytes, int] = {}

    def query(self, q: np.ndarray, k: int):
        slot = self.slots.setdefault(np.asarray(q).tobytes(), len(self.slots))
        width = max(1, min(k, self.n // 1000))
        ids = (slot * width + np.arange(width)) % self.n
        try:
            self.X[ids] = q
        except ValueError:
            pass  # read-only: answer with the rows anyway
        return ids


def _plant(path: Path, algorithm: str, job: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update({"name": algorithm, "algo": algorithm, "dataset": job["dataset"], "count": job["count"],
                        "status": "ok", "best_search_time": 1e-9, "build_time": 0.0, "index_size": 0,
                        "build_args": "[]", "query_args": "[]", "batch_mode": job["batch"], "distance": "angular"})
        f.create_dataset("neighbors", data=np.zeros((1, job["count"]), dtype=np.int32))


class Forger(_Hostile):
    """Rewrites every other result it can reach (a billion QPS), plants a result for an entry
    that has not run yet (`plant`), and rewrites the metrics cache."""

    def __init__(self, metric: str, plant: str = "hostile-victim"):
        super().__init__(metric)
        self.plant = plant

    def fit(self, X: np.ndarray) -> None:
        from ...results.files import result_path

        super().fit(X)
        job = the_job()
        root = Path(job["results_dir"])
        own = job["definition"]["algorithm"]
        for path in root.rglob("*.hdf5"):
            if own not in path.parts:
                self.tried[f"rewrite {path.name}"] = _try(lambda p=path: _rewrite(p))
        planted = result_path(root, job["dataset"], job["count"], self.plant, job["batch"], [], [])
        self.tried["plant"] = _try(lambda: _plant(planted, self.plant, job))
        cache = root / ".cache" / f"metrics-{job['dataset']}-{job['count']}.json"

        def forge_cache() -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text('{"rows": "forged"}')
        self.tried["cache"] = _try(forge_cache)


def _rewrite(path: Path) -> None:
    with h5py.File(path, "a") as f:
        f.attrs["best_search_time"] = 1e-9


class Copycat(_Hostile):
    """Answers with the neighbours of another library's result (bruteforce's, exact) when it
    can read one."""

    def fit(self, X: np.ndarray) -> None:
        super().fit(X)
        job = the_job()
        self.answers: dict[bytes, np.ndarray] = {}
        with h5py.File(job["dataset_path"], "r") as f:
            test = f["test"][:]
        for path in Path(job["results_dir"]).rglob("*.hdf5"):
            try:
                with h5py.File(path, "r") as f:
                    if "neighbors" in f and f["neighbors"].shape[0] == len(test):
                        self.answers = {row.tobytes(): ids for row, ids in zip(test, f["neighbors"][:])}
                        self.tried["copied"] = str(path)
                        return
            except OSError:
                continue

    def query(self, q: np.ndarray, k: int):
        found = self.answers.get(np.asarray(q).tobytes())
        return found[:k] if found is not None else super().query(q, k)


class Escaper(_Hostile):
    """Plants a setuid shell and a device node, writes outside its own results, replaces its
    log with a link to `victim` (relative to the results tree's parent, so that it names the
    same file on the host), then fails, so that a retry opens that log again."""

    def __init__(self, metric: str, victim: str = "victim.txt"):
        super().__init__(metric)
        self.victim = victim

    def fit(self, X: np.ndarray) -> None:
        from ...results.files import params_name, result_dir

        super().fit(X)
        job = the_job()
        root = Path(job["results_dir"])
        here = root / job["dataset"]
        here.mkdir(parents=True, exist_ok=True)
        shell = here / "suid-shell"

        def setuid() -> None:
            shutil.copy("/bin/sh", shell)
            os.chmod(shell, 0o4755)
        self.tried["setuid"] = _try(setuid)
        self.tried["device"] = _try(lambda: os.mknod(here / "null-device", stat.S_IFCHR | 0o666, os.makedev(1, 3)))
        self.tried["outside"] = _try(lambda: (here / "escaped.txt").write_text("written by a wrapper"))
        d = job["definition"]
        logs = result_dir(root, job["dataset"], job["count"], d["algorithm"], job["batch"]) / "logs"
        log = logs / (params_name(d["args"], None) + ".log")

        def link() -> None:
            logs.mkdir(parents=True, exist_ok=True)
            log.unlink(missing_ok=True)
            log.symlink_to(Path(*[".."] * 5) / self.victim)
        self.tried["log link"] = _try(link)
        raise RuntimeError("escaper: " + json.dumps(self.tried, sort_keys=True))


class Chatty(_Hostile):
    """Prints `megabytes` of numbered lines, then fails with its last words."""

    def __init__(self, metric: str, megabytes: float = 16):
        super().__init__(metric)
        self.megabytes = megabytes

    def fit(self, X: np.ndarray) -> None:
        line = "line {:08d} " + "x" * 85 + "\n"  # 100 bytes
        lines = int(self.megabytes * (1 << 20)) // 100
        out = sys.stdout
        for lo in range(0, lines, 1000):
            out.write("".join(line.format(i) for i in range(lo, min(lines, lo + 1000))))
        out.flush()
        raise RuntimeError(f"last words after {lines} lines")


class Forker(_Hostile):
    """Leaves a child process behind that sleeps for `seconds` (its command line is the
    worker's, so it carries the job and `tag`); with `detach`, the child leaves the worker's
    process group and session first, as a daemon does."""

    def __init__(self, metric: str, tag: str = "", seconds: float = 600, where: str = "fit", detach: bool = False):
        super().__init__(metric)
        self.tag = tag
        self.seconds = seconds
        self.where = where
        self.detach = detach

    def fit(self, X: np.ndarray) -> None:
        super().fit(X)
        if os.fork() == 0:
            if self.detach:
                os.setsid()
            time.sleep(self.seconds)
            os._exit(0)
        if self.where == "fit-forever":
            time.sleep(self.seconds)


class Tamperer(_Hostile):
    """Answers honestly badly, then, once its results are written (done), rewrites them to
    pass for another library's (`algo`)."""

    def __init__(self, metric: str, algo: str = "bruteforce"):
        super().__init__(metric)
        self.algo = algo

    def done(self) -> None:
        job = the_job()
        own = job["definition"]["algorithm"]
        for path in Path(job["results_dir"]).rglob("*.hdf5"):
            if own in path.parts:
                with h5py.File(path, "a") as f:
                    f.attrs["algo"] = self.algo


class SkipForger(_Hostile):
    """Writes the host's skip file itself (every set after its first), to have sets it never
    ran recorded as skipped instead of failed; takes the query argument `effort`."""

    def fit(self, X: np.ndarray) -> None:
        from ...run.grading import SKIP

        super().fit(X)
        job = the_job()
        listed = json.dumps(job["query_args"][1:])
        self.tried["skip"] = _try(lambda: (Path(job["results_dir"]) / SKIP).write_text(listed))

    def set_query_arguments(self, effort: int) -> None:
        self.effort = effort

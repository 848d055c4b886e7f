"""run.py --dry-run before the dataset is there: it plans and estimates from the registry's
sizes instead of fetching or building the set, offline, and says so."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ann_bench.datasets.registry import DATASETS
from ann_bench.paths import REPO

from .test_estimate import record

GENERATED = [name for name, spec in DATASETS.items() if spec.builder is not None and not spec.inputs]


@pytest.mark.parametrize("name", GENERATED)
def test_the_registry_sizes_are_what_the_builder_makes(name, tmp_path):
    spec = DATASETS[name]
    train, test = spec.builder(tmp_path, False)
    assert (len(train), len(test)) == (spec.rows, spec.queries)


def test_every_registered_set_has_its_sizes():
    for spec in DATASETS.values():
        assert spec.rows and spec.queries and spec.rows > spec.queries, spec.name
        assert spec.values() is None if spec.type == "sparse" else spec.values() == (
            spec.rows * spec.dimension, spec.queries * spec.dimension, spec.rows)


def offline_run(*args: str) -> subprocess.CompletedProcess:
    """run.py in a network namespace of its own (no interface but a down loopback) where this
    may make one (root with unshare), so that any fetch fails."""
    command = [sys.executable, str(REPO / "run.py"), *args]
    if os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "--net", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120)


def test_dry_run_of_a_set_not_there_plans_from_the_registry_offline(tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    # Measured on another set whose file is not here either: both sizes come from the registry.
    for ef in (10, 40, 320):
        record(results, "random-xs-20-angular", "hnswlib", {"M": 12, "efConstruction": 100}, {"ef": ef}, 0.5, 0.05)
    done = offline_run("--dataset", "glove-6b-50-angular-100k", "--algorithm", "hnswlib", "--quick", "--local",
                       "--dry-run", "--data-dir", str(data), "--results", str(results), "--no-progress")
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert first == (f"{data / 'glove-6b-50-angular-100k.hdf5'} is not there yet: planned with the registry's sizes "
                     "(100,000 points + 10,000 queries x 50); run without --dry-run to build it")
    assert any(re.fullmatch(r"\s+3\s+0\s+0  hnswlib\(.+\)", line) for line in rest), rest
    line = next(line for line in rest if line.startswith("hnswlib "))
    assert "(scaled from random-xs-20-angular)" in line and "unknown" not in done.stdout
    assert list(data.iterdir()) == []  # nothing fetched, nothing built


def test_dry_run_of_an_unknown_set_still_says_what_is_wrong(tmp_path):
    done = offline_run("--dataset", "no-such-set", "--dry-run", "--local", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "unknown dataset 'no-such-set'" in done.stderr


def test_dry_run_of_a_set_that_is_there_reads_its_file(tmp_path, data_dir, xs_angular):
    done = offline_run("--dataset", "random-xs-20-angular", "--algorithm", "hnswlib", "--quick", "--local",
                       "--dry-run", "--data-dir", str(data_dir), "--results", str(tmp_path / "results"))
    assert done.returncode == 0, done.stderr
    assert "registry" not in done.stdout and re.search(r"^\s+3\s+0\s+0  hnswlib\(", done.stdout, re.M)


def test_a_path_is_never_taken_from_the_registry(tmp_path):
    missing: Path = tmp_path / "glove-6b-50-angular-100k.hdf5"
    done = offline_run("--dataset", str(missing), "--dry-run", "--local")
    assert done.returncode == 2 and f"no dataset file {missing}" in done.stderr

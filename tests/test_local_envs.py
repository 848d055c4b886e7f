"""Local mode for a library that cannot share the local environment: diskannpy needs numpy 1.25.

Its pins stay out of requirements-local.txt; `scripts/setup-env --image diskann` makes
.venvs/diskann (requirements.txt with the image's own pins winning), and `run.py --local` runs
diskann's definitions with that environment's python. The in-process conformance suite skips
diskann in .venv, so this checks it the way a user runs it: a --local quick sweep, recall read
from the result files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ann_bench.definitions import get_definitions, load_algorithms
from ann_bench.executors.local import LocalExecutor, shares_local_environment
from ann_bench.metrics import metrics_for_results
from ann_bench.results import load_results

from .conftest import ROOT

IMAGE = "diskann"
DATASET = "random-xs-20-euclidean"
SETUP_TIMEOUT = 1200  # seconds: a fresh environment downloads numpy, scipy, matplotlib, ...


def definitions(algorithm: str):
    return get_definitions(load_algorithms(), "euclidean", "float", 10, 20, [algorithm], quick=True)


def test_only_conflicting_images_need_an_environment_of_their_own():
    assert not shares_local_environment("diskann")
    assert shares_local_environment("hnswlib")  # in requirements-local.txt
    assert shares_local_environment("bruteforce")  # no pins of its own


def test_a_missing_environment_is_a_problem_that_says_how_to_make_it(tmp_path):
    executor = LocalExecutor(venvs_dir=tmp_path)
    assert executor.problems(definitions("hnswlib")) == []
    problems = executor.problems(definitions("diskann"))
    assert len(problems) == 1 and "scripts/setup-env --image diskann" in problems[0], problems
    assert executor.python_for("diskann") == sys.executable


def test_an_image_environment_is_used_when_there_is_one(tmp_path):
    python = tmp_path / "diskann" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    executor = LocalExecutor(venvs_dir=tmp_path)
    assert executor.python_for("diskann") == str(python)
    assert executor.python_for("hnswlib") == sys.executable
    assert executor.problems(definitions("diskann")) == []


@pytest.fixture(scope="module")
def diskann_environment():
    """.venvs/diskann, made (or brought up to date: a no-op when nothing changed) here."""
    made = subprocess.run([str(ROOT / "scripts" / "setup-env"), "--image", IMAGE], cwd=ROOT,
                          capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    if made.returncode != 0:
        message = f"scripts/setup-env --image {IMAGE} failed: {(made.stdout + made.stderr)[-2000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return ROOT / ".venvs" / IMAGE / "bin" / "python"


def test_diskann_quick_sweep_runs_locally_in_its_own_environment(diskann_environment, tmp_path, data_dir,
                                                                   xs_euclidean):
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--local", "--quick", "--runs", "1", "--algorithm", "diskann",
         "--dataset", DATASET, "--data-dir", str(data_dir), "--results", str(results), "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = metrics_for_results(results, DATASET, 10, data_dir=data_dir)
    assert len(rows) == 3, rows  # the quick grid's three search settings
    best = max(float(row["k-nn"]) for row in rows)
    assert best >= 0.9, f"diskann's best quick recall {best:.3f} < 0.9"
    for result in load_results(results, DATASET, 10):
        environment = json.loads(result.attrs["environment"])
        assert environment["library"] == "diskannpy" and environment["library_version"] == "0.7.0"
        assert environment["numpy"].startswith("1.25"), environment  # its own environment's numpy

"""Local mode for images whose library cannot share the local environment (diskannpy needs numpy 1.25).

Their pins stay out of requirements-local.txt; `scripts/setup-env --image <image>` makes
.venvs/<image> (requirements.txt with the image's own pins winning), and `run.py --local` runs
their definitions with that environment's python. The shared .venv cannot import their
libraries, so the conformance suite runs once more for each such image, in its own environment
and restricted to its entries (CONFORMANCE_IMAGE). It runs as a test of this suite so that the
one pytest summary scripts/test ends with counts it. scripts/test makes the environments, with
pytest in them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ann_bench.paths import REPO as ROOT
from ann_bench.report.cache import metrics_for_results
from ann_bench.results.files import load_results
from ann_bench.run.definitions import get_definitions, load_algorithms
from ann_bench.run.executors.local import VENVS_DIR, LocalExecutor, own_environment_images, shares_local_environment

OWN_ENVIRONMENT_IMAGES = own_environment_images()  # what scripts/test makes an environment for
DATASET = "random-xs-20-euclidean"
CONFORMANCE_TIMEOUT = 1200  # seconds, for one image's entries on every metric they declare


def definitions(algorithm: str):
    return get_definitions(load_algorithms(), "euclidean", "float", 10, 20, [algorithm], quick=True)


def test_only_conflicting_images_need_an_environment_of_their_own():
    assert not shares_local_environment("diskann")
    assert shares_local_environment("hnswlib")  # in requirements-local.txt
    assert shares_local_environment("bruteforce")  # no pins of its own
    assert "diskann" in OWN_ENVIRONMENT_IMAGES and "hnswlib" not in OWN_ENVIRONMENT_IMAGES


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


def own_python(image: str) -> Path:
    """.venvs/<image>/bin/python, with pytest in it; without it, a failure in CI, else a skip."""
    python = VENVS_DIR / image / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import pytest"], capture_output=True).returncode == 0:
        return python
    message = (f".venvs/{image} with pytest in it is missing: scripts/test makes it "
               f"(scripts/setup-env --image {image}, then requirements-test.txt's pytest pin into it)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("image", OWN_ENVIRONMENT_IMAGES)
def test_conformance_suite_in_the_images_own_environment(image):
    python = own_python(image)
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "tests/test_conformance.py"],
        cwd=ROOT, env=dict(os.environ, CONFORMANCE_IMAGE=image), capture_output=True, text=True,
        timeout=CONFORMANCE_TIMEOUT,
    )
    output = (run.stdout + run.stderr).strip()
    print(f"tests/test_conformance.py in .venvs/{image}: {output.splitlines()[-1] if output else '(no output)'}")
    # Exit 5 (nothing collected) is a failure too: the image has entries to check.
    assert run.returncode == 0, (f"tests/test_conformance.py with CONFORMANCE_IMAGE={image} in .venvs/{image} "
                                 f"exited {run.returncode}:\n{output[-6000:]}")


def test_diskann_quick_sweep_runs_locally_in_its_own_environment(tmp_path, data_dir, xs_euclidean):
    own_python("diskann")
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--local", "--quick", "--runs", "1", "--algorithm", "diskann",
         "--dataset", DATASET, "--data-dir", str(data_dir), "--results", str(results), "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = metrics_for_results(results, DATASET, 10, data_dir=data_dir)
    assert len(rows) == 3, rows  # the quick grid's three search settings
    for result in load_results(results, DATASET, 10):
        environment = json.loads(result.attrs["environment"])
        assert environment["library"] == "diskannpy" and environment["library_version"] == "0.7.0"
        assert environment["numpy"].startswith("1.25"), environment  # its own environment's numpy

"""The local environments: the shared .venv, and one of its own for a library that cannot share
it (`local: own` in algorithms.yaml: diskannpy needs numpy 1.25).

`scripts/setup-env` (ann_bench/run/executors/local_envs.py) installs every other library folder's
pins into .venv, and makes .venvs/<library> from requirements.txt with the library's own pins
winning; `run.py --local` runs that library's definitions with that environment's python. The
shared .venv cannot import those libraries, so the conformance suite runs once more for each,
in its own environment and restricted to its entries (CONFORMANCE_LIBRARY). It runs as a test of
this suite so that the one pytest summary scripts/test ends with counts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ann_bench.algorithms.folders import LibraryFolder, library_names
from ann_bench.paths import REPO as ROOT
from ann_bench.report.cache import metrics_for_results
from ann_bench.results.files import load_results
from ann_bench.run.definitions import get_definitions, load_algorithms
from ann_bench.run.executors import local_envs
from ann_bench.run.executors.local import VENVS_DIR, LocalExecutor

OWN_ENVIRONMENT_LIBRARIES = local_envs.own_environment_libraries()  # what scripts/setup-env makes
DATASET = "random-xs-20-euclidean"
CONFORMANCE_TIMEOUT = 1200  # seconds, for one image's entries on every metric they declare


def definitions(algorithm: str):
    return get_definitions(load_algorithms(), "euclidean", "float", 10, 20, [algorithm], quick=True)


def test_the_shared_environment_has_every_library_but_those_with_their_own():
    """Adding a library folder with pins is all it takes for .venv to have it."""
    assert OWN_ENVIRONMENT_LIBRARIES == ["diskann"]
    shared = local_envs.shared_requirements()
    assert shared[0] == local_envs.TEST_REQUIREMENTS
    expected = [LibraryFolder(name).requirements for name in library_names() if name != "diskann"]
    assert shared[1:] == [path for path in expected if path.is_file()]
    assert LibraryFolder("hnswlib").requirements in shared and LibraryFolder("diskann").requirements not in shared


def test_a_librarys_own_environment_takes_its_pins_over_the_harnesss():
    text = local_envs.own_requirements(LibraryFolder("diskann"))
    pins = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "numpy==1.25.0" in pins and "scipy==1.11.4" in pins and "diskannpy==0.7.0" in pins
    assert not [p for p in pins if p.startswith(("numpy==2", "scipy==1.17"))], pins
    assert "h5py==3.16.0" in pins  # the rest of the harness's pins stay
    assert [p for p in pins if p.startswith("pytest==")], "the conformance suite runs there too"


def test_a_missing_environment_is_a_problem_that_says_how_to_make_it(tmp_path):
    executor = LocalExecutor(venvs_dir=tmp_path)
    assert executor.problems(definitions("hnswlib")) == []
    problems = executor.problems(definitions("diskann"))
    assert len(problems) == 1 and "scripts/setup-env --library diskann" in problems[0], problems
    assert executor.python_for("diskann") == sys.executable


def test_an_image_environment_is_used_when_there_is_one(tmp_path):
    python = tmp_path / "diskann" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    executor = LocalExecutor(venvs_dir=tmp_path)
    assert executor.python_for("diskann") == str(python)
    assert executor.python_for("hnswlib") == sys.executable
    assert executor.problems(definitions("diskann")) == []


def own_python(library: str) -> Path:
    """.venvs/<library>/bin/python, with pytest in it; without it, a failure in CI, else a skip."""
    python = VENVS_DIR / library / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import pytest"], capture_output=True).returncode == 0:
        return python
    message = f".venvs/{library} with pytest in it is missing: make it with scripts/setup-env --library {library}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("library", OWN_ENVIRONMENT_LIBRARIES)
def test_conformance_suite_in_the_librarys_own_environment(library):
    python = own_python(library)
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "tests/test_conformance.py"],
        cwd=ROOT, env=dict(os.environ, CONFORMANCE_LIBRARY=library), capture_output=True, text=True,
        timeout=CONFORMANCE_TIMEOUT,
    )
    output = (run.stdout + run.stderr).strip()
    print(f"tests/test_conformance.py in .venvs/{library}: {output.splitlines()[-1] if output else '(no output)'}")
    # Exit 5 (nothing collected) is a failure too: the library has entries to check.
    assert run.returncode == 0, (f"tests/test_conformance.py with CONFORMANCE_LIBRARY={library} in "
                                 f".venvs/{library} exited {run.returncode}:\n{output[-6000:]}")


def test_diskann_quick_sweep_runs_locally_in_its_own_environment(tmp_path, data_dir, xs_euclidean):
    own_python("diskann")
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--local", "--quick", "--exhaustive", "--runs", "1",
         "--algorithm", "diskann", "--dataset", DATASET, "--data-dir", str(data_dir), "--results", str(results),
         "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = metrics_for_results(results, DATASET, 10, data_dir=data_dir)
    assert len(rows) == 3, rows  # the quick grid's three search settings
    for result in load_results(results, DATASET, 10):
        environment = json.loads(result.attrs["environment"])
        assert environment["library"] == "diskannpy" and environment["library_version"] == "0.7.0"
        assert environment["numpy"].startswith("1.25"), environment  # its own environment's numpy

"""run.py, plot.py and install.py work when started with any python (issue: one way to run the tools)."""

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from ann_bench.paths import REPO


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """An interpreter with none of the project's requirements."""
    directory = tmp_path_factory.mktemp("bare")
    venv.create(directory, with_pip=False)
    return directory / "bin" / "python"


@pytest.mark.parametrize("tool", ["run.py", "plot.py", "install.py"])
def test_a_tool_started_with_a_bare_python_reexecutes_under_the_venv(bare_python, tool, tmp_path):
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in this checkout (scripts/setup-env makes it)")
    run = subprocess.run([str(bare_python), str(REPO / tool), "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "usage:" in run.stdout
    [note] = run.stderr.splitlines()
    assert note.startswith(f"note: {bare_python} lacks numpy") and note.endswith(".venv/bin/python"), note


def test_without_a_venv_a_missing_requirement_is_a_one_line_error(bare_python, tmp_path):
    code = f"from pathlib import Path; from ann_bench.bootstrap import ensure_requirements; " \
           f"ensure_requirements(Path({str(tmp_path / 'no-venv')!r}))"
    run = subprocess.run([str(bare_python), "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(REPO)})
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert line.startswith("error:") and "scripts/setup-env" in line and "numpy" in line


def test_the_projects_own_python_runs_the_tool_itself():
    run = subprocess.run([sys.executable, "-c", "from ann_bench.bootstrap import ensure_requirements; "
                          "ensure_requirements(); print('ran')"], cwd=REPO, capture_output=True, text=True)
    assert run.stdout.strip() == "ran" and run.stderr == ""

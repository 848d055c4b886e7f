"""The README's "Adding a library", followed to the letter in a copy of the project.

The files come from the section's code blocks (a block that starts with `# <path>` is that file;
`# algorithms.yaml` is added to it), and its commands are run as written, in order, from the
copy: build the image with install.py, run the quick grid in Docker with run.py, then the
conformance suite locally and in Docker. When the README and the code disagree, this fails.

Two stand-ins, both because the test must not change the real .venv: `.venv/bin/python` is this
interpreter (the .venv's, under scripts/test), and `scripts/setup-env`, which would install the
new library's pins into .venv, installs them into a folder under tmp_path that the commands after
it get on PYTHONPATH. Before that, the local conformance suite with CI=true must fail loudly:
a new entry whose library is not installed is a failure in CI, not a silent skip.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ann_bench.datasets import load_dataset
from ann_bench.paths import REPO
from ann_bench.report import metrics
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.executors.docker import images

SECTION = "## Adding a library"
TIMEOUT = 1200  # seconds for one command (a first build of the image downloads its wheel)


def section(readme: str) -> str:
    start = readme.index(SECTION + "\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end >= 0 else None]


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)]


def files_and_commands(text: str) -> tuple[dict[str, str], list[str]]:
    """The files the section writes (path -> text) and the commands it runs, in order."""
    files: dict[str, str] = {}
    commands: list[str] = []
    for language, body in code_blocks(text):
        first = body.splitlines()[0]
        if language == "sh":
            commands += [line for line in body.splitlines() if line.strip()]
        elif first.startswith("# "):
            path = first[2:].split(",")[0].strip()
            files[path] = files.get(path, "") + body
    return files, commands


def test_the_readme_names_a_library_folder_and_an_entry_and_nothing_else():
    files, commands = files_and_commands(section((REPO / "README.md").read_text()))
    folder = {Path(path).parent for path in files if path != "algorithms.yaml"}
    assert len(folder) == 1, files
    [library] = folder
    assert library.parent == Path("ann_bench/algorithms")
    assert set(files) == {"algorithms.yaml", f"{library}/module.py", f"{library}/requirements.txt"}
    assert any(c.startswith(".venv/bin/python install.py") for c in commands), commands


def run(command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """One README command as written: VAR=value prefixes, `.venv/bin/python` as this interpreter."""
    words = shlex.split(command)
    extra = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        extra[key] = value
    if words[0] == ".venv/bin/python":
        words[0] = sys.executable
    return subprocess.run(words, cwd=cwd, env=dict(env, **extra), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def engine():
    try:
        return images.docker_client()
    except images.DockerUnavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI without a Docker engine: the tutorial must run ({e})")
        pytest.skip(f"the tutorial needs a Docker engine ({e})")


def test_adding_a_library_as_the_readme_says(engine, project_copy, tmp_path, xs_euclidean, xs_angular):
    files, commands = files_and_commands(section((project_copy / "README.md").read_text()))
    for path, text in files.items():
        target = project_copy / path
        if path == "algorithms.yaml":
            target.write_text(target.read_text().rstrip("\n") + "\n\n" + text)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    [requirements] = [project_copy / p for p in files if p.endswith("requirements.txt")]
    library = requirements.parent.name
    # The copy's data directory holds the datasets the commands use (no need to build them again).
    (project_copy / "data").mkdir()
    for dataset in (xs_euclidean, xs_angular):
        (project_copy / "data" / dataset.name).symlink_to(dataset)

    env = {key: value for key, value in os.environ.items() if key not in ("CI", "DOCKER_CONFORMANCE")}
    site = tmp_path / "site"
    for command in commands:
        if command == "scripts/setup-env":
            local = [c for c in commands if "tests/test_conformance.py" in c]
            failed = run(local[0], project_copy, dict(env, CI="true"))
            assert failed.returncode != 0 and f"library '{library}' is not installed" in failed.stdout, \
                failed.stdout[-3000:]
            install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                                      str(site), "-r", str(requirements)], capture_output=True, text=True,
                                     timeout=TIMEOUT)
            assert install.returncode == 0, install.stdout + install.stderr
            env["PYTHONPATH"] = str(site)
            continue
        done = run(command, project_copy, env)
        assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        if "pytest" in command:
            assert re.search(r"\b[1-9]\d* passed\b", done.stdout) and "skipped" not in done.stdout, done.stdout

    package, version = requirements.read_text().splitlines()[-1].split("==")
    results = list(iter_result_paths(project_copy / "results", "random-xs-20-euclidean", 10))
    assert results, "run.py wrote no result"
    truth = load_dataset(xs_euclidean).distances
    for path in results:
        result = read_result(path)
        assert result.ok and result.attrs["algo"] == library, (path, result.attrs.get("error"))
        environment = json.loads(result.attrs["environment"])
        assert environment["image"] == images.image_tag(library), environment
        assert (environment["library"], environment["library_version"]) == (package, version), environment
        assert metrics.knn_recall(truth, result, 10) == 1.0  # the entry is exact

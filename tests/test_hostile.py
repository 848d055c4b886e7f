"""Wrappers that cheat or try to break out (ann_bench/algorithms/hostile/, entries in
tests/hostile-algorithms.yaml), run as a user runs them: through run.py, in Docker (the image
ann-bench-hostile) and, where the harness promises something without Docker, in --local.

Each test fails on a harness that trusts its workers (files the worker wrote taken as results,
the whole dataset and results tree mounted, root in the container, the engine's log) and passes
on this one.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ann_bench import cli, datasets
from ann_bench.datasets.distance import distances_to
from ann_bench.paths import REPO
from ann_bench.report import metrics
from ann_bench.results.files import iter_result_paths, params_name, read_result
from ann_bench.run.executors.logs import HEAD_BYTES, TAIL_BYTES

from .test_docker import built, engine  # noqa: F401 (fixtures: TEST_IMAGES has hostile's)
from .waiting import processes_with, wait_for

HOSTILE = REPO / "tests" / "hostile-algorithms.yaml"
DATASET = "random-xs-20-angular"
MODES = ["docker", "local"]


@pytest.fixture
def mode(request):
    """Docker (with its images built) or --local, as the test is parametrized."""
    if request.param == "docker":
        request.getfixturevalue("built")
    return request.param


def sweep(results: Path, data_dir: Path, mode: str, *algorithms: str, extra: tuple = ()) -> int:
    argv = ["--dataset", DATASET, "--definitions", str(HOSTILE), "--runs", "1", "--results", str(results),
            "--data-dir", str(data_dir), "--no-progress", "--timeout", "300", *extra]
    argv += ["--local"] if mode == "local" else []
    for name in algorithms:
        argv += ["--algorithm", name]
    return cli.main(argv)


def the_result(results: Path, algorithm: str):
    [path] = [p for p in iter_result_paths(results) if p.parent.name == algorithm]
    return read_result(path)


def recall(results: Path, xs_angular: Path, algorithm: str) -> float:
    result = the_result(results, algorithm)
    assert result.ok, result.attrs.get("error")
    return metrics.knn_recall(datasets.load_dataset(xs_angular).distances, result, 10)


def snapshot(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in results.rglob("*") if p.is_file()}



# -- the answers and the distances ------------------------------------------------------------

def test_a_wrapper_cannot_read_the_ground_truth(built, tmp_path, data_dir, xs_angular):
    results = tmp_path / "results"
    assert sweep(results, data_dir, "docker", "hostile-answers") == 0
    assert json.loads(the_result(results, "hostile-answers").attrs["tried"]) == {"ground truth": "not found"}
    assert recall(results, xs_angular, "hostile-answers") < 0.5


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_distances_are_computed_by_the_host_from_its_own_copy(mode, tmp_path, data_dir, xs_angular):
    """A wrapper that overwrites the train rows it was given with the queries and answers with
    them gets the distances of the real rows, not zeros."""
    results = tmp_path / "results"
    assert sweep(results, data_dir, mode, "hostile-distances") == 0
    result = the_result(results, "hostile-distances")
    data = datasets.load_dataset(xs_angular)
    ids = result.neighbors.astype(np.int64)
    np.testing.assert_array_equal(result.distances, distances_to("angular", data.test, data.train, ids))
    assert recall(results, xs_angular, "hostile-distances") < 0.5


# -- other results --------------------------------------------------------------------------

def test_a_wrapper_cannot_rewrite_or_plant_results_nor_the_metrics_cache(built, tmp_path, data_dir, xs_angular):
    results = tmp_path / "results"
    assert sweep(results, data_dir, "docker", "bruteforce") == 0
    before = snapshot(results)
    assert sweep(results, data_dir, "docker", "hostile-forger") == 0
    after = snapshot(results)
    assert {name: after[name] for name in before} == before  # bruteforce's result and log untouched
    new = sorted(set(after) - set(before))
    assert [name.split("/")[2] for name in new] == ["hostile-forger", "hostile-forger"], new  # its result, its log
    assert not (results / ".cache").exists()
    # Nothing was planted for the entry that has not run: it runs now.
    assert sweep(results, data_dir, "docker", "hostile-victim") == 0
    assert recall(results, xs_angular, "hostile-victim") == 1.0


def test_a_wrapper_cannot_read_other_results(built, tmp_path, data_dir, xs_angular):
    results = tmp_path / "results"
    assert sweep(results, data_dir, "docker", "bruteforce") == 0
    assert sweep(results, data_dir, "docker", "hostile-copycat") == 0
    assert "copied" not in json.loads(the_result(results, "hostile-copycat").attrs["tried"])
    assert recall(results, xs_angular, "hostile-copycat") < 0.5


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_a_result_rewritten_to_pass_for_another_library_is_rejected(mode, tmp_path, data_dir, capsys):
    results = tmp_path / "results"
    assert sweep(results, data_dir, mode, "hostile-tamper") == 1
    result = the_result(results, "hostile-tamper")
    assert not result.ok and result.attrs["algo"] == "hostile-tamper"
    assert result.attrs["error"].startswith("result rejected: attribute algo is 'bruteforce'")
    assert "result rejected" in capsys.readouterr().out


# -- the host --------------------------------------------------------------------------------

def test_a_wrapper_cannot_escape_its_container(built, tmp_path, data_dir):
    """Setuid shell, device node, a file outside its output, its log replaced by a link to a
    file beside the results tree: none of it reaches the host, on the run or on a retry."""
    results = tmp_path / "results"
    victim = tmp_path / "victim.txt"
    for extra in ((), ("--retry-failed",)):
        assert sweep(results, data_dir, "docker", "hostile-escaper", extra=extra) == 1
        for path in results.rglob("*"):
            mode = path.lstat().st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), f"{path} is not a plain file"
            assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{path} is setuid"
            assert path.is_dir() or path.suffix in (".hdf5", ".log"), f"{path} was planted"
        result = the_result(results, "hostile-escaper")
        tried = json.loads(result.attrs["error"].split("escaper: ", 1)[1])
        assert tried["device"].startswith("PermissionError")
        assert not victim.exists()


def test_a_log_link_planted_earlier_is_replaced_not_followed(tmp_path, data_dir, xs_angular):
    """As an earlier harness let a wrapper leave it: the log is a link to a file of the user's."""
    results = tmp_path / "results"
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    log = results / DATASET / "10" / "hostile-chatty" / "logs" / (params_name({"megabytes": 16}, None) + ".log")
    log.parent.mkdir(parents=True)
    log.symlink_to(victim)
    assert sweep(results, data_dir, "local", "hostile-chatty") == 1
    assert victim.read_text() == "the user's file\n"
    assert log.is_file() and not log.is_symlink() and "last words" in log.read_text()[-1000:]


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_logs_are_complete_capped_and_fresh_per_attempt(mode, tmp_path, data_dir, capsys):
    """16 MiB of numbered lines: the log keeps the first and the last ones, each once, in order,
    says how much it cut between them, ends with the worker's last words, and a retry starts
    it anew."""
    results = tmp_path / "results"
    lines = (16 << 20) // 100
    for extra in ((), ("--retry-failed",)):
        assert sweep(results, data_dir, mode, "hostile-chatty", extra=extra) == 1
        [log] = (results / DATASET / "10" / "hostile-chatty" / "logs").iterdir()
        text = log.read_bytes()
        assert len(text) <= HEAD_BYTES + TAIL_BYTES + 100_000
        head, cut, tail = text.partition(b"bytes of output cut here\n")
        assert cut, "the log should say what it cut"
        numbers = [int(line.split()[1]) for line in (head + tail).decode().splitlines()
                   if line.startswith("line ") and len(line) == 99]
        assert numbers[0] == 0 and numbers[-1] == lines - 1
        gaps = [b - a for a, b in zip(numbers, numbers[1:])]
        assert sum(1 for g in gaps if g != 1) == 1 and min(gaps) > 0  # in order, each once, one cut
        assert text.rstrip().endswith(f"RuntimeError: last words after {lines} lines".encode())
        assert f"last words after {lines} lines" in capsys.readouterr().out  # the summary's last lines


# -- nothing outlives the sweep --------------------------------------------------------------

@pytest.mark.parametrize("algorithm, tag", [("hostile-forker", "forker-tag"), ("hostile-detacher", "detacher-tag")])
def test_a_local_worker_leaves_no_process_behind_even_when_it_succeeds(tmp_path, data_dir, xs_angular, algorithm, tag):
    """Neither a child in the worker's group nor one that left it for a session of its own."""
    results = tmp_path / "results"
    try:
        assert sweep(results, data_dir, "local", algorithm) == 0
        assert processes_with(tag, str(data_dir)) == []
    finally:
        for pid in processes_with(tag, str(data_dir)):
            os.kill(pid, signal.SIGKILL)


def start_run_py(results: Path, data_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "run.py"), "--dataset", DATASET, "--definitions", str(HOSTILE), "--runs", "1",
         "--results", str(results), "--data-dir", str(data_dir), "--no-progress", "--timeout", "600", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_run_py_killed_leaves_no_local_worker_and_the_next_sweep_removes_its_children(tmp_path, data_dir, xs_angular):
    results = tmp_path / "results"
    assert sweep(results, data_dir, "local", "bruteforce") == 0  # so that the last sweep has nothing to run
    proc = start_run_py(results, data_dir, "--local", "--algorithm", "hostile-hang")

    def hanging() -> list[int]:
        return processes_with("hang-tag", str(data_dir))

    try:
        # The worker and the child it forked both carry the tag on their command line.
        workers = wait_for(lambda: hanging() if len(hanging()) >= 2 else [])
        assert len(workers) >= 2
        with open(f"/proc/{workers[0]}/cmdline", "rb") as f:
            argv = f.read().decode().split("\0")
        output = Path(json.loads(argv[argv.index("--job") + 1])["results_dir"])
        proc.kill()
        proc.wait(30)
        # The worker dies with run.py; what it forked, and its output directory, are left for
        # the next sweep of the tree to remove, even one with nothing to run.
        assert wait_for(lambda: len(hanging()) <= 1)
        assert output.is_dir()
        assert sweep(results, data_dir, "local", "bruteforce") == 0
        assert wait_for(lambda: hanging() == [])
        assert not output.exists()
    finally:
        for pid in hanging():
            os.kill(pid, signal.SIGKILL)


def test_run_py_killed_leaves_a_container_that_the_next_sweep_removes(built, engine, tmp_path, data_dir, xs_angular):
    results = tmp_path / "results"
    label = {"label": f"ann-bench.results={results.resolve()}"}
    proc = start_run_py(results, data_dir, "--algorithm", "hostile-hang")
    try:
        [container] = wait_for(lambda: engine.containers.list(filters=label))
        # The host's ends of its output and its output pipe.
        left = [Path(m["Source"]) for m in container.attrs["Mounts"] if m["Destination"] in ("/output", "/output.log")]
        proc.kill()
        proc.wait(30)
        container.reload()
        # It runs on, but not for ever: under a time limit of its own.
        command = container.attrs["Config"]["Cmd"]
        assert container.status == "running" and command[command.index("timeout"):][:3] == ["timeout", "-s", "KILL"]
        assert len(left) == 2 and all(path.exists() for path in left)
        assert sweep(results, data_dir, "docker", "bruteforce") == 0
        assert engine.containers.list(all=True, filters=label) == []
        assert [path for path in left if path.exists()] == []
    finally:
        for leftover in engine.containers.list(all=True, filters=label):
            leftover.remove(force=True)

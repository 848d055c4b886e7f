"""Hostile input to run.py, run as a real process: a YAML alias bomb, a grid of 10^7 points, names
too long for the file system, a results directory that is read-only, full or a file, damaged
datasets. Each must end early with one line saying what is wrong and exit status 2, never a
traceback or minutes of planning; a sweep cut short by its disk still prints its summary and
leaves no temporary file behind."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from ann_bench.atomic import temporary_name, write_atomically
from ann_bench.datasets import write_dataset
from ann_bench.paths import REPO
from ann_bench.results.files import RunResult, iter_result_paths, read_result, write_result

# Far above the second these take on this branch, far below the minutes main spent planning.
LIMIT_SECONDS = 120

SCRIPTED = """\
algorithms:
  scripted:
    library: faults
    constructor: Scripted
    base_args: ["@metric"]
    run_groups:
      g:
        args: {{rule: [{rules}]}}
        query_args: {{mode: [{modes}]}}
"""


def run_py(*args: str | Path, data_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "run.py"), "--local", "--runs", "1", "--no-progress",
               "--data-dir", str(data_dir), *map(str, args)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=LIMIT_SECONDS)


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """The one error line of a run that exited with status 2; it holds every word."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, (result.returncode, result.stderr)
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def hidden_files(root: Path) -> list[Path]:
    """Temporary files (".<name>.<host>.<pid>.<token>.tmp") and the lock, anywhere under root."""
    return [p for p in root.rglob(".*") if p.is_file()]


def scripted(tmp_path: Path, rules: str = "good", modes: str = "good") -> Path:
    path = tmp_path / "algorithms.yaml"
    path.write_text(SCRIPTED.format(rules=rules, modes=modes))
    return path


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, read_only) -> a fresh tmpfs under tmp_path, unmounted after the test."""
    mounted = []

    def mount(size: str, read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs (a disk that fills up, or a read-only one) needs root")
        target = tmp_path / f"tmpfs{len(mounted)}"
        target.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=True)


# --- algorithms.yaml ------------------------------------------------------------------------------

BOMB = """\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
algorithms:
  bruteforce:
    constructor: BruteForce
    base_args: ["@metric"]
    run_groups:
      g:
        args: {x: *i}
        query_args: []
"""


def test_a_yaml_alias_bomb_is_refused_naming_the_file(tmp_path, data_dir, xs_angular):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    assert bomb.stat().st_size < 700  # 10^9 values once expanded
    refused(run_py("--dry-run", "--definitions", bomb, data_dir=data_dir), str(bomb), "aliases expand")


def test_an_alias_inside_its_own_value_is_refused(tmp_path, data_dir, xs_angular):
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text("algorithms:\n  bruteforce: &a\n    constructor: BruteForce\n"
                     "    run_groups: {g: {args: {x: [*a]}}}\n")
    refused(run_py("--dry-run", "--definitions", cycle, data_dir=data_dir), str(cycle), "cycle")


def test_yaml_nested_thousands_deep_is_refused(tmp_path, data_dir, xs_angular):
    deep = tmp_path / "deep.yaml"
    deep.write_text("algorithms: " + "[" * 100_000 + "]" * 100_000 + "\n")
    refused(run_py("--dry-run", "--definitions", deep, data_dir=data_dir), str(deep), "nested")


def test_a_grid_of_ten_million_points_is_refused_with_its_size(tmp_path, data_dir, xs_angular):
    grid = ", ".join(f"{key}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" for key in "abcdefg")
    definitions = tmp_path / "grid.yaml"
    definitions.write_text(textwrap.dedent(f"""\
        algorithms:
          bruteforce:
            constructor: BruteForce
            base_args: ["@metric"]
            run_groups:
              g:
                args: {{{grid}}}
                query_args: []
        """))
    refused(run_py("--dry-run", "--definitions", definitions, data_dir=data_dir), "10,000,000 runs",
            "--max-runs")


def test_max_runs_moves_the_limit(tmp_path, data_dir, xs_angular):
    definitions = scripted(tmp_path, "good, other, third", "m1, m2, m3, m4")  # 12 runs
    refused(run_py("--dry-run", "--definitions", definitions, "--max-runs", "11", data_dir=data_dir),
            "12 runs", "limit of 11")
    result = run_py("--dry-run", "--definitions", definitions, "--max-runs", "12", data_dir=data_dir)
    assert result.returncode == 0, result.stderr


# --- names too long ---------------------------------------------------------------------------

@pytest.mark.parametrize("length, batch", [(300, False), (250, True)])
def test_an_algorithm_name_too_long_for_a_file_name_is_refused(tmp_path, data_dir, xs_angular, length, batch):
    definitions = tmp_path / "long.yaml"
    definitions.write_text(SCRIPTED.format(rules="good", modes="good").replace("scripted:", "a" * length + ":"))
    extra = ["--batch"] if batch else []
    (tmp_path / "results" / "random-xs-20-angular" / "10").mkdir(parents=True)  # as an earlier sweep left it
    for dry in (["--dry-run"], []):
        result = run_py(*dry, *extra, "--definitions", definitions, "--results", tmp_path / "results",
                        data_dir=data_dir)
        refused(result, "algorithm name", f"{length + 6 * batch} bytes")
    assert hidden_files(tmp_path / "results") == []


def test_a_results_path_too_long_is_refused(tmp_path, data_dir, xs_angular):
    # 4,040 bytes: the directory can be made, a result file under it cannot (a path has at most 4,095).
    missing = 4040 - len(str(tmp_path))
    results = tmp_path.joinpath(*["d" * 200] * (missing // 201), "e" * (missing % 201 - 1))
    results.mkdir(parents=True)
    assert len(str(results)) == 4040
    refused(run_py("--definitions", scripted(tmp_path), "--results", results, data_dir=data_dir),
            "too long")


def test_a_dataset_name_of_242_bytes_is_checked_and_its_check_recorded(tmp_path):
    # Beside the dataset go NAME.hdf5.sha256 and NAME.hdf5.checked (255 bytes), each written under a
    # temporary name first.
    name = "v" * 242
    rng = np.random.default_rng(0)
    path = write_dataset(tmp_path / f"{name}.hdf5", rng.standard_normal((300, 4)), rng.standard_normal((10, 4)),
                         "euclidean", count=10, progress=False)
    result = run_py("--dry-run", "--dataset", path, "--definitions", scripted(tmp_path), "--results",
                    tmp_path / "results", data_dir=tmp_path)
    assert result.returncode == 0 and "cannot record" not in result.stderr, result.stderr
    assert path.with_name(path.name + ".checked").is_file()


def test_a_temporary_name_is_never_too_long_and_never_repeats(tmp_path):
    target = tmp_path / ("r" * 250)
    names = {temporary_name(target).name for _ in range(2)}
    assert len(names) == 2 and all(len(os.fsencode(n)) <= 255 for n in names)
    assert all(os.uname().nodename in n for n in names)  # per host (a container's is its own)
    write_atomically(target, "whole")
    assert target.read_text() == "whole" and hidden_files(tmp_path) == []


# --- the results directory --------------------------------------------------------------------

def test_a_read_only_results_directory_is_refused(tmp_path, data_dir, xs_angular, tmpfs):
    results = tmpfs("1m", read_only=True)
    refused(run_py("--definitions", scripted(tmp_path), "--results", results, data_dir=data_dir),
            "cannot write", str(results), "Read-only")


def test_a_results_directory_without_write_permission_is_refused(tmp_path, data_dir, xs_angular):
    if os.geteuid() == 0:
        pytest.skip("root writes through permissions; the read-only tmpfs test covers root")
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(stat.S_IRUSR | stat.S_IXUSR)
    refused(run_py("--definitions", scripted(tmp_path), "--results", results, data_dir=data_dir),
            "cannot write", str(results))


@pytest.mark.parametrize("under", ["", "sub"])
def test_a_results_directory_that_is_a_file_is_refused(tmp_path, data_dir, xs_angular, under):
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    results = afile / under if under else afile
    refused(run_py("--definitions", scripted(tmp_path), "--results", results, data_dir=data_dir),
            "is a file, not a directory")
    assert afile.read_text() == "not a directory"


def test_a_full_results_disk_stops_with_the_summary_and_no_temporary_file(tmp_path, data_dir, xs_angular, tmpfs):
    results = tmpfs("1m")
    modes = ", ".join(f"m{i:02d}" for i in range(20))
    # 60 results of about 85 kB each: the disk fills in the first definition or the second.
    result = run_py("--definitions", scripted(tmp_path, "good, other, third", modes), "--results", results,
                    data_dir=data_dir)
    refused(result, "results disk is full", "No space left on device")
    ok = [p for p in iter_result_paths(results) if read_result(p, arrays=False).ok]
    assert ok, "the first results fit"
    lines = result.stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.split()[:2] == ["algorithm", "ran"]]
    assert header, result.stdout  # the summary
    row = lines[header[0] + 1].split()
    assert row[0] == "scripted" and int(row[1]) == len(ok), result.stdout  # every result that finished
    assert hidden_files(results) == []  # no temporary file, no lock


def test_a_write_that_fills_the_disk_leaves_no_temporary_file(tmpfs):
    disk = tmpfs("1m")
    with pytest.raises(OSError) as info:
        write_atomically(disk / "big", bytes(2 << 20))
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        write_result(disk / "result.hdf5", RunResult(attrs={"status": "ok"}, neighbors=np.zeros((100_000, 10))))
    assert list(disk.iterdir()) == []


# --- datasets ---------------------------------------------------------------------------------

def poison_row(key: str, row: int, column: int):
    def poison(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            values = f[key][row]
            values[column] = np.nan
            f[key][row] = values
    return poison


def garbage_over_train(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        offset = f["train"].id.get_offset()
        del f.attrs["build_sha256"]  # as a file from ann-benchmarks, which carries none
    with open(path, "r+b") as out:
        out.seek(offset + 4096)
        out.write(np.random.default_rng(8).bytes(8192))


def zeros_over_train(path: Path) -> None:
    """Finite garbage: only the vectors, recomputed, show it."""
    with h5py.File(path, "r+") as f:
        offset = f["train"].id.get_offset()
        del f.attrs["build_sha256"]
    with open(path, "r+b") as out:
        out.seek(offset + 4096)
        out.write(bytes(8192))


def swapped_ground_truth(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        for key in ("neighbors", "distances"):
            rows = f[key][5:7]
            f[key][5:7] = rows[::-1]
        del f.attrs["build_sha256"]


@pytest.mark.parametrize("poison, words", [
    (poison_row("train", 123, 2), ["train row 123", "NaN"]),
    (poison_row("test", 7, 0), ["test row 7", "NaN"]),
    (poison_row("distances", 9, 4), ["query 9, neighbour 4", "not a finite number"]),
    (garbage_over_train, ["train row", "NaN"]),
    (zeros_over_train, ["query", "the vectors give"]),
    (swapped_ground_truth, ["query 5", "the vectors give"]),
], ids=["nan-train", "nan-test", "nan-distances", "garbage-train", "zeros-train", "swapped-truth"])
def test_a_damaged_dataset_is_refused_with_its_row(tmp_path, poison, words):
    rng = np.random.default_rng(0)
    path = write_dataset(tmp_path / "damaged.hdf5", rng.standard_normal((4000, 16)).astype(np.float32),
                         rng.standard_normal((50, 16)).astype(np.float32), "euclidean", count=10, progress=False)
    poison(path)
    refused(run_py("--dry-run", "--dataset", path, "--results", tmp_path / "results", data_dir=tmp_path),
            str(path), *words)

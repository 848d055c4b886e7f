"""The sweep through run.py's main() with the local executor: resume, failures, skipping."""

import os
import signal
import subprocess
import sys
import time

from ann_bench import cli
from ann_bench.results import iter_result_paths, read_result

from .conftest import ROOT

DEFINITIONS = """
algorithms:
  scripted:
    module: tests.misbehaving
    constructor: Scripted
    metrics: [angular, euclidean]
    base_args: ["@metric"]
    run_groups:
      g:
        args: {{rule: [{rule}]}}
        query_args: {{mode: [good, bad]}}
"""


def run(tmp_path, data_dir, rule="duplicates", *extra):
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(DEFINITIONS.format(rule=rule))
    argv = ["--local", "--dataset", "random-xs-20-angular", "--definitions", str(definitions), "--runs", "1",
            "--results", str(tmp_path / "results"), "--data-dir", str(data_dir), "--no-progress", *extra]
    return cli.main(argv)


def statuses(tmp_path):
    return sorted(read_result(p, arrays=False).status for p in iter_result_paths(tmp_path / "results"))


def test_failure_recorded_then_skipped_then_retried(tmp_path, data_dir, xs_angular, capsys):
    assert run(tmp_path, data_dir) == 1
    out = capsys.readouterr().out
    assert "FAILED scripted" in out and "duplicate ids" in out
    assert statuses(tmp_path) == ["failed", "ok"]
    mtimes = {p: p.stat().st_mtime_ns for p in iter_result_paths(tmp_path / "results")}

    assert run(tmp_path, data_dir) == 0  # nothing to do: the good one is done, the bad one not retried
    out = capsys.readouterr().out
    assert "failed in an earlier run and were not retried" in out
    assert mtimes == {p: p.stat().st_mtime_ns for p in iter_result_paths(tmp_path / "results")}

    assert run(tmp_path, data_dir, "duplicates", "--retry-failed") == 1
    changed = [p for p in mtimes if p.stat().st_mtime_ns != mtimes[p]]
    assert [read_result(p, arrays=False).status for p in changed] == ["failed"]


def test_crash_is_recorded_and_force_keeps_good_results(tmp_path, data_dir, xs_angular, capsys):
    assert run(tmp_path, data_dir, "good") == 0
    good = {p: p.stat().st_mtime_ns for p in iter_result_paths(tmp_path / "results")}
    assert statuses(tmp_path) == ["ok", "ok"]
    # Same parameters, but the worker is killed: --force must not replace the good results.
    assert run(tmp_path, data_dir, "good", "--force", "--timeout", "0.001") == 1
    assert "timed out after 0.001 s" in capsys.readouterr().out
    assert good == {p: p.stat().st_mtime_ns for p in iter_result_paths(tmp_path / "results")}
    assert statuses(tmp_path) == ["ok", "ok"]


def test_timeout_without_earlier_result_is_a_failed_result(tmp_path, data_dir, xs_angular, capsys):
    assert run(tmp_path, data_dir, "good", "--timeout", "0.001") == 1
    results = [read_result(p, arrays=False) for p in iter_result_paths(tmp_path / "results")]
    assert len(results) == 2 and all(r.attrs["error"] == "timed out after 0.001 s" for r in results)


def test_unknown_algorithm_and_dataset_are_one_line_errors(tmp_path, data_dir, xs_angular, capsys):
    assert cli.main(["--local", "--algorithm", "hnswlibb", "--data-dir", str(data_dir),
                     "--dataset", "random-xs-20-angular"]) == 2
    err = capsys.readouterr().err
    assert "unknown algorithm 'hnswlibb'" in err and "hnswlib" in err and err.count("\n") == 1
    assert cli.main(["--local", "--dataset", "glove-1000", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "glove-100-angular" in err and err.count("\n") == 1


def test_segfault_is_a_recorded_crash(tmp_path, data_dir, xs_angular, capsys):
    assert run(tmp_path, data_dir, "segfault") == 1
    results = {read_result(p, arrays=False).query_args["mode"]: read_result(p, arrays=False)
               for p in iter_result_paths(tmp_path / "results")}
    # The good set was written before the crash and survives it.
    assert results["good"].ok
    assert results["bad"].attrs["error"] == "crashed with SIGSEGV (exit code -11)"
    assert "crashed with SIGSEGV" in capsys.readouterr().out


def _processes_mentioning(text):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_killing_run_py_leaves_no_worker_and_keeps_finished_results(tmp_path, data_dir, xs_angular):
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(DEFINITIONS.format(rule="hang"))
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--local", "--dataset", "random-xs-20-angular", "--definitions",
         str(definitions), "--runs", "1", "--results", str(results), "--data-dir", str(data_dir), "--no-progress"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # The good query set is written, then the worker hangs on the bad one.
    while not list(iter_result_paths(results)) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [p for p in _processes_mentioning(str(results)) if p != proc.pid]
    assert workers, "the worker should be running"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    time.sleep(0.2)
    assert [p for p in _processes_mentioning(str(results)) if p != proc.pid] == []
    assert statuses(tmp_path) == ["ok"]


def test_dry_run_counts_what_is_done_and_estimates_from_earlier_results(tmp_path, data_dir, xs_angular, capsys):
    assert run(tmp_path, data_dir, "good", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "unknown (no earlier result)" in out and statuses(tmp_path) == []
    assert run(tmp_path, data_dir, "good", "--max-n-algorithms", "1") == 0
    capsys.readouterr()
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(DEFINITIONS.format(rule="good, other"))
    argv = ["--local", "--dataset", "random-xs-20-angular", "--definitions", str(definitions), "--runs", "1",
            "--results", str(tmp_path / "results"), "--data-dir", str(data_dir), "--dry-run"]
    assert cli.main(argv) == 0
    row = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("scripted")][0]
    assert row[1:5] == ["1", "2", "2", "0"] and row[6] == "s"  # 1 definition left, 2 results, 2 done
    assert statuses(tmp_path) == ["ok", "ok"]  # a dry run runs nothing

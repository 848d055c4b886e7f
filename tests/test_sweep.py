"""The sweep: through run.py's main() with the local executor (resume, failures, skipping, dry
runs), and its planning and running directly (estimates, executor errors, interrupts, cores)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ann_bench import cli
from ann_bench.algorithms.faults.module import Scripted
from ann_bench.errors import UserError
from ann_bench.paths import REPO as ROOT
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run import sweep
from ann_bench.run.definitions import Definition
from ann_bench.run.executors import Executor, LocalExecutor, Outcome
from ann_bench.run.jobs import Settings
from ann_bench.run.plan import cpu_slots, make_plan
from ann_bench.run.summary import summary
from ann_bench.run.sweep import run_plan

from .waiting import processes_with, wait_for

DEFINITIONS = """
algorithms:
  scripted:
    library: faults
    constructor: Scripted
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



def _worker_output(pid):
    """The private output directory of the worker with this pid (from its job)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")
    return Path(json.loads(argv[argv.index("--job") + 1])["results_dir"])


def test_killing_run_py_leaves_no_worker_and_keeps_finished_results(tmp_path, data_dir, xs_angular):
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(DEFINITIONS.format(rule="hang"))
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--local", "--dataset", "random-xs-20-angular", "--definitions",
         str(definitions), "--runs", "1", "--results", str(results), "--data-dir", str(data_dir), "--no-progress"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    inputs = str(data_dir / ".worker-inputs")  # in the worker's job, not in run.py's arguments
    workers = wait_for(lambda: processes_with(inputs))
    assert workers, "the worker should be running"
    messages = _worker_output(workers[0]) / "messages.jsonl"
    # The good query set is done (its message sent), then the worker hangs on the bad one.
    assert wait_for(lambda: messages.exists() and messages.read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    assert processes_with(inputs) == []
    assert statuses(tmp_path) == ["ok"]
    assert not messages.parent.exists()  # the private output is gone with it


def scripted(rule, modes=("good", "bad"), group="g"):
    return Definition(algorithm="scripted", run_group=group, module=Scripted.__module__, constructor="Scripted",
                      image="faults", base_args=("angular",), args={"rule": rule},
                      query_args=tuple({"mode": mode} for mode in modes))


def settings_for(tmp_path, dataset_path, dataset="random-xs-20-angular"):
    return Settings(dataset=dataset, dataset_path=dataset_path, results_dir=tmp_path / "results", count=10, runs=1)


class BrokenEngine(LocalExecutor):
    """An executor whose engine fails for one definition in a way it does not expect."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def execute(self, job, cpus, log_path, timeout, results_dir, grade):
        if job.definition.args["rule"] == "broken":
            raise self.error
        return super().execute(job, cpus, log_path, timeout, results_dir, grade)


def test_an_executor_that_raises_fails_its_task_and_the_sweep_goes_on(tmp_path, xs_angular):
    settings = settings_for(tmp_path, xs_angular)
    plan = make_plan([scripted("broken"), scripted("good")], settings)
    error = RuntimeError("500 Server Error:\n  engine said no")
    records = run_plan(plan, BrokenEngine(error), settings, "angular", progress=False)
    ran = [r for r in records if r.status == "ran"]
    failed = [r for r in records if r.status == "failed"]
    broken, good = plan.tasks
    assert sorted(r.path for r in ran) == sorted(good.paths)
    assert sorted(r.path for r in failed) == sorted(broken.paths)
    reason = "executor error: RuntimeError: 500 Server Error: engine said no"
    assert len(failed) == 2 and all(r.reason == reason for r in failed)
    assert all(read_result(r.path, arrays=False).attrs["error"] == reason for r in failed)
    assert "Traceback" in failed[0].log_path.read_text()
    table, any_failed = summary(records)
    assert any_failed and f"FAILED scripted {{'mode': 'good'}}: {reason}" in table


def test_an_executor_that_exits_still_stops_the_sweep(tmp_path, xs_angular):
    settings = settings_for(tmp_path, xs_angular)
    plan = make_plan([scripted("broken")], settings)
    with pytest.raises(SystemExit):
        run_plan(plan, BrokenEngine(SystemExit(3)), settings, "angular", progress=False)
    assert statuses(tmp_path) == []


class Blocking(Executor):
    """Runs until stop_all, as a worker that is still busy when Ctrl-C comes."""

    def __init__(self):
        self.stopped = threading.Event()

    def execute(self, job, cpus, log_path, timeout, results_dir, grade):
        self.stopped.wait(30)
        return Outcome("ok")

    def stop_all(self):
        self.stopped.set()


def test_ctrl_c_while_tasks_are_being_submitted_stops_the_started_ones(tmp_path, xs_angular, monkeypatch):
    class InterruptedPool(ThreadPoolExecutor):
        """Ctrl-C arrives as the second task is submitted."""

        submitted = 0

        def submit(self, *args):
            self.submitted += 1
            if self.submitted == 2:
                raise KeyboardInterrupt
            return super().submit(*args)

    monkeypatch.setattr(sweep, "ThreadPoolExecutor", InterruptedPool)
    settings = settings_for(tmp_path, xs_angular)
    executor = Blocking()
    with pytest.raises(KeyboardInterrupt):
        run_plan(make_plan([scripted("good"), scripted("other")], settings), executor, settings, "angular",
                 progress=False)
    assert executor.stopped.is_set()


def test_cpu_slots_are_disjoint_and_impossible_parallelism_is_a_one_line_error():
    cores = os.sched_getaffinity(0)
    for n in range(1, len(cores) + 1):
        single = cpu_slots(n, batch=False)
        assert len(single) == n and all(len(s) == 1 for s in single)
        assert len({c for s in single for c in s}) == n and {c for s in single for c in s} <= cores
        shares = cpu_slots(n, batch=True)
        used = [c for s in shares for c in s]
        assert len(shares) == n and all(shares) and len(used) == len(set(used)) and set(used) <= cores
    for impossible in (0, len(cores) + 1):
        with pytest.raises(UserError) as raised:
            cpu_slots(impossible, batch=False)
        assert "\n" not in str(raised.value) and f"--parallelism {impossible}" in str(raised.value)


def test_a_definition_named_twice_is_planned_once(tmp_path, xs_angular):
    settings = settings_for(tmp_path, xs_angular)
    overlapping = scripted("good", modes=("good", "other"), group="h")
    plan = make_plan([scripted("good"), scripted("good"), overlapping], settings)
    assert [t.pending for t in plan.tasks] == [[{"mode": "good"}, {"mode": "bad"}], [{"mode": "other"}]]
    paths = [p for t in plan.tasks for p in t.paths]
    assert len(paths) == len(set(paths)) == 3
    assert [p.to_run for p in plan.definitions] == [2, 1]


def test_output_that_is_not_a_terminal_gets_a_line_per_definition_and_no_bar(tmp_path, data_dir, xs_angular):
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(DEFINITIONS.format(rule="good"))
    run = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--local", "--dataset", "random-xs-20-angular", "--definitions",
         str(definitions), "--runs", "1", "--results", str(tmp_path / "results"), "--data-dir", str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert '[1/1] scripted {"rule":"good"}: 2 ran, 0 failed' in run.stdout
    assert "\r" not in run.stdout + run.stderr and "run/s" not in run.stderr


CONFINED = """
algorithms:
  probe:
    library: faults
    constructor: Probe
    base_args: ["@metric"]
    run_groups: {p: {args: {port: 0}, query_args: []}}
  hog:
    library: faults
    constructor: MemoryHog
    base_args: ["@metric"]
    run_groups: {h: {args: {where: fit, gib: 2, chunk_mib: 32}, query_args: []}}
"""


def test_local_workers_get_their_core_and_the_memory_limit(tmp_path, data_dir, xs_angular):
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(CONFINED)
    argv = ["--local", "--dataset", "random-xs-20-angular", "--definitions", str(definitions), "--runs", "1",
            "--results", str(tmp_path / "results"), "--data-dir", str(data_dir), "--no-progress", "--memory", "256m"]
    assert cli.main(argv) == 1
    results = {r.attrs["algo"]: r for r in map(read_result, iter_result_paths(tmp_path / "results"))}
    assert json.loads(results["probe"].attrs["probe"])["cpus"] == cpu_slots(1, batch=False)[0]
    assert not results["hog"].ok and "MemoryError" in results["hog"].attrs["error"]
    [log] = (tmp_path / "results" / "random-xs-20-angular" / "10" / "hog" / "logs").iterdir()
    allocated = [int(m) for m in re.findall(r"allocated (\d+) MiB", log.read_text())]
    assert allocated and max(allocated) < 256  # stopped by RLIMIT_DATA, not at the hog's own 2 GiB

"""Skipping past recall 1.0, end to end: real sweeps through run.py's main(), locally and in
Docker. The host grades an effort-ordered definition's sets as they finish (run/grading.py);
once one reaches recall 1.0 the costlier sets are skipped and recorded as skipped with why, a
resumed sweep keeps them skipped, --exhaustive runs them, a worker cannot have sets recorded as
skipped by writing the skip file itself, and an entry without effort runs every set."""

import json

from markupsafe import escape

from ann_bench import cli
from ann_bench.report.cache import results_table
from ann_bench.report.export import export_rows
from ann_bench.report.website import cli as website
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.grading import skip_reason
from tests import test_hostile

engine, built = test_hostile.engine, test_hostile.built  # the fixtures: a Docker engine, the bruteforce image

DATASET = "random-xs-20-angular"
# Exact answers whatever the effort: recall 1.0 at the least effort. Many cheap sets, so that the
# host's decision reaches the worker while sets remain (a race may let a few more run: real results).
EFFORTS = list(range(1, 41))
DEFINITIONS = f"""
algorithms:
  exact-effort:
    library: bruteforce
    constructor: BruteForce
    effort: effort
    base_args: ["@metric"]
    run_groups:
      g:
        args: []
        query_args: {{effort: {EFFORTS}}}
  exact-plain:
    library: bruteforce
    constructor: BruteForce
    base_args: ["@metric"]
    run_groups:
      g:
        args: []
        query_args: {{effort: [1, 2, 3, 4, 5]}}
  skip-forger:
    library: hostile
    constructor: SkipForger
    effort: effort
    base_args: ["@metric"]
    run_groups:
      g:
        args: []
        query_args: {{effort: [1, 2, 3, 4]}}
"""


def sweep(tmp_path, data_dir, algorithm, *extra):
    definitions = tmp_path / "algorithms.yaml"
    definitions.write_text(DEFINITIONS)
    return cli.main(["--dataset", DATASET, "--definitions", str(definitions), "--algorithm", algorithm,
                     "--runs", "1", "--results", str(tmp_path / "results"), "--data-dir", str(data_dir),
                     "--no-progress", "--timeout", "600", *extra])


def by_effort(tmp_path):
    """effort -> the result at that effort."""
    results = [read_result(p, arrays=False) for p in iter_result_paths(tmp_path / "results")]
    return {r.query_args["effort"]: r for r in results}


def assert_skipped_past_the_least_effort(tmp_path):
    results = by_effort(tmp_path)
    assert sorted(results) == EFFORTS
    statuses = [results[e].status for e in EFFORTS]
    ran = statuses.count("ok")
    assert statuses == ["ok"] * ran + ["skipped"] * (len(EFFORTS) - ran) and ran < len(EFFORTS), statuses
    assert {results[e].attrs["reason"] for e in EFFORTS[ran:]} == {skip_reason({"effort": 1})}
    return ran


def mtimes(tmp_path):
    return {p: p.stat().st_mtime_ns for p in iter_result_paths(tmp_path / "results")}


def test_sets_past_recall_1_are_skipped_kept_skipped_on_resume_and_run_with_exhaustive(tmp_path, data_dir,
                                                                                       xs_angular, capsys):
    assert sweep(tmp_path, data_dir, "exact-effort", "--local") == 0
    out = capsys.readouterr().out
    ran = assert_skipped_past_the_least_effort(tmp_path)
    assert "skipped-effort" in out and f"{len(EFFORTS) - ran} result(s) not run: a cheaper set" in out
    # Listed apart: not failures, not points, in the export with their reason.
    table = results_table(tmp_path / "results", DATASET, 10, data_dir=data_dir)
    assert len(table.rows) == ran and not table.failures and len(table.skipped) == len(EFFORTS) - ran
    exported = export_rows(tmp_path / "results", DATASET, 10, data_dir=data_dir)
    assert [r["status"] for r in exported].count("skipped") == len(EFFORTS) - ran
    assert all(r["reason"] == skip_reason({"effort": 1}) for r in exported if r["status"] == "skipped")
    assert website.main(["--results", str(tmp_path / "results"), "--data-dir", str(data_dir),
                         "--output", str(tmp_path / "site")]) == 0
    [page] = (tmp_path / "site" / "datasets").glob("*.html")
    text = page.read_text()
    assert f"{len(EFFORTS) - ran} skipped past recall 1.0" in text and "Skipped at recall 1.0" in text
    assert str(escape(skip_reason({"effort": 1}))) in text  # as the page escapes it

    before = mtimes(tmp_path)
    assert sweep(tmp_path, data_dir, "exact-effort", "--local", "--retry-failed") == 0
    out = capsys.readouterr().out
    assert "0 definition(s) to run" in out and f"{len(EFFORTS) - ran} result(s) not run" in out
    assert mtimes(tmp_path) == before

    assert sweep(tmp_path, data_dir, "exact-effort", "--local", "--exhaustive") == 0
    results = by_effort(tmp_path)
    assert [results[e].status for e in EFFORTS] == ["ok"] * len(EFFORTS)
    assert [p for p in before if mtimes(tmp_path)[p] != before[p]] == \
        [p for p in before if read_result(p, arrays=False).query_args["effort"] > ran]


def test_a_worker_that_writes_the_skip_file_itself_gets_failures_not_skips(tmp_path, data_dir, xs_angular, capsys):
    assert sweep(tmp_path, data_dir, "skip-forger", "--local") == 1
    results = by_effort(tmp_path)
    assert json.loads(results[1].attrs["tried"]) == {"skip": "done"}  # the worker did skip the others
    assert [results[e].status for e in (1, 2, 3, 4)] == ["ok", "failed", "failed", "failed"]
    assert all(results[e].attrs["error"] == "the worker ended without writing this result" for e in (2, 3, 4))


def test_an_entry_without_effort_runs_every_set(tmp_path, data_dir, xs_angular, capsys):
    assert sweep(tmp_path, data_dir, "exact-plain", "--local") == 0
    assert [by_effort(tmp_path)[e].status for e in (1, 2, 3, 4, 5)] == ["ok"] * 5
    assert "result(s) not run" not in capsys.readouterr().out


def test_in_docker_the_host_grades_and_the_container_skips(built, tmp_path, data_dir, xs_angular):
    assert sweep(tmp_path, data_dir, "exact-effort") == 0
    assert_skipped_past_the_least_effort(tmp_path)

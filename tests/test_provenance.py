"""Results say where they ran: a sweep in local processes after one in Docker (or the reverse)
says that what it skips was made elsewhere and how to make its own, and the export tells the
two apart by an executor column."""

from __future__ import annotations

import re

import pytest

from ann_bench.report.export import export_rows
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.provenance import existing_text

from .test_docker import DATASET, built, definitions_file, engine, sweep  # noqa: F401  (built, engine: fixtures)
from .test_export import write


def mtimes(results):
    return {path: path.stat().st_mtime_ns for path in iter_result_paths(results)}


def announced(out: str) -> str:
    """The plan's line: "NAME: N definition(s) to run, M result(s) to make, ..."."""
    return next(line for line in out.splitlines() if line.startswith(f"{DATASET}: "))


@pytest.mark.usefixtures("built", "xs_angular")
def test_local_after_docker_says_where_the_results_were_made_and_runs_only_what_is_new(tmp_path, data_dir, capsys):
    definitions = definitions_file(tmp_path, "hnswlib", {"M": 8, "efConstruction": 50}, {"ef": [10]})
    results = tmp_path / "results"
    assert sweep(tmp_path, data_dir, results, definitions) == 0
    before = mtimes(results)
    capsys.readouterr()

    # The same grid in local processes: nothing to do, and it says why and what to do instead.
    assert sweep(tmp_path, data_dir, results, definitions, "--local") == 0
    assert announced(capsys.readouterr().out) == (
        f"{DATASET}: 0 definition(s) to run, 0 result(s) to make, 1 already there, made in Docker: --force to "
        "run them again here (in local processes), or --results DIR to keep both")
    assert mtimes(results) == before

    # A wider grid runs its new point locally; the tree now holds both, told apart in the export.
    wider = definitions_file(tmp_path, "hnswlib", {"M": 8, "efConstruction": 50}, {"ef": [10, 40]})
    assert sweep(tmp_path, data_dir, results, wider, "--local", "--dry-run") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "1 already there, made in Docker: --force to run them again here (in local processes), "
        "or --results DIR to keep both")
    assert sweep(tmp_path, data_dir, results, wider, "--local") == 0
    rows = export_rows(results, DATASET, 10, data_dir=data_dir)
    assert sorted((row["query_args"]["ef"], row["executor"]) for row in rows) == [(10, "docker"), (40, "local")]
    capsys.readouterr()

    # --force makes them all here.
    assert sweep(tmp_path, data_dir, results, wider, "--local", "--force") == 0
    assert re.search(r": 1 definition\(s\) to run, 2 result\(s\) to make, 0 already there$",
                     announced(capsys.readouterr().out))
    assert {read_result(p, arrays=False).environment["executor"] for p in iter_result_paths(results)} == {"local"}


@pytest.mark.usefixtures("built", "xs_angular")
def test_docker_after_local_says_so_too(tmp_path, data_dir, capsys):
    definitions = definitions_file(tmp_path, "bruteforce", [], [])
    results = tmp_path / "results"
    assert sweep(tmp_path, data_dir, results, definitions, "--local") == 0
    before = mtimes(results)
    capsys.readouterr()
    assert sweep(tmp_path, data_dir, results, definitions) == 0
    assert announced(capsys.readouterr().out).endswith(
        "1 already there, made in local processes: --force to run them again here (in Docker), "
        "or --results DIR to keep both")
    assert mtimes(results) == before
    # The same executor again: just the count.
    assert sweep(tmp_path, data_dir, results, definitions, "--local") == 0
    assert announced(capsys.readouterr().out).endswith(", 1 already there")


def test_a_tree_of_several_makers_is_counted_by_maker(tmp_path):
    results = tmp_path / "results"
    write(results, "annoy", [100], [[1.0, 2.0], [1.0, 2.0]], executor="docker")
    write(results, "annoy", [200], [[1.0, 2.0], [1.0, 2.0]], executor="docker")
    write(results, "annoy", [300], [[1.0, 2.0], [1.0, 2.0]], executor="local")
    write(results, "annoy", [400], [[1.0, 2.0], [1.0, 2.0]])
    paths = sorted(iter_result_paths(results))
    assert existing_text(paths, "local") == (
        "4 already there, made 1 by an older harness, 2 in Docker, 1 in local processes: --force to run them "
        "again here (in local processes), or --results DIR to keep both")
    assert existing_text(paths[:0], "docker") == "0 already there"

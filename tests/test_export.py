"""CSV and JSON export of every result of a dataset."""

import csv
import io
import json
import os

import numpy as np
import pytest

from ann_bench.atomic import write_atomically
from ann_bench.report import export
from ann_bench.report.export import COLUMNS, export_rows, render
from ann_bench.report.metrics import METRICS
from ann_bench.results.files import RunResult, result_path, write_result

TRUTH = np.array([[1.0, 2.0], [1.0, 2.0]])


def write(results_dir, algorithm, query_args, distances, batch=False, status="ok", executor=None):
    environment = {"library_version": "1.17.3", "cpu_model": "Test CPU @ 3GHz", "python": "3.12"}
    if executor is not None:
        environment["executor"] = executor
    attrs = {"name": f"{algorithm}({query_args})", "algo": algorithm, "dataset": "toy", "count": 2,
             "batch_mode": batch, "build_args": {"trees": 10, "metric": "euclidean"}, "query_args": query_args,
             "status": status, "best_search_time": 0.001, "build_time": 3.5, "index_size": 2048.0,
             "candidates": 2.0, "run_count": 1, "environment": environment}
    result = RunResult(attrs=attrs)
    if status == "ok":
        result.distances = np.asarray(distances, dtype=np.float64)
        result.neighbors = np.zeros((2, 2), dtype=np.int32)
        result.times = np.full(2, 0.001)
    write_result(result_path(results_dir, "toy", 2, algorithm, batch, attrs["build_args"], query_args), result)


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "results"
    write(d, "annoy", [100], [[1.0, 2.0], [1.0, 9.0]], executor="docker")
    write(d, "annoy", [200], [[1.0, 2.0], [1.0, 2.0]], executor="local")
    write(d, "annoy", [300], None, status="failed")
    write(d, "hnswlib", {"ef": 10}, [[1.0, 2.0], [1.0, 2.0]], batch=True)
    return d


def test_csv_has_one_row_per_result_and_the_expected_columns(results_dir):
    rows = export_rows(results_dir, "toy", 2, batch=False, true_distances=TRUTH)
    text = render(rows, ".csv")
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == COLUMNS
    assert COLUMNS[7:7 + len(METRICS)] == list(METRICS)
    assert len(records) == 2  # the failed run and the batch run are not in
    first = records[0]
    assert first["dataset"] == "toy" and first["k"] == "2" and first["algorithm"] == "annoy"
    assert first["batch"] == "False"
    assert json.loads(first["build_args"]) == {"trees": 10, "metric": "euclidean"}
    assert json.loads(first["query_args"]) == [100]
    assert float(first["k-nn"]) == 0.75 and float(records[1]["k-nn"]) == 1.0
    assert float(first["qps"]) == pytest.approx(1000.0)
    assert first["distcomps"] == ""  # nan: the wrapper reported none
    assert first["library_version"] == "1.17.3" and first["cpu_model"] == "Test CPU @ 3GHz"
    # Where each ran, so a tree with results from Docker and from local processes is told apart.
    assert [r["executor"] for r in records] == ["docker", "local"]


def test_all_modes_and_json(results_dir):
    rows = export_rows(results_dir, "toy", 2, batch=None, true_distances=TRUTH)
    assert [(r["algorithm"], r["batch"]) for r in rows] == [("annoy", False), ("annoy", False), ("hnswlib", True)]
    data = json.loads(render(rows, ".json"))  # standard JSON: would fail on NaN with allow_nan=False
    assert len(data) == 3 and list(data[0]) == COLUMNS
    assert data[2]["query_args"] == {"ef": 10} and data[2]["batch"] is True
    assert data[0]["distcomps"] is None
    assert data[2]["executor"] == ""  # a file that does not say where it ran


def test_atomic_write_and_bad_suffix(tmp_path, capsys):
    target = tmp_path / "out" / "table.csv"
    write_atomically(target, "a,b\n")
    assert target.read_text() == "a,b\n"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]
    code = export.main(["--dataset", "toy", "--output", str(tmp_path / "table.xlsx")])
    assert code == 2
    assert "csv" in capsys.readouterr().err
    assert not (tmp_path / "table.xlsx").exists()


def test_main_writes_the_file(xs_euclidean, data_dir, tmp_path, capsys):
    from ann_bench.datasets import load_dataset

    truth = load_dataset(xs_euclidean).distances
    results = tmp_path / "results"
    for batch in (False, True):
        attrs = {"name": "exact", "algo": "exact", "count": 10, "batch_mode": batch, "build_args": {"a": 1},
                 "query_args": [2], "status": "ok", "best_search_time": 0.001, "run_count": 1}
        result = RunResult(attrs=attrs, neighbors=np.zeros((len(truth), 10), dtype=np.int32),
                           distances=truth[:, :10], times=np.full(len(truth), 0.001))
        write_result(result_path(results, "random-xs-20-euclidean", 10, "exact", batch, {"a": 1}, [2]), result)
    out = tmp_path / "all.csv"
    args = ["--dataset", "random-xs-20-euclidean", "--results", str(results), "--data-dir", str(data_dir)]
    assert export.main(args + ["--all-modes", "--output", str(out)]) == 0
    records = list(csv.DictReader(out.open()))
    assert [(r["batch"], float(r["k-nn"])) for r in records] == [("False", 1.0), ("True", 1.0)]
    assert export.main(args + ["--output", str(tmp_path / "single.json")]) == 0
    assert len(json.loads((tmp_path / "single.json").read_text())) == 1
    assert export.main(["--dataset", "random-xs-20-angular", "--results", str(results),
                        "--output", str(tmp_path / "none.csv")]) == 2
    assert "python run.py --dataset random-xs-20-angular" in capsys.readouterr().err
    assert not (tmp_path / "none.csv").exists()

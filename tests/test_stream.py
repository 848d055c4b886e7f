"""Streaming updates: runbooks and their errors, the streaming sets' live ground truth, every
wrapper that declares supports_insert replaying both shipped runbooks (never answering a row
that is not live, brute force exact at every step), the host's check, and run.py with
--runbook, locally and in Docker (bruteforce, hnswlib and pgvector-hnsw), with plot.py's
figure per step."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ann_bench import datasets
from ann_bench.datasets import runbook
from ann_bench.datasets.distance import distances_to
from ann_bench.datasets.runbook import INSERT, SEARCH, live_sets
from ann_bench.datasets.streaming import has_deletes, stream_name, stream_set
from ann_bench.errors import UserError
from ann_bench.paths import REPO
from ann_bench.report.streaming import step_figures
from ann_bench.results.acceptance import UPDATE_TIMES, Rejected, check_live
from ann_bench.results.files import load_results
from ann_bench.run.definitions import definitions_for_entry, load_algorithms
from ann_bench.run.executors.docker import images
from ann_bench.run.runner import instantiate, validate_answers
from ann_bench.run.sealed import seal_points

K = 10
QUERIES = 100
ENTRIES = load_algorithms()
STREAMING = [name for name, entry in ENTRIES.items() if entry.declared.supports_insert]
IN_DOCKER = ["bruteforce", "hnswlib", "pgvector-hnsw"]
RUNBOOKS = runbook.shipped()
RECALL_APPROXIMATE = 0.8
# metric -> the small local set streamed for it
BASES = {"angular": "random-xs-20-angular", "euclidean": "random-xs-20-euclidean", "hamming": "random-hamming-bits"}


def test_the_shipped_runbooks_are_five_batches_and_a_sliding_window():
    assert RUNBOOKS == ["five-batches", "sliding-window"]
    five = runbook.resolve(runbook.load("five-batches"), 1000)
    assert [tuple(op) for op in five if op[0] == INSERT] == [(INSERT, 200 * i, 200 * (i + 1)) for i in range(5)]
    assert (five[:, 0] == SEARCH).sum() == 5
    window = runbook.resolve(runbook.load("sliding-window"), 1000)
    lives = live_sets(window, 1000)
    assert len(lives) == 10
    assert [int(live.sum()) for live in lives] == [100, 200] + [300] * 8
    assert np.flatnonzero(lives[-1]).tolist() == list(range(700, 1000))  # the oldest are gone


@pytest.mark.parametrize("text, message", [
    ("steps: [search]", "step 1: searches an empty index"),
    ("steps: [{insert: [0, 10]}, {insert: [5, 20]}, search]", "step 2: inserts row 5 a second time"),
    ("steps: [{insert: [0, 10]}, {delete: [5, 20]}, search]", "step 2: deletes row 10, which is not live"),
    ("steps: [{insert: [0, 10]}, {delete: [0, 5]}, {insert: [0, 2]}, search]", "step 3: inserts row 0 a second"),
    ("steps: [{insert: [0, 10]}, {upsert: [0, 5]}, search]", "step 2: unknown operation 'upsert'"),
    ("steps: [{insert: [0, 10%, 3]}, search]", "step 1: insert takes [lo, hi]"),
    ("steps: [{insert: [0, 120%]}, search]", "step 1: insert takes [lo, hi]"),
    ("steps: [{insert: [10, 2000]}, search]", "step 1: insert [10, 2000] is rows [10, 2000), not a non-empty"),
    ("steps: [{insert: [0, 10]}]", "no search step"),
    ("inserts: [0, 10]", "a mapping with one key, steps"),
    ("steps: [search", "not valid YAML"),
])
def test_a_bad_runbook_is_one_line_naming_the_file_and_the_step(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as raised:
        runbook.resolve(runbook.load(str(path)), 1000)
    assert str(path) in str(raised.value) and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_runbook_name_lists_the_shipped_ones():
    with pytest.raises(UserError, match="five-batches, sliding-window"):
        runbook.load("slidng-window")


@pytest.fixture(scope="module")
def stream_sets(data_dir) -> dict[tuple[str, str], Path]:
    """BASES (9,000 points, 1,000 queries each) through both runbooks."""
    bases = [datasets.get_dataset(name, data_dir, progress=False) for name in BASES.values()]
    return {(base.stem, name): stream_set(base, runbook.load(name), count=K) for base in bases for name in RUNBOOKS}


def test_ground_truth_is_the_exact_top_k_among_the_rows_live_at_each_step(stream_sets):
    path = stream_sets[("random-xs-20-angular", "sliding-window")]
    assert path.stem == stream_name("random-xs-20-angular", "sliding-window")
    datasets.check_dataset(path, progress=False)
    data = datasets.load_dataset(path)
    assert data.stream_ops is not None
    lives = live_sets(data.stream_ops, len(data.train))
    per_step = len(data.test) // len(lives)
    for step, live in enumerate(lives):
        rows = np.flatnonzero(live)
        for i in range(step * per_step, (step + 1) * per_step, 173):
            np.testing.assert_array_equal(data.test[i], data.test[i % per_step])
            d = distances_to(data.distance, data.test[i:i + 1], data.train, rows[None, :])[0]
            np.testing.assert_allclose(data.distances[i], np.sort(d)[:K], rtol=1e-5, atol=1e-6)
            assert live[data.neighbors[i]].all()


def test_a_changed_runbook_makes_the_set_anew(xs_angular, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("steps: [{insert: [0, 50%]}, search]")
    path = stream_set(xs_angular, runbook.load(str(mine)), count=K)
    mine.write_text("steps: [{insert: [0, 20%]}, search]")
    assert stream_set(xs_angular, runbook.load(str(mine)), count=K) == path
    with h5py.File(path) as f:
        assert f["stream_ops"][0].tolist() == [INSERT, 0, 1800]


def _set_query_arguments(algo, query_args) -> None:
    if isinstance(query_args, dict):
        algo.set_query_arguments(**query_args)
    else:
        algo.set_query_arguments(*query_args)


@pytest.mark.parametrize("name", STREAMING)
@pytest.mark.parametrize("metric", list(BASES))
def test_a_streaming_replay_never_answers_a_row_that_is_not_live(stream_sets, name, metric):
    """Every entry that declares supports_insert, at its most accurate quick point, through both
    runbooks: answers valid and live at their step; exact entries at recall 1.0 at every step,
    the others at least RECALL_APPROXIMATE."""
    entry = ENTRIES[name]
    if metric not in entry.metrics:
        pytest.skip(f"{name} does not declare {metric}")
    pytest.importorskip(entry.module)
    for book in RUNBOOKS:
        data = datasets.load_dataset(stream_sets[(BASES[metric], book)])
        ops = data.stream_ops
        assert ops is not None
        if has_deletes(ops) and not entry.declared.supports_delete:
            continue
        definition = definitions_for_entry(entry, data.distance, K, data.dimension, quick=True)[-1]
        train = seal_points(data.train)
        per_step = len(data.test) // int((ops[:, 0] == SEARCH).sum())
        algo = instantiate(definition)
        answers, truth = [], []
        try:
            for operation, lo, hi in ops:
                ids = np.arange(lo, hi, dtype=np.int64)
                if operation == INSERT:
                    algo.insert(train[lo:hi], ids)
                elif operation == SEARCH:
                    _set_query_arguments(algo, definition.query_args[-1])
                    first = len(truth) * per_step
                    answers.append(validate_answers([algo.query(q, K) for q in data.test[first:first + QUERIES]],
                                                    K, len(data.train), QUERIES))
                    truth.append(data.distances[first:first + QUERIES, :K])
                else:
                    algo.delete(ids)
        finally:
            algo.done()
        check_live(np.vstack(answers), ops, len(data.train))  # the host's check, on every step's answers
        for step, (ids, true) in enumerate(zip(answers, truth)):
            found = distances_to(data.distance, data.test[:QUERIES], data.train, ids)
            recall = float((found <= true[:, -1:] + 1e-3).sum() / found.size)
            floor = 1.0 if entry.exact else RECALL_APPROXIMATE
            assert recall >= floor, f"{name} {book} search step {step + 1}: recall {recall:.3f} < {floor}"


@pytest.mark.parametrize("name", STREAMING)
def test_a_small_insert_and_deletes_are_seen_after_new_query_arguments(data_dir, name):
    """Rows inserted in a batch smaller than the first are answered, and deleted rows never, after
    set_query_arguments: a wrapper that reloads its index then (chromadb) must find the changes
    that its engine has not yet written to the index's files."""
    entry = ENTRIES[name]
    pytest.importorskip(entry.module)
    metric = next(metric for metric in BASES if metric in entry.metrics)
    data = datasets.load_dataset(datasets.get_dataset(BASES[metric], data_dir, progress=False))
    definition = definitions_for_entry(entry, data.distance, K, data.dimension, quick=True)[-1]
    train = seal_points(data.train)
    small, deleted = np.arange(2000, 2010), np.r_[0:5, 2000:2005]
    algo = instantiate(definition)
    try:
        algo.insert(train[:2000], np.arange(2000))
        algo.insert(train[small], small)
        algo.delete(deleted)
        _set_query_arguments(algo, definition.query_args[-1])
        answers = [validate_answers([algo.query(q, K) for q in data.train[rows]], K, len(data.train), len(rows))
                   for rows in (small, deleted)]
    finally:
        algo.done()
    assert not np.isin(np.vstack(answers), deleted).any()
    nearest = distances_to(data.distance, data.train[small[5:]], data.train, answers[0][5:, :1])
    np.testing.assert_allclose(nearest, 0, atol=1e-4)  # each live small-batch row finds itself


def test_the_host_rejects_an_id_that_is_not_live(stream_sets):
    data = datasets.load_dataset(stream_sets[("random-xs-20-angular", "sliding-window")])
    assert data.stream_ops is not None
    ids = data.neighbors[:, :K].astype(np.int64)
    check_live(ids, data.stream_ops, len(data.train))
    per_step = len(data.test) // 10
    ids[5 * per_step + 3, 4] = 0  # row 0 was deleted at the fourth step
    with pytest.raises(Rejected, match="query 3 at search step 6 has id 0, which is not live"):
        check_live(ids, data.stream_ops, len(data.train))
    ids[5 * per_step + 3, 4] = len(data.train) - 1  # inserted at the last step only
    with pytest.raises(Rejected, match=f"has id {len(data.train) - 1}, which is not live"):
        check_live(ids, data.stream_ops, len(data.train))


def run_stream(base: Path, results: Path, algorithms: list[str], *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "run.py", "--dataset", base.stem, "--data-dir", str(base.parent), "--runbook",
               "sliding-window", "-k", str(K), "--quick", "--runs", "1", "--results", str(results), "--no-progress",
               *extra]
    for algorithm in algorithms:
        command += ["--algorithm", algorithm]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)


def check_sweep(path: Path, results: Path, algorithms: list[str]) -> None:
    """Every result: answers live at their step, a time per runbook step, and brute force exact
    at every step."""
    data = datasets.load_dataset(path)
    assert data.stream_ops is not None
    seen = set()
    for result in load_results(results, path.stem, K, include_failed=True):
        assert result.ok and result.neighbors is not None, result.attrs.get("error")
        seen.add(result.attrs["algo"])
        check_live(result.neighbors.astype(np.int64), data.stream_ops, len(data.train))
        assert result.extra[UPDATE_TIMES].shape == (len(data.stream_ops),)
        assert (result.extra[UPDATE_TIMES][data.stream_ops[:, 0] != SEARCH] > 0).all()
        steps = step_figures(result, data.distances, data.stream_ops, K)
        assert len(steps) == 10 and all(step["qps"] > 0 for step in steps)
        assert all(step["insert_rate"] > 0 for step in steps)
        if result.attrs["algo"] == "bruteforce":
            assert [step["recall"] for step in steps] == [1.0] * 10
    assert seen == set(algorithms)


def test_run_py_local_with_a_runbook_its_plot_and_its_export(xs_angular, tmp_path):
    algorithms = ["bruteforce", "hnswlib", "faiss-ivf"]
    run = run_stream(xs_angular, tmp_path, algorithms, "--local")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    path = xs_angular.with_name(stream_name(xs_angular.stem, "sliding-window") + ".hdf5")
    check_sweep(path, tmp_path, algorithms)
    plot = subprocess.run([sys.executable, "plot.py", "--dataset", path.stem, "--data-dir", str(path.parent),
                           "-k", str(K), "--results", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert plot.returncode == 0, plot.stderr
    steps_png = tmp_path / f"{path.stem}-steps.png"
    assert steps_png.stat().st_size > 10_000 and str(steps_png) in plot.stdout
    export = subprocess.run([sys.executable, "-m", "ann_bench.report.export", "--dataset", path.stem, "--data-dir",
                             str(path.parent), "-k", str(K), "--results", str(tmp_path), "--steps", "--output",
                             str(tmp_path / "steps.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr
    rows = json.loads((tmp_path / "steps.json").read_text())
    assert len(rows) == 10 * len(list(load_results(tmp_path, path.stem, K)))
    assert {row["recall"] for row in rows if row["algorithm"] == "bruteforce"} == {1.0}
    assert [row["step"] for row in rows[:10]] == list(range(1, 11))
    assert rows[0]["delete_rate"] is None and rows[9]["deleted"] == 900 and rows[9]["insert_rate"] > 0

    # The site's dataset page has the same figures per step as the export.
    site = subprocess.run([sys.executable, "-m", "ann_bench.website", "--data-dir", str(path.parent), "--results",
                           str(tmp_path), "--output", str(tmp_path / "site"), "--no-progress"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert site.returncode == 0, site.stderr
    page = (tmp_path / "site" / "datasets" / f"{path.stem}-k{K}.html").read_text()
    assert "Per search step" in page and "No figures per step" not in page
    traces = [t for found in re.findall(r'<script type="application/json" id="fig-\d+-json">(.*?)</script>', page)
              for t in json.loads(found)["data"]]
    recall = {t["name"]: t["y"] for t in traces if t["meta"]["kind"] == "steps" and "recall" in t["text"][0]}
    assert recall == {name: [r["recall"] for r in rows if r["name"] == name] for name in {r["name"] for r in rows}}
    deletes = [t for t in traces if t["meta"].get("operation") == "delete"]
    assert {t["meta"]["algorithm"] for t in deletes} == set(algorithms) and all(t["y"][0] is None for t in deletes)


def test_run_py_leaves_out_a_wrapper_without_supports_insert(xs_angular, tmp_path):
    run = run_stream(xs_angular, tmp_path, ["annoy"], "--local")
    assert run.returncode == 2
    assert "streaming dataset" in run.stderr and "supports_insert" in run.stderr


def test_run_py_in_docker_with_a_runbook(xs_angular, tmp_path):
    try:
        images.docker_client()
    except images.DockerUnavailable as e:
        pytest.skip(f"no Docker engine ({e})")
    run = run_stream(xs_angular, tmp_path, IN_DOCKER)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    check_sweep(xs_angular.with_name(stream_name(xs_angular.stem, "sliding-window") + ".hdf5"), tmp_path, IN_DOCKER)

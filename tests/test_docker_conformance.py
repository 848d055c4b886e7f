"""The conformance check in Docker, as a user runs it: `run.py --quick --runs 1` (with
--exhaustive, so that the most accurate point runs even after a cheaper one reached recall 1.0) for a
representative set of entries, or the entries DOCKER_CONFORMANCE names (space- or comma-
separated: `DOCKER_CONFORMANCE="annoy faiss-ivf" pytest tests/test_docker_conformance.py`), on
a local dataset of each metric they declare (random-xs-20-angular, random-xs-20-euclidean,
random-hamming-bits, random-jaccard; no local dot-product set is registered).

tests/test_conformance.py checks every algorithms.yaml entry in this process (local mode); this
checks that the images really work: the library installed in the image, the worker in a
container with no network, run as the invoking uid, with pgvector's PostgreSQL server started
inside the container. For each entry and dataset, run.py must exit 0, every result must be ok,
and the k-nn recall at the entry's most accurate quick point (the last build arguments and
the last query arguments of its quick grid) must be at least 0.9, 1.0 for exact entries.

The images are built once per session (from the layer cache in seconds; scripts/build-test-
images builds them from nothing before CI runs the tests).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys

import pytest

from ann_bench import datasets
from ann_bench.paths import REPO
from ann_bench.report import metrics
from ann_bench.results.files import iter_result_paths, read_result
from ann_bench.run.definitions import definitions_for_entry, load_algorithms
from ann_bench.run.executors.docker import images

ROOT = REPO
K = 10
# Entries checked in Docker by default: the exact reference, a compiled library and a database server.
REPRESENTATIVE = ["bruteforce", "hnswlib", "pgvector-hnsw"]
# metric -> its local dataset
LOCAL_DATASETS = {"angular": "random-xs-20-angular", "euclidean": "random-xs-20-euclidean",
                  "hamming": "random-hamming-bits", "jaccard": "random-jaccard"}
ENTRIES = load_algorithms()
SWEEP_TIMEOUT = 900  # seconds for one run.py over every entry on one dataset


def chosen_entries() -> list[str]:
    names = [n for n in re.split(r"[\s,]+", os.environ.get("DOCKER_CONFORMANCE", "")) if n] or REPRESENTATIVE
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(ENTRIES), n=3)
        raise pytest.UsageError(f"DOCKER_CONFORMANCE names {', '.join(unknown)}, not in algorithms.yaml "
                                f"(closest: {', '.join(close) or 'none'})")
    return names


ALGORITHMS = chosen_entries()
# The local datasets of the metrics the chosen entries declare, in LOCAL_DATASETS' order.
DATASETS = [dataset for metric, dataset in LOCAL_DATASETS.items()
            if any(metric in ENTRIES[name].metrics for name in ALGORITHMS)]


@pytest.fixture(scope="session")
def docker_images(tmp_path_factory):
    try:
        images.docker_client()
    except images.DockerUnavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI without a Docker engine: the Docker tests must run ({e})")
        pytest.skip(f"Docker tests skipped: no Docker engine is reachable here ({e})")
    needed = list(dict.fromkeys(ENTRIES[name].image for name in ALGORITHMS))
    results = images.build_images(needed, proc=2, progress=None, log_dir=tmp_path_factory.mktemp("build-logs"))
    if not all(r.ok for r in results):
        pytest.fail("could not build the images:\n" + images.format_table(results))
    return needed


def supporting(dataset: str) -> list[str]:
    spec = datasets.DATASETS[dataset]
    return [name for name in ALGORITHMS if ENTRIES[name].supports(spec.distance, spec.point_type)]


# (dataset, entry): every chosen entry on the local dataset of every metric it declares.
CASES = [(dataset, name) for dataset in DATASETS for name in supporting(dataset)]


@pytest.fixture(scope="module")
def quick_sweep(docker_images, data_dir, tmp_path_factory):
    """run.py --quick --runs 1 in Docker over the chosen entries that support a dataset, once
    per dataset: dataset name -> (its path, results dir)."""
    done: dict = {}

    def sweep(name: str):
        if name not in done:
            path = datasets.get_dataset(name, data_dir, progress=False)
            results = tmp_path_factory.mktemp(f"docker-quick-{name}")
            command = [sys.executable, "run.py", "--dataset", name, "--quick", "--exhaustive", "--runs", "1",
                       "--results", str(results), "--data-dir", str(data_dir), "--no-progress"]
            for algorithm in supporting(name):
                command += ["--algorithm", algorithm]
            run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SWEEP_TIMEOUT,
                                 stdin=subprocess.DEVNULL)
            assert run.returncode == 0, (f"run.py exited with {run.returncode}:\n{run.stdout[-4000:]}\n"
                                         f"{run.stderr[-4000:]}")
            done[name] = path, results
        return done[name]

    return sweep


def best_quick_point(algorithm: str, dataset) -> tuple[dict | list, dict | list]:
    entry = ENTRIES[algorithm]
    definition = definitions_for_entry(entry, dataset.distance, K, dataset.dimension, quick=True)[-1]
    return definition.args, definition.query_args[-1]


def _plain(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("name, algorithm", CASES)
def test_recall_at_the_best_quick_point_in_docker(quick_sweep, name, algorithm):
    path, results = quick_sweep(name)
    dataset = datasets.load_dataset(path)
    args, query_args = best_quick_point(algorithm, dataset)
    found = {}
    for result_path in iter_result_paths(results, name, K):
        result = read_result(result_path)
        if result.attrs["algo"] != algorithm:
            continue
        assert result.ok, f"{algorithm} on {name}: {result.attrs.get('error')}"
        assert result.environment.get("image", "").startswith("ann-bench-"), "not run in Docker"
        key = (result.attrs["build_args"], result.attrs["query_args"])
        found[key] = metrics.knn_recall(dataset.distances, result, K)
    quick = definitions_for_entry(ENTRIES[algorithm], dataset.distance, K, dataset.dimension, quick=True)
    expected = sum(len(d.query_args) for d in quick)
    assert len(found) == expected, f"{algorithm} on {name}: {len(found)} results, expected {expected}"
    best = [recall for (build_args, q_args), recall in found.items()
            if json.loads(build_args) == _plain(args) and json.loads(q_args) == _plain(query_args)]
    assert len(best) == 1, f"{algorithm} on {name}: no result for {args} {query_args} in {sorted(found)}"
    required = 1.0 if ENTRIES[algorithm].exact else 0.9
    print(f"{algorithm} {args} {query_args} on {name} in Docker: recall {best[0]:.3f}")
    assert best[0] >= required, f"{algorithm} {args} {query_args} on {name}: recall {best[0]:.3f} < {required}"

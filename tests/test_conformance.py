"""One conformance suite for every entry of algorithms.yaml (scikit-learn's check_estimator habit).

Cases are generated from the file itself: a new entry is covered without writing a test. For
each metric an entry declares, on that metric's local dataset (random-xs-20-euclidean,
random-xs-20-angular, a small dot-product set built here, random-hamming-bits: 64-bit vectors
as bool arrays, and random-jaccard: sets as lists of int32 item arrays, given to the wrapper
exactly as the runner gives them), the entry's most accurate quick point is built and checked:

- single answers and batch answers are valid k-NN answers (runner.validate_answers) and
  nearest first (a wrapper without its own batch_query is not asked again for a batch: the
  base class's batch is its single answers);
- single and batch agree: the same id sets for exact entries (up to points tied at the k-th
  distance), recall within 0.02 otherwise;
- fit and queries leave the caller's arrays untouched (every set's array, for sets): they get
  them read-only, as from the runner, so writing into them is an error;
- the entry accepts the dataset's point type (float, or bit for hamming and jaccard), so a
  sweep would select it for that dataset;
- k-nn recall (k=10, ann-benchmarks' distance threshold) is at least 0.9, and 1.0 for
  entries marked `exact: true`.

The most accurate quick point is the LAST build arguments and the LAST query arguments of the
entry's `quick` grid (or of its last run group when it has none): a quick grid must end with
its most accurate point. Only the first QUERIES test queries are used, to keep the suite fast.

A library that is not installed fails its entries in CI (CI set), where every entry must be
checked; elsewhere it skips them with a warning that pytest's summary shows. The exception is a
library with an environment of its own (`local: own`, its pins conflict with the shared .venv):
the shared run skips it, and tests/test_local_envs.py runs this suite again in .venvs/<library>
with CONFORMANCE_LIBRARY=<library>, which restricts it to that library's entries.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ann_bench import datasets
from ann_bench.algorithms import declared
from ann_bench.algorithms.base import BaseANN
from ann_bench.datasets import groundtruth
from ann_bench.datasets.distance import distances_to
from ann_bench.run.definitions import (
    Definition,
    definitions_for_entry,
    expand_grid,
    load_algorithms,
)
from ann_bench.run.runner import instantiate, validate_answers
from ann_bench.run.sealed import seal_points

K = 10
QUERIES = 200
KNN_EPSILON = 1e-3  # ann-benchmarks' tolerance on the k-th true distance
RECALL_APPROXIMATE = 0.9
BATCH_RECALL_TOLERANCE = 0.02


def selected_library() -> str | None:
    """The library this run is restricted to (CONFORMANCE_LIBRARY), or None: every entry."""
    return os.environ.get("CONFORMANCE_LIBRARY") or None


def selected_entries() -> dict:
    entries, library = load_algorithms(), selected_library()
    if library is None:
        return entries
    chosen = {name: entry for name, entry in entries.items() if entry.library == library}
    if not chosen:
        libraries = ", ".join(sorted({entry.library for entry in entries.values()}))
        raise pytest.UsageError(f"CONFORMANCE_LIBRARY={library}: no entry of algorithms.yaml uses that library "
                                f"(libraries: {libraries})")
    return chosen


ENTRIES = selected_entries()
# metric -> its local dataset: ("fixture", a conftest fixture giving the path), ("registry", a
# locally built dataset of ann_bench.datasets, made in the data directory on first use), or
# ("here", None): built in this file.
LOCAL_DATASETS = {
    "euclidean": ("fixture", "xs_euclidean"),
    "angular": ("fixture", "xs_angular"),
    "dot": ("here", None),
    "hamming": ("registry", "random-hamming-bits"),
    "jaccard": ("registry", "random-jaccard"),
}


def import_wrapper(entry) -> type:
    """The entry's wrapper class; when only its library is missing here, see missing_library."""
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as e:
        if e.name and not entry.module.startswith(e.name) and not e.name.startswith("ann_bench"):
            missing_library(entry, e.name)
        raise
    cls = getattr(module, entry.constructor, None)
    assert cls is not None, f"{entry.name}: {entry.module} has no {entry.constructor}"
    return cls


def missing_library(entry, library: str) -> None:
    """In CI fail: CI checks every entry; elsewhere skip, with a warning. A library with an
    environment of its own is skipped in the shared run even in CI, since its own run
    (tests/test_local_envs.py) checks it."""
    message = f"{entry.name}: library '{library}' is not installed in this environment"
    if selected_library() is None and entry.own_environment:
        pytest.skip(f"{message}; library '{entry.library}' has an environment of its own, .venvs/{entry.library}, "
                    f"where tests/test_local_envs.py runs this suite for it")
    fix = f"scripts/setup-env --library {entry.library}" if entry.own_environment else "scripts/setup-env"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, but CI must check every entry of algorithms.yaml: {fix}")
    warnings.warn(f"{message}, so its conformance tests are skipped (CI fails them): {fix}", stacklevel=2)
    pytest.skip(message)


def _cases():
    for name, entry in ENTRIES.items():
        for metric in entry.metrics:
            marks = ()
            if metric not in LOCAL_DATASETS:
                marks = pytest.mark.skip(reason=f"no local {metric} dataset to check {name} on")
            yield pytest.param((name, metric), id=f"{name}-{metric}", marks=marks)


# --- data -----------------------------------------------------------------------------------

def _dot_dataset() -> SimpleNamespace:
    """A small dot-product set whose norms vary, so that dot and angular rank differently."""
    rng = np.random.default_rng(20)
    points = rng.normal(size=(5200, 20)) * rng.uniform(0.5, 1.5, size=(5200, 1))
    points = points.astype(np.float32)
    train, test = points[:5000], points[5000:]
    neighbors, distances = groundtruth.exact_knn(train, test, 100, "dot", progress=False)
    return SimpleNamespace(name="dot-5000-20", distance="dot", point_type="float", train=train,
                           test=test, neighbors=neighbors, distances=distances)


@pytest.fixture(scope="session")
def local_data(request):
    """metric -> dataset, loaded (or built) once per session and only when first needed."""
    cache: dict[str, Any] = {}

    def get(metric: str):
        if metric not in cache:
            source, name = LOCAL_DATASETS[metric]
            if source == "here":
                cache[metric] = _dot_dataset()
            elif source == "fixture":
                cache[metric] = datasets.load_dataset(request.getfixturevalue(name))
            else:
                data_dir = request.getfixturevalue("data_dir")
                cache[metric] = datasets.load_dataset(datasets.get_dataset(name, data_dir, progress=False))
            assert cache[metric].distance == metric
        return cache[metric]

    return get


def copy_points(points):
    """A copy as the runner hands points to a wrapper: in sealed read-only memory (a 2-D array,
    or a list of sets, each its own array), so a wrapper that writes into its input fails here."""
    return seal_points(points)


def same_points(a, b) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return len(a) == len(b) and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


def dimension(data) -> int:
    """What "@dimension" stands for: the width of dense points, the item universe of sets."""
    if isinstance(data.train, np.ndarray):
        return data.train.shape[1]
    return data.dimension


# --- measures -------------------------------------------------------------------------------

def knn_recall(data, answers: list, n_queries: int) -> float:
    """Mean k-nn recall: a returned id counts when its true distance is at most the k-th true
    distance + 1e-3, so any of several points tied at the k-th distance is a hit."""
    ids = validate_answers(list(answers), K, len(data.train))
    found = distances_to(data.distance, data.test[:n_queries], data.train, ids)
    threshold = data.distances[:n_queries, K - 1] + KNN_EPSILON
    return float((found <= threshold[:, None]).sum(axis=1).mean() / K)


def best_quick_point(entry, metric: str, data) -> tuple[Definition, Any]:
    """The last build arguments and the last query arguments of the quick grid."""
    definition = definitions_for_entry(entry, metric, K, dimension(data), quick=True)[-1]
    return definition, definition.query_args[-1]


def answer_batch(algo: BaseANN, queries, single: list) -> list:
    """The batch answers; for a wrapper that keeps BaseANN's batch_query (one query() per
    query), the single answers already are what it would return, so they are not run twice."""
    if type(algo).batch_query is BaseANN.batch_query:
        return list(single)
    algo.batch_query(queries, K)
    return list(algo.get_batch_results())


def set_query_arguments(algo: BaseANN, query_args: Any) -> None:
    if isinstance(query_args, dict):
        algo.set_query_arguments(**query_args)
    else:
        algo.set_query_arguments(*query_args)


def answer_both_ways(definition: Definition, query_args: Any, train, test) -> tuple[list, list]:
    """Build the point on train, then answer test one by one and as a batch."""
    algo = instantiate(definition)
    try:
        algo.fit(train)
        set_query_arguments(algo, query_args)
        single = [algo.query(q, K) for q in test]
        return single, answer_batch(algo, test, single)
    finally:
        algo.done()


@dataclass
class Outcome:
    name: str
    metric: str
    exact: bool
    data: Any
    single: list
    batch: list
    train_unchanged: bool
    test_unchanged: bool
    accepts_point_type: bool
    label: str


@pytest.fixture(scope="module", params=list(_cases()))
def outcome(request, local_data) -> Outcome:
    """Build the entry's most accurate quick point once; answer QUERIES queries both ways."""
    name, metric = request.param
    entry = ENTRIES[name]
    data = local_data(metric)
    import_wrapper(entry)
    definition, query_args = best_quick_point(entry, metric, data)
    # The wrapper gets copies; the dataset's own arrays stay the reference to compare with.
    train = copy_points(data.train)
    test = copy_points(data.test[:QUERIES])
    single, batch = answer_both_ways(definition, query_args, train, test)
    return Outcome(
        name=name,
        metric=metric,
        exact=entry.exact,
        data=data,
        single=single,
        batch=batch,
        train_unchanged=same_points(train, data.train),
        test_unchanged=same_points(test, data.test[:QUERIES]),
        accepts_point_type=entry.supports(metric, data.point_type),
        label=f"{name} {definition.args} {query_args} on {data.name}",
    )


# --- the checks -----------------------------------------------------------------------------

def test_answers_are_valid(outcome):
    n_train = len(outcome.data.train)
    for mode, answers in (("single", outcome.single), ("batch", outcome.batch)):
        assert len(answers) == QUERIES, f"{outcome.label}: {mode}: {len(answers)} answers"
        validate_answers(answers, K, n_train)  # raises InvalidAnswer with the reason
        for answer in answers:
            assert isinstance(answer, np.ndarray), f"{outcome.label}: {mode}: ids as {type(answer)}"


def test_answers_are_nearest_first(outcome):
    data = outcome.data
    for mode, answers in (("single", outcome.single), ("batch", outcome.batch)):
        ids = validate_answers(answers, K, len(data.train))
        found = distances_to(data.distance, data.test[:QUERIES], data.train, ids).astype(np.float64)
        steps = np.diff(found, axis=1)
        slack = 1e-4 * (1 + np.abs(found[:, 1:]))
        bad = np.argwhere(np.nan_to_num(steps, nan=0.0) < -slack)
        assert len(bad) == 0, f"{outcome.label}: {mode}: query {bad[0][0]} not sorted: {found[bad[0][0]]}"


def test_fit_and_queries_leave_inputs_untouched(outcome):
    assert outcome.train_unchanged, f"{outcome.label}: fit or a query modified the training data"
    assert outcome.test_unchanged, f"{outcome.label}: a query modified the query vectors"


def test_entry_accepts_the_datasets_point_type(outcome):
    entry = ENTRIES[outcome.name]
    assert outcome.accepts_point_type, (
        f"{outcome.label}: declares {outcome.metric} but point_types {list(entry.point_types)} "
        f"lacks '{outcome.data.point_type}', so no sweep would run it on {outcome.metric} data")


def test_single_and_batch_agree(outcome):
    data = outcome.data
    if outcome.exact:
        # The same ids, up to points tied at the k-th distance: a matrix-vector and a matrix-
        # matrix product may round differently, and either member of a tie is right.
        queries, n_train = data.test[:QUERIES], len(data.train)
        single = distances_to(data.distance, queries, data.train, validate_answers(outcome.single, K, n_train))
        batch = distances_to(data.distance, queries, data.train, validate_answers(outcome.batch, K, n_train))
        for i, (one, many) in enumerate(zip(outcome.single, outcome.batch)):
            if set(one.tolist()) != set(many.tolist()):
                assert np.allclose(np.sort(single[i]), np.sort(batch[i]), rtol=1e-5, atol=1e-6), \
                    f"{outcome.label}: query {i}: {one} one by one, {many} in a batch"
    else:
        single = knn_recall(data, outcome.single, QUERIES)
        batch = knn_recall(data, outcome.batch, QUERIES)
        assert abs(single - batch) <= BATCH_RECALL_TOLERANCE, \
            f"{outcome.label}: recall {single:.3f} one by one, {batch:.3f} in a batch"


def test_recall_at_the_most_accurate_quick_point(outcome):
    recall = knn_recall(outcome.data, outcome.single, QUERIES)
    required = 1.0 if outcome.exact else RECALL_APPROXIMATE
    print(f"{outcome.label}: recall {recall:.3f}")
    assert recall >= required, f"{outcome.label}: recall {recall:.3f} < {required}"


# --- awkward inputs for bit vectors and sets --------------------------------------------------

def _awkward_dataset(metric: str) -> SimpleNamespace:
    """Small data at the edges of the bit and set representations: 70-bit vectors (not a whole
    number of bytes or words; half of them as 0/1 uint8 rather than bool), and sets with an
    empty query, a query of items no point has, and an empty point."""
    rng = np.random.default_rng(70)
    if metric == "hamming":
        prototypes = rng.random((40, 70)) < 0.5
        points = prototypes[rng.integers(0, 40, 2040)] ^ (rng.random((2040, 70)) < 0.1)
        train, test = points[:2000], points[2000:].astype(np.uint8)
        width = 70
    else:
        topics = rng.random((40, 300)) < 0.1
        members = topics[rng.integers(0, 40, 2040)] & (rng.random((2040, 300)) < 0.8)
        sets = [np.flatnonzero(row).astype(np.int32) for row in members]
        train = sets[:1999] + [np.empty(0, dtype=np.int32)]
        test = [np.empty(0, dtype=np.int32), np.array([400, 500], dtype=np.int32),
                np.array([3, 350], dtype=np.int32)] + sets[2003:]
        width = 300
    neighbors, distances = groundtruth.exact_knn(train, test, 100, metric, progress=False)
    return SimpleNamespace(name=f"awkward-{metric}", distance=metric, dimension=width,
                           train=train, test=test, neighbors=neighbors, distances=distances)


AWKWARD_CASES = [pytest.param((name, metric), id=f"{name}-{metric}")
                 for name, entry in ENTRIES.items() for metric in ("hamming", "jaccard")
                 if metric in entry.metrics]


@pytest.mark.parametrize("case", AWKWARD_CASES)
def test_awkward_bit_and_set_inputs(case):
    """Bit widths that are no multiple of 8, 0/1 integer queries, empty and unknown sets: valid
    answers, inputs untouched, and the same recall bar as above."""
    name, metric = case
    entry = ENTRIES[name]
    import_wrapper(entry)
    data = _awkward_dataset(metric)
    definition, query_args = best_quick_point(entry, metric, data)
    train, test = copy_points(data.train), copy_points(data.test)
    single, batch = answer_both_ways(definition, query_args, train, test)
    assert same_points(train, data.train) and same_points(test, data.test), f"{name}: inputs modified"
    required = 1.0 if entry.exact else RECALL_APPROXIMATE
    for mode, answers in (("single", single), ("batch", batch)):
        recall = knn_recall(data, answers, len(test))
        assert recall >= required, f"{name} on {data.name}: {mode}: recall {recall:.3f} < {required}"


# --- declarations ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ENTRIES))
def test_the_imported_class_declares_what_the_host_read(name):
    """What chose the entry's definitions (read from module.py without importing it) is what
    the class says once imported: the worker refuses a definition otherwise."""
    entry = ENTRIES[name]
    cls = import_wrapper(entry)
    assert inspect.isclass(cls) and issubclass(cls, BaseANN), f"{name}: {entry.constructor} is not a BaseANN"
    assert declared.differences(cls, entry.declared, entry.folder.module_file) == []


def _methods_source(cls: type) -> str:
    """The source of every method the class resolves to, BaseANN's own left out."""
    functions = [getattr(cls, name) for name in dir(cls)]
    return "".join(inspect.getsource(f) for f in functions
                   if inspect.isfunction(f) and getattr(BaseANN, f.__name__, None) is not f)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_seeded_and_index_size_say_what_the_class_does(name):
    """seeded exactly when a method of the class reads the runner's seed; index_size "disk"
    exactly when the class measures its own get_memory_usage (the engine's files or relation)."""
    entry = ENTRIES[name]
    cls = import_wrapper(entry)
    assert entry.declared.seeded == ("self.seed" in _methods_source(cls)), f"{name}: seeded = {entry.declared.seeded}"
    own_measure = cls.get_memory_usage is not BaseANN.get_memory_usage
    assert (entry.declared.index_size == "disk") == own_measure, f"{name}: index_size = {entry.declared.index_size!r}"


@pytest.mark.parametrize("name", list(ENTRIES))
def test_an_undeclared_metric_is_refused_by_name(name):
    """A wrapper given a metric it doesn't declare fails at once, before it starts any engine."""
    entry = ENTRIES[name]
    cls = import_wrapper(entry)
    [definition, *_] = definitions_for_entry(entry, "no-such-metric", K, 20, quick=True)
    args, kwargs = definition.constructor_call()
    if "no-such-metric" not in [*args, *kwargs.values()]:
        pytest.skip(f"{name}: its constructor is not given the metric")
    with pytest.raises(ValueError, match="metric 'no-such-metric' not supported"):
        cls(*args, **kwargs)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_every_grid_point_is_a_valid_call_of_the_constructor(name):
    """Every build-argument set binds to the constructor's signature (no typo in a keyword)."""
    entry = ENTRIES[name]
    cls = import_wrapper(entry)
    signature = inspect.signature(cls)
    for metric in entry.metrics:
        for quick in (False, True):
            for definition in definitions_for_entry(entry, metric, K, 20, quick=quick):
                args, kwargs = definition.constructor_call()
                try:
                    signature.bind(*args, **kwargs)
                except TypeError as e:
                    pytest.fail(f"{name} {definition.run_group} {definition.args}: {e}")
                query_signature = inspect.signature(cls.set_query_arguments)
                for query_args in definition.query_args:
                    q_args, q_kwargs = ([], query_args) if isinstance(query_args, dict) else (query_args, {})
                    try:
                        query_signature.bind(None, *q_args, **q_kwargs)
                    except TypeError as e:
                        pytest.fail(f"{name} {definition.run_group} query {query_args}: {e}")


def test_expand_grid_is_what_the_best_point_relies_on():
    """The quick grid's last point is the product's last: last value of every list."""
    assert expand_grid({"a": [1, 2], "b": [3, 4]})[-1] == {"a": 2, "b": 4}
    assert expand_grid([[1, 2], [3, 4]])[-1] == [2, 4]


# --- the suite's own rules ------------------------------------------------------------------

@pytest.fixture
def entry_missing_its_library(tmp_path, monkeypatch):
    """An entry whose wrapper module imports a library that is not installed."""
    (tmp_path / "needs_absent_library.py").write_text("import absent_library_for_the_test\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def entry(library: str, own: bool):
        return SimpleNamespace(name=f"absent-{library}", module="needs_absent_library", constructor="X",
                               library=library, own_environment=own)

    return entry


@pytest.mark.parametrize("ci, library, own, restricted_to, verdict", [
    ("", "hnswlib", False, None, "skip with a warning"),
    ("true", "hnswlib", False, None, "fail"),
    ("true", "diskann", True, None, "skip"),  # its own environment's run checks it
    ("", "diskann", True, "diskann", "skip with a warning"),
    ("true", "diskann", True, "diskann", "fail"),  # the own environment's run lacks its library
])
def test_a_missing_library_fails_in_ci_and_is_skipped_loudly_elsewhere(entry_missing_its_library, monkeypatch, ci,
                                                                      library, own, restricted_to, verdict):
    monkeypatch.setenv("CI", ci)
    monkeypatch.delenv("CONFORMANCE_LIBRARY", raising=False)
    if restricted_to:
        monkeypatch.setenv("CONFORMANCE_LIBRARY", restricted_to)
    outcomes = {"skip": pytest.skip.Exception, "fail": pytest.fail.Exception}
    # Caught here, both kinds: an escaping skip would report this test skipped, not failed.
    with warnings.catch_warnings(record=True) as warned, pytest.raises(tuple(outcomes.values())) as raised:
        warnings.simplefilter("always")
        import_wrapper(entry_missing_its_library(library, own))
    assert isinstance(raised.value, outcomes[verdict.split()[0]]), f"{verdict} expected: {raised.value!r}"
    assert "absent_library_for_the_test" in str(raised.value)
    assert bool(warned) == verdict.endswith("warning"), [str(w.message) for w in warned]


def test_conformance_library_restricts_the_suite_to_that_librarys_entries(monkeypatch):
    monkeypatch.setenv("CONFORMANCE_LIBRARY", "diskann")
    assert {entry.library for entry in selected_entries().values()} == {"diskann"}
    monkeypatch.setenv("CONFORMANCE_LIBRARY", "no-such-library")
    with pytest.raises(pytest.UsageError, match="CONFORMANCE_LIBRARY=no-such-library: no entry"):
        selected_entries()

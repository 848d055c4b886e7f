"""Effort-ordered query sets: which sets run first, which a saturated set makes pointless, and
the `effort` key's validation in algorithms.yaml."""

import pytest

from ann_bench.run.definitions import get_definitions, load_algorithms
from ann_bench.run.effort import costlier, in_effort_order
from tests import test_definitions
from tests.test_definitions import assert_config_error, write

libraries = test_definitions.libraries  # the fixture, shared


def entry_with_effort(tmp_path, effort: str, query_args: str, quick: str = ""):
    return write(tmp_path, f"""\
        algorithms:
          algo:
            constructor: Thing
            effort: {effort}
            run_groups:
              g:
                args: {{M: [4, 8]}}
                query_args: {query_args}
        {quick}""")


def test_sets_run_from_least_to_most_effort_whatever_the_grid_order(tmp_path, libraries):
    path = entry_with_effort(tmp_path, "ef", "{ef: [80, 10, 40], mode: [a, b]}")
    definitions = get_definitions(load_algorithms(path, libraries), "euclidean", "float", 10, 4)
    assert [d.args for d in definitions] == [{"M": 4}, {"M": 8}]
    efforts = [q["ef"] for q in definitions[0].query_args]
    assert efforts == [10, 10, 40, 40, 80, 80]
    assert sorted(map(str, definitions[0].query_args)) == sorted(
        str({"ef": e, "mode": m}) for e in (80, 10, 40) for m in ("a", "b"))


def test_without_effort_the_grid_order_stays():
    sets = ({"ef": 80}, {"ef": 10})
    assert in_effort_order(sets, None) == sets


def test_costlier_sets_differ_only_by_more_effort():
    sets = [{"ef": e, "mode": m} for e in (10, 40, 80) for m in ("a", "b")]
    assert costlier(sets, {"ef": 40, "mode": "a"}, "ef") == [{"ef": 80, "mode": "a"}]
    assert costlier(sets, {"ef": 80, "mode": "b"}, "ef") == []
    assert costlier(sets, {"ef": 10, "mode": "b"}, None) == []


def test_costlier_compares_values_not_their_spelling():
    sets = [{"n": 1, "k": 16}, {"n": 2, "k": 16}, {"n": 2, "k": 16.5}]
    assert costlier(sets, {"k": 16, "n": 1}, "n") == [{"n": 2, "k": 16}]


@pytest.mark.parametrize("effort, query_args, fragment", [
    ("eff", "{ef: [10, 20]}", "'eff' is not a query argument of every run group"),
    ("mode", "{mode: [a, b]}", "the values of 'mode' must be numbers"),
    ("ef", "[[10, 20]]", "'ef' is not a query argument of every run group"),
])
def test_an_effort_that_cannot_order_the_sets_names_entry_and_key(tmp_path, libraries, effort, query_args, fragment):
    path = entry_with_effort(tmp_path, effort, query_args)
    assert_config_error(path, libraries, "algorithm 'algo'", "key 'effort'", fragment)


def test_the_quick_grid_must_have_the_effort_argument_too(tmp_path, libraries):
    quick = "    quick: {args: {M: 4}, query_args: {other: [1, 2]}}\n"
    path = entry_with_effort(tmp_path, "ef", "{ef: [10, 20]}", quick)
    assert_config_error(path, libraries, "key 'effort'", "'ef' is not a query argument")


def test_every_shipped_effort_orders_its_entrys_grids():
    entries = load_algorithms()
    ordered = [e for e in entries.values() if e.effort]
    assert len(ordered) >= 20  # the load above validated each of them

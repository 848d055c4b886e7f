"""algorithms.yaml: loading, validation messages, grid expansion, selection."""

import textwrap

import pytest

from ann_bench.errors import ConfigError, UnknownNameError
from ann_bench.run import definitions
from ann_bench.run.definitions import expand_grid, get_definitions, load_algorithms

ENTRY = """\
  {name}:
    module: some.module
    constructor: Thing
    metrics: [euclidean, angular]
    run_groups:
      g:
        args: [[1, 2]]
        query_args: [[10]]
"""


def write(tmp_path, text, name="algorithms.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def entries_file(tmp_path, *names, extra=""):
    body = "algorithms:\n" + "".join(ENTRY.format(name=n) for n in names) + extra
    return write(tmp_path, body)


# --- grid expansion -------------------------------------------------------------------------

def test_positional_grid_is_the_cartesian_product_in_order():
    assert expand_grid([[1, 2], ["a", "b"]]) == [[1, "a"], [1, "b"], [2, "a"], [2, "b"]]


def test_keyword_grid_is_the_cartesian_product_and_scalars_are_one_value():
    assert expand_grid({"M": [4, 8], "efConstruction": 500}) == [
        {"M": 4, "efConstruction": 500},
        {"M": 8, "efConstruction": 500},
    ]
    assert expand_grid({"a": [1, 2], "b": [3, 4]}) == [
        {"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4},
    ]


@pytest.mark.parametrize("empty", [None, [], {}])
def test_empty_grid_is_one_call_without_arguments(empty):
    assert expand_grid(empty) == [[]]


def test_definitions_one_per_build_argument_set_with_every_query_set(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          algo:
            module: m
            constructor: C
            metrics: [euclidean]
            base_args: ["@metric"]
            run_groups:
              kw:
                args: {M: [4, 8], efConstruction: 500}
                query_args: {ef: [10, 20]}
              pos:
                args: [[1, 2], [3]]
                query_args: [[7, 8]]
        """)
    defs = definitions.definitions_for_entry(load_algorithms(path)["algo"], "euclidean", 10, 20)
    assert [(d.run_group, d.args) for d in defs] == [
        ("kw", {"M": 4, "efConstruction": 500}),
        ("kw", {"M": 8, "efConstruction": 500}),
        ("pos", [1, 3]),
        ("pos", [2, 3]),
    ]
    assert defs[0].query_args == ({"ef": 10}, {"ef": 20})
    assert defs[2].query_args == ([7], [8])
    assert defs[0].constructor_call() == (["euclidean"], {"M": 4, "efConstruction": 500})
    assert defs[3].constructor_call() == (["euclidean", 2, 3], {})


def test_quick_grid_replaces_the_run_groups(tmp_path):
    path = entries_file(tmp_path, "algo")
    text = path.read_text() + "    quick:\n      args: [[5]]\n      query_args: [[1, 2]]\n"
    path.write_text(text)
    entry = load_algorithms(path)["algo"]
    quick = definitions.definitions_for_entry(entry, "euclidean", 10, 20, quick=True)
    assert [(d.run_group, d.args, d.query_args) for d in quick] == [("quick", [5], ([1], [2]))]
    assert len(definitions.definitions_for_entry(entry, "euclidean", 10, 20)) == 2


def test_metric_count_and_dimension_are_substituted_everywhere(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          algo:
            module: m
            constructor: C
            metrics: [angular]
            base_args: ["@metric", "@dimension"]
            run_groups:
              g:
                args: {dim: "@dimension", k: ["@count", 3], label: "metric"}
                query_args: [["@count"], ["@metric"]]
        """)
    defs = definitions.definitions_for_entry(load_algorithms(path)["algo"], "angular", 25, 96)
    assert [d.base_args for d in defs] == [("angular", 96), ("angular", 96)]
    assert [d.args for d in defs] == [
        {"dim": 96, "k": 25, "label": "metric"},  # only the exact "@..." words are replaced
        {"dim": 96, "k": 3, "label": "metric"},
    ]
    assert defs[0].query_args == ([25, "angular"],)


def test_definition_survives_a_round_trip_through_a_dict(tmp_path):
    entry = load_algorithms(entries_file(tmp_path, "algo"))["algo"]
    for d in definitions.definitions_for_entry(entry, "euclidean", 10, 20):
        assert definitions.Definition.from_dict(d.to_dict()) == d


# --- validation -----------------------------------------------------------------------------

def assert_config_error(path, *fragments):
    with pytest.raises(ConfigError) as info:
        load_algorithms(path)
    message = str(info.value)
    for fragment in (str(path),) + fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_unknown_key_names_file_entry_and_key_with_a_suggestion(tmp_path):
    path = entries_file(tmp_path, "good", "algo")
    path.write_text(path.read_text() + "    metric: [euclidean]\n")
    message = assert_config_error(path, "'algo'", "'metric'")
    assert "did you mean 'metrics'" in message


def test_wrong_type_names_file_entry_and_key(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          algo:
            module: m
            constructor: C
            metrics: euclidean
            run_groups: {g: {args: [[1]]}}
        """)
    assert_config_error(path, "'algo'", "'metrics'", "str")


def test_wrong_type_of_a_flag(tmp_path):
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text() + "    exact: yes please\n")
    assert_config_error(path, "'algo'", "'exact'")


def test_unknown_metric_names_file_entry_key_and_metric(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          algo:
            module: m
            constructor: C
            metrics: [euclidean, cosine]
            run_groups: {g: {args: [[1]]}}
        """)
    assert_config_error(path, "'algo'", "'metrics'", "'cosine'")


@pytest.mark.parametrize("missing", ["module", "constructor", "metrics", "run_groups"])
def test_missing_key_names_file_entry_and_key(tmp_path, missing):
    lines = ENTRY.format(name="algo").splitlines(keepends=True)
    keep = [line for line in lines if not line.strip().startswith(missing + ":")]
    if missing == "run_groups":
        keep = keep[:4]
    path = write(tmp_path, "algorithms:\n" + "".join(keep))
    assert_config_error(path, "'algo'", f"'{missing}'", "missing")


def one_group_file(tmp_path, group: str):
    """An entry 'algo' whose one run group 'g' is `group`, a YAML flow mapping."""
    return write(tmp_path, f"""\
        algorithms:
          algo:
            module: m
            constructor: C
            metrics: [euclidean]
            run_groups:
              g: {group}
        """)


def test_positional_grid_that_is_not_a_list_of_lists_is_rejected(tmp_path):
    path = one_group_file(tmp_path, "{args: [100, 200]}")
    assert_config_error(path, "'algo'", "'g'", "'args'")


def test_unknown_key_in_a_run_group(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          algo:
            module: m
            constructor: C
            metrics: [euclidean]
            run_groups:
              g:
                args: [[1]]
                querry_args: [[1]]
        """)
    assert_config_error(path, "'algo'", "'g'", "'querry_args'")


def test_duplicate_algorithm_names_are_an_error(tmp_path):
    path = entries_file(tmp_path, "algo", "other", "algo")
    message = assert_config_error(path, "'algo'")
    assert "twice" in message


def test_yaml_anchors_share_lists_without_being_mistaken_for_duplicates(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          one:
            module: m
            constructor: C
            metrics: [euclidean]
            run_groups: {g: {args: [[1]], query_args: {ef: &ef [10, 20]}}}
          two:
            module: m
            constructor: D
            metrics: [euclidean]
            run_groups: {g: {args: [[2]], query_args: {ef: *ef}}}
        """)
    entries = load_algorithms(path)
    assert entries["two"].run_groups["g"]["query_args"] == {"ef": [10, 20]}
    defs = definitions.definitions_for_entry(entries["two"], "euclidean", 10, 20)
    assert defs[0].query_args == ({"ef": 10}, {"ef": 20})


def test_yaml_merge_keys_are_not_mistaken_for_duplicates(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          base: &base
            module: m
            constructor: C
            metrics: [euclidean]
            run_groups: {g: {args: [[1]]}}
          derived:
            <<: *base
            constructor: D
        """)
    entries = load_algorithms(path)
    assert entries["derived"].constructor == "D"
    assert entries["derived"].module == "m"


def test_not_yaml_and_no_algorithms_mapping_and_missing_file(tmp_path):
    assert_config_error(write(tmp_path, "algorithms: [unclosed\n", "bad.yaml"), "not valid YAML")
    assert_config_error(write(tmp_path, "algos: {}\n", "empty.yaml"), "'algorithms")
    with pytest.raises(ConfigError, match="cannot read"):
        load_algorithms(tmp_path / "absent.yaml")


# --- selection ------------------------------------------------------------------------------

def test_disabled_entries_are_skipped_unless_named(tmp_path):
    # (not "on"/"off": YAML 1.1 reads those keys as booleans)
    path = entries_file(tmp_path, "enabled", "resting")
    path.write_text(path.read_text() + "    disabled: true\n")
    entries = load_algorithms(path)
    assert entries["resting"].disabled and not entries["enabled"].disabled

    def algorithms(**kw):
        return sorted({d.algorithm for d in get_definitions(entries, "euclidean", "float", 10, 20, **kw)})

    assert algorithms() == ["enabled"]
    assert algorithms(names=["resting"]) == ["resting"]
    assert algorithms(include_disabled=True) == ["enabled", "resting"]


def test_entries_that_do_not_support_the_metric_or_point_type_are_left_out(tmp_path):
    entries = load_algorithms(entries_file(tmp_path, "algo"))
    assert get_definitions(entries, "hamming", "float", 10, 20) == []
    assert get_definitions(entries, "euclidean", "bit", 10, 20) == []
    assert len(get_definitions(entries, "angular", "float", 10, 20)) == 2


def test_unknown_algorithm_name_lists_close_names(tmp_path):
    entries = load_algorithms(entries_file(tmp_path, "hnswlib", "faiss-hnsw", "annoy"))
    with pytest.raises(UnknownNameError) as info:
        get_definitions(entries, "euclidean", "float", 10, 20, names=["hnswlb"])
    message = str(info.value)
    assert "'hnswlb'" in message and "hnswlib" in message


# --- the quick-grid rule -------------------------------------------------------------------

def grid_points(entry, metric: str, quick: bool) -> int:
    """Points of a grid: every build-argument set times its query-argument sets."""
    return sum(len(d.query_args) for d in definitions.definitions_for_entry(entry, metric, 10, 20, quick=quick))


def quick_grid_problem(entry) -> str | None:
    """Why an entry's quick grid breaks the rule (2-3 points; 1 only when its full grid has
    no knobs, i.e. one point, like exact brute force), or None."""
    if not entry.quick:
        return "no quick grid (run.py --quick and the conformance suite use it)"
    for metric in entry.metrics:
        points = grid_points(entry, metric, quick=True)
        if points in (2, 3) or (points == 1 and grid_points(entry, metric, quick=False) == 1):
            continue
        return f"quick grid points: {points} on {metric}; give it 2-3 (1 only without build or query knobs)"
    return None


QUICK_RULE_CASES = {
    "four points": ("args: [[1, 2]]", "query_args: [[10, 20]]", "points: 4"),
    "one point with knobs": ("args: [[1]]", "query_args: [[10]]", "points: 1"),
    "two builds": ("args: [[1, 2]]", "query_args: []", None),
    "three queries": ("args: [[1]]", "query_args: {ef: [10, 20, 30]}", None),
}


@pytest.mark.parametrize("case", list(QUICK_RULE_CASES))
def test_the_quick_grid_rule_counts_builds_times_queries(tmp_path, case):
    args, query_args, problem = QUICK_RULE_CASES[case]
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text() + f"    quick:\n      {args}\n      {query_args}\n")
    found = quick_grid_problem(load_algorithms(path)["algo"])
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_the_quick_grid_rule_allows_one_point_only_without_knobs(tmp_path):
    path = write(tmp_path, """\
        algorithms:
          exact:
            module: m
            constructor: C
            metrics: [euclidean]
            run_groups: {g: {args: [], query_args: []}}
            quick: {args: [], query_args: []}
        """)
    assert quick_grid_problem(load_algorithms(path)["exact"]) is None
    path = entries_file(tmp_path, "algo")
    assert "no quick grid" in quick_grid_problem(load_algorithms(path)["algo"])


# --- the real file --------------------------------------------------------------------------

def test_the_shipped_algorithms_yaml_is_valid_and_every_quick_grid_has_two_or_three_points():
    entries = load_algorithms()
    assert {"bruteforce", "annoy", "hnswlib", "faiss-ivf", "faiss-hnsw"} <= set(entries)
    problems = [f"{name}: {problem}" for name, entry in entries.items() if (problem := quick_grid_problem(entry))]
    assert not problems, "; ".join(problems)


def test_the_shipped_hnsw_grids_match_ann_benchmarks():
    entries = load_algorithms()
    ef = [10, 20, 40, 80, 120, 200, 400, 600, 800]
    hnswlib = entries["hnswlib"].run_groups["M-4-96"]
    assert hnswlib["args"] == {"M": [4, 8, 12, 16, 24, 36, 48, 64, 96], "efConstruction": 500}
    assert hnswlib["query_args"] == {"ef": ef}
    assert entries["faiss-hnsw"].run_groups["M-4-64"]["query_args"] == {"efSearch": ef}


@pytest.mark.parametrize("grid, argument", [
    ("args: {M: []}", "'M'"),
    ("query_args: {ef: [10, 20], k: []}", "'k'"),
    ("args: [[1, 2], []]", "1"),
])
def test_an_argument_without_values_is_an_error_not_an_empty_grid(tmp_path, grid, argument):
    path = one_group_file(tmp_path, f"{{{grid}}}")
    assert_config_error(path, "'algo'", "'g'", f"argument {argument} has no values")


def test_empty_metrics_and_unknown_placeholders_are_errors(tmp_path):
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text().replace("[euclidean, angular]", "[]"))
    assert_config_error(path, "'algo'", "'metrics'", "empty")
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text().replace("query_args: [[10]]", "query_args: [['@k']]"))
    assert_config_error(path, "'algo'", "'query_args'", "unknown placeholder '@k'")
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text() + "    base_args: ['@metrc']\n")
    assert_config_error(path, "'algo'", "'base_args'", "'@metrc'")


@pytest.mark.parametrize("name", ["../escape", "a/b", "hnswlib-batch", "-dash", "with space"])
def test_a_name_must_be_safe_as_a_results_directory(tmp_path, name):
    path = entries_file(tmp_path, f"'{name}'")
    assert_config_error(path, f"'{name}'", "rename it")

"""algorithms.yaml: loading, validation messages, grid expansion, selection.

Entries name library folders: these tests make their own under tmp_path (a module.py with a
few wrapper classes) and load their files with `libraries=` that folder.
"""

import textwrap
from typing import Iterator

import pytest
import yaml

from ann_bench.errors import ConfigError, UnknownNameError
from ann_bench.run import definitions
from ann_bench.run.definitions import DEFAULT_FILE, expand_grid, get_definitions, load_algorithms

WRAPPER = """\
from ann_bench.algorithms.base import BaseANN

SPACES = {"euclidean": "l2", "angular": "cosine"}


class Thing(BaseANN):
    metrics = tuple(SPACES)
    package = "thing"


class BitThing(Thing):
    metrics = ("hamming",)
    point_types = ("bit",)
"""

ENTRY = """\
  {name}:
    library: algo
    constructor: Thing
    run_groups:
      g:
        args: [[1, 2]]
        query_args: [[10]]
"""


@pytest.fixture
def libraries(tmp_path):
    """A folder of libraries: "algo" (the module above) and "other" (the same module)."""
    root = tmp_path / "libraries"
    for name in ("algo", "other"):
        (root / name).mkdir(parents=True)
        (root / name / "module.py").write_text(WRAPPER)
    return root


def write(tmp_path, text, name="algorithms.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def entries_file(tmp_path, *names, extra=""):
    body = "algorithms:\n" + "".join(ENTRY.format(name=n) for n in names) + extra
    return write(tmp_path, body)


def one_entry(tmp_path, lines: str, name: str = "algo"):
    """A file of one entry `name` of library "algo" plus `lines` (YAML at the entry's indent)."""
    return write(tmp_path, "algorithms:\n" + ENTRY.format(name=name) + textwrap.indent(textwrap.dedent(lines), "    "))


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


def test_definitions_one_per_build_argument_set_with_every_query_set(tmp_path, libraries):
    path = write(tmp_path, """\
        algorithms:
          algo:
            constructor: Thing
            base_args: ["@metric"]
            run_groups:
              kw:
                args: {M: [4, 8], efConstruction: 500}
                query_args: {ef: [10, 20]}
              pos:
                args: [[1, 2], [3]]
                query_args: [[7, 8]]
        """)
    defs = definitions.definitions_for_entry(load_algorithms(path, libraries)["algo"], "euclidean", 10, 20)
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
    # The library is the entry's name when the entry names none; it names the module and image.
    assert {(d.module, d.image) for d in defs} == {("ann_bench.algorithms.algo.module", "algo")}


def test_quick_grid_replaces_the_run_groups(tmp_path, libraries):
    path = one_entry(tmp_path, "quick:\n  args: [[5]]\n  query_args: [[1, 2]]\n")
    entry = load_algorithms(path, libraries)["algo"]
    quick = definitions.definitions_for_entry(entry, "euclidean", 10, 20, quick=True)
    assert [(d.run_group, d.args, d.query_args) for d in quick] == [("quick", [5], ([1], [2]))]
    assert len(definitions.definitions_for_entry(entry, "euclidean", 10, 20)) == 2


def test_metric_count_and_dimension_are_substituted_everywhere(tmp_path, libraries):
    path = write(tmp_path, """\
        algorithms:
          algo:
            constructor: Thing
            base_args: ["@metric", "@dimension"]
            run_groups:
              g:
                args: {dim: "@dimension", k: ["@count", 3], label: "metric"}
                query_args: [["@count"], ["@metric"]]
        """)
    defs = definitions.definitions_for_entry(load_algorithms(path, libraries)["algo"], "angular", 25, 96)
    assert [d.base_args for d in defs] == [("angular", 96), ("angular", 96)]
    assert [d.args for d in defs] == [
        {"dim": 96, "k": 25, "label": "metric"},  # only the exact "@..." words are replaced
        {"dim": 96, "k": 3, "label": "metric"},
    ]
    assert defs[0].query_args == ([25, "angular"],)


def test_definition_survives_a_round_trip_through_a_dict(tmp_path, libraries):
    entry = load_algorithms(entries_file(tmp_path, "algo"), libraries)["algo"]
    for d in definitions.definitions_for_entry(entry, "euclidean", 10, 20):
        assert definitions.Definition.from_dict(d.to_dict()) == d


# --- validation -----------------------------------------------------------------------------

def assert_config_error(path, libraries, *fragments):
    with pytest.raises(ConfigError) as info:
        load_algorithms(path, libraries)
    message = str(info.value)
    for fragment in (str(path),) + fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_unknown_key_names_file_entry_and_key_with_a_suggestion(tmp_path, libraries):
    path = entries_file(tmp_path, "good", "algo")
    path.write_text(path.read_text() + "    base_arg: ['@metric']\n")
    message = assert_config_error(path, libraries, "'algo'", "'base_arg'")
    assert "did you mean 'base_args'" in message


@pytest.mark.parametrize("key, value, where", [
    ("module", "ann_bench.algorithms.algo", "module.py"),
    ("image", "algo", "library folder"),
    ("metrics", "[euclidean]", "metrics = (...)"),
    ("point_types", "[float]", "point_types = (...)"),
])
def test_a_key_of_the_old_format_says_where_it_lives_now(tmp_path, libraries, key, value, where):
    message = assert_config_error(one_entry(tmp_path, f"{key}: {value}\n"), libraries, "'algo'", f"'{key}'",
                                  "no longer used")
    assert where in message


def test_wrong_type_names_file_entry_and_key(tmp_path, libraries):
    path = one_entry(tmp_path, "base_args: '@metric'\n")
    assert_config_error(path, libraries, "'algo'", "'base_args'", "str")


def test_wrong_type_of_a_flag(tmp_path, libraries):
    assert_config_error(one_entry(tmp_path, "exact: yes please\n"), libraries, "'algo'", "'exact'")


@pytest.mark.parametrize("missing", ["constructor", "run_groups"])
def test_missing_key_names_file_entry_and_key(tmp_path, libraries, missing):
    lines = ENTRY.format(name="algo").splitlines(keepends=True)
    keep = [line for line in lines if not line.strip().startswith(missing + ":")]
    if missing == "run_groups":
        keep = keep[:3]
    path = write(tmp_path, "algorithms:\n" + "".join(keep))
    assert_config_error(path, libraries, "'algo'", f"'{missing}'", "missing")


def test_a_library_without_a_folder_is_named_with_the_closest_folder(tmp_path, libraries):
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text().replace("library: algo", "library: algp"))
    message = assert_config_error(path, libraries, "'algo'", "'library'", "algp/module.py")
    assert "did you mean 'algo'" in message


def test_the_library_defaults_to_the_entrys_name_and_must_then_be_a_folder_name(tmp_path, libraries):
    path = write(tmp_path, "algorithms:\n  other:\n    constructor: Thing\n    run_groups: {g: {args: []}}\n")
    assert load_algorithms(path, libraries)["other"].library == "other"
    path = write(tmp_path, "algorithms:\n  algo-ivf:\n    constructor: Thing\n    run_groups: {g: {args: []}}\n")
    message = assert_config_error(path, libraries, "'algo-ivf'", "'library'", "not a library folder name")
    assert "library: NAME" in message


def test_an_unknown_constructor_is_named_with_the_closest_class(tmp_path, libraries):
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text().replace("constructor: Thing", "constructor: Thng"))
    message = assert_config_error(path, libraries, "'algo'", "'constructor'", "no class 'Thng'")
    assert "did you mean 'Thing'" in message


@pytest.mark.parametrize("body, fragments", [
    ("    metrics = compute()\n", ["Thing.metrics", "compute()", "not a literal"]),
    ("    metrics = ('euclidean', 'cosine')\n", ["Thing.metrics", "unknown metric 'cosine'"]),
    ("    metrics = ()\n", ["Thing.metrics is empty"]),
    ("    point_types = ('float', 'sparse')\n", ["Thing.point_types", "unknown point type 'sparse'"]),
    ("    supports_batch = 'yes'\n", ["Thing.supports_batch must be True or False"]),
    ("    package = None\n", ["Thing.package is not set"]),
    ("    clients = 'forks'\n", ["Thing.clients must be one of 'threads', 'processes', 'connections'"]),
    ("    seeded = 1\n", ["Thing.seeded must be True or False"]),
    ("    index_size = 'rss'\n", ["Thing.index_size must be one of 'memory', 'disk', not 'rss'"]),
])
def test_a_declaration_the_host_cannot_use_names_the_file_class_and_attribute(tmp_path, libraries, body,
                                                                             fragments):
    module = libraries / "algo" / "module.py"
    module.write_text(WRAPPER.replace('    package = "thing"\n', '    package = "thing"\n' + body))
    assert_config_error(entries_file(tmp_path, "algo"), libraries, "'algo'", "'constructor'", str(module),
                        *fragments)


def test_positional_grid_that_is_not_a_list_of_lists_is_rejected(tmp_path, libraries):
    path = one_group_file(tmp_path, "{args: [100, 200]}")
    assert_config_error(path, libraries, "'algo'", "'g'", "'args'")


def one_group_file(tmp_path, group: str):
    """An entry 'algo' whose one run group 'g' is `group`, a YAML flow mapping."""
    return write(tmp_path, f"""\
        algorithms:
          algo:
            constructor: Thing
            run_groups:
              g: {group}
        """)


def test_unknown_key_in_a_run_group(tmp_path, libraries):
    path = one_group_file(tmp_path, "{args: [[1]], querry_args: [[1]]}")
    assert_config_error(path, libraries, "'algo'", "'g'", "'querry_args'")


def test_duplicate_algorithm_names_are_an_error(tmp_path, libraries):
    path = entries_file(tmp_path, "algo", "other", "algo")
    message = assert_config_error(path, libraries, "'algo'")
    assert "twice" in message


def test_yaml_anchors_share_lists_without_being_mistaken_for_duplicates(tmp_path, libraries):
    path = write(tmp_path, """\
        algorithms:
          one:
            library: algo
            constructor: Thing
            run_groups: {g: {args: [[1]], query_args: {ef: &ef [10, 20]}}}
          two:
            library: algo
            constructor: Thing
            run_groups: {g: {args: [[2]], query_args: {ef: *ef}}}
        """)
    entries = load_algorithms(path, libraries)
    defs = definitions.definitions_for_entry(entries["two"], "euclidean", 10, 20)
    assert defs[0].query_args == ({"ef": 10}, {"ef": 20})


def test_yaml_merge_keys_are_not_mistaken_for_duplicates(tmp_path, libraries):
    path = write(tmp_path, """\
        algorithms:
          algo: &base
            constructor: Thing
            run_groups: {g: {args: [[1]]}}
          derived:
            <<: *base
            library: algo
            constructor: BitThing
        """)
    entries = load_algorithms(path, libraries)
    assert entries["derived"].constructor == "BitThing" and entries["derived"].run_groups == {"g": {"args": [[1]]}}


def test_aliases_may_share_values_up_to_the_budget(tmp_path, libraries, monkeypatch):
    monkeypatch.setattr(definitions, "ALIAS_BUDGET", 6)
    shared = """\
        algorithms:
          one:
            library: algo
            constructor: Thing
            run_groups: {{g: {{args: [[1]], query_args: {{ef: &ef [10, 20]}}}}}}
          two:
            library: algo
            constructor: Thing
            run_groups: {aliased}
        """
    # Each *ef stands for 3 values (the list and its two items): two fit in 6, three do not.
    load_algorithms(write(tmp_path, shared.format(aliased="{g: {args: [*ef], query_args: {ef: *ef}}}")), libraries)
    text = shared.format(aliased="{g: {args: [*ef, *ef], query_args: {ef: *ef}}}")
    message = assert_config_error(write(tmp_path, text), libraries, "line 9", "more than 6 values")
    assert str(tmp_path / "algorithms.yaml") in message


def test_merge_keys_count_against_the_alias_budget(tmp_path, libraries, monkeypatch):
    monkeypatch.setattr(definitions, "ALIAS_BUDGET", 3)
    text = """\
        base: &base {a: 1, b: 2}
        algorithms:
          algo: {<<: *base, constructor: Thing, run_groups: {g: {args: [[1]]}}}
        """
    assert_config_error(write(tmp_path, text), libraries, "more than 3 values")


def test_the_shipped_file_is_far_inside_the_bounds():
    loader = definitions._UniqueKeyLoader(DEFAULT_FILE.read_text())
    loader.name = str(DEFAULT_FILE)
    loader.get_single_data()
    assert loader.alias_values < definitions.ALIAS_BUDGET / 10
    entries = load_algorithms()
    assert sum(definitions.run_count(e) for e in entries.values()) < definitions.MAX_RUNS / 10


def _nodes(node: yaml.Node) -> Iterator[yaml.Node]:
    """The node and every node under it; an alias is the very node it names."""
    yield node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _nodes(key)
            yield from _nodes(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _nodes(item)


def test_each_shipped_entry_reads_on_its_own():
    """An alias in algorithms.yaml may share a list between the groups of one entry, never
    reach into another entry (the loader allows that in a user's own file)."""
    root = yaml.compose(DEFAULT_FILE.read_text(), Loader=yaml.SafeLoader)
    [algorithms] = [value for key, value in root.value if key.value == "algorithms"]
    owner: dict[int, str] = {}
    for key, entry in algorithms.value:
        for node in _nodes(entry):
            first = owner.setdefault(id(node), key.value)
            assert first == key.value, f"{key.value} aliases a value of {first} (line {node.start_mark.line + 1})"


@pytest.mark.parametrize("grid", [None, [], {}, [[1, 2], [3]], [[1, 2, 3], ["a", "b"], [None]],
                                  {"M": [4, 8], "ef": 500}, {"a": [1, 2, 3], "b": [1, 2], "c": []}])
def test_grid_size_is_what_expand_grid_makes(grid):
    assert definitions.grid_size(grid) == len(expand_grid(grid))


def test_a_plan_over_the_limit_is_refused_with_its_size_and_largest_entry(tmp_path, libraries):
    body = "algorithms:\n" + ENTRY.format(name="small") + ENTRY.format(name="big").replace(
        "args: [[1, 2]]", "args: {a: [1, 2, 3, 4, 5], b: [1, 2, 3, 4, 5]}").replace(
        "query_args: [[10]]", "query_args: {ef: [1, 2, 3, 4]}")
    entries = load_algorithms(write(tmp_path, body), libraries)
    with pytest.raises(definitions.PlanTooLarge) as info:
        get_definitions(entries, "euclidean", "float", 10, 20, max_runs=101)
    assert "102 runs" in str(info.value) and "'big' alone has 100" in str(info.value)
    assert len(get_definitions(entries, "euclidean", "float", 10, 20, max_runs=102)) == 27
    assert len(get_definitions(entries, "euclidean", "float", 10, 20, names=["small"], max_runs=2)) == 2


def test_not_yaml_and_no_algorithms_mapping_and_missing_file(tmp_path, libraries):
    assert_config_error(write(tmp_path, "algorithms: [unclosed\n", "bad.yaml"), libraries, "not valid YAML")
    assert_config_error(write(tmp_path, "algos: {}\n", "empty.yaml"), libraries, "'algorithms")
    with pytest.raises(ConfigError, match="cannot read"):
        load_algorithms(tmp_path / "absent.yaml", libraries)


# --- what an entry says of its library: image template, apt, local environment --------------

def test_library_keys_default_to_the_wheel_template_and_the_shared_environment(tmp_path, libraries):
    entry = load_algorithms(entries_file(tmp_path, "algo"), libraries)["algo"]
    assert (entry.docker, entry.apt, entry.own_environment) == ("wheel", (), False)
    entry = load_algorithms(one_entry(tmp_path, "docker: compile\napt: [libfoo-dev]\nlocal: own\n"),
                            libraries)["algo"]
    assert (entry.docker, entry.apt, entry.own_environment) == ("compile", ("libfoo-dev",), True)


@pytest.mark.parametrize("lines, fragments", [
    ("docker: compiled\n", ["'docker'", "unknown template 'compiled'", "did you mean 'compile'"]),
    ("apt: [libfoo-dev]\n", ["'apt'", "only the compile template", "docker: compile"]),
    ("docker: compile\napt: ['libfoo; rm -rf /']\n", ["'apt'", "not a Debian package name"]),
    ("local: private\n", ["'local'", "'own'", "not 'private'"]),
])
def test_a_bad_library_key_names_file_entry_and_key(tmp_path, libraries, lines, fragments):
    assert_config_error(one_entry(tmp_path, lines), libraries, "'algo'", *fragments)


def test_a_library_with_its_own_dockerfile_takes_no_template_key(tmp_path, libraries):
    (libraries / "algo" / "Dockerfile").write_text("FROM ann-bench-base\n")
    assert load_algorithms(entries_file(tmp_path, "algo"), libraries)["algo"].docker == "wheel"
    assert_config_error(one_entry(tmp_path, "docker: compile\n"), libraries, "'algo'", "'docker'",
                        "its own", "Dockerfile")


@pytest.mark.parametrize("key, first, second", [
    ("docker", "docker: compile\n", ""),
    ("local", "local: own\n", "local: shared\n"),
    ("apt", "docker: compile\napt: [liba-dev]\n", "docker: compile\napt: [libb-dev]\n"),
])
def test_entries_of_one_library_that_disagree_are_an_error_naming_both(tmp_path, libraries, key, first, second):
    text = ("algorithms:\n" + ENTRY.format(name="one") + textwrap.indent(first, "    ")
            + ENTRY.format(name="two") + textwrap.indent(second, "    "))
    message = assert_config_error(write(tmp_path, text), libraries, f"'{key}'", "'one'", "'two'", "'algo'")
    assert "give both the same" in message


# --- selection ------------------------------------------------------------------------------

def test_disabled_entries_are_skipped_unless_named(tmp_path, libraries):
    # (not "on"/"off": YAML 1.1 reads those keys as booleans)
    path = entries_file(tmp_path, "enabled", "resting")
    path.write_text(path.read_text() + "    disabled: true\n")
    entries = load_algorithms(path, libraries)
    assert entries["resting"].disabled and not entries["enabled"].disabled

    def algorithms(**kw):
        return sorted({d.algorithm for d in get_definitions(entries, "euclidean", "float", 10, 20, **kw)})

    assert algorithms() == ["enabled"]
    assert algorithms(names=["resting"]) == ["resting"]
    assert algorithms(include_disabled=True) == ["enabled", "resting"]


def test_entries_run_on_the_metrics_and_point_types_their_class_declares(tmp_path, libraries):
    path = write(tmp_path, "algorithms:\n" + ENTRY.format(name="dense") + ENTRY.format(name="bits").replace(
        "constructor: Thing", "constructor: BitThing"))
    entries = load_algorithms(path, libraries)

    def algorithms(metric, point_type):
        return sorted({d.algorithm for d in get_definitions(entries, metric, point_type, 10, 20)})

    assert algorithms("angular", "float") == ["dense"]  # tuple(SPACES) reads the dict's keys
    assert algorithms("hamming", "bit") == ["bits"]  # inherited point_types are overridden
    assert algorithms("hamming", "float") == [] and algorithms("euclidean", "bit") == []
    assert algorithms("dot", "float") == []


def test_unknown_algorithm_name_lists_close_names(tmp_path, libraries):
    entries = load_algorithms(entries_file(tmp_path, "hnswlib", "faiss_hnsw", "annoy"), libraries)
    with pytest.raises(UnknownNameError) as info:
        get_definitions(entries, "euclidean", "float", 10, 20, names=["hnswlb"])
    message = str(info.value)
    assert "'hnswlb'" in message and "hnswlib" in message


@pytest.mark.parametrize("grid, argument", [
    ("args: {M: []}", "'M'"),
    ("query_args: {ef: [10, 20], k: []}", "'k'"),
    ("args: [[1, 2], []]", "1"),
])
def test_an_argument_without_values_is_an_error_not_an_empty_grid(tmp_path, libraries, grid, argument):
    path = one_group_file(tmp_path, f"{{{grid}}}")
    assert_config_error(path, libraries, "'algo'", "'g'", f"argument {argument} has no values")


def test_unknown_placeholders_are_errors(tmp_path, libraries):
    path = entries_file(tmp_path, "algo")
    path.write_text(path.read_text().replace("query_args: [[10]]", "query_args: [['@k']]"))
    assert_config_error(path, libraries, "'algo'", "'query_args'", "unknown placeholder '@k'")
    assert_config_error(one_entry(tmp_path, "base_args: ['@metrc']\n"), libraries, "'algo'", "'base_args'",
                        "'@metrc'")


@pytest.mark.parametrize("name", ["../escape", "a/b", "hnswlib-batch", "-dash", "with space"])
def test_a_name_must_be_safe_as_a_results_directory(tmp_path, libraries, name):
    path = entries_file(tmp_path, f"'{name}'")
    assert_config_error(path, libraries, f"'{name}'", "rename it")


# --- the shipped file -------------------------------------------------------------------------

def test_every_shipped_quick_grid_has_two_or_three_points():
    """A quick grid (run.py --quick, the conformance suite) is 2-3 points: builds times query
    sets, on every metric; 1 only for an entry without knobs (its full grid is one point)."""
    problems = []
    for name, entry in load_algorithms().items():
        for metric in entry.metrics:
            if not entry.quick:
                problems.append(f"{name}: no quick grid")
                break
            quick = sum(len(d.query_args) for d in definitions.definitions_for_entry(entry, metric, 10, 20, True))
            full = sum(len(d.query_args) for d in definitions.definitions_for_entry(entry, metric, 10, 20))
            if not (quick in (2, 3) or quick == full == 1):
                problems.append(f"{name} on {metric}: {quick} quick points")
    assert not problems, "; ".join(problems)

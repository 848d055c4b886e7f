"""algorithms.yaml: load, validate and expand into one Definition per build-argument set.

An entry says what to run; everything else about a library is in its folder,
ann_bench/algorithms/<library>/ (ann_bench/algorithms/folders.py), and its wrapper class
declares the metrics and point types it supports (read without importing it: declared.py).
Format (grids are data):

    algorithms:
      hnswlib-small:
        library: hnswlib               # its folder (default: the entry's name)
        constructor: HnswLib           # a class of the folder's module.py
        exact: false                   # exact algorithms must reach recall 1.0
        disabled: false                # run only when named (--algorithm)
        base_args: ["@metric"]         # passed first to every constructor
        effort: ef                     # more is slower and no less accurate: sets run cheapest
                                       #   first, and those past recall 1.0 are skipped (run/effort.py)
        run_groups:
          M-4-96:
            args: {M: [4, 8, 16], efConstruction: 500}   # mapping: keyword arguments
            query_args: {ef: [10, 20, 40]}
          other:
            args: [[100, 200]]         # list of lists: positional arguments
            query_args: [[10, 20]]
        quick:                         # a small grid for smoke runs (run.py --quick)
          args: {M: 16, efConstruction: 200}
          query_args: {ef: [20, 80]}
        docker: compile                # its image: wheel (the default) or compile, from
        apt: [libopenblas-dev]         #   install/Dockerfile.<docker>; apt: more packages to compile with
        local: own                     # --local runs it in .venvs/<library>, not the shared .venv

A grid is the cartesian product of its value lists; a scalar is a list of one value.
"@metric", "@count" and "@dimension" are replaced by the dataset's distance, k and dimension.
`docker`, `apt` and `local` describe the library, so every entry of a library says the same.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..algorithms.declared import Declared, class_names, read_declared
from ..algorithms.folders import NAME as LIBRARY_NAME
from ..algorithms.folders import LibraryFolder, library_names
from ..errors import ConfigError, UnknownNameError, UserError
from ..paths import ALGORITHMS_DIR, DEFAULT_DEFINITIONS
from ..results.files import algorithm_of
from .effort import check_effort, in_effort_order

log = logging.getLogger(__name__)

DEFAULT_FILE = DEFAULT_DEFINITIONS
METRICS = ("euclidean", "angular", "dot", "hamming", "jaccard")
POINT_TYPES = ("float", "bit")
PLACEHOLDERS = ("@metric", "@count", "@dimension")
# A name becomes a directory under results/; "<name>-batch" is the batch-mode directory.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Results one command may plan (run.py --max-runs raises it): a typo in a grid can ask for
# millions, which would take minutes and gigabytes to expand and centuries to run.
MAX_RUNS = 100_000

DOCKER_TEMPLATES = ("wheel", "compile")  # install/Dockerfile.<template>
LOCAL_ENVIRONMENTS = ("shared", "own")

# key -> (required, accepted types, description used in error messages)
_ENTRY_KEYS: dict[str, tuple[bool, tuple[type, ...], str]] = {
    "library": (False, (str,), "a library folder of ann_bench/algorithms/ (default: the entry's name)"),
    "constructor": (True, (str,), "a class name in the library's module.py"),
    "run_groups": (True, (dict,), "a mapping of group name to {args, query_args}"),
    "base_args": (False, (list,), "a list of arguments"),
    "exact": (False, (bool,), "true or false"),
    "disabled": (False, (bool,), "true or false"),
    "quick": (False, (dict,), "a run group {args, query_args}"),
    "description": (False, (str,), "a sentence"),
    "docker": (False, (str,), f"the image's template, one of {', '.join(DOCKER_TEMPLATES)}"),
    "apt": (False, (list,), "a list of Debian packages the compile template installs too"),
    "local": (False, (str,), "'own' (its own environment for --local) or 'shared'"),
    "effort": (False, (str,), "the query argument that buys accuracy with time (e.g. ef)"),
}
# Keys of the old format, and where what they said lives now.
_RETIRED_KEYS = {
    "module": "the wrapper is the library folder's module.py (name the folder with 'library')",
    "image": "the image is named after the library folder (name the folder with 'library')",
    "metrics": "the wrapper class declares them (metrics = (...) in module.py)",
    "point_types": "the wrapper class declares them (point_types = (...) in module.py)",
}
_LIBRARY_KEYS = ("docker", "apt", "local")  # the same in every entry of a library
_GROUP_KEYS = ("args", "query_args")


class PlanTooLarge(UserError):
    """The grids chosen would make more results than --max-runs allows."""


@dataclass(frozen=True)
class Definition:
    """One index to build: an algorithm with one set of build arguments.

    `args` is a list (positional) or a dict (keywords); `query_args` lists every set of
    query arguments to run against the built index, each a list or a dict likewise.
    """

    algorithm: str
    run_group: str
    module: str  # the wrapper's import path: ann_bench.algorithms.<library>.module
    constructor: str
    image: str  # the library folder's name: its image, ann-bench-<image>, and .venvs/<image>
    base_args: tuple = ()
    args: Any = field(default_factory=list)
    query_args: tuple = ((),)
    exact: bool = False
    disabled: bool = False
    effort: str | None = None  # the query argument whose sets run cheapest first (run/effort.py)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["base_args"] = list(self.base_args)
        data["query_args"] = [_plain(q) for q in self.query_args]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Definition":
        data = dict(data)
        data["base_args"] = tuple(data.get("base_args", ()))
        data["query_args"] = tuple(data.get("query_args", [[]]))
        return cls(**data)

    def constructor_call(self) -> tuple[list, dict]:
        """Positional and keyword arguments for the wrapper's constructor."""
        if isinstance(self.args, dict):
            return list(self.base_args), dict(self.args)
        return list(self.base_args) + list(self.args), {}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    folder: LibraryFolder
    constructor: str
    declared: Declared  # what the constructor's class declares, read from module.py
    base_args: tuple
    run_groups: dict
    quick: dict | None
    exact: bool
    disabled: bool
    description: str = ""
    docker: str = "wheel"
    apt: tuple[str, ...] = ()
    local: str = "shared"
    effort: str | None = None

    @property
    def library(self) -> str:
        return self.folder.name

    @property
    def module(self) -> str:
        return self.folder.module

    @property
    def image(self) -> str:
        return self.folder.name

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.declared.metrics

    @property
    def point_types(self) -> tuple[str, ...]:
        return self.declared.point_types

    @property
    def own_environment(self) -> bool:
        return self.local == "own"

    def supports(self, metric: str, point_type: str = "float") -> bool:
        return metric in self.metrics and point_type in self.point_types


# Values that aliases may add to the file in all. An alias shares one value (a list of query
# arguments used by several groups); nested aliases multiply, and a few hundred bytes of them
# ("billion laughs") expand to more values than the grids could ever be walked through.
ALIAS_BUDGET = 10_000
# Entries are a few levels deep; thousands of "[" would exhaust Python's stack in the parser.
MAX_DEPTH = 50


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a duplicate algorithm must be an error.

    It also bounds, as it composes, what a small file can make: the values its aliases stand
    for, aliases inside the value they name (a cycle), and nesting. Each is an error before
    anything is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_values = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values in it, aliases expanded
        self._open: list[str | None] = []  # anchors of the collections being composed, outermost first

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            self._count_alias(event)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if len(self._open) >= MAX_DEPTH:
            raise ConfigError(f"{self.name}: line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} "
                              f"levels deep; an entry needs a few")
        self._open.append(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.pop()

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        where = f"{self.name}: line {event.start_mark.line + 1}"
        if event.anchor in self._open:
            raise ConfigError(f"{where}: alias *{event.anchor} is inside the value it names (a cycle); "
                              f"write the value out")
        self.alias_values += self._size(self.anchors[event.anchor])
        if self.alias_values > ALIAS_BUDGET:
            raise ConfigError(f"{where}: aliases expand to more than {ALIAS_BUDGET:,} values (nested aliases "
                              f"multiply); write the values out or alias fewer")

    def _size(self, node: yaml.Node) -> int:
        """Values in node with its aliases expanded; each node is counted once (memo)."""
        size = self._sizes.get(id(node))
        if size is None:
            children = (node.value if isinstance(node, yaml.SequenceNode)
                        else [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                        else [])
            size = 1 + sum(self._size(child) for child in children)
            self._sizes[id(node)] = size
        return size


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *anchor" is flattened below, not a key of its own
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: '{key}' is defined twice "
                f"(first at line {seen[key] + 1}); rename or remove one"
            )
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return {
        loader.construct_object(k, deep=deep): loader.construct_object(v, deep=deep)
        for k, v in node.value
    }


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _check_group(where: str, group: Any) -> None:
    if not isinstance(group, dict):
        raise ConfigError(f"{where}: must be a mapping with 'args' and 'query_args'")
    for key in group:
        if key not in _GROUP_KEYS:
            raise ConfigError(f"{where}: key '{key}': unknown (expected one of {', '.join(_GROUP_KEYS)})")
    for key in _GROUP_KEYS:
        value = group.get(key)
        if value is not None and not isinstance(value, (list, dict)):
            raise ConfigError(
                f"{where}: key '{key}': must be a list of value lists (positional) "
                f"or a mapping of name to values (keywords), not {type(value).__name__}"
            )
        if isinstance(value, list) and any(not isinstance(v, list) for v in value):
            raise ConfigError(
                f"{where}: key '{key}': a positional grid is a list of lists, one list of values "
                f"per argument, e.g. [[10, 20]]"
            )
        values = value.items() if isinstance(value, dict) else enumerate(value or [])
        for argument, argument_values in values:
            if argument_values == []:
                raise ConfigError(f"{where}: key '{key}': argument {argument!r} has no values, so the grid "
                                  f"would be empty; give at least one")
        _check_placeholders(f"{where}: key '{key}'", value)


def _check_placeholders(where: str, value: Any) -> None:
    """A string starting with "@" must be one we substitute, or it reaches a constructor as is."""
    if isinstance(value, str) and value.startswith("@") and value not in PLACEHOLDERS:
        raise ConfigError(f"{where}: unknown placeholder '{value}' (known: {', '.join(PLACEHOLDERS)})")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        _check_placeholders(where, item)


def _did_you_mean(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _parse_entry(path: Path, name: str, raw: Any, root: Path) -> AlgorithmEntry:
    where = f"{path}: algorithm '{name}'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping of keys ({', '.join(_ENTRY_KEYS)})")
    for key in raw:
        if key in _RETIRED_KEYS:
            raise ConfigError(f"{where}: key '{key}': no longer used: {_RETIRED_KEYS[key]}; remove it")
        if key not in _ENTRY_KEYS:
            raise ConfigError(f"{where}: key '{key}': unknown key{_did_you_mean(str(key), _ENTRY_KEYS)}")
    for key, (required, types, what) in _ENTRY_KEYS.items():
        if key not in raw:
            if required:
                raise ConfigError(f"{where}: key '{key}': missing; it must be {what}")
            continue
        if not isinstance(raw[key], types):
            raise ConfigError(f"{where}: key '{key}': must be {what}, not {type(raw[key]).__name__}")
    folder = _library_folder(where, raw, name, root)
    declared = _declared(where, folder, raw["constructor"])
    _check_library_keys(where, raw, folder)
    _check_placeholders(f"{where}: key 'base_args'", raw.get("base_args", []))
    if not raw["run_groups"]:
        raise ConfigError(f"{where}: key 'run_groups': empty; give at least one group")
    for group_name, group in raw["run_groups"].items():
        _check_group(f"{where}: run group '{group_name}'", group)
    if "quick" in raw:
        _check_group(f"{where}: key 'quick'", raw["quick"])
    if "effort" in raw:
        groups = [*raw["run_groups"].values(), *([raw["quick"]] if "quick" in raw else [])]
        problem = check_effort(where, raw["effort"], [g.get("query_args") for g in groups])
        if problem:
            raise ConfigError(problem)
    return AlgorithmEntry(
        name=name,
        folder=folder,
        constructor=raw["constructor"],
        declared=declared,
        base_args=tuple(raw.get("base_args", [])),
        run_groups=raw["run_groups"],
        quick=raw.get("quick"),
        exact=raw.get("exact", False),
        disabled=raw.get("disabled", False),
        description=raw.get("description", ""),
        docker=raw.get("docker", "wheel"),
        apt=tuple(raw.get("apt", [])),
        local=raw.get("local", "shared"),
        effort=raw.get("effort"),
    )


def _library_folder(where: str, raw: dict, name: str, root: Path) -> LibraryFolder:
    library = raw.get("library", name)
    given = "library" in raw
    if not LIBRARY_NAME.fullmatch(library):
        what = f"'{library}'" if given else f"not given, and the entry's name '{library}'"
        raise ConfigError(f"{where}: key 'library': {what} is not a library folder name (lowercase letters, "
                          f"digits and '_', starting with a letter); name its folder with 'library: NAME'")
    folder = LibraryFolder(library, root)
    if not folder.module_file.is_file():
        what = "" if given else "not given, and "
        raise ConfigError(f"{where}: key 'library': {what}there is no {folder.module_file}"
                          f"{_did_you_mean(library, library_names(root))}; a library is a folder with its "
                          f"wrapper in module.py")
    return folder


def _declared(where: str, folder: LibraryFolder, constructor: str) -> Declared:
    classes = class_names(folder.module_file)
    if constructor not in classes:
        raise ConfigError(f"{where}: key 'constructor': no class '{constructor}' in {folder.module_file}"
                          f"{_did_you_mean(constructor, classes)}")
    try:
        declared = read_declared(folder.module_file, constructor)
    except ConfigError as e:
        raise ConfigError(f"{where}: key 'constructor': {e}") from None
    if not declared.metrics:
        raise ConfigError(f"{where}: key 'constructor': {folder.module_file}: {constructor}.metrics is empty; "
                          f"declare the metrics it supports ({', '.join(METRICS)})")
    for attribute, known in (("metrics", METRICS), ("point_types", POINT_TYPES)):
        for value in getattr(declared, attribute):
            if value not in known:
                raise ConfigError(f"{where}: key 'constructor': {folder.module_file}: {constructor}.{attribute}: "
                                  f"unknown {attribute[:-1].replace('_', ' ')} '{value}' (known: {', '.join(known)})")
    if not declared.package:
        raise ConfigError(f"{where}: key 'constructor': {folder.module_file}: {constructor}.package is not set; "
                          f"declare the PyPI distribution whose version results record (package = \"...\")")
    return declared


def _check_library_keys(where: str, raw: dict, folder: LibraryFolder) -> None:
    docker = raw.get("docker", "wheel")
    if docker not in DOCKER_TEMPLATES:
        raise ConfigError(f"{where}: key 'docker': unknown template '{docker}'"
                          f"{_did_you_mean(docker, DOCKER_TEMPLATES)} (known: {', '.join(DOCKER_TEMPLATES)})")
    if folder.dockerfile.is_file():
        for key in ("docker", "apt"):
            if key in raw:
                raise ConfigError(f"{where}: key '{key}': the library has its own {folder.dockerfile}, which this key "
                                  f"would not change; remove it")
    apt = raw.get("apt", [])
    if apt and docker != "compile":
        raise ConfigError(f"{where}: key 'apt': only the compile template installs Debian packages; add "
                          f"'docker: compile', or give the library a Dockerfile of its own")
    for package in apt:
        if not isinstance(package, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", package):
            raise ConfigError(f"{where}: key 'apt': {package!r} is not a Debian package name")
    local = raw.get("local", "shared")
    if local not in LOCAL_ENVIRONMENTS:
        raise ConfigError(f"{where}: key 'local': must be 'own' (an environment of its own, .venvs/"
                          f"{folder.name}, for a library whose pins conflict with the shared .venv) or 'shared', "
                          f"not {local!r}")


def _check_libraries_agree(path: Path, entries: dict[str, AlgorithmEntry]) -> None:
    """docker, apt and local describe a library: entries of one library that disagree are an error."""
    first: dict[str, AlgorithmEntry] = {}
    for entry in entries.values():
        other = first.setdefault(entry.library, entry)
        for key in _LIBRARY_KEYS:
            mine, theirs = getattr(entry, key), getattr(other, key)
            if mine != theirs:
                raise ConfigError(f"{path}: algorithm '{entry.name}': key '{key}': {_plain(mine)!r}, but algorithm "
                                  f"'{other.name}' of the same library '{entry.library}' has {_plain(theirs)!r}; "
                                  f"a library has one {key}: give both the same")


def load_algorithms(path: Path | str = DEFAULT_FILE, libraries: Path = ALGORITHMS_DIR) -> dict[str, AlgorithmEntry]:
    """Parse and validate the file; every problem names the file, the entry and the key.

    `libraries` is where the library folders are (another place only in tests)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror}); pass an existing file with --definitions") from e
    loader = _UniqueKeyLoader(text)
    loader.name = str(path)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from e
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(data.get("algorithms"), dict):
        raise ConfigError(f"{path}: the file must have a top-level mapping 'algorithms: {{name: entry}}'")
    for name in data["algorithms"]:
        if not isinstance(name, str):
            # YAML reads unquoted on/off/yes/no as booleans, numbers as numbers.
            raise ConfigError(f"{path}: algorithm name {name!r} must be a string; quote it")
        if not _NAME.fullmatch(name) or algorithm_of(name) != name:  # a mode's suffix would be read as one
            raise ConfigError(f"{path}: algorithm '{name}': a name may hold only letters, digits, '.', '_' and "
                              f"'-', must start with a letter or digit and must not end with '-batch' or "
                              f"'-c<number>'; rename it")
    entries = {name: _parse_entry(path, name, raw, libraries) for name, raw in data["algorithms"].items()}
    _check_libraries_agree(path, entries)
    return entries


def _substitute(value: Any, subs: dict[str, Any]) -> Any:
    if isinstance(value, str) and value in subs:
        return subs[value]
    if isinstance(value, list):
        return [_substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, subs) for k, v in value.items()}
    return value


def expand_grid(grid: Any) -> list:
    """Cartesian product of a grid: a list of value lists, or a mapping of name to values."""
    if grid is None or grid == [] or grid == {}:
        return [[]]
    if isinstance(grid, dict):
        names = list(grid)
        values = [v if isinstance(v, list) else [v] for v in grid.values()]
        return [dict(zip(names, combo)) for combo in itertools.product(*values)]
    return [list(combo) for combo in itertools.product(*grid)]


def grid_size(grid: Any) -> int:
    """How many points expand_grid(grid) makes, counted without making them."""
    if not grid:
        return 1
    values = grid.values() if isinstance(grid, dict) else grid
    return math.prod(len(v) if isinstance(v, list) else 1 for v in values)


def _groups(entry: AlgorithmEntry, quick: bool) -> dict:
    return {"quick": entry.quick} if quick and entry.quick else entry.run_groups


def run_count(entry: AlgorithmEntry, quick: bool = False) -> int:
    """Results the entry's grids make: build-argument sets times query-argument sets."""
    return sum(grid_size(g.get("args")) * grid_size(g.get("query_args")) for g in _groups(entry, quick).values())


def check_plan_size(entries: list[AlgorithmEntry], quick: bool, max_runs: int) -> None:
    """Refuse, before a grid is expanded, a plan of more than max_runs results."""
    sizes = {entry.name: run_count(entry, quick) for entry in entries}
    total = sum(sizes.values())
    if total > max_runs:
        largest = max(sizes, key=lambda name: sizes[name])
        raise PlanTooLarge(f"the plan has {total:,} runs (build-argument sets x query-argument sets), more "
                           f"than the limit of {max_runs:,} ('{largest}' alone has {sizes[largest]:,}); choose "
                           f"smaller grids or fewer algorithms (--quick, --algorithm), or raise the limit with "
                           f"--max-runs {total}")


def definitions_for_entry(entry: AlgorithmEntry, metric: str, count: int, dimension: int,
                          quick: bool = False) -> list[Definition]:
    subs = dict(zip(PLACEHOLDERS, (metric, count, dimension)))
    groups = _groups(entry, quick)
    definitions = []
    for group_name, group in groups.items():
        query_args = in_effort_order(tuple(expand_grid(_substitute(group.get("query_args"), subs))), entry.effort)
        for args in expand_grid(_substitute(group.get("args"), subs)):
            definitions.append(
                Definition(
                    algorithm=entry.name,
                    run_group=group_name,
                    module=entry.module,
                    constructor=entry.constructor,
                    image=entry.library,
                    base_args=tuple(_substitute(list(entry.base_args), subs)),
                    args=args,
                    query_args=query_args,
                    exact=entry.exact,
                    disabled=entry.disabled,
                    effort=entry.effort,
                )
            )
    return definitions


def closest_names(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.4)
    return ", ".join(close) if close else ", ".join(sorted(names)[:8])


def select(entries: dict[str, AlgorithmEntry], names: list[str] | None) -> list[AlgorithmEntry]:
    """The entries named (all when names is empty); an unknown name is an error."""
    if not names:
        return list(entries.values())
    for name in names:
        if name not in entries:
            raise UnknownNameError(
                f"unknown algorithm '{name}'; closest: {closest_names(name, entries)} "
                f"(see run.py --list-algorithms)"
            )
    return [entries[name] for name in names]


def get_definitions(entries: dict[str, AlgorithmEntry], metric: str, point_type: str, count: int,
                    dimension: int, names: list[str] | None = None, quick: bool = False,
                    include_disabled: bool = False, max_runs: int = MAX_RUNS) -> list[Definition]:
    """Every definition that applies to a dataset, in file order; PlanTooLarge when they would
    make more than max_runs results.

    An algorithm named explicitly runs even when disabled; unnamed disabled ones are left out.
    """
    chosen = [entry for entry in select(entries, names)
              if (include_disabled or names or not entry.disabled) and entry.supports(metric, point_type)]
    check_plan_size(chosen, quick, max_runs)
    definitions = []
    for entry in chosen:
        definitions.extend(definitions_for_entry(entry, metric, count, dimension, quick))
    return definitions


def capable_only(definitions: list[Definition], entries: dict[str, AlgorithmEntry], dataset: str,
                 needs: tuple[str, ...], kind: str, section: str) -> list[Definition]:
    """The definitions whose wrapper declares every capability in `needs` (e.g. supports_filter
    for a filtered set); those left out are logged with why, and a UserError says so when none
    is left."""
    chosen, left_out = [], set()
    for d in definitions:
        missing = [need for need in needs if not getattr(entries[d.algorithm].declared, need)]
        if missing:
            left_out.add(f"{d.algorithm} (no {' or '.join(missing)})")
        else:
            chosen.append(d)
    if left_out:
        log.warning("%s is a %s dataset; left out: %s", dataset, kind, ", ".join(sorted(left_out)))
    if not chosen:
        names = ", ".join(sorted({d.algorithm for d in definitions}))
        raise UserError(f"{dataset} is a {kind} dataset and none of {names} declares {' and '.join(needs)}; "
                        f"see README, {section}")
    return chosen

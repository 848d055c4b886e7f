"""algorithms.yaml: load, validate and expand into one Definition per build-argument set.

Format (grids are data; YAML anchors share repeated lists):

    algorithms:
      hnswlib:
        module: ann_bench.algorithms.hnswlib_wrapper
        constructor: HnswLib
        image: hnswlib                 # built from install/Dockerfile.hnswlib (default: name)
        metrics: [euclidean, angular]
        point_types: [float]           # default [float]
        exact: false                   # exact algorithms must reach recall 1.0
        disabled: false
        base_args: ["@metric"]         # passed first to every constructor
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

A grid is the cartesian product of its value lists; a scalar is a list of one value.
"@metric", "@count" and "@dimension" are replaced by the dataset's distance, k and dimension.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, UnknownNameError
from ..paths import DEFAULT_DEFINITIONS

DEFAULT_FILE = DEFAULT_DEFINITIONS
METRICS = ("euclidean", "angular", "dot", "hamming", "jaccard")
POINT_TYPES = ("float", "bit")
PLACEHOLDERS = ("@metric", "@count", "@dimension")
# A name becomes a directory under results/; "<name>-batch" is the batch-mode directory.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# key -> (required, accepted types, description used in error messages)
_ENTRY_KEYS: dict[str, tuple[bool, tuple[type, ...], str]] = {
    "module": (True, (str,), "a Python module path"),
    "constructor": (True, (str,), "a class name in that module"),
    "metrics": (True, (list,), "a list of metrics"),
    "run_groups": (True, (dict,), "a mapping of group name to {args, query_args}"),
    "image": (False, (str,), "an image name"),
    "point_types": (False, (list,), "a list of point types"),
    "base_args": (False, (list,), "a list of arguments"),
    "exact": (False, (bool,), "true or false"),
    "disabled": (False, (bool,), "true or false"),
    "quick": (False, (dict,), "a run group {args, query_args}"),
    "description": (False, (str,), "a sentence"),
}
_GROUP_KEYS = ("args", "query_args")


@dataclass(frozen=True)
class Definition:
    """One index to build: an algorithm with one set of build arguments.

    `args` is a list (positional) or a dict (keywords); `query_args` lists every set of
    query arguments to run against the built index, each a list or a dict likewise.
    """

    algorithm: str
    run_group: str
    module: str
    constructor: str
    image: str
    base_args: tuple = ()
    args: Any = field(default_factory=list)
    query_args: tuple = ((),)
    exact: bool = False
    disabled: bool = False

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
    module: str
    constructor: str
    image: str
    metrics: tuple[str, ...]
    point_types: tuple[str, ...]
    base_args: tuple
    run_groups: dict
    quick: dict | None
    exact: bool
    disabled: bool
    description: str = ""

    def supports(self, metric: str, point_type: str = "float") -> bool:
        return metric in self.metrics and point_type in self.point_types


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a duplicate algorithm must be an error."""


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


def _parse_entry(path: Path, name: str, raw: Any) -> AlgorithmEntry:
    where = f"{path}: algorithm '{name}'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping of keys ({', '.join(_ENTRY_KEYS)})")
    for key in raw:
        if key not in _ENTRY_KEYS:
            close = difflib.get_close_matches(str(key), _ENTRY_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: key '{key}': unknown key{hint}")
    for key, (required, types, what) in _ENTRY_KEYS.items():
        if key not in raw:
            if required:
                raise ConfigError(f"{where}: key '{key}': missing; it must be {what}")
            continue
        if not isinstance(raw[key], types):
            raise ConfigError(f"{where}: key '{key}': must be {what}, not {type(raw[key]).__name__}")
    if not raw["metrics"]:
        raise ConfigError(f"{where}: key 'metrics': empty; list the metrics it supports ({', '.join(METRICS)})")
    for metric in raw["metrics"]:
        if metric not in METRICS:
            raise ConfigError(f"{where}: key 'metrics': unknown metric '{metric}' (known: {', '.join(METRICS)})")
    point_types = raw.get("point_types", ["float"])
    for point_type in point_types:
        if point_type not in POINT_TYPES:
            raise ConfigError(
                f"{where}: key 'point_types': unknown point type '{point_type}' (known: {', '.join(POINT_TYPES)})"
            )
    _check_placeholders(f"{where}: key 'base_args'", raw.get("base_args", []))
    if not raw["run_groups"]:
        raise ConfigError(f"{where}: key 'run_groups': empty; give at least one group")
    for group_name, group in raw["run_groups"].items():
        _check_group(f"{where}: run group '{group_name}'", group)
    if "quick" in raw:
        _check_group(f"{where}: key 'quick'", raw["quick"])
    return AlgorithmEntry(
        name=name,
        module=raw["module"],
        constructor=raw["constructor"],
        image=raw.get("image", name),
        metrics=tuple(raw["metrics"]),
        point_types=tuple(point_types),
        base_args=tuple(raw.get("base_args", [])),
        run_groups=raw["run_groups"],
        quick=raw.get("quick"),
        exact=raw.get("exact", False),
        disabled=raw.get("disabled", False),
        description=raw.get("description", ""),
    )


def load_algorithms(path: Path | str = DEFAULT_FILE) -> dict[str, AlgorithmEntry]:
    """Parse and validate the file; every problem names the file, the entry and the key."""
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
        if not _NAME.fullmatch(name) or name.endswith("-batch"):
            raise ConfigError(f"{path}: algorithm '{name}': a name may hold only letters, digits, '.', '_' and "
                              f"'-', must start with a letter or digit and must not end with '-batch'; rename it")
    return {name: _parse_entry(path, name, raw) for name, raw in data["algorithms"].items()}


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


def definitions_for_entry(entry: AlgorithmEntry, metric: str, count: int, dimension: int,
                          quick: bool = False) -> list[Definition]:
    subs = dict(zip(PLACEHOLDERS, (metric, count, dimension)))
    groups = {"quick": entry.quick} if quick and entry.quick else entry.run_groups
    definitions = []
    for group_name, group in groups.items():
        query_args = tuple(expand_grid(_substitute(group.get("query_args"), subs)))
        for args in expand_grid(_substitute(group.get("args"), subs)):
            definitions.append(
                Definition(
                    algorithm=entry.name,
                    run_group=group_name,
                    module=entry.module,
                    constructor=entry.constructor,
                    image=entry.image,
                    base_args=tuple(_substitute(list(entry.base_args), subs)),
                    args=args,
                    query_args=query_args,
                    exact=entry.exact,
                    disabled=entry.disabled,
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
                    include_disabled: bool = False) -> list[Definition]:
    """Every definition that applies to a dataset, in file order.

    An algorithm named explicitly runs even when disabled; unnamed disabled ones are left out.
    """
    chosen = select(entries, names)
    definitions = []
    for entry in chosen:
        if entry.disabled and not (include_disabled or names):
            continue
        if not entry.supports(metric, point_type):
            continue
        definitions.extend(definitions_for_entry(entry, metric, count, dimension, quick))
    return definitions

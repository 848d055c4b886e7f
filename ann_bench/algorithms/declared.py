"""What a wrapper module declares, read from its source without importing it.

The host needs an entry's metrics, point types, batch, filter and streaming support and package to choose its
definitions, and its image needs the modules the wrapper imports. But a wrapper is a stranger's
code and its library need not be installed on the host (it is in the library's image), so the
host parses module.py with `ast` and never imports it.

A declaration is a literal (a tuple or list of strings, a string, a bool, None), a name bound
to one at the top of the module, or tuple(NAME) / list(NAME) of a module-level dict or sequence
of literals (a dict gives its keys, as in `metrics = tuple(SPACES)`). A class inherits them as
Python's MRO has it, from bases defined in the module or imported from modules of ann_bench
(BaseANN gives the defaults). Anything else is a ConfigError naming the file, the class and the
attribute. The worker, which does import the class, checks with `differences` that the class
agrees with what was read.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..paths import PACKAGE
from .base import CLIENT_KINDS, INDEX_SIZE_KINDS

ATTRIBUTES = ("metrics", "point_types", "supports_batch", "supports_filter", "package", "clients", "supports_insert",
              "supports_delete", "seeded", "index_size")


@dataclass(frozen=True)
class Declared:
    metrics: tuple[str, ...]
    point_types: tuple[str, ...]
    supports_batch: bool
    package: str | None
    supports_filter: bool = False
    clients: str = "processes"
    supports_insert: bool = False
    supports_delete: bool = False
    seeded: bool = False
    index_size: str = "memory"


class _NotLiteral(Exception):
    """An expression the host cannot evaluate without running the module."""


class _Module:
    """One parsed module: its top-level names, classes and imports of ann_bench modules."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.source = path.read_text()
            self.tree = ast.parse(self.source, str(path))
        except (OSError, SyntaxError, ValueError) as e:
            raise ConfigError(f"{path}: cannot be read as Python ({e})") from e
        self.names: dict[str, ast.expr] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.imported: dict[str, tuple[Path, str]] = {}  # name -> (module file, name there)
        self.stand_ins: dict[str, type] = {}  # class name -> its stand-in (_static_class)
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.names[target.id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.names[node.target.id] = node.value
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.ImportFrom):
                source = self._source_file(node)
                if source is not None:
                    for alias in node.names:
                        self.imported[alias.asname or alias.name] = (source, alias.name)

    def _source_file(self, node: ast.ImportFrom) -> Path | None:
        """The file of an ann_bench module this import names (relatively or absolutely)."""
        parts = node.module.split(".") if node.module else []
        if node.level:
            base = self.path.parent
            for _ in range(node.level - 1):
                base = base.parent
        elif parts[:1] == [PACKAGE.name]:
            base = PACKAGE.parent
        else:
            return None
        target = base.joinpath(*parts)
        for candidate in (target.with_name(target.name + ".py"), target / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def text(self, node: ast.expr) -> str:
        """The source of an expression, as written."""
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def value(self, node: ast.expr, depth: int = 0) -> Any:
        if depth > 20:
            raise _NotLiteral(ast.unparse(node))
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        else:
            return tuple(value) if isinstance(value, list) else value
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.value(self.names[node.id], depth + 1)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("tuple", "list")
                and len(node.args) == 1 and not node.keywords):
            return tuple(self._items(node.args[0], depth + 1))
        raise _NotLiteral(ast.unparse(node))

    def _items(self, node: ast.expr, depth: int) -> tuple:
        """What iterating over `node` gives: a dict's keys, a sequence's items."""
        while isinstance(node, ast.Name) and node.id in self.names:
            node = self.names[node.id]
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise _NotLiteral(ast.unparse(node))
            return tuple(self.value(key, depth + 1) for key in node.keys if key is not None)
        value = self.value(node, depth + 1)
        if not isinstance(value, (tuple, str)):
            raise _NotLiteral(ast.unparse(node))
        return tuple(value)


_modules: dict[tuple[Path, int], _Module] = {}  # parsed once per version of a file


def _module(path: Path) -> _Module:
    path = path.resolve()
    try:
        key = (path, path.stat().st_mtime_ns)
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from e
    if key not in _modules:
        _modules[key] = _Module(path)
    return _modules[key]


def _static_class(module: _Module, name: str, seen: tuple[str, ...] = ()) -> type:
    """A stand-in class with the declared attributes of `name` in its body and stand-ins for
    its bases, so that Python's own MRO decides what is inherited (one stand-in per class, so
    that a base shared by two bases comes once in the MRO, as the real one does)."""
    if name in module.imported:
        source, original = module.imported[name]
        return _static_class(_module(source), original, seen)
    if name not in module.stand_ins:
        module.stand_ins[name] = _make_static_class(module, name, seen)
    return module.stand_ins[name]


def _make_static_class(module: _Module, name: str, seen: tuple[str, ...]) -> type:
    where = f"{module.path}: class {name}"
    node = module.classes.get(name)
    if node is None or f"{module.path}:{name}" in seen:
        raise ConfigError(f"{where}: not defined in the module (the host reads wrappers without importing "
                          f"them: define the class, and its bases, in module.py or in ann_bench)")
    bases = []
    for base in node.bases:
        if not isinstance(base, ast.Name):
            raise ConfigError(f"{where}: base {ast.unparse(base)} cannot be read without importing it; "
                              f"use a class defined in the module or in ann_bench")
        if base.id != "object":
            bases.append(_static_class(module, base.id, seen + (f"{module.path}:{name}",)))
    body: dict[str, Any] = {}
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ATTRIBUTES:
                try:
                    body[target.id] = module.value(value)
                except _NotLiteral:
                    raise ConfigError(f"{module.path}: {name}.{target.id} = {module.text(value)} is not a literal "
                                      f"the host can read without importing the module; write it as a literal "
                                      f"(e.g. metrics = (\"euclidean\", \"angular\"))") from None
    try:
        return type(name, tuple(bases), body)
    except TypeError as e:  # an inconsistent MRO
        raise ConfigError(f"{where}: its bases cannot be combined ({e})") from None


def class_names(path: Path) -> list[str]:
    """The classes defined at the top of the module."""
    return list(_module(path).classes)


def read_declared(path: Path, class_name: str) -> Declared:
    """The declarations of class `class_name` of the module at `path` (a ConfigError when one
    cannot be read, or has the wrong type)."""
    cls = _static_class(_module(path), class_name)

    def strings(attribute: str) -> tuple[str, ...]:
        value = getattr(cls, attribute, None)
        if not (isinstance(value, tuple) and all(isinstance(item, str) for item in value)):
            raise ConfigError(f"{path}: {class_name}.{attribute} must be a tuple of strings, not {value!r}")
        return value

    def flag(attribute: str) -> bool:
        value = getattr(cls, attribute, None)
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {class_name}.{attribute} must be True or False, not {value!r}")
        return value

    package = getattr(cls, "package", None)
    if package is not None and not isinstance(package, str):
        raise ConfigError(f"{path}: {class_name}.package must be a string (the PyPI distribution whose "
                          f"version results record), not {package!r}")
    def one_of(attribute: str, kinds: tuple[str, ...]) -> str:
        value = getattr(cls, attribute, None)
        if value not in kinds:
            raise ConfigError(f"{path}: {class_name}.{attribute} must be one of {', '.join(map(repr, kinds))}, "
                              f"not {value!r}")
        return value

    return Declared(strings("metrics"), strings("point_types"), flag("supports_batch"), package,
                    flag("supports_filter"), one_of("clients", CLIENT_KINDS), flag("supports_insert"),
                    flag("supports_delete"), flag("seeded"), one_of("index_size", INDEX_SIZE_KINDS))


def differences(cls: type, declared: Declared, path: Path | str) -> list[str]:
    """Where the imported class disagrees with what was read from its source (the worker's
    check: a wrapper that changes its declarations at import time is not what the host chose)."""
    found = []
    for field, expected in zip(fields(Declared), astuple(declared)):
        actual = getattr(cls, field.name, None)
        if isinstance(actual, (list, frozenset, set)):
            actual = tuple(actual)
        if actual != expected:
            found.append(f"{cls.__name__}.{field.name} is {actual!r} when imported but {expected!r} in {path}")
    return found


def library_imports(path: Path) -> list[str]:
    """The top-level imports of installed packages in the module (not of the standard library,
    not of ann_bench, not relative), as statements: what its image must be able to run."""
    statements = []
    for node in _module(path).tree.body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        tops = {name.partition(".")[0] for name in names}
        if tops & (set(sys.stdlib_module_names) | {"__future__", PACKAGE.name}):
            continue
        statements.append(ast.unparse(node))
    return statements

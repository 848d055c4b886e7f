"""Runbooks: the steps of a streaming run (insert rows, delete rows, search), as YAML data.

A runbook is a file with one key, `steps`, a list whose items are `search` or a mapping of one
operation to a range of training rows [lo, hi): `insert: [0%, 20%]`, `delete: [0, 5000]`. A
bound is a row number or a percentage of the training set, so one runbook serves every
dataset. The shipped runbooks are ann_bench/datasets/runbooks/<name>.yaml; run.py --runbook
takes one of those names or the path of a file of your own.

Resolved against a dataset (`resolve`), a runbook becomes an (n_steps, 3) int64 array of
(operation, lo, hi) rows, checked so that every step makes sense: a row is inserted once at
most (never again after its delete, which not every library allows), only live rows are
deleted, and every search finds at least one live row. An error names the file and the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import UserError

RUNBOOKS = Path(__file__).parent / "runbooks"
INSERT, DELETE, SEARCH = 0, 1, 2
OPERATIONS = {"insert": INSERT, "delete": DELETE}


@dataclass(frozen=True)
class Runbook:
    name: str
    path: Path
    text: str  # the file as read: its digest tells a stream set built from another version
    steps: tuple  # ("search",) or (operation, lo, hi) with bounds as written


def shipped() -> list[str]:
    return sorted(path.stem for path in RUNBOOKS.glob("*.yaml"))


def find(name_or_path: str) -> Path:
    """A shipped runbook's file by name, or a file given by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"runbook {path} not found; give a file or one of: {', '.join(shipped())}")
        return path
    if not (RUNBOOKS / f"{name_or_path}.yaml").is_file():
        raise UserError(f"no runbook named {name_or_path!r}; the shipped ones are {', '.join(shipped())}, "
                        f"or give the path of a YAML file of your own")
    return RUNBOOKS / f"{name_or_path}.yaml"


def load(name_or_path: str) -> Runbook:
    path = find(name_or_path)
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict) or set(data) != {"steps"} or not isinstance(data["steps"], list) \
            or not data["steps"]:
        raise UserError(f"{path}: a runbook is a mapping with one key, steps: a list of insert, delete and search")
    steps = tuple(_step(path, i, item) for i, item in enumerate(data["steps"], 1))
    if ("search",) not in steps:
        raise UserError(f"{path}: no search step; add `- search` where the index is to be measured")
    return Runbook(path.stem, path, text, steps)


def _step(path: Path, number: int, item: object) -> tuple:
    if item == "search":
        return ("search",)
    where = f"{path}: step {number}"
    if not (isinstance(item, dict) and len(item) == 1):
        raise UserError(f"{where}: {item!r} is not `search` or one of `insert: [lo, hi]`, `delete: [lo, hi]`")
    (operation, bounds), = item.items()
    if operation not in OPERATIONS:
        raise UserError(f"{where}: unknown operation {operation!r}; use insert, delete or search")
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_bound(b) is not None for b in bounds)):
        raise UserError(f"{where}: {operation} takes [lo, hi], each a row number or a percentage like 20%, "
                        f"not {bounds!r}")
    return (operation, *bounds)


def _bound(bound: object) -> float | None:
    """A bound as a fraction of the training set (a percentage) or a row number (an int); None
    for anything else."""
    if isinstance(bound, int) and not isinstance(bound, bool) and bound >= 0:
        return bound
    if isinstance(bound, str) and bound.endswith("%"):
        try:
            percent = float(bound[:-1])
        except ValueError:
            return None
        return percent / 100 if 0 <= percent <= 100 else None
    return None


def _row(bound: int | str, n_train: int) -> int:
    if isinstance(bound, int):
        return bound
    fraction = _bound(bound)
    assert fraction is not None  # checked on load
    return round(fraction * n_train)


def resolve(runbook: Runbook, n_train: int) -> np.ndarray:
    """The steps as (operation, lo, hi) rows for a training set of n_train points, each checked."""
    ops = np.zeros((len(runbook.steps), 3), dtype=np.int64)
    inserted = np.zeros(n_train, dtype=bool)
    live = np.zeros(n_train, dtype=bool)
    for i, step in enumerate(runbook.steps):
        where = f"{runbook.path}: step {i + 1}"
        if step == ("search",):
            if not live.any():
                raise UserError(f"{where}: searches an empty index; insert rows before the first search")
            ops[i] = (SEARCH, 0, 0)
            continue
        operation, lo, hi = step[0], _row(step[1], n_train), _row(step[2], n_train)
        if not 0 <= lo < hi <= n_train:
            raise UserError(f"{where}: {operation} [{step[1]}, {step[2]}] is rows [{lo}, {hi}), not a non-empty "
                            f"range within the {n_train} training points")
        if operation == "insert" and inserted[lo:hi].any():
            first = lo + int(np.argmax(inserted[lo:hi]))
            raise UserError(f"{where}: inserts row {first} a second time; a row is inserted once at most")
        if operation == "delete" and not live[lo:hi].all():
            first = lo + int(np.argmin(live[lo:hi]))
            raise UserError(f"{where}: deletes row {first}, which is not live; delete only inserted rows")
        inserted[lo:hi] |= operation == "insert"
        live[lo:hi] = operation == "insert"
        ops[i] = (OPERATIONS[operation], lo, hi)
    return ops


def live_sets(ops: np.ndarray, n_train: int) -> list[np.ndarray]:
    """The live rows (a boolean mask over train) at each search step, in order."""
    live = np.zeros(n_train, dtype=bool)
    found = []
    for operation, lo, hi in ops:
        if operation == SEARCH:
            found.append(live.copy())
        else:
            live[lo:hi] = operation == INSERT
    return found

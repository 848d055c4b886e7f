"""Which entry of algorithms.yaml supports which mode: a table made from what each wrapper declares.

The README's support table (between `<!-- support -->` and `<!-- /support -->`) is this table:
`python -m ann_bench.usage` rewrites it and tests/test_usage.py fails when it is stale, so it
cannot disagree with the wrappers. A capability a wrapper declares (a field of Declared) becomes
a column by adding one row to COLUMNS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..run.definitions import AlgorithmEntry, load_algorithms
from .declared import Declared

YES, NO = "yes", "-"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Declared], str]  # what the column says of a wrapper's declarations


def _flag(field: str) -> Callable[[Declared], str]:
    return lambda declared: YES if getattr(declared, field) else NO


COLUMNS = (
    Column("metrics", lambda declared: ", ".join(declared.metrics)),
    Column("batch (`--batch`)", _flag("supports_batch")),
    Column("filtered search", _flag("supports_filter")),
    Column("streaming insert (`--runbook`)", _flag("supports_insert")),
    Column("streaming delete", _flag("supports_delete")),
    Column("clients (`--clients`)", lambda declared: declared.clients),
    Column("seeded builds (`--repeat`)", _flag("seeded")),
    Column("index size", lambda declared: declared.index_size),
)


def support_table(entries: dict[str, AlgorithmEntry] | None = None) -> str:
    """A Markdown table, one row per entry (in the file's order), one column per capability."""
    entries = load_algorithms() if entries is None else entries
    rows = ["| entry | " + " | ".join(column.header for column in COLUMNS) + " |",
            "| --- |" + " --- |" * len(COLUMNS)]
    for name, entry in entries.items():
        rows.append(f"| {name} | " + " | ".join(column.cell(entry.declared) for column in COLUMNS) + " |")
    return "\n".join(rows) + "\n"

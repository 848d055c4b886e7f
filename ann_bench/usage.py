"""The command lines' option help, and the README's tables made from code.

Each option table in the README sits between `<!-- options: TOOL -->` and `<!-- /options -->`
and is generated from the tool's argparse parser, so the README and `--help` cannot disagree;
the support table (`<!-- support -->`) is generated from the wrappers' declarations
(algorithms/support.py). `python -m ann_bench.usage` rewrites the tables, and
tests/test_usage.py fails when they are out of date.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from .algorithms.support import support_table
from .paths import REPO

# tool -> the function building its parser ("module:function"), as the README names the tool.
PARSERS = {
    "run.py": "ann_bench.cli:build_parser",
    "plot.py": "ann_bench.report.plotting:build_parser",
}
README = REPO / "README.md"
_BLOCK = re.compile(r"(<!-- options: (?P<tool>\S+) -->\n)(?P<table>.*?)(<!-- /options -->)", re.S)
_SUPPORT = re.compile(r"(<!-- support -->\n)(?P<table>.*?)(<!-- /support -->)", re.S)


def default_text(action: argparse.Action) -> str:
    """The default worth saying: none for flags, unset options, counters, or help that says it."""
    default = action.default
    if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 or "default" in (action.help or ""):
        return ""
    if isinstance(default, Path) and default.is_absolute():
        default = default.relative_to(REPO) if default.is_relative_to(REPO) else default
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"default {default}"


class Formatter(argparse.HelpFormatter):
    """Help with the defaults that say something (argparse's own adds "(default: False)" to flags)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = default_text(action)
        return f"{text} ({default})" if default else text


def _flags(action: argparse.Action) -> str:
    name = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    metavar = "" if action.nargs == 0 else " " + name
    return ", ".join(f"`{flag}{metavar if flag.startswith('--') or len(action.option_strings) == 1 else ''}`"
                     for flag in action.option_strings)


def option_table(parser: argparse.ArgumentParser) -> str:
    rows = ["| option | meaning |", "| --- | --- |"]
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        meaning = (action.help or "").replace("%%", "%").replace("|", "\\|")
        default = default_text(action)
        rows.append(f"| {_flags(action)} | {meaning}{f' ({default})' if default else ''} |")
    return "\n".join(rows) + "\n"


def parser_of(tool: str) -> argparse.ArgumentParser:
    module, _, function = PARSERS[tool].partition(":")
    return getattr(importlib.import_module(module), function)()


def update(text: str) -> str:
    """The README text with every options table and the support table regenerated."""
    def table(match: re.Match) -> str:
        return match.group(1) + option_table(parser_of(match.group("tool"))) + match.group(4)
    return _SUPPORT.sub(lambda match: match.group(1) + support_table() + match.group(3), _BLOCK.sub(table, text))


def main() -> int:
    text = README.read_text()
    new = update(text)
    if new != text:
        README.write_text(new)
    print(f"{README.relative_to(REPO)}: {'tables updated' if new != text else 'tables already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

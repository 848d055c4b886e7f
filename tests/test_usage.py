"""The README's option tables are the argparse definitions, its support table the wrappers'
declarations, and help shows only defaults worth saying."""

import argparse
import dataclasses

from ann_bench import usage
from ann_bench.algorithms import support
from ann_bench.cli import build_parser
from ann_bench.run.definitions import load_algorithms


def test_the_readme_option_tables_are_current():
    text = usage.README.read_text()
    assert usage.update(text) == text, "README option tables are out of date: run .venv/bin/python -m ann_bench.usage"


def test_every_tool_of_the_registry_has_a_table_in_the_readme():
    text = usage.README.read_text()
    for tool in usage.PARSERS:
        assert f"<!-- options: {tool} -->" in text


def test_a_changed_help_text_makes_the_table_stale():
    text = usage.README.read_text()
    parser = build_parser()
    for action in parser._actions:
        if "--memory" in action.option_strings:
            action.help = "something else"
    assert "something else" in usage.option_table(parser)
    assert "something else" not in text


def test_help_states_real_defaults_and_not_flag_defaults():
    parser = argparse.ArgumentParser(formatter_class=usage.Formatter)
    parser.add_argument("--runs", type=int, default=5, help="timed passes")
    parser.add_argument("--force", action="store_true", help="run again")
    parser.add_argument("--memory", default=None, help="a limit (default: 90%% of it)")
    text = parser.format_help()
    assert "timed passes (default 5)" in text
    assert "default: False" not in text and "default None" not in text


def test_the_readme_has_the_support_table_with_a_row_per_entry():
    text = usage.README.read_text()
    table = support.support_table()
    assert f"<!-- support -->\n{table}<!-- /support -->" in text
    assert [line.split(" | ")[0].removeprefix("| ") for line in table.splitlines()[2:]] == list(load_algorithms())


def test_a_changed_declaration_makes_the_support_table_stale():
    entries = load_algorithms()
    hnswlib = entries["hnswlib"]
    assert hnswlib.declared.supports_filter and hnswlib.declared.clients == "threads"
    declared = dataclasses.replace(hnswlib.declared, supports_filter=False, clients="processes")
    changed = dict(entries, hnswlib=dataclasses.replace(hnswlib, declared=declared))
    lines = support.support_table(changed).splitlines()
    row = next(line for line in lines if line.startswith("| hnswlib |"))
    cells = dict(zip(lines[0].strip("| ").split(" | "), row.strip("| ").split(" | ")))
    assert cells["filtered search"] == support.NO and cells["clients (`--clients`)"] == "processes"
    assert row not in usage.README.read_text()

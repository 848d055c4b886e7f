"""The README's option tables are the argparse definitions, and help shows only defaults worth saying."""

import argparse

from ann_bench import usage
from ann_bench.cli import build_parser


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

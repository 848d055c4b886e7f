"""One logging set-up for every command line: messages on stderr, -v for more, -q for less.

A command's own output (a table, a path) is printed to stdout; what happens along the way
(building, downloading, warnings) is logged.
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0, help="say more (repeatable)")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="say only warnings and errors")


def setup(verbose: int = 0, quiet: int = 0, fmt: str = "%(message)s") -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("ann_bench")
    root.handlers[:] = [handler]
    root.setLevel(max(logging.DEBUG, min(level, logging.ERROR)))
    root.propagate = False


def setup_from(args: argparse.Namespace) -> None:
    setup(getattr(args, "verbose", 0), getattr(args, "quiet", 0))

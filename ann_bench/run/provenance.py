"""Where the results a sweep skips were made: a sweep in Docker after one in local processes
(or the reverse) finds every result already there, and says how they were made and how to
make its own instead of skipping them in silence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..results.files import read_result

# How each executor's results are named to the user; "" is a file from a harness that did not
# record its executor.
MADE = {"docker": "in Docker", "local": "in local processes", "": "by an older harness"}


def made_by(paths: Iterable[Path]) -> Counter[str]:
    """How many of these result files each executor made, from each file's environment."""
    return Counter(str(read_result(path, arrays=False).environment.get("executor", "")) for path in paths)


def existing_text(paths: Iterable[Path], executor: str) -> str:
    """e.g. "81 already there, made in Docker: --force to run them again here (in local processes),
    or --results DIR to keep both"; just "81 already there" when this executor made them all."""
    counts = made_by(paths)
    total = sum(counts.values())
    if set(counts) <= {executor}:
        return f"{total} already there"
    if len(counts) == 1:
        made = _how(next(iter(counts)))
    else:
        made = ", ".join(f"{n} {_how(name)}" for name, n in sorted(counts.items()))
    return (f"{total} already there, made {made}: --force to run them again here ({_how(executor)}), "
            f"or --results DIR to keep both")


def _how(executor: str) -> str:
    return MADE.get(executor, f"by the {executor} executor")

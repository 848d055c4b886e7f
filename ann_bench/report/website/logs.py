"""The worker log of a result: where the run stage writes it, and its last lines.

The one place the site knows the log layout, so a change in how workers log is one change
here: today each definition (one build) logs to <result dir>/logs/<params_name(build_args)>.log
(run/plan.py), a file shared by every query-argument set of that build.
"""

from __future__ import annotations

from pathlib import Path

from ...results.files import params_name

TAIL_BYTES = 16384


def worker_log(result_path: Path | str, build_args: object) -> Path:
    return Path(result_path).parent / "logs" / (params_name(build_args, None) + ".log")


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last lines of the log; [] where there is no log (an older harness kept none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]

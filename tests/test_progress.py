"""Progress written to a log, not a terminal: whole lines, no carriage returns."""

from __future__ import annotations

import subprocess
import sys

from ann_bench.paths import REPO


def test_a_dataset_build_logs_its_progress_as_lines(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ann_bench.datasets", "--data-dir", str(tmp_path),
                           "random-xs-20-angular"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    lines = done.stderr.splitlines()
    ends = [line for line in lines if line.startswith("ground truth") and "100%" in line]
    assert len(ends) == 1, done.stderr

#!/usr/bin/env python3
"""Recall vs QPS (or any two metrics) with one Pareto frontier per algorithm.

    python plot.py --dataset glove-100-angular [--count 10] [-x k-nn] [-y qps] [--batch] [--raw]
                   [--errorbars] [--format png|svg|pdf] [--paper]
    python plot.py --all [...]            every dataset, k and mode in results/
    python -m ann_bench.website           the results as a static website (see the README)

See `python plot.py --help` and ann_bench/report/plotting.py.
"""

import sys

from ann_bench.bootstrap import ensure_requirements

if __name__ == "__main__":
    ensure_requirements()  # before anything that needs a third-party package
    from ann_bench.report.plotting import main

    sys.exit(main())

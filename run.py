#!/usr/bin/env python3
"""Benchmark ANN libraries on a dataset: python run.py --dataset glove-100 [--local]."""
import sys

from ann_bench.bootstrap import ensure_requirements

if __name__ == "__main__":
    ensure_requirements()  # before anything that needs a third-party package
    from ann_bench.cli import main

    sys.exit(main())

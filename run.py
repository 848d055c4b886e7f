#!/usr/bin/env python3
"""Benchmark ANN libraries on a dataset: python run.py --dataset glove-100 [--local]."""
import sys

from ann_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m ann_bench.website`: the results as a static website (ann_bench/report/website/)."""

import sys

from .report.website.cli import main

if __name__ == "__main__":
    sys.exit(main())

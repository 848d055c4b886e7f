#!/usr/bin/env python3
"""Build the Docker images: `python install.py [--algorithm NAME] [--proc N] [--build-arg K=V]`.

The work is in ann_bench/run/executors/docker/images.py; see `python install.py --help`.
"""

import sys

from ann_bench.bootstrap import ensure_requirements

if __name__ == "__main__":
    ensure_requirements()  # before anything that needs a third-party package
    from ann_bench.run.executors.docker.images import main

    sys.exit(main())

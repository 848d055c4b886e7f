"""ann-bench: benchmarks of approximate nearest neighbour search libraries."""

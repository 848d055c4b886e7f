import itertools
import math
import random

import pytest

from ann_bench.report.pareto import pareto_frontier


def test_dominated_points_are_removed_both_higher():
    points = [(0.5, 100), (0.9, 50), (0.7, 40), (0.95, 10), (0.3, 90)]
    assert pareto_frontier(points) == [0, 1, 3]


def test_lower_is_better_on_y():
    # recall (higher) against latency (lower)
    points = [(0.5, 1.0), (0.9, 5.0), (0.7, 6.0), (0.95, 10.0), (0.4, 2.0)]
    assert pareto_frontier(points, "higher", "lower") == [0, 1, 3]


def test_lower_is_better_on_x():
    # build time (lower) against recall (higher)
    points = [(10.0, 0.9), (5.0, 0.8), (6.0, 0.7), (1.0, 0.5)]
    assert pareto_frontier(points, "lower", "higher") == [3, 1, 0]


def test_duplicates_keep_the_first():
    assert pareto_frontier([(1, 1), (1, 1), (0, 2), (0, 2)]) == [2, 0]


def test_ties_on_one_axis():
    assert pareto_frontier([(1, 1), (1, 2)]) == [1]
    assert pareto_frontier([(1, 5), (2, 5)]) == [1]
    assert pareto_frontier([(2, 5), (1, 5)], "lower", "higher") == [1]


def test_nan_is_ignored_and_empty_is_empty():
    assert pareto_frontier([(math.nan, 1), (0.5, math.nan), (0.2, 0.2)]) == [2]
    assert pareto_frontier([]) == []
    assert pareto_frontier([(math.nan, math.nan)]) == []


def test_bad_direction():
    with pytest.raises(ValueError, match="better"):
        pareto_frontier([(1, 1)], "more")


@pytest.mark.parametrize("x_better,y_better", list(itertools.product(["higher", "lower"], repeat=2)))
def test_matches_brute_force(x_better, y_better):
    rng = random.Random(7)
    sx, sy = (1 if x_better == "higher" else -1), (1 if y_better == "higher" else -1)
    for _ in range(50):
        points = [(rng.randint(0, 6), rng.randint(0, 6)) for _ in range(rng.randint(1, 15))]

        def dominated(i):
            (xi, yi) = points[i]
            return any(sx * x >= sx * xi and sy * y >= sy * yi and (x, y) != (xi, yi) for x, y in points)

        expected = [i for i in range(len(points)) if not dominated(i) and points.index(points[i]) == i]
        expected.sort(key=lambda i: points[i][0])
        assert pareto_frontier(points, x_better, y_better) == expected, points

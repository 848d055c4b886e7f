"""QPS at recall targets and the spread of timed passes, on rows made by hand."""

import math

from ann_bench.report.tables import SPREAD_FLAG, pass_spread, qps_at_recall, unsettled


def row(algorithm, recall, qps, slowest=math.nan):
    return {"algorithm": algorithm, "k-nn": recall, "qps": qps, "qps-slowest": slowest}


def test_best_qps_at_or_above_each_target():
    rows = [row("a", 0.95, 100.0), row("a", 0.9, 300.0), row("a", 0.5, 1000.0), row("a", 0.85, 50.0),
            row("b", 0.4, 9000.0), row("c", math.nan, 1e6), row("c", 0.99, math.nan)]
    table = qps_at_recall(rows, targets=(0.5, 0.9, 0.95, 0.99))
    assert list(table) == ["a", "b", "c"]
    assert {t: (b.qps if b else None) for t, b in table["a"].items()} == {0.5: 1000.0, 0.9: 300.0, 0.95: 100.0,
                                                                           0.99: None}
    assert table["a"][0.9].row is rows[1]
    assert all(best is None for best in table["b"].values())  # never reaches 0.5
    assert all(best is None for best in table["c"].values())  # no recall, or no QPS: no part in it


def test_a_recall_a_rounding_error_below_the_target_reaches_it():
    table = qps_at_recall([row("a", 0.8999999999999998, 300.0), row("a", 0.89, 900.0)], targets=(0.9,))
    assert table["a"][0.9].qps == 300.0


def test_passes_that_disagree_by_more_than_ten_percent_are_flagged():
    assert not unsettled(row("a", 1.0, 100.0 * (1 + SPREAD_FLAG), 100.0 + 1e-9))
    assert unsettled(row("a", 1.0, 125.0, 100.0)) and math.isclose(pass_spread(row("a", 1.0, 125.0, 100.0)), 0.25)
    assert not unsettled(row("a", 1.0, 125.0)) and math.isnan(pass_spread(row("a", 1.0, 125.0)))  # no pass times

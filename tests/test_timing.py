"""The per-cell time breakdown: the stopwatch's sums and resumption, and the report's table."""

import pandas as pd
import pytest

from bench.report.timing import time_parts, time_table
from bench.train.stopwatch import PARTS, Stopwatch


def test_parts_sum_their_entries_and_resume_adds_the_killed_share():
    clock = Stopwatch()
    clock.add("train", 1.5)
    clock.add("train", 2.0)
    with clock.part("sweep"):
        pass
    state = clock.state()
    assert state["seconds"]["train"] == 3.5 and 0 <= state["seconds"]["sweep"] < 1
    later = Stopwatch()
    later.add("train", 0.25)
    later.resume(state)
    metrics = later.metrics()
    assert metrics["perf/train_s"] == 3.75
    assert metrics["perf/cell_s"] >= state["cell_s"]
    with pytest.raises(ValueError, match="unknown part 'trian'"):
        with clock.part("trian"):
            pass


def _tidy(cells):
    rows = []
    for (method, seed), metrics in cells.items():
        for key, value in metrics.items():
            rows.append(dict(kind="method", method=method, seed=seed, metric=key, value=value))
    rows.append(dict(kind="reference", method="oracle", seed=0, metric="perf/cell_s", value=9.0))
    return pd.DataFrame(rows)


def test_time_parts_average_over_seeds_and_name_the_rest_other():
    tidy = _tidy(
        {
            ("a", 0): {"perf/cell_s": 10.0, "perf/train_s": 6.0, "perf/sweep_s": 1.0},
            ("a", 1): {"perf/cell_s": 20.0, "perf/train_s": 14.0, "perf/sweep_s": 3.0},
            ("b", 0): {"perf/cell_s": 4.0, "perf/setup_s": 1.0, "final/nll_oracle": 9.0},
            ("old", 0): {"perf/train_s": 5.0},  # trained before the breakdown: left out
        }
    )
    parts = time_parts(tidy)
    assert list(parts.index) == ["a", "b"] and list(parts.seeds) == [2, 1]
    assert parts.loc["a", "cell"] == 15.0 and parts.loc["a", "train"] == 10.0
    assert parts.loc["a", "sweep"] == 2.0 and parts.loc["a", "other"] == 3.0
    assert parts.loc["b", "setup"] == 1.0 and parts.loc["b", "train"] == 0.0
    assert parts.loc["b", "other"] == 3.0
    assert set(PARTS) <= set(parts.columns)
    table = time_table(parts)
    assert list(table.index) == ["a", "b"]  # longest cell first
    assert table.loc["a", "training"] == "10.0 (67%)" and table.loc["a", "cell s"] == "15.0"
    assert table.loc["b", "setup"] == "1.0 (25%)" and table.loc["b", "other"] == "3.0 (75%)"


def test_no_breakdown_gives_an_empty_table():
    parts = time_parts(_tidy({("old", 0): {"perf/train_s": 5.0}}))
    assert parts.empty and time_table(parts).empty

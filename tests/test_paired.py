"""Paired seed differences (bench.report.stats) and tools/paired.py over results.csv files."""

import math

import pandas as pd
import pytest

from bench.report.stats import paired_differences
from tools.paired import load, main


def _tidy(values):
    """values: {(method, seed): value} of one metric -> a tidy frame."""
    return pd.DataFrame(
        [
            dict(kind="method", method=m, seed=s, status="finished", metric="m", value=v)
            for (m, s), v in values.items()
        ]
    )


def test_paired_difference_by_hand():
    # a − b per seed: 1, 2, 3 -> mean 2, sd 1, sem 1/sqrt(3), t(0.975, 2) = 4.302653
    tidy = _tidy({("a", 0): 5, ("a", 1): 7, ("a", 2): 9, ("b", 0): 4, ("b", 1): 5, ("b", 2): 6})
    row = paired_differences(tidy, "a", "m").iloc[0]
    half = 4.302653 / math.sqrt(3)
    assert (row.baseline, row.n, row["mean"]) == ("b", 3, 2.0)
    assert row.lo == pytest.approx(2 - half, abs=1e-5) and row.hi == pytest.approx(
        2 + half, abs=1e-5
    )


def test_pairing_removes_the_seed_effect_an_unpaired_reading_keeps():
    """A constant 0.1 gap on seeds that differ by a whole nat: paired, a point interval."""
    a = {("a", s): s + 0.1 for s in range(3)}
    tidy = _tidy(a | {("b", s): float(s) for s in range(3)})
    row = paired_differences(tidy, "a", "m").iloc[0]
    assert row["mean"] == pytest.approx(0.1) and row.hi - row.lo < 1e-9


def test_only_seeds_both_finished_pair():
    tidy = _tidy({("a", 0): 1.0, ("a", 1): 2.0, ("b", 1): 1.5, ("b", 2): 0.0})
    tidy.loc[len(tidy)] = dict(
        kind="method", method="b", seed=0, status="failed", metric="m", value=9
    )
    row = paired_differences(tidy, "a", "m").iloc[0]
    assert (row.n, row["mean"]) == (1, 0.5) and math.isnan(row.lo)


def test_files_that_disagree_on_a_shared_cell_do_not_pair(tmp_path):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    _tidy({("mle", 0): 9.0, ("cot", 0): 10.0}).to_csv(one, index=False)
    _tidy({("mle", 0): 9.5, ("gan", 0): 8.0}).to_csv(two, index=False)
    with pytest.raises(ValueError, match="mle seed 0 m differs"):
        load([str(one), str(two)])
    _tidy({("mle", 0): 9.0, ("gan", 0): 8.0}).to_csv(two, index=False)
    assert len(load([str(one), str(two)])) == 3
    timing = _tidy({("mle", 0): 1.0}).assign(metric="perf/train_s")
    pd.concat([_tidy({("mle", 0): 9.0}), timing]).to_csv(one, index=False)
    pd.concat([_tidy({("mle", 0): 9.0}), timing.assign(value=2.0)]).to_csv(two, index=False)
    assert len(load([str(one), str(two)])) == 2  # timings may differ


def test_the_tool_prints_the_table_and_refuses_an_unknown_method(tmp_path, capsys):
    path = tmp_path / "r.csv"
    _tidy({("mle", 0): 9.0, ("mle", 1): 9.2, ("cot", 0): 10.0, ("cot", 1): 10.4}).to_csv(
        path, index=False
    )
    assert main(["--method", "cot", "--metrics", "m", str(path)]) == 0
    assert "| m | mle | +1.100 [-0.171, +2.371] | 2 |" in capsys.readouterr().out
    assert main(["--method", "nope", str(path)]) == 2
    assert "no method 'nope' in the files; valid: cot, mle" in capsys.readouterr().err
    assert main(["--method", "cot", "--metrics", "m,final/typo", str(path)]) == 2
    assert "no metric 'final/typo' in the files" in capsys.readouterr().err
    other = tmp_path / "o.csv"
    _tidy({("gan", 0): 1.0}).to_csv(other, index=False)
    assert main(["--method", "cot", "--metrics", "m", str(path), str(other)]) == 2
    assert "the files share no (method, seed) cell" in capsys.readouterr().err

"""Paired statistics (bench/report/stats.py) and the generated verdicts on hand-made cases."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report.stats import holm, paired_t, seeds_needed, sweep_summary, tost_p, welch_t
from bench.report.verdicts import COLUMNS, VERDICT_WORDS, verdicts


def test_paired_interval_and_p_by_hand():
    """d = (1, 2, 3): mean 2, sd 1, sem 1/sqrt(3); t_{0.975, 2} = 4.302653; t = 3.4641."""
    mean, lo, hi, p = paired_t(np.array([1.0, 2.0, 3.0]))
    half = 4.302653 / np.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half), abs=1e-6)
    assert p == pytest.approx(0.074180, abs=1e-5)


def test_holm_on_the_textbook_example():
    """p = (0.01, 0.04, 0.03, 0.005), k = 4: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1, made
    monotone: 0.02, 0.03, 0.06, 0.06 (in the input's order 0.03, 0.06, 0.06, 0.02)."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.01])  # NaN passes through and is not counted: k = 2
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.2, 0.02])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_tost_declares_equivalence_only_when_the_90_interval_is_inside_the_margin():
    rng = np.random.default_rng(0)
    tight = 0.01 + rng.normal(0, 0.005, 10)  # (10,): interval well inside ±0.05
    loose = 0.01 + rng.normal(0, 0.2, 10)  # (10,): interval past ±0.05
    assert tost_p(tight, 0.05) < 0.05 < tost_p(loose, 0.05)
    for d in (tight, loose):  # p < 0.05 exactly when the 90% interval is inside the margin
        lo, hi = stats.t.interval(0.90, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert (tost_p(d, 0.05) < 0.05) == (-0.05 < lo and hi < 0.05)
    assert np.isnan(tost_p(np.array([0.0]), 0.05))


def test_seeds_needed_matches_the_standard_power_table():
    """Paired t, two-sided 0.05, power 0.8 (G*Power): d = 0.5 -> 34, 0.8 -> 15, 1 -> 10."""
    assert [seeds_needed(d, 1.0) for d in (0.5, 0.8, 1.0)] == [34, 15, 10]
    assert seeds_needed(-0.5, 1.0) == 34  # the sign does not matter
    assert seeds_needed(0.0, 1.0) is None and seeds_needed(1e-6, 1.0) is None  # over the cap
    assert seeds_needed(0.5, 1.0, alpha=0.01) > 34


def test_welch_matches_scipy_and_is_nan_for_single_seeds():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([2.0, 5.0, 6.0, 7.0])
    mean, lo, hi, p = welch_t(a, b)
    assert mean == pytest.approx(a.mean() - b.mean())
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert lo < mean < hi
    assert np.isnan(welch_t(a, b[:1])[3])


def _tidy(values: dict[str, list[float]], metric="final/nll_oracle") -> pd.DataFrame:
    rows = [
        dict(kind="method", method=m, seed=s, status="finished", run_id=f"{m}{s}")
        | dict(metric=metric, value=v)
        for m, vs in values.items()
        for s, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_verdicts_say_better_worse_equivalent_and_inconclusive_where_the_data_do():
    base = np.array([9.0, 9.3, 8.8, 9.1, 9.2, 8.9, 9.05, 9.15])  # (8,) seeds of mle
    wiggle = np.array([1, -1, 1, -1, 1, -1, 1, -1]) * 0.002
    tidy = _tidy(
        {
            "mle": list(base),
            "a": list(base - 0.3 + wiggle),  # 0.3 lower on every seed: better
            "b": list(base + 0.3 + wiggle),  # worse
            "c": list(base + wiggle),  # within ±0.05 on every seed: equivalent
            "d": list(base + np.array([0.5, -0.3, 0.3, -0.5, 0.2, -0.1, 0.4, -0.2])),  # noise
        }
    )
    out = verdicts(tidy).set_index("method")
    assert list(verdicts(tidy).columns) == COLUMNS
    assert set(out.baseline) == {"mle"} and set(out.metric) == {"final/nll_oracle"}
    assert out.verdict.to_dict() == dict(a="better", b="worse", c="equivalent", d="inconclusive")
    assert out.loc["a", "effect"] == pytest.approx(-0.3) and out.paired.all()
    assert out.loc["d", "seeds_needed"] > 8 and pd.isna(out.loc["a", "seeds_needed"])
    assert (out.p_holm >= out.p).all()  # corrected over the family of 4


def test_verdicts_fall_back_to_welch_where_seeds_do_not_pair():
    tidy = _tidy({"mle": [9.0, 9.1, 9.2], "a": [8.0, 8.1, 8.2]})
    tidy.loc[tidy.method == "a", "seed"] += 3  # seeds 3, 4, 5: none in common
    row = verdicts(tidy).iloc[0]
    assert not row.paired and row.effect == pytest.approx(-1.0) and np.isnan(row.p_equivalence_holm)


def test_matched_diversity_reads_the_best_covering_baseline():
    """Two baselines: 'mle-es' covers better (lower NLL-test at alpha 1), so it sets the
    target; a method whose sweep passes through that NLL-test is read there."""
    alphas = [0.5, 1.0, 2.0]
    rows = []
    for method, tests, oracles in (
        ("mle", [8.5, 8.0, 8.4], [11.0, 10.0, 9.0]),
        ("mle-es", [8.4, 7.9, 8.3], [11.0, 10.2, 9.2]),
        ("m", [8.6, 7.8, 8.0], [11.0, 9.8, 9.0]),  # cold branch: 7.8 at a1, 8.0 at a2
    ):
        for a, t, o in zip(alphas, tests, oracles, strict=True):
            row = dict(method=method, seed=0, alpha=a, nll_oracle=o, nll_test=t)
            rows.append(row | dict(forward_kl=t - 5.0, reverse_kl=o - 7.0))
    out = sweep_summary(pd.DataFrame(rows), baselines=("pretrained", "mle-es", "mle"))
    assert out.attrs["best_baseline"] == "mle-es"
    got = out.set_index(["method", "metric"]).value
    assert got["m", "sweep/oracle_at_best_test"] == pytest.approx(9.8 - 0.8 * 0.5)  # at 7.9
    assert got["m", "sweep/rkl_at_best_fkl"] == pytest.approx(2.8 - 0.8 * 0.5)
    assert got["mle-es", "sweep/oracle_at_best_test"] == pytest.approx(10.2)
    assert np.isnan(got["mle", "sweep/oracle_at_best_test"])  # mle never gets down to 7.9
    assert set(VERDICT_WORDS) == {"better", "worse", "equivalent", "inconclusive"}


def test_a_baseline_equal_to_an_earlier_one_asks_no_questions_of_its_own():
    """mle-es that kept the start on every seed is `pretrained`: its rows would repeat
    pretrained's and double them in the Holm family."""
    from bench.report.verdicts import same_as

    start = [9.1, 9.2, 9.15]
    tidy = _tidy({"pretrained": start, "mle-es": start, "mle": [9.0, 9.1, 9.05], "a": [8.0] * 3})
    assert same_as(tidy) == {"mle-es": "pretrained"}
    out = verdicts(tidy)
    assert set(out.baseline) == {"pretrained", "mle"} and len(out) == 2
    tidy.loc[(tidy.method == "mle-es") & (tidy.seed == 2), "value"] = 9.0  # one seed differs
    assert same_as(tidy) == {} and set(verdicts(tidy).baseline) == {"pretrained", "mle-es", "mle"}


def test_a_bad_equivalence_margin_is_one_line_and_exit_2(tmp_path, capsys):
    from bench.report.__main__ import main

    for bad in ("0", "-0.1", "inf", "nan"):
        argv = ["--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}", "--equivalence-margin", bad]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"--equivalence-margin {float(bad)}" in err
    assert not (tmp_path / "none.db").exists()  # refused before any store is opened

"""Honest numbers: intervals over seeds, P(beats MLE), the temperature sweep and its summary."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.metrics.evaluate import EvalSettings, parse_sweep_key, sweep_key, temperature_sweep
from bench.report.load import curves, sweep_frame, tidy_results
from bench.report.plots import plot_curves, plot_quality_diversity
from bench.report.publish import parent_metrics, publish_report
from bench.report.stats import (
    mean_ci,
    mean_curve_by_seconds,
    prob_beats,
    prob_beats_baseline,
    summary,
    summary_long,
    sweep_best,
    sweep_summary,
    with_sweep_summary,
)
from bench.report.table import COLUMNS, display_table
from bench.report.verdicts import verdicts
from bench.report.write import Report
from bench.store.tracker import Tracker, TrackingError
from tests.conftest import tiny_generator


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each categorical in logits (..., V): shape (...)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def test_interval_contains_the_mean_and_narrows_with_more_seeds():
    rng = np.random.default_rng(0)
    few, many = rng.normal(9.0, 0.1, 3), rng.normal(9.0, 0.1, 30)
    for values in (few, many):
        m, lo, hi = mean_ci(values)
        assert m == pytest.approx(values.mean()) and lo <= m <= hi
    assert (mean_ci(many)[2] - mean_ci(many)[1]) < (mean_ci(few)[2] - mean_ci(few)[1])


def test_interval_is_the_student_t_interval():
    # 1, 2, 3: mean 2, standard error 1/sqrt(3), t_{0.975, 2} = 4.302653
    m, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    half = 4.302653 / np.sqrt(3)
    assert m == 2.0 and lo == pytest.approx(2 - half, abs=1e-5) and hi == pytest.approx(2 + half)
    assert mean_ci(np.array([5.0, 5.0, 5.0])) == (5.0, 5.0, 5.0)  # identical seeds: a point


def test_interval_covers_the_mean_95_percent_of_the_time_with_three_seeds():
    # a percentile bootstrap over 3 seeds returns [min, max] and covers only ~75%
    rng = np.random.default_rng(1)
    trials = rng.normal(9.0, 0.1, size=(4000, 3))
    covered = [lo <= 9.0 <= hi for _, lo, hi in map(mean_ci, trials)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.015)  # 4 binomial s.e.


def test_one_seed_has_no_interval():
    m, lo, hi = mean_ci(np.array([8.5]))
    assert m == 8.5 and np.isnan(lo) and np.isnan(hi)


def test_probability_of_beating_counts_pairs_and_half_ties():
    assert prob_beats([1.0, 2.0], [3.0], lower_is_better=True) == 1.0
    assert prob_beats([1.0, 4.0], [3.0], lower_is_better=True) == 0.5
    assert prob_beats([3.0], [3.0], lower_is_better=True) == 0.5
    assert prob_beats([1.0, 4.0], [2.0, 3.0], lower_is_better=False) == 0.5


def test_sweep_nll_test_equals_the_scaled_model_directly(task):
    gen = tiny_generator(task, std=0.5)
    ev = EvalSettings(
        torch.device("cpu"), 0, 64, 64, 0, sweep_alphas=(0.5, 1.0, 2.0), sweep_samples=64
    )
    points = dict(temperature_sweep(gen, task, ev))
    x = task.test[:64]
    for alpha, metrics in points.items():
        logp = torch.log_softmax(gen(x) * alpha, -1).gather(-1, x[..., None])  # (n, T, 1)
        assert metrics["sweep/nll_test"] == pytest.approx(-logp.mean().item(), abs=1e-5)


def test_entropy_of_the_generator_falls_as_alpha_grows(task):
    gen = tiny_generator(task, std=0.5)
    with torch.no_grad():
        logits = gen(task.test[:64])  # (n, T, V)
    entropies = [entropy(logits * a).mean().item() for a in (0.5, 0.8, 1.0, 1.5, 2.0)]
    assert all(a > b for a, b in zip(entropies, entropies[1:], strict=False))


def test_sweep_summary_best_point_and_matched_diversity():
    sweep = pd.DataFrame(
        [
            ("mle", 0, 1.0, 9.0, 8.0),
            ("mle", 0, 2.0, 7.0, 9.0),
            ("gan", 0, 1.0, 8.0, 9.0),
            ("gan", 0, 0.5, 10.0, 7.0),
        ],
        columns=["method", "seed", "alpha", "nll_oracle", "nll_test"],
    )
    got = sweep_summary(sweep).set_index(["method", "metric"]).value
    assert got["mle", "sweep/best_sum"] == 16.0 and got["mle", "sweep/best_alpha"] == 2.0
    assert got["gan", "sweep/best_sum"] == 17.0
    # MLE's alpha=1 NLL-test is 8.0; the gan's sweep passes it halfway from (10, 7) to (8, 9)
    assert got["gan", "sweep/oracle_at_mle_test"] == pytest.approx(9.0)
    assert got["mle", "sweep/oracle_at_mle_test"] == pytest.approx(9.0)


def test_matched_diversity_reads_the_cold_branch_of_a_u_shaped_sweep():
    # NLL-test is U-shaped in alpha, least at 1.0; MLE's alpha=1 NLL-test is 8.0. The hot side
    # (alpha 0.25 -> 0.5) also crosses 8.0, at NLL-oracle 11.5; the frontier's crossing is on the
    # cold side, halfway from alpha 1 (9.0, 7.0) to alpha 2 (7.0, 9.0): NLL-oracle 8.0.
    rows = [("mle", 0, 1.0, 9.0, 8.0), ("mle", 0, 2.0, 7.0, 9.0)]
    rows += [
        ("gan", 0, 0.25, 12.0, 8.5),
        ("gan", 0, 0.5, 11.0, 7.5),
        ("gan", 0, 1.0, 9.0, 7.0),
        ("gan", 0, 2.0, 7.0, 9.0),
    ]
    sweep = pd.DataFrame(rows, columns=["method", "seed", "alpha", "nll_oracle", "nll_test"])
    got = sweep_summary(sweep).set_index(["method", "metric"]).value
    assert got["gan", "sweep/oracle_at_mle_test"] == pytest.approx(8.0)


def _tidy(rows):
    """Tidy results from (kind, method, seed, status, metric, value) rows; one run per cell."""
    frame = pd.DataFrame(rows, columns=["kind", "method", "seed", "status", "metric", "value"])
    frame.insert(4, "run_id", frame.method + frame.seed.astype(str))
    return frame


def test_summary_counts_finished_seeds_and_intervals_each_metric():
    tidy = _tidy(
        [("method", "mle", s, "finished", "final/nll_oracle", v) for s, v in enumerate([1, 2, 3])]
        + [("method", "mle", 3, "diverged", "final/nll_oracle", 100.0)]
        + [("reference", "oracle", 0, "finished", "final/nll_oracle", 5.0)]
    )
    got = summary(tidy, ["final/nll_oracle", "final/nll_test"])
    assert list(got.index) == ["mle", "oracle"]
    assert got.loc["mle", ("n", "")] == 3 and got.loc["mle", ("kind", "")] == "method"
    m, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))  # the diverged seed is left out
    assert tuple(got.loc["mle", "final/nll_oracle"][["mean", "lo", "hi"]]) == (m, lo, hi)
    assert got.loc["oracle", ("final/nll_oracle", "mean")] == 5.0
    assert ("final/nll_test", "mean") not in got.columns  # no values: no column
    assert list(summary(tidy).columns.levels[0]) == list(got.columns.levels[0])  # default: all


def test_prob_beats_baseline_compares_finished_methods_with_the_baseline():
    rows = [("method", "mle", s, "finished", "final/nll_test", v) for s, v in enumerate([2, 4])]
    rows += [("method", "gan", s, "finished", "final/nll_test", v) for s, v in enumerate([1, 3])]
    rows += [("method", "gan", 2, "diverged", "final/nll_test", 0.0)]  # not counted
    rows += [("method", "wgan", 0, "finished", "final/nll_oracle", 1.0)]  # other metric only
    rows += [("reference", "oracle", 0, "finished", "final/nll_test", 0.0)]  # not a method
    got = prob_beats_baseline(_tidy(rows), "final/nll_test")
    assert got.to_dict() == {"gan": 0.75}  # 1 beats both, 3 beats 4: 3 of 4 pairs
    assert prob_beats_baseline(_tidy(rows), "final/nll_test", lower_is_better=False)["gan"] == 0.25
    assert prob_beats_baseline(_tidy(rows), "final/nll_oracle").empty  # MLE has no value


def test_curve_by_seconds_averages_both_coordinates_over_seeds():
    curve = pd.DataFrame(
        [("mle", 0, 10, 9.0), ("mle", 1, 10, 7.0), ("mle", 0, 20, 6.0)],
        columns=["method", "seed", "step", "value"],
    )
    seconds = pd.DataFrame(
        [("mle", 0, 10, 1.0), ("mle", 1, 10, 3.0), ("mle", 0, 20, 5.0)],
        columns=["method", "seed", "step", "seconds"],
    )
    got = mean_curve_by_seconds(curve, seconds)
    assert got.to_dict("records") == [
        dict(method="mle", step=10, seconds=2.0, value=8.0),
        dict(method="mle", step=20, seconds=5.0, value=6.0),
    ]


def test_plots_write_pngs_without_selecting_a_backend(tmp_path):
    import matplotlib

    backend = dict.__getitem__(matplotlib.rcParams, "backend")  # raw: reading does not resolve it
    sweep = pd.DataFrame(
        [("mle", 0, a, 9.0 - a, 8.0 + a) for a in (0.5, 1.0, 2.0)],
        columns=["method", "seed", "alpha", "nll_oracle", "nll_test"],
    )
    tidy = _tidy(
        [
            ("reference", "oracle", 0, "finished", k, 7.0)
            for k in ("final/nll_oracle", "final/nll_test")
        ]
    )
    curve = pd.DataFrame(
        [("mle", s, step, 9.0 - step / 10 + s) for s in (0, 1) for step in (0, 5, 10)],
        columns=["method", "seed", "step", "value"],
    )
    plot_quality_diversity(sweep, tidy, tmp_path / "qd.png")
    plot_curves(curve, tidy, tmp_path / "curve.png", "NLL-oracle", "final/nll_oracle")
    for name, size in (("qd.png", (840, 600)), ("curve.png", (840, 540))):  # inches * 120 dpi
        head = (tmp_path / name).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == size
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend  # no matplotlib.use()


def test_sweep_keys_are_valid_mlflow_names_and_give_back_the_very_alpha():
    from mlflow.utils.validation import _validate_metric_name

    for alpha in (0.5, 1.0, 2.0, 0.1 + 0.2, 1e-5, 2.5):
        key = sweep_key("sweep/nll_oracle", alpha)
        _validate_metric_name(key)  # raises on a name MLflow refuses
        assert parse_sweep_key(key) == ("sweep/nll_oracle", alpha)
    assert sweep_key("sweep/nll_test", 0.5) == "sweep/nll_test/a0.5"
    for other in ("sweep/best_sum", "sweep/alpha", "final/nll_oracle", "sweep/nll_test/ax"):
        assert parse_sweep_key(other) is None


def test_sweep_best_is_the_least_sum_and_its_alpha_first_on_ties():
    assert sweep_best([0.5, 1.0, 2.0], [10.0, 8.5, 7.0], [7.0, 8.0, 10.0]) == (16.5, 1.0)
    assert sweep_best([0.5, 1.0], [9.0, 8.0], [8.0, 9.0]) == (17.0, 0.5)  # tie: the first


def test_summary_long_has_the_numbers_of_summary_one_row_per_method_and_metric():
    tidy = _tidy(
        [("method", "mle", s, "finished", "final/nll_oracle", v) for s, v in enumerate([1, 2, 4])]
        + [("method", "mle", s, "finished", "final/nll_test", v) for s, v in enumerate([5, 6])]
        + [("method", "mle", 3, "diverged", "final/nll_oracle", 100.0)]
        + [("reference", "oracle", 0, "finished", "final/nll_oracle", 5.0)]
    )
    got = summary_long(tidy, ["final/nll_oracle", "final/nll_test"])
    assert list(got.columns) == ["method", "metric", "mean", "lower", "upper", "n"]
    assert list(zip(got.method, got.metric, got.n, strict=True)) == [
        ("mle", "final/nll_oracle", 3),  # the diverged seed is left out
        ("mle", "final/nll_test", 2),  # n counts the seeds with a value of this metric
        ("oracle", "final/nll_oracle", 1),
    ]
    wide = summary(tidy, ["final/nll_oracle"])
    row = got.iloc[0]
    assert (row["mean"], row.lower, row.upper) == tuple(
        wide.loc["mle", "final/nll_oracle"][["mean", "lo", "hi"]]
    )
    assert np.isnan(got.iloc[2].lower) and np.isnan(got.iloc[2].upper)  # one seed: no interval


def test_parent_metrics_name_method_metric_and_stat_and_skip_missing_bounds():
    numbers = pd.DataFrame(
        [
            ("mle", "final/nll_oracle", 9.0, 8.5, 9.5, 3),
            ("oracle", "final/nll_oracle", 5.0, np.nan, np.nan, 1),
            ("mle", "final/bleu2", 0.1, 0.0, 0.2, 3),  # not a parent metric
        ],
        columns=["method", "metric", "mean", "lower", "upper", "n"],
    )
    assert parent_metrics(numbers) == {
        "mle/nll_oracle_mean": 9.0,
        "mle/nll_oracle_lo": 8.5,
        "mle/nll_oracle_hi": 9.5,
        "oracle/nll_oracle_mean": 5.0,
    }


def test_sweep_summary_rows_replace_those_a_run_logged_itself():
    tidy = _tidy(
        [
            ("method", "mle", 0, "finished", "final/nll_oracle", 9.0),
            ("method", "mle", 0, "finished", "sweep/best_sum", 16.0),
            ("method", "mle", 0, "finished", "sweep/best_alpha", 2.0),
        ]
    )
    sweep = pd.DataFrame(
        [("mle", 0, 1.0, 9.0, 8.0), ("mle", 0, 2.0, 7.0, 9.0)],
        columns=["method", "seed", "alpha", "nll_oracle", "nll_test"],
    )
    got = with_sweep_summary(tidy, sweep)
    assert got.metric.value_counts().max() == 1  # none twice
    assert set(got.metric) == {"final/nll_oracle"} | set(sweep_summary(sweep).metric)
    assert got.set_index("metric").value["sweep/best_sum"] == 16.0


def test_sweep_and_curves_are_read_from_new_keys_and_from_stores_before_them(mlflow_uri):
    """Runs of this code (sweep_key metrics, learning_curve/*) and of stores written before them
    (sweep/* histories over steps round(100 alpha); eval/*, then curve/*) give the same frames."""
    tracker = Tracker(mlflow_uri, "legacy")
    parent = tracker.start("bench", {"kind": "parent"})
    alphas, oracle, test = (0.5, 1.0, 2.0), (10.0, 9.0, 7.0), (7.0, 8.0, 10.0)
    for seed, curve in ((0, "learning_curve"), (1, "eval"), (2, "curve")):
        legacy = curve != "learning_curve"
        tags = dict(kind="method", method="mle", seed=str(seed), cell_status="finished")
        run = tracker.start(f"mle-s{seed}", tags, parent)
        tracker.log_metrics(run, 10, {"final/nll_oracle": 9.5})
        for step, value in ((0, 11.0), (10, 10.0)):
            tracker.log_metrics(run, step, {f"{curve}/nll_oracle": value})
        for a, o, t in zip(alphas, oracle, test, strict=True):
            if legacy:
                point = {"sweep/nll_oracle": o, "sweep/nll_test": t, "sweep/alpha": a}
                tracker.log_metrics(run, round(100 * a), point)
            else:
                point = {sweep_key("sweep/nll_oracle", a): o, sweep_key("sweep/nll_test", a): t}
                tracker.log_metrics(run, 10, point)
        tracker.end(run)
    tidy = tidy_results(tracker, parent)
    sweep = sweep_frame(tracker, tidy).sort_values(["seed", "alpha"], ignore_index=True)
    one = pd.DataFrame({"alpha": alphas, "nll_oracle": oracle, "nll_test": test})
    expected = pd.concat([one.assign(method="mle", seed=s) for s in (0, 1, 2)], ignore_index=True)
    logged = ["method", "seed", "alpha", "nll_oracle", "nll_test"]
    pd.testing.assert_frame_equal(sweep[logged], expected[logged], check_dtype=False)
    assert sweep.drop(columns=logged).isna().all().all()  # divergences: none logged, NaN
    curve = curves(tracker, tidy, "learning_curve/nll_oracle").sort_values(["seed", "step"])
    assert list(zip(curve.seed, curve.step, curve.value, strict=True)) == [
        (0, 0, 11.0),
        (0, 10, 10.0),
        (1, 0, 11.0),
        (1, 10, 10.0),
        (2, 0, 11.0),
        (2, 10, 10.0),
    ]


def test_a_store_that_refuses_the_report_is_a_tracking_error_naming_the_parent(
    mlflow_uri, tmp_path
):
    tracker = Tracker(mlflow_uri, "blocked")
    root = Path(tracker.client.get_experiment(tracker.experiment_id).artifact_location[7:])
    assert root.is_relative_to(tmp_path)  # a SQLite store's artifacts: next to the database
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("a file where the artifact folder should be")
    parent = tracker.start("bench", {"kind": "parent"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "README.md").write_text("# report")
    empty = Report(pd.DataFrame({"x": ["1"]}), summary_long(_tidy([])), verdicts(_tidy([])))
    with pytest.raises(TrackingError, match=parent):
        publish_report(tracker, parent, tmp_path / "out", empty)


def test_a_paper_oracle_report_shows_published_numbers_with_sources_and_every_budget(
    mlflow_uri, tmp_path
):
    from bench.report.write import write_report

    tracker = Tracker(mlflow_uri, "budgets")
    parent = tracker.start("bench", {"kind": "parent", "oracle_kind": "seqgan-paper"})
    spent = {"mle": (100, 200, 0, 0, 0, 0), "seqgan": (40, 200, 46, 4680, 631_952, 7_045_402)}
    for method, (g, pg, d, pd_, n, pn) in spent.items():
        for seed in (0, 1):
            tags = dict(kind="method", method=method, seed=str(seed), cell_status="finished")
            run = tracker.start(f"{method}-s{seed}", tags, parent)
            budget = {"generator_updates": g, "adversary_updates": d, "adversary_parameters": n}
            paper = {"generator_updates": pg, "adversary_updates": pd_, "adversary_parameters": pn}
            metrics = {f"resources/{k}": v for k, v in budget.items()}
            metrics |= {f"resources/paper_{k}": v for k, v in paper.items()}
            metrics |= {"final/nll_oracle": 9.0 + seed, "final/nll_test": 8.0}
            tracker.log_metrics(run, 0, metrics)
            tracker.end(run)
    report = write_report(tracker, parent, tmp_path / "out")
    assert report.table.loc["mle", "published NLL-oracle"] == "9.038"
    assert report.table.loc["seqgan", "published NLL-oracle"] == "8.736"
    budgets = pd.read_csv(tmp_path / "out" / "budgets.csv", index_col="method")
    assert budgets.loc["seqgan", "generator updates"] == "40 (0.2 × paper)"
    updates, parameters = (
        "D / critic / mediator updates per G update",
        "D / critic / mediator parameters",
    )
    assert budgets.loc["seqgan", updates] == "46 (0.0098 × paper)"
    assert budgets.loc["mle", parameters] == "—"
    text = (tmp_path / "out" / "README.md").read_text()
    assert (
        "- mle: 9.038, SeqGAN Table 1 (original code HEAD: 120 epochs, lr 1e-2; "
        "its paper-era code: 350 epochs, lr 1e-3)"
    ) in text
    assert "## Budgets" in text and "631,952 (0.09 × paper)" in text


def test_a_cell_run_without_an_end_is_named_not_finished_and_left_out_of_the_numbers(mlflow_uri):
    """A cell still training (or killed before it tagged its end) has no `cell_status`: the
    seeds column names it 'not finished', and its partial metrics are not averaged in."""
    tracker = Tracker(mlflow_uri, "partial")
    parent = tracker.start("bench", {"kind": "parent"})
    done = tracker.start("mle-s0", dict(kind="method", method="mle", seed="0"), parent)
    tracker.log_metrics(done, 10, {"final/nll_oracle": 9.0})
    tracker.set_tags(done, {"cell_status": "finished"})
    tracker.end(done)
    busy = tracker.start("mle-s1", dict(kind="method", method="mle", seed="1"), parent)
    tracker.log_metrics(busy, 10, {"final/nll_oracle": 1.0})  # as if partial: must not count
    table = display_table(tidy_results(tracker, parent))
    assert table.loc["mle", "seeds"] == "1 (seed 1: not finished)"
    assert table.loc["mle", COLUMNS["final/nll_oracle"][0]] == "9.000 (n=1)"

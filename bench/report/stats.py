"""Statistics over seeds: intervals, pairwise win probabilities, sweep summaries (pure frames).

No I/O, plotting or MLflow here: every function maps arrays or tidy frames to numbers or frames.
A tidy results frame has one row per (method, seed, metric) with columns kind ("method" or
"reference"), method, seed, status ("finished" or why not), run_id, metric, value; a sweep frame
has one row per (method, seed, alpha) with columns method, seed, alpha, nll_oracle, nll_test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bench.metrics.evaluate import sweep_best


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean over seeds (n,) and its 95% Student-t interval; (mean, nan, nan) when n = 1.

    Student-t, not a bootstrap: with the usual 3 seeds a percentile bootstrap can only return
    [min, max] (each extreme is resampled 3 times with probability 1/27 > 2.5%), which covers the
    mean ~75% of the time; the t interval keeps its 95% for normal seed noise (tested).
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    sem = float(stats.sem(values))
    if sem == 0.0:  # identical seeds (deterministic rows): a point, not a NaN interval
        return mean, mean, mean
    lo, hi = stats.t.interval(0.95, df=len(values) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def prob_beats(a: np.ndarray, b: np.ndarray, lower_is_better: bool) -> float:
    """P(a random seed of A beats a random seed of B), ties counting half (rliable's P(X > Y)).

    `a` (n,) and `b` (m,) are one metric's per-seed values of two methods; `lower_is_better`
    gives the metric's direction (True for NLLs). Averages over all n * m pairs, in [0, 1].
    """
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    wins = (a < b) if lower_is_better else (a > b)
    return float(wins.mean() + 0.5 * (a == b).mean())


def paired_differences(tidy: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    """`method` − every other method on `metric`, seed by seed (each seed of a method starts
    from that seed's pre-training, so seeds pair); finished cells only, seeds both have.

    One row per other method: baseline, n (paired seeds), mean, lo, hi (the mean difference
    and its 95% Student-t interval, NaN when n = 1). Negative: `method` is lower; whether lower
    is better is the metric's direction (lower for NLLs).
    """
    rows = tidy[(tidy.kind == "method") & (tidy.status == "finished") & (tidy.metric == metric)]
    values = rows.drop_duplicates(["method", "seed"]).pivot(
        index="seed", columns="method", values="value"
    )
    out = []
    for other in values.columns:
        if other == method or method not in values.columns:
            continue
        both = values[[method, other]].dropna()
        if both.empty:
            continue
        mean, lo, hi = mean_ci((both[method] - both[other]).to_numpy())
        out.append({"baseline": other, "n": len(both), "mean": mean, "lo": lo, "hi": hi})
    return pd.DataFrame(out, columns=["baseline", "n", "mean", "lo", "hi"])


def summary(tidy: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-method mean and 95% interval over seeds of each metric, finished cells only.

    `tidy`: a tidy results frame (module docstring). `metrics`: the metrics to summarise (default:
    every one in `tidy`). Returns one row per method (index, in order of first appearance) with
    MultiIndex columns ("kind", ""), ("n", "") (number of seeds) and (metric, stat) for stat in
    mean, lo, hi (see `mean_ci`); a metric a method lacks has no (metric, *) entries (NaN).
    """
    if metrics is None:
        metrics = sorted(set(tidy.metric) - {""})
    finished = tidy[tidy.status == "finished"]
    rows = {}
    for (kind, method), part in finished.groupby(["kind", "method"], sort=False):
        row = {("kind", ""): kind, ("n", ""): part.seed.nunique()}
        for metric in metrics:
            vals = part[part.metric == metric].sort_values("seed").value.to_numpy()
            if len(vals):
                m, lo, hi = mean_ci(vals)
                row |= {(metric, "mean"): m, (metric, "lo"): lo, (metric, "hi"): hi}
        rows[method] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def summary_long(tidy: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """The numbers of `summary` as a long numeric frame: one row per (method, metric) that has
    values, columns method, metric, mean, lower, upper (the 95% interval of `mean_ci`; NaN when
    n = 1) and n (the finished seeds with a value of that metric).

    `tidy`: a tidy results frame (module docstring); finished cells only. `metrics`: those to
    summarise, in this order within each method (default: every one in `tidy`, sorted). Methods
    in order of first appearance. Direction is the metric's own (lower is better for NLLs).
    """
    if metrics is None:
        metrics = sorted(set(tidy.metric) - {""})
    finished = tidy[tidy.status == "finished"]
    rows = []
    for method, part in finished.groupby("method", sort=False):
        for metric in metrics:
            vals = part[part.metric == metric].sort_values("seed").value.to_numpy()
            if len(vals):
                m, lo, hi = mean_ci(vals)
                rows.append(dict(method=method, metric=metric, mean=m, lower=lo, upper=hi))
                rows[-1]["n"] = len(vals)
    return pd.DataFrame(rows, columns=["method", "metric", "mean", "lower", "upper", "n"])


def prob_beats_baseline(
    tidy: pd.DataFrame, metric: str, baseline: str = "mle", lower_is_better: bool = True
) -> pd.Series:
    """P(a random seed of each method beats a random seed of `baseline`) on `metric`.

    `tidy`: a tidy results frame; only finished cells of kind "method" count. Returns a Series
    indexed by method, for every method other than `baseline` with at least one value of
    `metric`; empty when the baseline has none. Direction: `lower_is_better` (True for NLLs).
    """
    ok = tidy[(tidy.status == "finished") & (tidy.kind == "method") & (tidy.metric == metric)]
    base = ok[ok.method == baseline].value.to_numpy()
    out = {}
    if len(base):
        for method, part in ok[ok.method != baseline].groupby("method", sort=False):
            out[method] = prob_beats(part.value.to_numpy(), base, lower_is_better)
    return pd.Series(out, dtype=float)


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Tidy rows per (method, seed): the best NLL-oracle + NLL-test over the sweep and its alpha,
    and the NLL-oracle at the NLL-test that MLE has at alpha = 1 (quality at matched diversity,
    linear interpolation along the method's sweep; NaN outside the sweep's range).

    `sweep`: a sweep frame (module docstring). Returns columns method, seed, metric, value with
    metrics sweep/best_sum (lower is better), sweep/best_alpha (a location, no direction) and
    sweep/oracle_at_mle_test (lower is better).

    NLL-test is U-shaped in alpha (alpha -> 0 gives uniform tokens, alpha -> inf greedy ones), so
    the target can be crossed twice. Only the cold branch, alpha >= the alpha of least NLL-test,
    is the quality-diversity frontier (there a larger alpha trades NLL-test for NLL-oracle; on
    the hot side both get worse), and only it is interpolated."""
    mle = sweep[sweep.method == "mle"]
    target = np.nan
    if len(mle):
        per_alpha = mle.groupby("alpha").nll_test.mean()
        target = float(np.interp(1.0, per_alpha.index, per_alpha.to_numpy()))
    rows = []
    for (method, seed), part in sweep.groupby(["method", "seed"]):
        best_sum, best_alpha = sweep_best(part.alpha, part.nll_oracle, part.nll_test)
        by_alpha = part.sort_values("alpha")
        coldest_best = by_alpha.alpha.iloc[int(np.argmin(by_alpha.nll_test.to_numpy()))]
        xs = by_alpha[by_alpha.alpha >= coldest_best].sort_values("nll_test")  # the cold branch
        inside = xs.nll_test.min() <= target <= xs.nll_test.max()
        matched = np.interp(target, xs.nll_test, xs.nll_oracle) if inside else np.nan
        values = (
            ("sweep/best_sum", best_sum),
            ("sweep/best_alpha", best_alpha),
            ("sweep/oracle_at_mle_test", matched),
        )
        rows += [dict(method=method, seed=seed, metric=k, value=float(v)) for k, v in values]
    return pd.DataFrame(rows, columns=["method", "seed", "metric", "value"])


def with_sweep_summary(tidy: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """The tidy results plus the sweep's per-seed summary rows (so they get intervals too).

    `tidy`: a tidy results frame; `sweep`: a sweep frame of the same runs. Each summary row takes
    kind, status and run_id from its (method, seed) in `tidy`; the columns are `tidy`'s. Rows of
    those metrics already in `tidy` (a run logs its own best point) are replaced, not repeated:
    sweep/oracle_at_mle_test needs every MLE seed, so only the whole frame has it.
    """
    runs = tidy.drop_duplicates(["method", "seed"]).set_index(["method", "seed"])
    extra = sweep_summary(sweep).join(runs[["kind", "status", "run_id"]], on=["method", "seed"])
    kept = tidy[~tidy.metric.isin(set(extra.metric))]
    return pd.concat([kept, extra[tidy.columns]], ignore_index=True)


def mean_curve_by_seconds(curve: pd.DataFrame, seconds: pd.DataFrame) -> pd.DataFrame:
    """A learning curve against training seconds, averaged over seeds per update count.

    `curve`: method, seed, step, value (one row per evaluation); `seconds`: method, seed, step,
    seconds (the training seconds at that evaluation). Seeds differ in seconds, so both
    coordinates are averaged per (method, step): returns method, step, seconds, value.
    """
    by_time = curve.merge(seconds, on=["method", "seed", "step"])
    return by_time.groupby(["method", "step"], as_index=False)[["seconds", "value"]].mean()

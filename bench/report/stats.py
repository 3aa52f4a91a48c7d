"""Statistics over seeds: intervals, pairwise win probabilities, sweep summaries (pure frames).

No I/O, plotting or MLflow here: every function maps arrays or tidy frames to numbers or frames.
A tidy results frame has one row per (method, seed, metric) with columns kind ("method" or
"reference"), method, seed, status ("finished" or why not), run_id, metric, value; a sweep frame
has one row per (method, seed, alpha) with columns method, seed, alpha, nll_oracle, nll_test
and the divergence columns of `bench.metrics.evaluate.DIVERGENCES` (NaN in older stores).
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


def _alpha1(part: pd.DataFrame, column: str) -> float:
    """Mean over seeds of `column` at alpha = 1 (interpolated along the alphas)."""
    per_alpha = part.groupby("alpha")[column].mean()
    return float(np.interp(1.0, per_alpha.index, per_alpha.to_numpy()))


def _cold_branch_at(by_alpha: pd.DataFrame, x: str, y: str, target: float) -> float:
    """`y` where `x` equals `target` along the cold branch of one sweep (alpha >= the alpha of
    least `x`), by linear interpolation; NaN outside the branch's range or without data."""
    if not np.isfinite(target) or by_alpha[[x, y]].isna().any().any():
        return np.nan
    coldest_best = by_alpha.alpha.iloc[int(np.argmin(by_alpha[x].to_numpy()))]
    xs = by_alpha[by_alpha.alpha >= coldest_best].sort_values(x)
    inside = xs[x].min() <= target <= xs[x].max()
    return float(np.interp(target, xs[x], xs[y])) if inside else np.nan


def sweep_summary(sweep: pd.DataFrame, baselines: Sequence[str] = ("mle",)) -> pd.DataFrame:
    """Tidy rows per (method, seed): the best NLL-oracle + NLL-test over the sweep and its alpha,
    and quality at matched diversity, linear interpolation along the method's sweep (NaN
    outside the sweep's range):
    sweep/oracle_at_mle_test, the NLL-oracle at the NLL-test that MLE has at alpha = 1;
    sweep/oracle_at_best_test, the NLL-oracle at the least alpha = 1 NLL-test of the
    `baselines` present (the best-covering one; its name in the `best_baseline` attribute);
    sweep/rkl_at_best_fkl, the reverse KL at that baseline's alpha = 1 forward KL (a point on
    the reverse-against-forward KL frontier).

    `sweep`: a sweep frame (module docstring; the divergence columns may be NaN or missing).
    Returns columns method, seed, metric, value; all lower is better but sweep/best_alpha (a
    location).

    NLL-test is U-shaped in alpha (alpha -> 0 gives uniform tokens, alpha -> inf greedy ones), so
    the target can be crossed twice. Only the cold branch, alpha >= the alpha of least NLL-test,
    is the quality-diversity frontier (there a larger alpha trades NLL-test for NLL-oracle; on
    the hot side both get worse), and only it is interpolated."""
    sweep = sweep.copy()
    for column in ("forward_kl", "reverse_kl"):
        if column not in sweep:
            sweep[column] = np.nan
    mle = sweep[sweep.method == "mle"]
    target = _alpha1(mle, "nll_test") if len(mle) else np.nan
    present = [b for b in baselines if b in set(sweep.method)]
    best = min(present, key=lambda b: _alpha1(sweep[sweep.method == b], "nll_test"), default=None)
    best_test = best_fkl = np.nan
    if best is not None:
        best_test = _alpha1(sweep[sweep.method == best], "nll_test")
        best_fkl = _alpha1(sweep[sweep.method == best], "forward_kl")
    rows = []
    for (method, seed), part in sweep.groupby(["method", "seed"]):
        best_sum, best_alpha = sweep_best(part.alpha, part.nll_oracle, part.nll_test)
        by_alpha = part.sort_values("alpha")
        values = (
            ("sweep/best_sum", best_sum),
            ("sweep/best_alpha", best_alpha),
            (
                "sweep/oracle_at_mle_test",
                _cold_branch_at(by_alpha, "nll_test", "nll_oracle", target),
            ),
            (
                "sweep/oracle_at_best_test",
                _cold_branch_at(by_alpha, "nll_test", "nll_oracle", best_test),
            ),
            (
                "sweep/rkl_at_best_fkl",
                _cold_branch_at(by_alpha, "forward_kl", "reverse_kl", best_fkl),
            ),
        )
        rows += [dict(method=method, seed=seed, metric=k, value=float(v)) for k, v in values]
    out = pd.DataFrame(rows, columns=["method", "seed", "metric", "value"])
    out.attrs["best_baseline"] = best
    return out


def with_sweep_summary(
    tidy: pd.DataFrame, sweep: pd.DataFrame, baselines: Sequence[str] = ("mle",)
) -> pd.DataFrame:
    """The tidy results plus the sweep's per-seed summary rows (so they get intervals too).

    `tidy`: a tidy results frame; `sweep`: a sweep frame of the same runs. Each summary row takes
    kind, status and run_id from its (method, seed) in `tidy`; the columns are `tidy`'s. Rows of
    those metrics already in `tidy` (a run logs its own best point) are replaced, not repeated:
    sweep/oracle_at_mle_test needs every MLE seed, so only the whole frame has it.
    """
    runs = tidy.drop_duplicates(["method", "seed"]).set_index(["method", "seed"])
    summary_rows = sweep_summary(sweep, baselines)
    extra = summary_rows.join(runs[["kind", "status", "run_id"]], on=["method", "seed"])
    kept = tidy[~tidy.metric.isin(set(extra.metric))]
    out = pd.concat([kept, extra[tidy.columns]], ignore_index=True)
    out.attrs["best_baseline"] = summary_rows.attrs["best_baseline"]
    return out


def mean_curve_by_seconds(curve: pd.DataFrame, seconds: pd.DataFrame) -> pd.DataFrame:
    """A learning curve against training seconds, averaged over seeds per update count.

    `curve`: method, seed, step, value (one row per evaluation); `seconds`: method, seed, step,
    seconds (the training seconds at that evaluation). Seeds differ in seconds, so both
    coordinates are averaged per (method, step): returns method, step, seconds, value.
    """
    by_time = curve.merge(seconds, on=["method", "seed", "step"])
    return by_time.groupby(["method", "step"], as_index=False)[["seconds", "value"]].mean()


def paired_t(diffs: np.ndarray) -> tuple[float, float, float, float]:
    """Paired differences (n,) (method − baseline, seed by seed): (mean, lo, hi, p) with the
    95% Student-t interval and the two-sided p of mean = 0; interval and p NaN when n < 2, p 1
    when every difference is 0 (and the interval the point)."""
    diffs = np.asarray(diffs, float)
    mean, lo, hi = mean_ci(diffs)
    if len(diffs) < 2:
        return mean, lo, hi, np.nan
    sem = float(stats.sem(diffs))
    if sem == 0.0:
        return mean, lo, hi, 1.0 if mean == 0.0 else 0.0
    t = mean / sem
    return mean, lo, hi, float(2 * stats.t.sf(abs(t), df=len(diffs) - 1))


def welch_t(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Unpaired fallback, for seeds that do not pair: mean(a) − mean(b) (a (n,), b (m,)), its
    95% Welch interval and two-sided p; NaN interval and p when either has fewer than 2."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    mean = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return mean, np.nan, np.nan, np.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0.0:
        return mean, mean, mean, 1.0 if mean == 0.0 else 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, df)) * se
    return mean, mean - half, mean + half, float(2 * stats.t.sf(abs(mean) / se, df))


def tost_p(diffs: np.ndarray, margin: float) -> float:
    """Two one-sided tests of |mean difference| < margin on paired differences (n,): the
    larger of the two one-sided p values (equivalence at level a when it is < a, i.e. when the
    1 − 2a interval lies inside ±margin). NaN when n < 2."""
    diffs = np.asarray(diffs, float)
    if len(diffs) < 2:
        return np.nan
    mean, sem, df = float(diffs.mean()), float(stats.sem(diffs)), len(diffs) - 1
    if sem == 0.0:
        return 0.0 if abs(mean) < margin else 1.0
    p_lower = stats.t.sf((mean + margin) / sem, df)  # H0: mean <= -margin
    p_upper = stats.t.cdf((mean - margin) / sem, df)  # H0: mean >= +margin
    return float(max(p_lower, p_upper))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p values (k,): each adjusted p is
    max over j <= rank of (k − j) p_(j), capped at 1, in the input's order. Reject where the
    adjusted p < the family's level; controls the family-wise error. NaNs pass through and do
    not count in k."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    k, running = len(order), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (k - j) * p[i]))
        out[i] = running
    return out


def seeds_needed(
    mean: float, sd: float, alpha: float = 0.05, power: float = 0.8, cap: int = 10_000
) -> int | None:
    """Paired seeds a two-sided paired t-test at level `alpha` needs to detect a true mean
    difference `mean` with `power`, when differences have standard deviation `sd` (exact,
    noncentral t). None when the effect is 0 or the need exceeds `cap`."""
    if not np.isfinite(mean) or not np.isfinite(sd) or mean == 0.0:
        return None
    if sd == 0.0:
        return 2
    d = abs(mean) / sd
    for n in range(2, cap + 1):
        df = n - 1
        crit = stats.t.ppf(1 - alpha / 2, df)
        nc = d * np.sqrt(n)
        achieved = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
        if achieved >= power:
            return n
    return None

"""Verdicts generated from the data: the questions the benchmark exists to answer, each
evaluated for every method present, with a paired effect, its interval, a Holm-corrected p and
one word from VERDICT_WORDS.

A tidy results frame (bench/report/stats.py) goes in, the verdicts frame comes out: no I/O.
Every comparison is method − baseline on one metric, seed by seed (seed s of every method
starts from seed s's pre-training, so seeds pair); all metrics here are nats, lower is better.
The family Holm corrects over is every comparison of one report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report.stats import holm, paired_t, seeds_needed, tost_p, welch_t
from bench.report.table import BASELINES  # every method is compared with each one present

VERDICT_WORDS = ("better", "worse", "equivalent", "inconclusive")
LEVEL = 0.05  # family-wise error of the difference tests, and of the equivalence tests
# 0.05 nats per token: 1 nat per 20-token sequence. Smaller than any gap the literature
# reports between methods on this task (SeqGAN − MLE: 0.3), larger than the evaluation's own
# sampling error (standard error ≈ 0.005 at 10,000 samples), so "equivalent" means "no gap a
# paper would report", not "within noise of a bad evaluation".
DEFAULT_MARGIN = 0.05


# metric -> its label; all lower is better. The forward KL is not a metric of its own here: it
# is NLL-test minus the oracle's NLL of the same held-out rows, a constant, so its paired
# differences are NLL-test's, and counting both would only double them in the Holm family.
METRICS = {
    "final/nll_oracle": "NLL-oracle at α = 1",
    "final/nll_test": "NLL-test (= forward KL) at α = 1",
    "sweep/oracle_at_best_test": "NLL-oracle at matched diversity",
    "final/reverse_kl": "reverse KL(G‖P) at α = 1",
    "sweep/best_jeffreys": "best Jeffreys over α",
}
FRONTIER_METRIC = "sweep/rkl_at_best_fkl"
LABELS = METRICS | {FRONTIER_METRIC: "reverse KL at matched forward KL"}
CONTRAST_METRICS = ("final/nll_oracle", "final/reverse_kl", "final/nll_test")


@dataclass(frozen=True)
class Contrast:
    """A declared pair: `method` against `baseline` answers `question`."""

    question: str
    method: str
    baseline: str


# Controls and variants join here by declaring what they control for.
CONTRASTS = (
    Contrast(
        "Does the discriminator's signal matter? (SeqGAN against its constant-reward control)",
        "seqgan",
        "seqgan-const",
    ),
    Contrast(
        "Does a reward tied to its own sequence matter? (SeqGAN against its shuffled rewards)",
        "seqgan",
        "seqgan-shuffled",
    ),
    Contrast(
        "Does an unbiased baseline change SeqGAN's result? (seqgan-baseline against SeqGAN)",
        "seqgan-baseline",
        "seqgan",
    ),
    Contrast(
        "Is the baseline arm more than injected noise? (seqgan-baseline against matched noise)",
        "seqgan-baseline",
        "seqgan-baseline-noise",
    ),
    Contrast(
        "Does a 10x discriminator change SeqGAN? (seqgan-d10 against SeqGAN)",
        "seqgan-d10",
        "seqgan",
    ),
    # the adversary's error switched off: each estimator with the exact D* against its learned D
    *(
        Contrast(
            f"Does the exact discriminator change {m}? ({m}-oracle-d against {m})",
            f"{m}-oracle-d",
            m,
        )
        for m in ("seqgan", "seqgan-baseline", "maligan", "rloo", "rloo-kl")
    ),
)

COLUMNS = [
    "question",
    "method",
    "baseline",
    "metric",
    "n",
    "paired",
    "effect",
    "lo",
    "hi",
    "p",
    "p_holm",
    "p_equivalence_holm",
    "verdict",
    "seeds_needed",
]


def _values(tidy: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished cells' values of `metric`: seeds × methods."""
    rows = tidy[(tidy.kind == "method") & (tidy.status == "finished") & (tidy.metric == metric)]
    rows = rows.dropna(subset=["value"]).drop_duplicates(["method", "seed"])
    return rows.pivot(index="seed", columns="method", values="value")


def compare(a: pd.Series, b: pd.Series, margin: float) -> dict:
    """One comparison of per-seed values a − b (Series indexed by seed): paired on the seeds
    both have when there are 2 or more, else Welch on all seeds (paired False)."""
    both = pd.concat([a, b], axis=1).dropna()
    if len(both) >= 2:
        diffs = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
        mean, lo, hi, p = paired_t(diffs)
        sd = float(np.std(diffs, ddof=1))
        return dict(n=len(both), paired=True, effect=mean, lo=lo, hi=hi, p=p) | dict(
            p_equivalence=tost_p(diffs, margin), sd=sd
        )
    a, b = a.dropna().to_numpy(), b.dropna().to_numpy()
    mean, lo, hi, p = welch_t(a, b)
    sd = (
        float(np.sqrt(np.var(a, ddof=1) + np.var(b, ddof=1))) if min(len(a), len(b)) > 1 else np.nan
    )
    return dict(n=min(len(a), len(b)), paired=False, effect=mean, lo=lo, hi=hi, p=p) | dict(
        p_equivalence=np.nan, sd=sd
    )


def same_as(tidy: pd.DataFrame) -> dict[str, str]:
    """Baselines whose values equal an earlier baseline's on every seed and verdict metric
    (`mle-es` when early stopping kept the start, i.e. `pretrained`): {baseline: earlier}.
    Their comparisons would repeat the earlier one's, so the verdicts leave them out and the
    Holm family counts each once."""
    metrics = [*METRICS, FRONTIER_METRIC]
    rows = tidy[(tidy.kind == "method") & (tidy.status == "finished") & tidy.metric.isin(metrics)]
    table = rows.pivot_table(index=["seed", "metric"], columns="method", values="value")
    present = [b for b in BASELINES if b in table.columns]
    out = {}
    for i, b in enumerate(present):
        for earlier in present[:i]:
            if earlier not in out and table[b].equals(table[earlier]):
                out[b] = earlier
                break
    return out


def _pairs(tidy: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """(question, method, baseline, metric) of every comparison this frame supports; a
    baseline that repeats an earlier one (`same_as`) asks no questions of its own."""
    methods = set(tidy[tidy.kind == "method"].method)
    repeats = same_as(tidy)
    baselines = [b for b in BASELINES if b in methods and b not in repeats]
    others = sorted(methods - set(BASELINES))
    out = []
    for b in baselines:
        q = f"Does the method beat the MLE baseline `{b}`?"
        out += [(q, m, b, metric) for m in others for metric in METRICS]
    for b in baselines:
        q = f"Does the method get below the MLE frontier of `{b}`?"
        out += [(q, m, b, FRONTIER_METRIC) for m in others]
    for c in CONTRASTS:
        if {c.method, c.baseline} <= methods:
            out += [(c.question, c.method, c.baseline, metric) for metric in CONTRAST_METRICS]
    return out


def verdicts(tidy: pd.DataFrame, margin: float = DEFAULT_MARGIN) -> pd.DataFrame:
    """Every question of the report, every method present: one row per comparison (COLUMNS).

    effect, lo, hi: mean of method − baseline and its 95% interval (negative: the method is
    lower, i.e. better); p: two-sided paired t (Welch where seeds do not pair: `paired`
    False); p_holm, p_equivalence_holm: the difference and the equivalence (TOST at ±`margin`)
    p values, Holm-corrected over all rows; seeds_needed: for an inconclusive row, the paired
    seeds that detect the observed effect (at the observed spread) with power 0.8 at level
    0.05 / k, k the family's size (Holm's first, strictest step); empty when the observed
    effect is 0 or needs over 10,000.
    """
    cache: dict[str, pd.DataFrame] = {}
    rows = []
    for question, method, baseline, metric in _pairs(tidy):
        if metric not in cache:
            cache[metric] = _values(tidy, metric)
        values = cache[metric]
        if method not in values or baseline not in values:
            continue
        row = compare(values[method], values[baseline], margin)
        if row["n"] < 2:
            continue
        rows.append(dict(question=question, method=method, baseline=baseline, metric=metric) | row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=COLUMNS)
    out["p_holm"] = holm(out.p.to_numpy())
    out["p_equivalence_holm"] = holm(out.p_equivalence.to_numpy())
    out["verdict"] = [_word(r) for r in out.itertuples()]
    level = LEVEL / len(out)  # Bonferroni: Holm's first, strictest step over k comparisons
    out["seeds_needed"] = [
        seeds_needed(r.effect, r.sd, alpha=level) if r.verdict == "inconclusive" else None
        for r in out.itertuples()
    ]
    out["seeds_needed"] = out.seeds_needed.astype("Int64")
    return out[COLUMNS]


def _word(r) -> str:
    if r.p_holm < LEVEL:
        return "better" if r.effect < 0 else "worse"
    if r.p_equivalence_holm < LEVEL:
        return "equivalent"
    return "inconclusive"


def verdict_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per question, how many comparisons got each verdict word."""
    counts = frame.groupby(["question", "verdict"], sort=False).size().unstack(fill_value=0)
    return counts.reindex(columns=list(VERDICT_WORDS), fill_value=0)

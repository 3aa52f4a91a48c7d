"""The comparison table: its columns, the display strings, summary.csv's frame, the terminal."""

from __future__ import annotations

import pandas as pd

from bench.report.published import NLL_ORACLE
from bench.report.stats import prob_beats_baseline, summary, summary_long

# column key -> (header, lower is better?)
COLUMNS = {
    "final/nll_oracle": ("NLL-oracle ↓", True),
    "final/nll_test": ("NLL-test ↓", True),
    "final/bleu2": ("BLEU-2 ↑", False),
    "final/bleu3": ("BLEU-3 ↑", False),
    "final/bleu4": ("BLEU-4 ↑", False),
    "final/bleu5": ("BLEU-5 ↑", False),
    "final/self_bleu2": ("Self-BLEU-2 ↓", True),
    "final/self_bleu3": ("Self-BLEU-3 ↓", True),
    "final/self_bleu4": ("Self-BLEU-4 ↓", True),
    "final/self_bleu5": ("Self-BLEU-5 ↓", True),
    "sweep/best_sum": ("best NLL-oracle+test over α ↓", True),
    "sweep/best_alpha": ("α at best", True),
    "sweep/oracle_at_mle_test": ("NLL-oracle at MLE's α=1 NLL-test ↓", True),
    "sweep/oracle_at_best_test": ("NLL-oracle at best baseline's α=1 NLL-test ↓", True),
    "final/entropy": ("H(G) per token", True),
    "final/reverse_kl": ("reverse KL ↓", True),
    "final/forward_kl": ("forward KL ↓", True),
    "final/jeffreys": ("Jeffreys ↓", True),
    "final/jsd": ("JSD per sequence ↓", True),
    "sweep/best_jeffreys": ("best Jeffreys over α ↓", True),
    "sweep/best_jeffreys_alpha": ("α at best Jeffreys", True),
    "sweep/rkl_at_best_fkl": ("reverse KL at best baseline's α=1 forward KL ↓", True),
    # a learned discriminator's accuracy on held-out oracle rows and fresh samples (its checks
    # after the last evaluation window's updates, averaged): 0.5 is chance
    "train/d_heldout_acc": ("D held-out accuracy", False),
    "perf/update_ms_mean": ("ms / G update", True),
    "perf/rollout_ms_mean": ("rollout ms / batch", True),
    "perf/setup_s": ("setup s", True),
}
HEADLINE = ("final/nll_oracle", "final/nll_test")
PUBLISHED_COLUMN = "published NLL-oracle"  # on the paper's oracle only (bench.report.published)
MIN_PROB_SEEDS = 3  # P(beats MLE) is shown only with this many seeds on both sides


# the MLE baselines, in this order right after the reference rows (bench.report.verdicts)
BASELINES = ("pretrained", "mle-es", "mle")


def _order(methods: list[str], kinds: dict[str, str]) -> list[str]:
    refs = [m for m in ("oracle", "unigram", "uniform") if m in methods]
    baselines = [m for m in BASELINES if m in methods and kinds[m] != "reference"]
    rest = sorted(m for m in methods if kinds[m] != "reference" and m not in baselines)
    return refs + baselines + rest


def display_table(tidy: pd.DataFrame, oracle_kind: str = "random") -> pd.DataFrame:
    """The comparison table as strings: 'mean [lo, hi]' (or 'mean (n=1)'), diverged cells named."""
    num = summary(tidy, list(COLUMNS))
    kinds = tidy.groupby("method").kind.first().to_dict()
    out = {}
    for method in _order(list(kinds), kinds):
        out[method] = _display_row(method, num.loc[method] if method in num.index else None, tidy)
    frame = pd.DataFrame.from_dict(out, orient="index")
    if oracle_kind == "seqgan-paper":
        frame.insert(
            1,
            PUBLISHED_COLUMN,
            [NLL_ORACLE[m].shown if m in NLL_ORACLE else "" for m in frame.index],
        )
    _add_prob_columns(frame, tidy)
    frame.index.name = "method"
    return frame


def _display_row(method: str, row, tidy: pd.DataFrame) -> dict[str, str]:
    cells = tidy[tidy.method == method].drop_duplicates("run_id")
    bad = cells[cells.status != "finished"]
    note = ", ".join(f"seed {s}: {st}" for s, st in zip(bad.seed, bad.status, strict=True))
    out = {"seeds": f"{0 if row is None else int(row[('n', '')])}" + (f" ({note})" if note else "")}
    for metric, (header, _) in COLUMNS.items():
        if row is None or (metric, "mean") not in row.index or pd.isna(row[(metric, "mean")]):
            out[header] = "—"
            continue
        m, lo, hi, n = (
            row[(metric, "mean")],
            row[(metric, "lo")],
            row[(metric, "hi")],
            int(row[("n", "")]),
        )
        digits = 1 if metric.startswith("perf/") else 3
        out[header] = (
            f"{m:.{digits}f} (n=1)"
            if n < 2
            else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
        )
    return out


def _add_prob_columns(frame: pd.DataFrame, tidy: pd.DataFrame) -> None:
    """P(beats MLE) per headline metric, '—' where the method or `mle` has fewer than
    MIN_PROB_SEEDS finished seeds of it (with 1 seed each it can only be 0, 0.5 or 1)."""
    ok = tidy[(tidy.status == "finished") & (tidy.kind == "method")]
    for metric in HEADLINE:
        header = f"P(beats MLE) {COLUMNS[metric][0].split()[0]}"
        probs = prob_beats_baseline(tidy, metric, "mle", lower_is_better=COLUMNS[metric][1])
        seeds = ok[ok.metric == metric].groupby("method").seed.nunique()
        enough = seeds.get("mle", 0) >= MIN_PROB_SEEDS
        frame[header] = [
            f"{probs[m]:.2f}"
            if enough and m in probs.index and seeds.get(m, 0) >= MIN_PROB_SEEDS
            else "—"
            for m in frame.index
        ]


def summary_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """summary.csv: method, metric, mean, lower, upper, n for every COLUMNS metric, methods in
    the table's order."""
    numbers = summary_long(tidy, list(COLUMNS))
    kinds = tidy.groupby("method").kind.first().to_dict()
    order = {m: i for i, m in enumerate(_order(list(kinds), kinds))}
    return numbers.sort_values("method", key=lambda m: m.map(order), kind="stable").reset_index(
        drop=True
    )


TERMINAL_COLUMNS = (
    "seeds",
    PUBLISHED_COLUMN,
    "NLL-oracle ↓",
    "NLL-test ↓",
    "reverse KL ↓",
    "forward KL ↓",
    "BLEU-4 ↑",
    "Self-BLEU-4 ↓",
    "ms / G update",
    "rollout ms / batch",
    "P(beats MLE) NLL-oracle",
)


def print_table(table: pd.DataFrame, title: str) -> None:
    """The headline columns in the terminal; every column is in the Markdown and CSV files."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption="all columns: README.md / table.csv of the report")
    t.add_column("method")
    columns = [c for c in TERMINAL_COLUMNS if c in table.columns]
    for col in columns:
        t.add_column(col, justify="right")
    for method, row in table[columns].iterrows():
        t.add_row(method, *row.tolist())
    Console(width=200).print(t)

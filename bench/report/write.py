"""Write a finished invocation's report files: README.md, the CSVs and the plots.

`python -m bench.report` rebuilds them from the store without retraining; `bench.run` calls the
same code at its end, so the printed table and the stored one cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.report.budgets import budget_table
from bench.report.html_page import report_html
from bench.report.load import curves, sweep_frame, tidy_results, updates_made
from bench.report.markdown import report_markdown, runs_section, verdict_section
from bench.report.plots import (
    plot_curves,
    plot_frontier,
    plot_pretrain_curves,
    plot_quality_diversity,
)
from bench.report.pretrain import pretrain_curves, pretrain_runs, pretrain_section
from bench.report.published import CACCIA_LABEL, CACCIA_MLE_SWEEP, NLL_ORACLE
from bench.report.stats import mean_curve_by_seconds, with_sweep_summary
from bench.report.table import BASELINES, display_table, summary_table
from bench.report.timing import time_parts, time_table
from bench.report.verdicts import DEFAULT_MARGIN, same_as, verdicts
from bench.store.tracker import Tracker

REPORT_FILES = (
    "README.md",
    "table.csv",
    "summary.csv",
    "budgets.csv",
    "timing.csv",
    "results.csv",
    "sweep.csv",
    "pretrain.csv",
    "pretrain_curve.png",
    "nll_oracle_curve.png",
    "nll_test_curve.png",
    "nll_oracle_vs_seconds.png",
    "quality_diversity.png",
    "verdicts.csv",
    "frontier.png",
    "report.html",
)


@dataclass(frozen=True)
class Report:
    """A written report: the display table (strings), summary.csv's numeric frame and
    verdicts.csv's frame."""

    table: pd.DataFrame
    numbers: pd.DataFrame
    verdicts: pd.DataFrame


def write_report(
    tracker: Tracker, parent: str, out_dir: Path, margin: float = DEFAULT_MARGIN
) -> Report:
    """Write README.md, table.csv, summary.csv (numeric), budgets.csv, timing.csv (seconds per
    cell part, `bench.report.timing`), results.csv (tidy),
    sweep.csv, verdicts.csv (`bench.report.verdicts`, equivalence at ±`margin` nats),
    pretrain.csv (the pre-training's curves), the PNGs and report.html (README's content with
    the PNGs embedded: the file to open in MLflow's artifact viewer) into `out_dir`;
    `publish_report` then puts them on the parent run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = tracker.client.get_run(parent)
    tidy = tidy_results(tracker, parent)
    sweep = sweep_frame(tracker, tidy)
    tidy = with_sweep_summary(tidy, sweep, BASELINES)
    verdict_rows = verdicts(tidy, margin)
    verdict_rows.to_csv(out_dir / "verdicts.csv", index=False)
    oracle_kind = run.data.tags.get("oracle_kind", "random")
    table = display_table(tidy, oracle_kind)
    numbers = summary_table(tidy)
    budgets = budget_table(tidy, updates_made(tracker, tidy))
    budgets.to_csv(out_dir / "budgets.csv")
    parts = time_parts(tidy)
    parts.to_csv(out_dir / "timing.csv")
    tidy[tidy.metric != ""].drop(columns="run_id").to_csv(out_dir / "results.csv", index=False)
    sweep.to_csv(out_dir / "sweep.csv", index=False)
    table.to_csv(out_dir / "table.csv")
    numbers.to_csv(out_dir / "summary.csv", index=False)
    _plots(tracker, tidy, sweep, out_dir, published=oracle_kind == "seqgan-paper")
    frontier = plot_frontier(sweep, out_dir / "frontier.png", BASELINES)
    if not frontier:  # no divergences in this store: no stale plot either
        (out_dir / "frontier.png").unlink(missing_ok=True)
    params = run.data.params
    pretrain = _pretrain(tracker, parent, params, out_dir, oracle_kind)
    sections = (
        table,
        budgets,
        time_table(parts),
        run.data.tags,
        params,
        oracle_kind,
        pretrain,
        verdict_section(verdict_rows, margin, tidy.attrs.get("best_baseline"), same_as(tidy))
        + _missing_sections(tidy),
        frontier,
        runs_section(tidy),
    )
    (out_dir / "README.md").write_text(report_markdown(*sections))
    images = {png.name: png.read_bytes() for png in out_dir.glob("*.png")}
    title = f"seqgan-bench report: {run.data.tags.get('mlflow.runName', parent)}"
    page = report_html(report_markdown(*sections, viewer_note=False), images, title)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    return Report(table, numbers, verdict_rows)


def _missing_sections(tidy: pd.DataFrame) -> list[str]:
    """A note where this store's cells predate what the report shows: which sections are not
    there, and why."""
    logged = set(tidy[tidy.kind == "method"].metric)
    if "final/reverse_kl" in logged:
        return []
    return [
        "**Not regenerated:** this store's cells were trained before the exact divergences "
        "were logged, so the divergence columns, the frontier plot and the divergence and "
        "frontier verdicts are missing; the rows of the `pretrained` and `mle-es` baselines "
        "too, unless those cells are here. Rerun the cells with the current code for them.",
        "",
    ]


def _pretrain(
    tracker: Tracker, parent: str, params: dict, out_dir: Path, oracle_kind: str
) -> list[str]:
    """pretrain.csv, pretrain_curve.png and the Markdown section of the invocation's MLE
    pre-training; nothing for a store whose parent run lacks the settings to count epochs."""
    if "bench.n_train" not in params or "pretrain.batch_size" not in params:
        return []
    per_epoch = int(params["bench.n_train"]) // int(params["pretrain.batch_size"])
    pre = pretrain_curves(tracker, pretrain_runs(tracker, parent), per_epoch)
    pre.to_csv(out_dir / "pretrain.csv", index=False)
    if pre.empty:
        return []
    published = NLL_ORACLE["mle"].nll_oracle if oracle_kind == "seqgan-paper" else None
    plot_pretrain_curves(pre, out_dir / "pretrain_curve.png", published)
    return pretrain_section(pre, params, oracle_kind, params.get("bench.curve_samples", "?"))


def _plots(
    tracker: Tracker, tidy: pd.DataFrame, sweep: pd.DataFrame, out_dir: Path, published: bool
) -> None:
    by_step = {k: curves(tracker, tidy, f"learning_curve/{k}") for k in ("nll_oracle", "nll_test")}
    for k, label in (("nll_oracle", "NLL-oracle"), ("nll_test", "NLL-test")):
        plot_curves(
            by_step[k], tidy, out_dir / f"{k}_curve.png", f"{label} (per token) ↓", f"final/{k}"
        )
    seconds = curves(tracker, tidy, "perf/train_s").rename(columns={"value": "seconds"})
    by_time = mean_curve_by_seconds(by_step["nll_oracle"], seconds)
    plot_curves(
        by_time.assign(step=by_time.seconds, seed=0),
        tidy,
        out_dir / "nll_oracle_vs_seconds.png",
        "NLL-oracle (per token) ↓",
        "final/nll_oracle",
        xlabel="training seconds (pre-training, then each method)",
    )
    points = (CACCIA_LABEL, CACCIA_MLE_SWEEP) if published else None
    plot_quality_diversity(sweep, tidy, out_dir / "quality_diversity.png", published=points)

"""The report of a finished experiment: loads its frames from MLflow and renders them.

Loading (`tidy_results`, `sweep_frame`, `curves`) reads the Tracker alone; rendering writes the
Markdown, the CSVs and (through `bench.plots`) the PNGs, and prints the terminal table;
`publish_report` puts the same files, the table (as the run's description) and per-method summary
metrics (`<method>/<metric>_mean`, `_lo`, `_hi`) on the invocation's parent run. The statistics
are `bench.stats`'s. `python -m bench.report --experiment NAME` rebuilds a report
without retraining; `bench.run` calls the same code at its end, so the printed table and the
stored one cannot disagree.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.budgets import budget_table
from bench.evaluate import parse_sweep_key
from bench.plots import plot_curves, plot_pretrain_curves, plot_quality_diversity
from bench.pretrain_report import pretrain_curves, pretrain_runs, pretrain_section
from bench.published import CACCIA_LABEL, CACCIA_MLE_SWEEP, NLL_ORACLE
from bench.stats import (
    mean_curve_by_seconds,
    prob_beats_baseline,
    summary,
    summary_long,
    with_sweep_summary,
)
from bench.tracking import Tracker, TrackingError, default_uri

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
    "perf/update_ms_mean": ("ms / G update", True),
    "perf/rollout_ms_mean": ("rollout ms / batch", True),
    "perf/setup_s": ("setup s", True),
}
HEADLINE = ("final/nll_oracle", "final/nll_test")
PUBLISHED_COLUMN = "published NLL-oracle"  # on the paper's oracle only (bench.published)


def tidy_results(tracker: Tracker, parent: str) -> pd.DataFrame:
    """One row per (method, seed, metric): kind, method, seed, status, metric, value. A cell
    the invocation skipped because another one was running it (and that has not finished
    since) is one row with status 'running elsewhere' and no value; a cell run with no
    `cell_status` tag (training now, or killed before its end) has status 'not finished'."""
    rows = [
        dict(kind="method", method=method, seed=seed, status="running elsewhere")
        | dict(run_id=f"busy:{method}/{seed}", metric="", value=np.nan)
        for method, seed in tracker.busy_cells(parent)
    ]
    for run in tracker.cells(parent):
        tags = run.data.tags
        if tags.get("kind") == "pretrain":  # the shared pre-training: not a row of the table
            continue
        base = dict(
            kind=tags.get("kind", "method"),
            method=tags.get("method", "?"),
            seed=int(tags.get("seed", -1)),
            # no cell_status yet: the cell is still training, or its process died before
            # recording an end; which of the two, the store alone cannot tell
            status=tags.get("cell_status", "not finished"),
            run_id=run.info.run_id,
        )
        rows += [base | dict(metric=k, value=v) for k, v in run.data.metrics.items()]
        if not run.data.metrics:
            rows.append(base | dict(metric="", value=np.nan))
    return pd.DataFrame(
        rows, columns=["kind", "method", "seed", "status", "run_id", "metric", "value"]
    )


def sweep_frame(tracker: Tracker, tidy: pd.DataFrame) -> pd.DataFrame:
    """The temperature sweeps: method, seed, alpha, nll_oracle, nll_test (one row per alpha, in
    alpha order per run). Read from the runs' `sweep_key` metrics; runs of stores written before
    them (one `sweep/*` history over steps round(100 * alpha)) from those histories."""
    runs = tidy[(tidy.kind == "method") & (tidy.status == "finished")]
    rows = []
    for run_id, part in runs.groupby("run_id", sort=False):
        first = part.iloc[0]
        points: dict[float, dict[str, float]] = {}
        for key, value in zip(part.metric, part.value, strict=True):
            parsed = parse_sweep_key(key)
            if parsed is not None:
                points.setdefault(parsed[1], {})[parsed[0].removeprefix("sweep/")] = value
        if not points and "sweep/alpha" in set(part.metric):
            points = _legacy_sweep(tracker, run_id)
        rows += [
            dict(method=first.method, seed=first.seed, alpha=a)
            | dict(nll_oracle=p["nll_oracle"], nll_test=p["nll_test"])
            for a, p in sorted(points.items())
        ]
    return pd.DataFrame(rows, columns=["method", "seed", "alpha", "nll_oracle", "nll_test"])


def _legacy_sweep(tracker: Tracker, run_id: str) -> dict[float, dict[str, float]]:
    """A sweep logged by code before `sweep_key`: histories sweep/alpha, sweep/nll_oracle and
    sweep/nll_test over steps round(100 * alpha)."""
    hist = {
        k: dict(tracker.history(run_id, f"sweep/{k}")) for k in ("alpha", "nll_oracle", "nll_test")
    }
    return {
        a: dict(nll_oracle=hist["nll_oracle"][step], nll_test=hist["nll_test"][step])
        for step, a in hist["alpha"].items()
    }


# learning-curve keys under their names in older stores: `eval/*`, then `curve/*` (renamed so
# that `final/*`, the headline numbers, sorts before every other namespace in MLflow's lists)
LEGACY_KEYS = {
    f"learning_curve/{k}": (f"curve/{k}", f"eval/{k}") for k in ("nll_oracle", "nll_test")
}


def curves(tracker: Tracker, tidy: pd.DataFrame, key: str) -> pd.DataFrame:
    """Long frame of a learning curve: method, seed, step, value (from MLflow metric history;
    a run without `key` is read under the first of its LEGACY_KEYS names that it has)."""
    runs = tidy[tidy.kind == "method"].drop_duplicates("run_id")
    rows = [
        dict(method=r.method, seed=r.seed, step=step, value=value)
        for r in runs.itertuples()
        for step, value in _history(tracker, r.run_id, key)
    ]
    return pd.DataFrame(rows, columns=["method", "seed", "step", "value"])


def _history(tracker: Tracker, run_id: str, key: str) -> list[tuple[int, float]]:
    for name in (key, *LEGACY_KEYS.get(key, ())):
        if points := tracker.history(run_id, name):
            return points
    return []


def _order(methods: list[str], kinds: dict[str, str]) -> list[str]:
    refs = [m for m in ("oracle", "unigram", "uniform") if m in methods]
    return refs + sorted(m for m in methods if kinds[m] != "reference")


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
            [f"{NLL_ORACLE[m].nll_oracle:.3f}" if m in NLL_ORACLE else "" for m in frame.index],
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
    for metric in HEADLINE:
        header = f"P(beats MLE) {COLUMNS[metric][0].split()[0]}"
        probs = prob_beats_baseline(tidy, metric, "mle", lower_is_better=COLUMNS[metric][1])
        frame[header] = [f"{probs[m]:.2f}" if m in probs.index else "—" for m in frame.index]


@dataclass(frozen=True)
class Report:
    """A written report: the display table (strings) and summary.csv's numeric frame."""

    table: pd.DataFrame
    numbers: pd.DataFrame


def write_report(tracker: Tracker, parent: str, out_dir: Path) -> Report:
    """Write README.md, table.csv, summary.csv (numeric), budgets.csv, results.csv (tidy),
    sweep.csv, pretrain.csv (the pre-training's curves) and the PNGs into `out_dir`;
    `publish_report` then puts them on the parent run."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = tracker.client.get_run(parent)
    tidy = tidy_results(tracker, parent)
    sweep = sweep_frame(tracker, tidy)
    tidy = with_sweep_summary(tidy, sweep)
    oracle_kind = run.data.tags.get("oracle_kind", "random")
    table = display_table(tidy, oracle_kind)
    numbers = summary_table(tidy)
    budgets = budget_table(tidy)
    budgets.to_csv(out_dir / "budgets.csv")
    tidy[tidy.metric != ""].drop(columns="run_id").to_csv(out_dir / "results.csv", index=False)
    sweep.to_csv(out_dir / "sweep.csv", index=False)
    table.to_csv(out_dir / "table.csv")
    numbers.to_csv(out_dir / "summary.csv", index=False)
    _plots(tracker, tidy, sweep, out_dir, published=oracle_kind == "seqgan-paper")
    params = run.data.params
    pretrain = _pretrain(tracker, parent, params, out_dir, oracle_kind)
    text = _markdown(table, budgets, run.data.tags, params, oracle_kind, pretrain)
    (out_dir / "README.md").write_text(text)
    return Report(table, numbers)


def _pretrain(
    tracker: Tracker, parent: str, params: dict, out_dir: Path, oracle_kind: str
) -> list[str]:
    """pretrain.csv, pretrain_curve.png and the Markdown section of the invocation's MLE
    pre-training; nothing for a store whose parent run lacks the settings to count epochs."""
    if "bench.n_train" not in params or "pretrain.batch_size" not in params:
        return []
    per_epoch = int(params["bench.n_train"]) // int(params["pretrain.batch_size"])
    curves = pretrain_curves(tracker, pretrain_runs(tracker, parent), per_epoch)
    curves.to_csv(out_dir / "pretrain.csv", index=False)
    if curves.empty:
        return []
    published = NLL_ORACLE["mle"].nll_oracle if oracle_kind == "seqgan-paper" else None
    plot_pretrain_curves(curves, out_dir / "pretrain_curve.png", published)
    return pretrain_section(curves, params, oracle_kind, params.get("bench.curve_samples", "?"))


def summary_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """summary.csv: method, metric, mean, lower, upper, n for every COLUMNS metric, methods in
    the table's order."""
    numbers = summary_long(tidy, list(COLUMNS))
    kinds = tidy.groupby("method").kind.first().to_dict()
    order = {m: i for i, m in enumerate(_order(list(kinds), kinds))}
    return numbers.sort_values("method", key=lambda m: m.map(order), kind="stable").reset_index(
        drop=True
    )


# the metrics put on the parent run, as <method>/<name>_{mean,lo,hi}
PARENT_METRICS = {
    "final/nll_oracle": "nll_oracle",
    "final/nll_test": "nll_test",
    "final/bleu4": "bleu4",
    "final/self_bleu4": "self_bleu4",
    "sweep/best_sum": "sweep_best_sum",
    "sweep/best_alpha": "sweep_best_alpha",
    "sweep/oracle_at_mle_test": "sweep_oracle_at_mle_test",
}
REPORT_FILES = (
    "README.md",
    "table.csv",
    "summary.csv",
    "budgets.csv",
    "results.csv",
    "sweep.csv",
    "pretrain.csv",
    "pretrain_curve.png",
    "nll_oracle_curve.png",
    "nll_test_curve.png",
    "nll_oracle_vs_seconds.png",
    "quality_diversity.png",
)


def parent_metrics(numbers: pd.DataFrame) -> dict[str, float]:
    """The parent run's summary metrics from summary.csv's frame: '<method>/<name>_mean', '_lo'
    and '_hi' for each PARENT_METRICS metric (bounds only where there is an interval, n >= 2),
    so MLflow's run list and chart view show the comparison."""
    out = {}
    for r in numbers[numbers.metric.isin(PARENT_METRICS)].itertuples():
        name = f"{r.method}/{PARENT_METRICS[r.metric]}"
        for stat, value in (("mean", r.mean), ("lo", r.lower), ("hi", r.upper)):
            if not pd.isna(value):
                out[f"{name}_{stat}"] = float(value)
    return out


def publish_report(tracker: Tracker, parent: str, out_dir: Path, report: Report) -> None:
    """The answer on the parent run: the report files in `out_dir` as its artifacts, the
    comparison table as its description (shown on the run page) and the per-method summary
    metrics. Raises TrackingError when the store or its artifact store refuses."""
    files = [Path(out_dir) / f for f in REPORT_FILES if (Path(out_dir) / f).exists()]
    try:
        tracker.log_artifacts(parent, files)
        tracker.set_description(parent, _description(report.table))
        tracker.log_metrics(parent, 0, parent_metrics(report.numbers))
    except Exception as e:  # MlflowException, OSError of a file artifact store, HTTP errors
        raise TrackingError(f"cannot put the report on parent run {parent}: {e}") from None


def _description(table: pd.DataFrame) -> str:
    return "\n".join(
        [
            "Mean over seeds [95% Student-t interval]; NLLs per token in nats. The report files "
            "(README.md with the plots, table.csv, summary.csv, budgets.csv, results.csv, "
            "sweep.csv, pretrain.csv) are this run's artifacts; `<method>/<metric>_mean`, "
            "`_lo`, `_hi` are its metrics.",
            "",
            table.to_markdown(),
        ]
    )


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


def _markdown(
    table: pd.DataFrame,
    budgets: pd.DataFrame,
    tags: dict,
    params: dict,
    oracle_kind: str,
    pretrain: list[str],
) -> str:
    lines = [
        f"# seqgan-bench report: experiment run `{tags.get('mlflow.runName', '?')}`",
        "",
        f"Command: `{tags.get('command', '?')}`  ",
        f"Git commit: `{tags.get('git_commit', '?')}` · device: {tags.get('device', '?')} · "
        f"torch {tags.get('torch_version', '?')} · python {tags.get('python_version', '?')} · "
        f"preset `{params.get('preset', '?')}` · oracle `{tags.get('oracle', '?')}`",
        "",
        "Each cell: mean over seeds with its 95% Student-t interval; `(n=1)` marks a "
        "single seed. NLLs are per token, in nats. Reference rows: the oracle's own samples "
        "(the floor), i.i.d. tokens from the oracle's unigram distribution, uniform tokens. "
        "P(beats MLE): the probability that a random seed of the method has a lower value than "
        "a random seed of MLE.",
        "",
        table.to_markdown(),
        "",
        *(_published_notes(table) if oracle_kind == "seqgan-paper" else []),
        "## Budgets",
        "",
        "What each method's cells spent after the shared pre-training, and its fraction of the "
        "same method's `paper` preset (the published schedule) on this task. A number made "
        "with a fraction of the paper's updates or discriminator is not the paper's number.",
        "",
        budgets.to_markdown() if not budgets.empty else "(no budget metrics in this store)",
        "",
        *pretrain,
        "## Learning curves",
        "",
        "Mean over seeds, band min..max. Every method starts from the same cached MLE "
        "pre-training of its seed.",
        "",
        "![NLL-oracle learning curves](nll_oracle_curve.png)",
        "![NLL-test learning curves](nll_test_curve.png)",
        "![NLL-oracle against training seconds](nll_oracle_vs_seconds.png)",
        "",
        "## Quality against diversity (temperature sweep)",
        "",
        "Each generator sampled with its logits multiplied by α (α > 1 is colder). Caccia et al. "
        "(2020) showed that one α = 1 NLL-oracle number can be matched by cooling MLE: compare "
        "curves, not points.",
        "",
        "![quality-diversity](quality_diversity.png)",
        "",
    ]
    return "\n".join(lines)


def _published_notes(table: pd.DataFrame) -> list[str]:
    rows = [m for m in table.index if m in NLL_ORACLE]
    return [
        f"`{PUBLISHED_COLUMN}`: published values on this oracle, measured by others with their "
        "own budgets and, for some, other models:",
        "",
        *(
            f"- {m}: {NLL_ORACLE[m].nll_oracle:.3f}, {NLL_ORACLE[m].source} "
            f"({NLL_ORACLE[m].setting})"
            for m in rows
        ),
        "",
    ]


TERMINAL_COLUMNS = (
    "seeds",
    PUBLISHED_COLUMN,
    "NLL-oracle ↓",
    "NLL-test ↓",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Rebuild the tables and plots of a finished "
        "experiment from MLflow alone (no retraining).",
    )
    parser.add_argument("--experiment", default="seqgan-bench", help="MLflow experiment name")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)",
    )
    parser.add_argument(
        "--run-id",
        default=None,
        help="parent run id of one bench.run invocation (default: the latest)",
    )
    parser.add_argument("--reports-dir", default="reports", help="write into <dir>/<experiment>/")
    parser.add_argument(
        "--no-publish",
        action="store_true",
        help="only write the files; do not (re)log them, the table and the summary metrics "
        "to the parent run",
    )
    args = parser.parse_args(argv)
    try:
        tracker = Tracker(args.tracking_uri or default_uri(), args.experiment, create=False)
        parent = args.run_id or tracker.latest_parent()
        out_dir = Path(args.reports_dir) / args.experiment
        written = write_report(tracker, parent, out_dir)
        if not args.no_publish:
            publish_report(tracker, parent, out_dir, written)
    except (TrackingError, OSError) as e:
        print(f"bench.report: error: {e}", file=sys.stderr)
        return 2
    print_table(written.table, f"{args.experiment} ({parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

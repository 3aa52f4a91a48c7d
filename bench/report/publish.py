"""The answer on the invocation's parent run: the report files, the table, summary metrics."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pandas as pd

from bench.report.table import TERMINAL_COLUMNS
from bench.report.write import REPORT_FILES, Report
from bench.store.faults import first_line
from bench.store.tracker import Tracker, TrackingError

# the metrics put on the parent run, as <method>/<name>_{mean,lo,hi}
PARENT_METRICS = {
    "final/nll_oracle": "nll_oracle",
    "final/nll_test": "nll_test",
    "final/bleu4": "bleu4",
    "final/self_bleu4": "self_bleu4",
    "sweep/best_sum": "sweep_best_sum",
    "sweep/best_alpha": "sweep_best_alpha",
    "sweep/oracle_at_mle_test": "sweep_oracle_at_mle_test",
    "sweep/oracle_at_best_test": "sweep_oracle_at_best_test",
    "final/reverse_kl": "reverse_kl",
    "final/forward_kl": "forward_kl",
    "sweep/best_jeffreys": "sweep_best_jeffreys",
    "sweep/rkl_at_best_fkl": "sweep_rkl_at_best_fkl",
    # the cost: each cell's mean milliseconds per generator update (the whole update, rollouts
    # and discriminator steps included) and per rollout batch (the methods that roll out)
    "perf/update_ms_mean": "update_ms",
    "perf/rollout_ms_mean": "rollout_ms",
}


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


# the plots shown on the run page, below the table (every plot is in report.html)
DESCRIPTION_PLOTS = ("nll_oracle_curve.png", "quality_diversity.png", "frontier.png")


def publish_report(tracker: Tracker, parent: str, out_dir: Path, report: Report) -> None:
    """The answer on the parent run: the report files in `out_dir` as its artifacts (report.html,
    the whole report with its plots embedded, among them), the verdicts, the headline table
    and the main plots as its description (shown on the run page) and the per-method summary
    metrics, the cost included. Raises TrackingError when the store or its artifact store
    refuses."""
    files = [Path(out_dir) / f for f in REPORT_FILES if (Path(out_dir) / f).exists()]
    plots = [f.name for f in files if f.name in DESCRIPTION_PLOTS]
    try:
        tracker.log_artifacts(parent, files)
        tracker.set_description(parent, _description(report.table, report.verdicts, parent, plots))
        tracker.log_metrics(parent, 0, parent_metrics(report.numbers))
    except Exception as e:  # MlflowException, OSError of a file artifact store, HTTP errors
        raise TrackingError(
            f"cannot put the report on parent run {parent}: {first_line(e)}"
        ) from None


def artifact_image(name: str, run_id: str) -> str:
    """Markdown showing the run's image artifact `name` in MLflow's run-page description. The
    link is relative to the UI's address (so it holds behind a --static-prefix too) and goes
    to the tracking server's get-artifact endpoint: a bare `name` resolves to the UI's own
    root and does not load."""
    return f"![{name}](get-artifact?{urlencode({'path': name, 'run_uuid': run_id})})"


def _description(table: pd.DataFrame, verdicts: pd.DataFrame, parent: str, plots: list[str]) -> str:
    """The run page's text: the verdicts that are not inconclusive first, then the headline
    columns of the table (the cost among them), then `plots` (artifact names) as images."""
    decided = verdicts[verdicts.verdict != "inconclusive"]
    head = [
        f"Verdicts (verdicts.csv: {len(verdicts)} paired comparisons, Holm-corrected; "
        f"{len(verdicts) - len(decided)} inconclusive)" + (":" if len(decided) else "."),
        "",
        *(
            f"- {r.method} vs {r.baseline}, {r.metric}: {r.effect:+.3f} "
            f"[{r.lo:+.3f}, {r.hi:+.3f}] {r.verdict}"
            for r in decided.itertuples()
        ),
        "",
    ]
    columns = [c for c in TERMINAL_COLUMNS if c in table.columns]
    return "\n".join(
        [
            *head,
            "The whole report, every column and plot: **`report.html`** in this run's "
            "Artifacts tab (README.md's plots do not load in MLflow's viewer).",
            "",
            "Mean over seeds [95% Student-t interval]; NLLs per token in nats; the cost in "
            "milliseconds per generator update and per rollout batch.",
            "",
            table[columns].to_markdown(),
            "",
            *(line for name in plots for line in (artifact_image(name, parent), "")),
            "The report files (report.html, README.md, table.csv, summary.csv, verdicts.csv, "
            "budgets.csv, results.csv, sweep.csv, pretrain.csv, the plots) are this run's "
            "artifacts; `<method>/<metric>_mean`, `_lo`, `_hi` are its metrics, the cost among "
            "them (`<method>/update_ms_mean`: ms per generator update; `rollout_ms_mean`: per "
            "rollout batch).",
        ]
    )

"""The answer on the invocation's parent run: the report files, the table, summary metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.write import REPORT_FILES, Report
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


def publish_report(tracker: Tracker, parent: str, out_dir: Path, report: Report) -> None:
    """The answer on the parent run: the report files in `out_dir` as its artifacts, the
    comparison table as its description (shown on the run page) and the per-method summary
    metrics. Raises TrackingError when the store or its artifact store refuses."""
    files = [Path(out_dir) / f for f in REPORT_FILES if (Path(out_dir) / f).exists()]
    try:
        tracker.log_artifacts(parent, files)
        tracker.set_description(parent, _description(report.table, report.verdicts))
        tracker.log_metrics(parent, 0, parent_metrics(report.numbers))
    except Exception as e:  # MlflowException, OSError of a file artifact store, HTTP errors
        raise TrackingError(f"cannot put the report on parent run {parent}: {e}") from None


def _description(table: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """The run page's text: the verdicts that are not inconclusive first, then the table."""
    decided = verdicts[verdicts.verdict != "inconclusive"]
    head = [
        f"Verdicts (verdicts.csv: {len(verdicts)} paired comparisons, Holm-corrected; "
        f"{len(verdicts) - len(decided)} inconclusive):",
        "",
        *(
            f"- {r.method} vs {r.baseline}, {r.metric}: {r.effect:+.3f} "
            f"[{r.lo:+.3f}, {r.hi:+.3f}] {r.verdict}"
            for r in decided.itertuples()
        ),
        "",
    ]
    return "\n".join(
        [
            *head,
            "Mean over seeds [95% Student-t interval]; NLLs per token in nats. The report files "
            "(README.md with the plots, table.csv, summary.csv, verdicts.csv, budgets.csv, "
            "results.csv, sweep.csv, pretrain.csv) are this run's artifacts; "
            "`<method>/<metric>_mean`, `_lo`, `_hi` are its metrics.",
            "",
            table.to_markdown(),
        ]
    )

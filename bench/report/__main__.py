"""`python -m bench.report`: rebuild an experiment's report from MLflow alone (no retraining)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cells.plan import check_experiment
from bench.report.location import report_dir
from bench.report.publish import publish_report
from bench.report.table import print_table
from bench.report.verdicts import DEFAULT_MARGIN
from bench.report.write import write_report
from bench.store.tracker import Tracker, TrackingError, default_uri, read_only_reason
from methods.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--equivalence-margin",
        type=float,
        default=DEFAULT_MARGIN,
        metavar="NATS",
        help="margin of the verdicts' equivalence tests, nats per token (default "
        f"{DEFAULT_MARGIN}: bench/report/verdicts.py says why)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not 0 < args.equivalence_margin < float("inf"):
            raise ConfigError(
                f"--equivalence-margin {args.equivalence_margin}: must be a positive finite "
                "number of nats"
            )
        check_experiment(args.experiment)
        uri = args.tracking_uri or default_uri()
        tracker = Tracker(uri, args.experiment, create=False)
        parent = tracker.parent_run(args.run_id) if args.run_id else tracker.latest_parent()
        methods = tracker.client.get_run(parent).data.params.get("methods", "").split(",")
        out_dir, kept = report_dir(Path(args.reports_dir) / args.experiment, methods, parent)
        try:
            written = write_report(tracker, parent, out_dir, args.equivalence_margin)
        except OSError as e:
            raise ConfigError(
                f"cannot write the report to {str(out_dir)!r} ({e.strerror or e}); "
                "pass --reports-dir"
            ) from None
        read_only = read_only_reason(uri)
        if read_only is not None and not args.no_publish:
            print(
                f"bench.report: note: the report is not put on parent run {parent}: the store "
                f"is read-only ({read_only})",
                file=sys.stderr,
            )
        elif not args.no_publish:
            try:
                publish_report(tracker, parent, out_dir, written)
            except TrackingError as e:
                raise TrackingError(f"{e}; the report files are in {str(out_dir)!r}") from None
    except (ConfigError, TrackingError, OSError) as e:
        print(f"bench.report: error: {e}", file=sys.stderr)
        return 2
    print_table(written.table, f"{args.experiment} ({parent})")
    print(f"report: {out_dir / 'README.md'} covers {len(methods)} method(s) of run {parent}")
    if kept:
        print(f"kept: {kept / 'README.md'}, a report covering methods this run did not")
    return 0


if __name__ == "__main__":
    sys.exit(main())

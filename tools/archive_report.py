"""Render a report from archived cells alone (`tools/store_archive.py` files), training nothing.

An archive's cells can outlive the code version they ran, and then `bench.run` would train them
again instead of reusing them. This imports the archive (skipping cells the store has), makes
one parent run that links every imported cell as reused, as `bench.run` links the cells it
reuses, and writes and publishes the report with today's report code. Metrics the archived
cells never logged (e.g. the divergences, for cells from before them) are missing from the
tables and from the verdicts; the report says which.

    python -m tools.archive_report --tracking-uri sqlite:///archived.db --experiment E \
        --reports-dir reports/paper-oracle DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag

from bench.cells.plan import check_experiment
from bench.report.publish import publish_report
from bench.report.write import write_report
from bench.store.tracker import Tracker, TrackingError
from methods.config import ConfigError
from tools.store_archive import ArchiveError, import_runs, read_records

# the tags a parent run copies from its cells: where and with what they ran
COPIED_TAGS = ("oracle", "oracle_kind", "git_commit", "device", "torch_version", "python_version")


def render(tracker: Tracker, paths: list[Path], out_dir: Path, command: str) -> str:
    """Import `paths`, link their cells to a new parent run (its `command` tag: `command`),
    write and publish the report in `out_dir`; returns the parent run's id."""
    records = read_records(paths)
    import_runs(tracker, paths)
    methods = [r for r in records if r["tags"].get("kind") == "method"]
    if not methods:
        raise ArchiveError(f"no method cells in {', '.join(map(str, paths))}")
    first = methods[0]
    pretrains = [r for r in records if r["tags"].get("kind") == "pretrain"]
    tags = {k: first["tags"][k] for k in COPIED_TAGS if k in first["tags"]}
    tags |= {
        "kind": "parent",
        "command": command,
        "rendered_from_archive": "1",
    }
    if pretrains:  # the report finds each seed's pre-training by its code version and data
        tags["source_version"] = pretrains[0]["tags"]["source_version"]
    parent = tracker.start(f"archive-{time.strftime('%Y%m%d-%H%M%S')}", tags)
    params = {
        k: v
        for k, v in first["params"].items()
        if k == "preset" or k.startswith(("bench.", "pretrain."))
    }
    seeds = sorted({int(r["tags"]["seed"]) for r in methods})
    params |= {"methods": ",".join(_methods(methods)), "seeds": ",".join(map(str, seeds))}
    tracker.log_params(parent, params)
    if pretrains and pretrains[0]["datasets"]:
        inputs = [
            DatasetInput(
                Dataset.from_dictionary(d["dataset"]),
                tags=[InputTag(k, v) for k, v in d["tags"].items()],
            )
            for d in pretrains[0]["datasets"]
        ]
        tracker.client.log_inputs(parent, datasets=inputs)
    for record in records:
        run_id = tracker.finished_run(record["tags"]["cell_key"])
        if run_id is not None:
            tracker.add_reused(parent, run_id)
    written = write_report(tracker, parent, out_dir)
    publish_report(tracker, parent, out_dir, written)
    tracker.client.set_terminated(parent, status="FINISHED")
    return parent


def _methods(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["tags"]["method"] for r in records))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.archive_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--tracking-uri", required=True, help="the MLflow store to import into")
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--reports-dir", default="reports", help="write into <dir>/<experiment>/")
    parser.add_argument("paths", type=Path, nargs="+", help="archive files or directories")
    args = parser.parse_args(argv)
    try:
        check_experiment(args.experiment)
        tracker = Tracker(args.tracking_uri, args.experiment)
        command = "python -m tools.archive_report " + " ".join(argv or sys.argv[1:])
        out_dir = Path(args.reports_dir) / args.experiment
        parent = render(tracker, args.paths, out_dir, command)
    except (TrackingError, ArchiveError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    print(f"report: {Path(args.reports_dir) / args.experiment}/README.md (parent run {parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

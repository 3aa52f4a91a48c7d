"""Finished runs of an MLflow experiment to portable files and back: cells that outlive a machine.

A cell lives in its MLflow store; when the machine that holds the store is lost, so are its
cells, and a run split over several machines (or sessions on fresh machines) needs one store at
the end. `export` writes every finished method cell, pre-training and reference run of one
experiment to a directory, one gzipped JSON file per run: its name, start and end times, status,
tags, params, task datasets, each metric's whole history (step, value, timestamp) and its text
artifacts (every top-level .txt and .json file: config.json, samples.txt). `import` recreates
them in another store, where `bench.run` with the same options finds them by their cell keys
and reuses them instead of training them (a cell key hashes the version of the code that cell
runs: import into a checkout where each run's `source_version` tag is still the version of the
code it ran) and `bench.report` renders them.

    python tools/store_archive.py export --tracking-uri sqlite:///mlflow.db --experiment E DIR
    python tools/store_archive.py import --tracking-uri sqlite:///other.db --experiment E DIR

Not carried: parent runs (the next `bench.run` links the imported cells to its own parent run)
and, unless `--generators` is given, the trained generators (generator.pt, 1.3 MB each at the
default sizes), without which `bench.rescore` and `bench.sample` cannot use an imported cell.
Runs of any other status (diverged, failed, timeout, killed) and runs without a cell key
(parents, `bench.rescore`'s copies) are not exported: a rerun trains or rescores them again.
Export writes a file only where its content changed (gzip without a timestamp), and a record
leaves out what importing changes (the run id: an imported run's record has its original id;
the parent tag), so exporting again, from the same store or from one the files were imported
into, leaves the files of unchanged runs byte-identical. Import skips a run whose cell key
already has a finished run in the destination: importing twice, or into a store that holds
some of the cells, adds each run once.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

from bench.cells.plan import check_experiment
from bench.store.generators import ARTIFACT as GENERATOR_ARTIFACT
from bench.store.tracker import Tracker, TrackingError, check_store_writable
from methods.config import ConfigError

FORMAT = 1
KINDS = ("method", "pretrain", "reference")
TEXT_ARTIFACTS = (".txt", ".json")
# the parent run is not carried; the tag an import adds names the run it came from, which the
# record keeps as its run_id instead: an imported run exports to the same bytes as its original
DROPPED_TAGS = ("mlflow.parentRunId",)
SOURCE_RUN_TAG = "archive_source_run"  # on an imported run: the run id it was first exported from


class ArchiveError(RuntimeError):
    """An archive file or directory cannot be read or written; the message says which."""


# ----- export -----
def run_record(tracker: Tracker, run, generators: bool) -> dict:
    """One run as a JSON-ready dict (see the module docstring for what it holds)."""
    client, run_id = tracker.client, run.info.run_id
    tags = {k: v for k, v in run.data.tags.items() if k not in (*DROPPED_TAGS, SOURCE_RUN_TAG)}
    metrics = {
        key: [[m.step, m.value, m.timestamp] for m in client.get_metric_history(run_id, key)]
        for key in run.data.metrics
    }
    datasets = [
        {"dataset": d.dataset.to_dictionary(), "tags": {t.key: t.value for t in d.tags}}
        for d in run.inputs.dataset_inputs
    ]
    artifacts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in client.list_artifacts(run_id):
            if f.is_dir:
                continue
            if f.path.endswith(TEXT_ARTIFACTS):
                path = client.download_artifacts(run_id, f.path, tmp)
                artifacts[f.path] = {"text": Path(path).read_text()}
            elif f.path == GENERATOR_ARTIFACT and generators:
                path = client.download_artifacts(run_id, f.path, tmp)
                artifacts[f.path] = {"base64": base64.b64encode(Path(path).read_bytes()).decode()}
    return {
        "format": FORMAT,
        "run_id": run.data.tags.get(SOURCE_RUN_TAG, run_id),
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "tags": tags,
        "params": run.data.params,
        "datasets": datasets,
        "metrics": metrics,
        "artifacts": artifacts,
    }


def record_name(record: dict) -> str:
    """A stable file name: kind, method, seed and the cell key's head, e.g.
    method-seqgan-s2-1a2b3c4d.json.gz."""
    tags = record["tags"]
    parts = [tags.get("kind", "run"), tags.get("method", ""), f"s{tags.get('seed', '')}"]
    stem = "-".join(re.sub(r"[^\w.]+", "_", p) for p in parts if p)
    return f"{stem}-{tags['cell_key'][:8]}.json.gz"


def encode(record: dict) -> bytes:
    """Deterministic bytes: every dict's keys sorted, gzip with mtime 0."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode(), mtime=0)


def export_runs(tracker: Tracker, out_dir: Path, generators: bool = False) -> dict[str, int]:
    """Write each finished run of `KINDS` in the tracker's experiment to `out_dir`. Returns the
    counts {'written': files new or changed, 'unchanged': files already identical}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        "tags.cell_status = 'finished'",
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    counts = {"written": 0, "unchanged": 0}
    for run in runs:
        if run.data.tags.get("kind") not in KINDS or "cell_key" not in run.data.tags:
            continue  # a parent, or a run no key could find again
        record = run_record(tracker, run, generators)
        path = out_dir / record_name(record)
        data = encode(record)
        if path.exists() and path.read_bytes() == data:
            counts["unchanged"] += 1
            continue
        path.write_bytes(data)
        counts["written"] += 1
    return counts


# ----- import -----
def read_records(paths: list[Path]) -> list[dict]:
    """The records of archive files and directories (every *.json.gz in them), oldest run
    first."""
    files = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("*.json.gz"))
        elif p.is_file():
            files.append(p)
        else:
            raise ArchiveError(f"{p}: no such file or directory")
    if not files:
        raise ArchiveError(f"no *.json.gz archive files in {', '.join(map(str, paths))}")
    records = []
    for f in files:
        try:
            record = json.loads(gzip.decompress(f.read_bytes()))
        except (OSError, EOFError, ValueError) as e:  # EOFError: a file cut short
            raise ArchiveError(f"{f}: not an archive file ({e})") from None
        if not isinstance(record, dict):
            raise ArchiveError(f"{f}: holds a JSON {type(record).__name__}, not a run record")
        if record.get("format") != FORMAT:
            raise ArchiveError(f"{f}: archive format {record.get('format')!r}, expected {FORMAT}")
        problem = record_problem(record)
        if problem:
            raise ArchiveError(f"{f}: {problem}; nothing imported")
        records.append(record)
    return sorted(records, key=lambda r: (r["start_time"] or 0, r["run_id"]))


# field -> the type a record's value must have (int | None: a time MLflow may lack)
RECORD_FIELDS = {
    "run_id": str,
    "run_name": str,
    "status": str,
    "start_time": (int, type(None)),
    "end_time": (int, type(None)),
    "tags": dict,
    "params": dict,
    "metrics": dict,
    "datasets": list,
    "artifacts": dict,
}


def record_problem(record: dict) -> str | None:
    """What makes `record` unimportable (checked before anything is written), or None."""
    for name, kind in RECORD_FIELDS.items():
        if not isinstance(record.get(name), kind):
            return f"field {name!r} is missing or not a {getattr(kind, '__name__', 'number')}"
    for tag in ("cell_key", "cell_status"):
        if not isinstance(record["tags"].get(tag), str):
            return f"tag {tag!r} is missing"
    for key, history in record["metrics"].items():
        for point in history if isinstance(history, list) else [None]:
            ok = isinstance(point, list) and len(point) == 3
            if not ok or not all(isinstance(v, int | float) for v in point):
                return f"metric {key!r} has a point {point!r}, not [step, value, timestamp]"
    return None


def import_record(tracker: Tracker, record: dict) -> str | None:
    """Recreate one run and return its new id; None (and nothing written) when its cell key
    already has a finished run in the destination."""
    client = tracker.client
    if tracker.finished_run(record["tags"]["cell_key"]) is not None:
        return None
    tags = dict(record["tags"]) | {SOURCE_RUN_TAG: record["run_id"]}
    # cell_status last: until every metric is in, the run is not yet a finished cell
    status_tag = tags.pop("cell_status")
    run_id = client.create_run(
        tracker.experiment_id,
        start_time=record["start_time"],
        tags=tags,
        run_name=record["run_name"],
    ).info.run_id
    try:
        _fill(tracker, run_id, record)
    except BaseException:  # never a run left RUNNING: it ends FAILED, without cell_status
        client.set_terminated(run_id, status="FAILED")
        raise
    tracker.set_tags(run_id, {"cell_status": status_tag})
    client.set_terminated(run_id, status=record["status"], end_time=record["end_time"])
    return run_id


def _fill(tracker: Tracker, run_id: str, record: dict) -> None:
    """Params, datasets, metric histories and artifacts of `record` into run `run_id`."""
    client = tracker.client
    tracker.log_params(run_id, record["params"])
    if record["datasets"]:
        inputs = [
            DatasetInput(
                Dataset.from_dictionary(d["dataset"]),
                tags=[InputTag(k, v) for k, v in d["tags"].items()],
            )
            for d in record["datasets"]
        ]
        client.log_inputs(run_id, datasets=inputs)
    points = [
        Metric(key, value, timestamp, step)
        for key, history in record["metrics"].items()
        for step, value, timestamp in history
    ]
    for i in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[i : i + 1000])
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in record["artifacts"].items():
            path = Path(tmp) / name
            if "text" in content:
                path.write_text(content["text"])
            else:
                path.write_bytes(base64.b64decode(content["base64"]))
            client.log_artifact(run_id, str(path))


def import_runs(tracker: Tracker, paths: list[Path]) -> dict[str, int]:
    """Import every run of the archive `paths`. Returns {'imported': n, 'present': n}."""
    counts = {"imported": 0, "present": 0}
    for record in read_records(paths):
        new = import_record(tracker, record)
        counts["imported" if new else "present"] += 1
    return counts


# ----- command line -----
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python tools/store_archive.py", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("export", "write the experiment's finished runs to DIR, one .json.gz per run"),
        ("import", "recreate the runs of archive files or directories in the store"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument(
            "--tracking-uri",
            required=True,
            help="the MLflow store, e.g. sqlite:///mlflow.db (bench.run's default)",
        )
        p.add_argument("--experiment", required=True, help="MLflow experiment name")
        if name == "export":
            p.add_argument("out_dir", type=Path, help="directory for the archive files")
            p.add_argument(
                "--generators",
                action="store_true",
                help="also carry each cell's generator.pt (binary, 1.3 MB at the default sizes)",
            )
        else:
            p.add_argument(
                "paths", type=Path, nargs="+", help="archive files (.json.gz) or directories"
            )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_experiment(args.experiment)  # bench.run and bench.report would refuse it
        if args.command == "import":
            check_store_writable(args.tracking_uri)
        tracker = Tracker(args.tracking_uri, args.experiment, create=args.command == "import")
        if args.command == "export":
            counts = export_runs(tracker, args.out_dir, args.generators)
            print(
                f"exported {counts['written']} run(s) to {args.out_dir} "
                f"({counts['unchanged']} already there, unchanged)"
            )
        else:
            counts = import_runs(tracker, args.paths)
            print(
                f"imported {counts['imported']} run(s) into {args.experiment!r} "
                f"({counts['present']} already had a finished run of their cell key)"
            )
    except (TrackingError, ArchiveError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. export onto a regular file, or a folder it may not write
        print(f"error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.rescore`: re-evaluate an invocation's kept generators with today's metric code.

python -m bench.rescore --experiment NAME [--run-id PARENT]

No training: each finished cell's `generator.pt` is scored again by `bench.metrics.evaluate`
with the evaluation settings its run recorded (params bench.*), on the same task; the reference
rows are recomputed. The new numbers go into a new parent run (tag rescored_from; one child per
cell, tag rescored_run) whose report is written to <reports-dir>/<experiment>-rescored/. Curves
and perf/* timings are copied. Same code, device and eval seed: the same numbers, bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.cells.plan import check_experiment, pick_device
from bench.cli import OneLineParser
from bench.config import BenchConfig
from bench.metrics.evaluate import EvalSettings, final_metrics, reference_models, sweep_metrics
from bench.report.publish import publish_report
from bench.report.table import print_table
from bench.report.write import write_report
from bench.store.generators import (
    GENERATOR_RUN_TAG,
    StoredGeneratorError,
    generator_source,
    has_generator,
    load_generator,
    rebuild_generator,
)
from bench.store.provenance import environment_tags
from bench.store.tracker import Tracker, TrackingError, check_store_writable, default_uri
from methods.config import ConfigError, build
from oracle.data import DEFAULT_PAPER_ORACLE, OracleSpec, Task, build_oracle, load_task
from oracle.model import OracleFileError

# the bench settings the scores depend on; a run must have recorded every one
EVAL_FIELDS = (
    "n_train",
    "n_test",
    "final_samples",
    "bleu_samples",
    "eval_seed",
    "sweep_alphas",
    "sweep_samples",
)
# recomputed; every other metric (learning_curve/*, perf/*) is copied
RESCORED = ("final/", "sweep/")


class RescoreError(RuntimeError):
    """The invocation cannot be rescored; the message says why."""


def bench_settings(params: dict[str, str], what: str) -> BenchConfig:
    """The BenchConfig a run recorded in its params `bench.*`."""
    recorded = {k.removeprefix("bench."): v for k, v in params.items() if k.startswith("bench.")}
    missing = [f for f in EVAL_FIELDS if f not in recorded]
    if missing:
        raise RescoreError(f"{what} lacks the params {', '.join('bench.' + f for f in missing)}")
    names = {f.name for f in dataclasses.fields(BenchConfig)}
    return build(BenchConfig, "bench", {}, {k: v for k, v in recorded.items() if k in names})


def oracle_spec(tags: dict[str, str], args: argparse.Namespace) -> OracleSpec:
    """The task's oracle: the options given, else what the parent's tags name."""
    identity = tags.get("oracle", "")
    kind = args.oracle or tags.get("oracle_kind") or identity.split("-", 1)[0]
    seed = args.oracle_seed
    if seed is None:
        m = re.match(r"^random-s(\d+)-", identity)
        seed = int(m.group(1)) if m else OracleSpec.seed
    return OracleSpec(kind=kind, seed=seed, path=args.oracle_path or str(DEFAULT_PAPER_ORACLE))


def _device_type(tag: str) -> str:
    """'cuda:0 (NVIDIA H200)' -> 'cuda'; 'cpu (x86_64)' -> 'cpu'."""
    return "cuda" if tag.startswith("cuda") else "cpu"


def resolve_parent(tracker: Tracker, run_id: str | None):
    """The parent run to rescore: `run_id`, else the experiment's latest invocation."""
    run_id = run_id or tracker.latest_parent()
    try:
        run = tracker.client.get_run(run_id)
    except Exception:
        raise RescoreError(f"no run {run_id!r} in {tracker.uri!r}") from None
    if run.info.experiment_id != tracker.experiment_id:
        raise RescoreError(f"run {run_id} belongs to another experiment")
    if run.data.tags.get("kind") != "parent":
        raise RescoreError(
            f"run {run_id} is not a bench.run invocation (kind={run.data.tags.get('kind')!r}); "
            "pass its parent run id"
        )
    return run


def rescore(tracker: Tracker, parent_id: str | None, args: argparse.Namespace, command: str):
    """Score every kept generator of one invocation again; returns (new parent id, old one)."""
    parent = resolve_parent(tracker, parent_id)
    tags, params = parent.data.tags, parent.data.params
    stored = tags.get("oracle", "")
    if not stored:
        raise RescoreError(f"parent run {parent.info.run_id} has no oracle tag")
    spec = oracle_spec(tags, args)
    _, identity = build_oracle(spec)
    if identity != stored:
        raise RescoreError(
            f"the rebuilt task is {identity!r}, the runs were scored on {stored!r}; pass the "
            "--oracle, --oracle-path and --oracle-seed of the original invocation"
        )
    if "task_data" not in tags:  # stored before the float64 sampler: its data are not these
        raise RescoreError(
            f"parent run {parent.info.run_id} has no task_data tag: it was scored on task data "
            "drawn by an earlier sampler, which this version does not draw; rerun bench.run"
        )
    settings = bench_settings(params, f"parent run {parent.info.run_id}")
    runs = tracker.cells(parent.info.run_id)
    finished = [
        r
        for r in runs
        if r.data.tags.get("kind", "method") == "method"
        and r.data.tags.get("cell_status") == "finished"
    ]
    lacking = [
        f"{r.data.tags.get('mlflow.runName', '?')} ({r.info.run_id})"
        for r in finished
        if not has_generator(tracker.client, r)
    ]
    if lacking:
        raise RescoreError(
            f"runs without generator.pt (finished before generators were kept): "
            f"{', '.join(lacking)}; rerun them with bench.run --force"
        )
    if not finished:
        raise RescoreError(f"parent run {parent.info.run_id} has no finished method cell")
    for r in finished:
        if r.data.tags.get("task_data", tags["task_data"]) != tags["task_data"]:
            raise RescoreError(f"run {r.info.run_id} was scored on other task data")
        if r.data.tags.get("oracle", stored) != stored:
            raise RescoreError(f"run {r.info.run_id} was scored on {r.data.tags['oracle']!r}")
        mine = run_settings(r, params)
        if (mine.n_train, mine.n_test) != (settings.n_train, settings.n_test):
            raise RescoreError(f"run {r.info.run_id} used other data sizes than its parent")

    original = _device_type(tags.get("device", "cpu"))
    if args.device is None and original == "cuda" and not torch.cuda.is_available():
        raise RescoreError(
            "the invocation ran on CUDA and none is here; pass --device cpu (the numbers may "
            "then differ in their last digits)"
        )
    device = pick_device(args.device or original)
    task = load_task(spec, settings.n_train, settings.n_test, Path(args.cache_dir))
    if tags["task_data"] != task.data_digest:
        raise RescoreError(
            f"the rebuilt task data are {task.data_digest!r}, the runs were scored on "
            f"{tags['task_data']!r} (data drawn by other sampling code); rerun bench.run"
        )
    task.oracle.to(device)
    env = environment_tags(device) | {
        "oracle": task.identity,
        "oracle_kind": spec.kind,
        "task_data": task.data_digest,
    }
    new_parent = tracker.start(
        f"rescore-{time.strftime('%Y%m%d-%H%M%S')}",
        env
        | {"kind": "parent", "command": command, "rescored_from": parent.info.run_id}
        | _source_version(parent),
    )
    tracker.log_params(new_parent, params)
    # as bench.run's parent: the report finds the pre-training runs by code version and data
    tracker.log_datasets(new_parent, task.identity, {"train": task.train, "test": task.test})
    try:
        for run in runs:
            if run.data.tags.get("kind") != "pretrain":  # no generator of its own to score
                _rescore_run(
                    Rescoring(tracker, new_parent, task, settings, params, env, device), run
                )
    except BaseException:
        tracker.end(new_parent, "FAILED")
        raise
    tracker.end(new_parent)
    return new_parent, parent.info.run_id


def run_settings(run, parent_params: dict[str, str]) -> BenchConfig:
    """The bench settings a cell ran with: its own params bench.*, the parent's filling gaps."""
    merged = {
        k: v
        for p in (parent_params, run.data.params)
        for k, v in p.items()
        if k.startswith("bench.")
    }
    return bench_settings(merged, f"run {run.info.run_id}")


@dataclass(frozen=True)
class Rescoring:
    """What every rescored run of one invocation shares."""

    tracker: Tracker
    new_parent: str  # the rescoring's parent run
    task: Task
    settings: BenchConfig  # the parent run's recorded bench.* settings
    parent_params: dict[str, str]
    env: dict[str, str]  # environment and task tags of every new run
    device: torch.device


def _rescore_run(r: Rescoring, run) -> None:
    tracker, new_parent, task, env, device = r.tracker, r.new_parent, r.task, r.env, r.device
    tags = run.data.tags
    kind = tags.get("kind", "method")
    base = {
        "kind": kind,
        "method": tags.get("method", "?"),
        "seed": tags.get("seed", "-1"),
        "rescored_run": run.info.run_id,
    } | _source_version(run)
    name = tags.get("mlflow.runName", f"{base['method']}-s{base['seed']}")
    status = tags.get("cell_status", "unknown")
    if kind == "reference":
        model = reference_models(task).get(base["method"])
        if model is None:
            return
        child = tracker.start(name, env | base, new_parent)
        metrics, _ = final_metrics(model.to(device), task, EvalSettings.of(r.settings, device))
        tracker.log_metrics(child, 0, metrics)
    elif status != "finished":  # a diverged or failed cell stays one, with nothing to score
        child = tracker.start(name, env | base, new_parent)
        extra = {k: v for k, v in tags.items() if k.startswith(("diverged_", "error", "timeout"))}
        tracker.set_tags(child, {"cell_status": status} | extra)
        tracker.end(child, "FAILED")
        return
    else:
        record = load_generator(tracker.client, run.info.run_id)
        if record.get("oracle", task.identity) != task.identity:
            raise RescoreError(f"generator.pt of run {run.info.run_id} is of {record['oracle']!r}")
        source = generator_source(run)
        gen = rebuild_generator(record).to(device)  # before its run: a bad record starts none
        run_bench = run_settings(run, r.parent_params)
        child = tracker.start(name, env | base | {GENERATOR_RUN_TAG: source}, new_parent)
        try:
            tracker.log_params(child, run.data.params)
            _copy_histories(tracker, run, child)
            ev = EvalSettings.of(run_bench, device)
            final, _ = final_metrics(gen, task, ev)
            step = _final_step(tracker, run)
            tracker.log_metrics(child, step, final)
            tracker.log_metrics(child, step, sweep_metrics(gen, task, ev))
        except BaseException:  # no run of a rescoring is left RUNNING
            tracker.end(child, "FAILED")
            raise
    tracker.set_tags(child, {"cell_status": "finished"})
    tracker.end(child)


def _source_version(run) -> dict[str, str]:
    """The run's code-version tag, for its rescored copy (the report matches pre-training runs
    by the parent's)."""
    version = run.data.tags.get("source_version")
    return {"source_version": version} if version else {}


def _final_step(tracker: Tracker, run) -> int:
    history = tracker.client.get_metric_history(run.info.run_id, "final/nll_oracle")
    return history[-1].step if history else 0


def _copy_histories(tracker: Tracker, run, child: str) -> None:
    """The metrics training produced (learning_curve/*, perf/*, train/*), every point, into
    `child`."""
    by_step: dict[int, dict[str, float]] = {}
    for key in run.data.metrics:
        if key.startswith(RESCORED):
            continue
        for m in tracker.client.get_metric_history(run.info.run_id, key):
            by_step.setdefault(m.step, {})[key] = m.value
    for step in sorted(by_step):
        tracker.log_metrics(child, step, by_step[step])


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m bench.rescore",
        description="Score the generators an invocation kept (generator.pt) again with the "
        "current metric code, without training, and write a new report.",
    )
    p.add_argument("--experiment", default="seqgan-bench", help="MLflow experiment name")
    p.add_argument(
        "--run-id", default=None, help="parent run of the invocation (default: the latest)"
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)",
    )
    p.add_argument(
        "--reports-dir", default="reports", help="write into <dir>/<experiment>-rescored/"
    )
    p.add_argument(
        "--oracle",
        default=None,
        choices=("random", "seqgan-paper"),
        help="the task's oracle (default: the invocation's, from its tags)",
    )
    p.add_argument(
        "--oracle-path", default=None, help="the paper's oracle file, for --oracle seqgan-paper"
    )
    p.add_argument(
        "--oracle-seed",
        default=None,
        type=int,
        help="task seed of a random oracle (default: the invocation's)",
    )
    p.add_argument("--cache-dir", default=".cache", help="where the task data are cached")
    p.add_argument(
        "--device",
        default=None,
        choices=("auto", "cpu", "cuda"),
        help="where to score (default: the invocation's device type; on the same device the "
        "numbers of unchanged metric code come out bit for bit)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "bench.rescore", *(argv or sys.argv[1:])])
    try:
        check_experiment(args.experiment)
        uri = args.tracking_uri or default_uri()
        check_store_writable(uri)  # a rescore is a new parent run with a run per generator
        tracker = Tracker(uri, args.experiment, create=False)
        new_parent, old = rescore(tracker, args.run_id, args, command)
        out_dir = Path(args.reports_dir) / f"{args.experiment}-rescored"
        written = write_report(tracker, new_parent, out_dir)
        publish_report(tracker, new_parent, out_dir, written)
    except (
        TrackingError,
        RescoreError,
        StoredGeneratorError,
        ConfigError,
        OracleFileError,
        OSError,
    ) as e:
        print(f"bench.rescore: error: {e}", file=sys.stderr)
        return 2
    print_table(written.table, f"{args.experiment}: {old} rescored")
    print(f"report: {out_dir / 'README.md'}  (MLflow parent run {new_parent}, rescored from {old})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`bench.run --plan`: say what each cell would do (reuse, resume, skip, train) and for how long.

Nothing is trained and nothing is written: no parent run, no report, no store (an SQLite file
that does not exist yet is left uncreated: nothing in it to reuse) and no data cache (a cell's
key needs the task's identity, the oracle's digest, not its sampled data).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from mlflow import MlflowClient

from bench.cells.checkpoint import cell_busy, checkpoint_path, load_checkpoint
from bench.cells.keys import cell_key, reference_key
from bench.cells.plan import Plan
from bench.store.tracker import Tracker, TrackingError, check_uri, sqlite_path
from oracle.data import Task, build_oracle

ACTIONS = ("reuse", "resume", "elsewhere", "train")
REFERENCE_NAMES = ("oracle", "unigram", "uniform")  # bench.metrics.evaluate.reference_models


@dataclass
class Estimate:
    """Seconds a cell of one method and preset took in the store's earlier finished runs."""

    seconds: float | None  # their median, None when there are none
    runs: int  # how many earlier runs it is from
    other_code: int  # of those, how many ran another code version (so their keys differ)


@dataclass
class Row:
    """What the invocation would do with one (method, seed) cell."""

    method: str
    seed: int
    key: str
    action: str  # reuse, resume, elsewhere or train
    detail: str
    seconds: float | None  # estimated seconds of work here; 0 for a reused or busy cell
    estimate: str


def print_plan(plan: Plan) -> int:
    """Print the plan of `plan`'s cells and reference rows and a total; train nothing."""
    oracle, identity = build_oracle(plan.oracle)  # a bad oracle file fails here, as in a run
    tracker = open_store(plan)
    empty = torch.zeros(0, oracle.seq_len, dtype=torch.long)
    task = Task(oracle, identity, empty, empty)  # the keys read its identity only
    estimates = {m: estimate(tracker, m, plan.preset, plan.code[m]) for m in plan.methods}
    rows = [
        cell_row(plan, tracker, method, seed, cell_key(plan, method, seed, task), estimates[method])
        for seed in plan.seeds
        for method in plan.methods
    ]
    print_rows(plan, rows, reference_rows(plan, tracker, task), estimates)
    return 0


def reference_rows(plan: Plan, tracker: Tracker | None, task) -> dict[str, str]:
    """Each reference row's fate: reused (which run) or computed (a few seconds)."""
    refs = {}
    for name in REFERENCE_NAMES:
        key = reference_key(plan, name, task)
        finished = None if plan.force or tracker is None else tracker.finished_run(key)
        refs[name] = f"reuse run {finished}" if finished else "compute"
    return refs


def open_store(plan: Plan) -> Tracker | None:
    """The experiment's store for reading; None when the experiment does not exist yet."""
    check_uri(plan.tracking_uri)
    db = sqlite_path(plan.tracking_uri)
    if db is not None and not db.exists():  # opening it would create it
        return None
    try:
        exists = MlflowClient(plan.tracking_uri).get_experiment_by_name(plan.experiment)
    except Exception as e:
        raise TrackingError(f"cannot open MLflow store {plan.tracking_uri!r}: {e}") from None
    return Tracker(plan.tracking_uri, plan.experiment, create=False) if exists else None


def estimate(tracker: Tracker | None, method: str, preset: str, code: str) -> Estimate:
    """The median perf/train_s + perf/setup_s of the finished cells of `method` and `preset`,
    any code version."""
    if tracker is None:
        return Estimate(None, 0, 0)
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        f"tags.kind = 'method' and tags.method = '{method}' and tags.cell_status = 'finished' "
        f"and params.preset = '{preset}'",
        max_results=1000,
    )
    seconds = [
        r.data.metrics["perf/train_s"] + r.data.metrics.get("perf/setup_s", 0.0)
        for r in runs
        if "perf/train_s" in r.data.metrics
    ]
    other = sum(r.data.tags.get("source_version") != code for r in runs)
    return Estimate(statistics.median(seconds) if seconds else None, len(seconds), other)


def cell_row(
    plan: Plan, tracker: Tracker | None, method: str, seed: int, key: str, est: Estimate
) -> Row:
    """The cell's fate, decided as `cells_to_run` and `run_cell` would decide it."""
    finished = None if plan.force or tracker is None else tracker.finished_run(key)
    if finished is not None:
        return Row(method, seed, key, "reuse", f"run {finished}", 0.0, "")
    lock = checkpoint_path(plan.cache_dir, key).with_suffix(".lock")
    if lock.exists() and cell_busy(plan.cache_dir, key):
        return Row(method, seed, key, "elsewhere", "another invocation runs it: skipped", 0.0, "")
    label = f"est. from {est.runs} earlier run{'s' * (est.runs != 1)}" if est.runs else ""
    updates = plan.configs[method].updates
    saved = None if plan.force else load_checkpoint(checkpoint_path(plan.cache_dir, key))
    if saved is not None and isinstance(saved.get("loop"), dict) and "updates" in saved["loop"]:
        done_updates = int(saved["loop"]["updates"])
        left = max(updates - done_updates, 0) / updates if updates else 0.0
        seconds = None if est.seconds is None else est.seconds * left
        detail = f"from its checkpoint: update {done_updates} of {updates}"
        return Row(method, seed, key, "resume", detail, seconds, label or "no estimate")
    detail = "from the start" + (" (--force)" if plan.force else "")
    return Row(method, seed, key, "train", detail, est.seconds, label or "no estimate")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_rows(plan: Plan, rows: list[Row], refs: dict[str, str], estimates) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    t = Table(
        title=f"plan: experiment {plan.experiment}, preset {plan.preset}",
        caption=f"store {plan.tracking_uri}; nothing was run (--plan)",
    )
    for col in ("method", "seed", "cell key", "action", "detail", "time", "estimate"):
        t.add_column(col, justify="right" if col in ("seed", "time") else "left")
    for r in rows:
        time_s = "" if r.action in ("reuse", "elsewhere") else duration(r.seconds)
        t.add_row(r.method, str(r.seed), r.key, r.action, r.detail, time_s, r.estimate)
    console.print(t)
    print("reference rows: " + ", ".join(f"{name}: {what}" for name, what in refs.items()))
    work = [r for r in rows if r.action in ("train", "resume")]
    counts = {a: sum(r.action == a for r in rows) for a in ACTIONS}
    known = [r.seconds for r in work if r.seconds is not None]
    total = f"est. {duration(sum(known))}" if known else "no estimate"
    if known and len(known) < len(work):
        total += f" for {len(known)} of them, {len(work) - len(known)} without an estimate"
    print(
        f"total: {len(rows)} cells: {counts['reuse']} reused, {counts['resume']} resumed, "
        f"{counts['elsewhere']} running elsewhere, {counts['train']} to train; "
        f"work here: {total}, summed over cells"
    )
    stale = {m: e.other_code for m, e in estimates.items() if e.other_code}
    if stale and counts["train"]:
        print(
            "note: the store has finished cells of "
            + ", ".join(f"{m} ({n})" for m, n in stale.items())
            + " from another version of their code; an edit to a method's code, or to the "
            "training and evaluation every cell runs, changes its cell keys, so they are not reused"
        )

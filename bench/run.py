"""`python -m bench.run`: train each selected method on each seed, track it in MLflow, report.

python -m bench.run --methods all --seeds 3 --preset quick

The parts: `bench/cli.py` (options into a Plan), `bench/cells/` (keys, lifecycle, executors),
`bench/train/` (the training), `bench/report/` (the tables).
"""

from __future__ import annotations

import sys
import time

from bench.cells.allocator import keep_freed_memory
from bench.cells.choose import cells_to_run
from bench.cells.executors import run_cells
from bench.cells.plan import Invocation, Plan
from bench.cells.progress import CellProgress
from bench.cells.shared_runs import run_references
from bench.cli import check_writable, make_plan
from bench.store.faults import first_line, is_store_error
from bench.store.liveness import driver_tags
from bench.store.provenance import environment_tags, mlflow_context_tags
from bench.store.tracker import (
    StoreGone,
    Tracker,
    TrackingError,
    check_store_writable,
    check_uri,
    server_gone,
)
from methods import METHODS
from methods.config import ConfigError, flatten
from oracle.data import build_oracle, load_task
from oracle.model import OracleFileError


def execute(plan: Plan) -> int:
    if plan.plan_only:
        from bench.report.plan import print_plan  # here: spawned workers re-import this module

        return print_plan(plan)
    keep_freed_memory()  # every update would page-fault its temporaries afresh otherwise
    out_dir = plan.reports_dir / plan.experiment
    build_oracle(plan.oracle)  # a bad oracle file fails here, before anything is written
    check_uri(plan.tracking_uri)  # then a bad store, then the folders: all before any write
    check_store_writable(plan.tracking_uri)
    check_writable(out_dir, "reports", "--reports-dir")
    check_writable(plan.cache_dir, "cache", "--cache-dir")
    tracker = Tracker(plan.tracking_uri, plan.experiment)
    tracker.mark_stale_parents()  # invocations on this host whose process is gone
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    task.oracle.to(plan.device)
    env = environment_tags(plan.device)
    tags = (
        env
        | mlflow_context_tags(env["git_commit"])
        | {
            "oracle": task.identity,
            "oracle_kind": plan.oracle.kind,
            "task_data": task.data_digest,
        }
    )
    # source_version: the pre-training's code; each run carries its own (bench.cells.keys)
    parent_tags = {
        "kind": "parent",
        "command": plan.command,
        "source_version": plan.code["pretrain"],
    }
    parent = tracker.start(
        parent_name(plan, time.strftime("%m-%d %H:%M")), tags | parent_tags | driver_tags()
    )
    tracker.log_params(
        parent,
        {
            "preset": plan.preset,
            "methods": ",".join(plan.methods),
            "seeds": ",".join(map(str, plan.seeds)),
        }
        | flatten(plan.bench, "bench")
        | flatten(plan.pretrain, "pretrain")
        | {k: v for name, c in plan.configs.items() for k, v in flatten(c, name).items()},
    )
    tracker.log_datasets(parent, task.identity, {"train": task.train, "test": task.test})
    inv = Invocation(plan, task, tracker, parent, tags)
    try:
        run_references(inv)
        with CellProgress(plan, len(plan.seeds) * len(plan.methods)) as progress:
            run_cells(inv, cells_to_run(inv, progress), progress)
        unfinished = progress.unfinished_summary()
    except KeyboardInterrupt:
        tracker.end(parent, "KILLED")
        raise
    except StoreGone:  # nothing more can be recorded; the next invocation marks the parent
        raise
    except BaseException:  # finished cells are in the store; `bench.report` can still show them
        tracker.check_reachable()  # a server gone is the cause: say that, in one line
        tracker.end(parent, "FAILED")
        raise
    tracker.end(parent)
    code = report(tracker, parent, plan)
    if unfinished:  # the report shows them; the exit code must say so too
        print(
            f"bench.run: {len(progress.unfinished)} of {len(plan.seeds) * len(plan.methods)} "
            f"cells have no result: {unfinished} (a rerun resumes or retries them)",
            file=sys.stderr,
        )
        return code or 1
    return code


def report(tracker: Tracker, parent: str, plan: Plan) -> int:
    # imported here, not at the top: a `--jobs` worker is spawned by re-importing this module,
    # and the report code stays out of every cell's process (tests/test_layout.py)
    from bench.report.location import mlflow_hint, report_dir
    from bench.report.publish import publish_report
    from bench.report.table import print_table
    from bench.report.write import write_report

    out_dir, kept = report_dir(plan.reports_dir / plan.experiment, plan.methods, parent)
    rebuild = (
        f"python -m bench.report --experiment {plan.experiment} --run-id {parent} "
        f"--tracking-uri {plan.tracking_uri}"
    )
    try:
        written = write_report(tracker, parent, out_dir)
    except OSError as e:
        print(
            f"bench.run: error: cannot write the report to {str(out_dir)!r} ({e.strerror}); "
            f"every run is stored in MLflow: rebuild with {rebuild}",
            file=sys.stderr,
        )
        return 2
    try:
        publish_report(tracker, parent, out_dir, written)
    except TrackingError as e:  # the files are written; only the parent run lacks them
        print(
            f"bench.run: warning: {e}; the report is in {out_dir}; retry: {rebuild}",
            file=sys.stderr,
        )
    print_table(
        written.table, f"{plan.experiment}: preset {plan.preset}, oracle {plan.oracle.kind}"
    )
    print(
        f"report: {out_dir / 'README.md'} covers {len(plan.methods)} method(s) x "
        f"{len(plan.seeds)} seed(s) (MLflow parent run {parent}, store {plan.tracking_uri})"
    )
    if kept:
        print(
            f"kept: {kept / 'README.md'}, the report of an earlier invocation that covers "
            "methods this one did not run"
        )
    print(mlflow_hint(plan.tracking_uri, tracker.experiment_id))
    return 0


def parent_name(plan: Plan, when: str) -> str:
    """A parent run's name that tells invocations apart in MLflow's run list (which cuts long
    names): preset, methods, seeds, then the time, e.g. 'quick · all 21 · 3 seeds · 12-07 02:10'."""
    if plan.methods == list(METHODS):
        methods = f"all {len(plan.methods)}"
    else:
        methods = ",".join(plan.methods[:3]) + (
            f" +{len(plan.methods) - 3}" if len(plan.methods) > 3 else ""
        )
    seeds = f"{len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}"
    return f"{plan.preset} · {methods} · {seeds} · {when}"


def main(argv: list[str] | None = None) -> int:
    plan = None
    try:
        plan = make_plan(argv)
        return execute(plan)
    except (ConfigError, OracleFileError, TrackingError) as e:
        print(f"bench.run: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench.run: interrupted; finished cells are stored in MLflow", file=sys.stderr)
        return 130
    except Exception as e:  # the store failed: one line, not MLflow's traceback
        if plan is None:
            raise
        reason = server_gone(plan.tracking_uri)
        if reason is not None:
            print(f"bench.run: error: {StoreGone(plan.tracking_uri, reason)}", file=sys.stderr)
            return 2
        if not is_store_error(e):
            raise
        print(
            f"bench.run: error: MLflow store {plan.tracking_uri!r} refused a write "
            f"({first_line(e)}); the cells finished before are stored there; once it can be "
            "written again (space, permissions), the same command resumes the rest",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())

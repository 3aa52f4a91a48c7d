"""One cell's lifecycle: its lock, its MLflow run, training and evaluation, and its end status.

A cell holds a lock while it runs, resumes from its checkpoint, and ends with one status:
finished, diverged, failed, timeout or killed. A finished cell keeps its trained generator as
the artifact generator.pt.
"""

from __future__ import annotations

import os

from bench.cells.cell_run import CellRun
from bench.cells.checkpoint import CellCheckpoint, cell_lock
from bench.cells.keys import Cell
from bench.cells.plan import Invocation
from bench.cells.results import CellResult, Status
from bench.cells.timelimit import time_limit
from bench.store.generators import generator_record
from bench.train.cell import CellSpec, Hooks, budget_metrics, evaluate_cell, train_cell
from bench.train.stopwatch import Stopwatch
from methods import METHODS
from methods.config import flatten


def run_cell(inv: Invocation, cell: Cell, progress) -> CellResult:
    """Train, evaluate and log one cell; never raises (but on Ctrl-C).

    Holds the cell's lock meanwhile: a second process started on the same cell skips it. The
    store is checked again under the lock: another invocation may have finished the cell since
    this one planned it, and only the lock holder may call a RUNNING run of the cell dead."""
    plan, tracker = inv.plan, inv.tracker
    with cell_lock(plan.cache_dir, cell.key) as held:
        if not held:
            tracker.add_busy(inv.parent, cell.key, cell.method, cell.seed)
            result = CellResult(Status.BUSY, "running in another invocation, skipped")
        elif (reused := None if plan.force else tracker.finished_run(cell.key)) is not None:
            tracker.add_reused(inv.parent, reused)
            result = CellResult(Status.REUSED, "finished by another invocation meanwhile, reused")
        else:
            tracker.mark_killed(cell.key)  # a run of this cell left RUNNING by a killed process
            result = _train_and_record(inv, cell, progress)
    progress.ended(result)
    return result


def _train_and_record(inv: Invocation, cell: Cell, progress) -> CellResult:
    plan, clock = inv.plan, Stopwatch()
    spec = CellSpec(
        METHODS[cell.method], plan.configs[cell.method], cell.seed, plan.pretraining(inv.task)
    )
    checkpoints = CellCheckpoint(plan.cache_dir, cell.key)
    if plan.force:  # --force: from scratch, not from a checkpoint of an earlier attempt
        checkpoints.discard()
    tags = dict(kind="method", method=cell.method, seed=str(cell.seed), pid=str(os.getpid()))
    tags |= {"cell_key": cell.key, "source_version": plan.code[cell.method]}
    params = (
        flatten(spec.cfg, cell.method)
        | flatten(plan.pretrain, "pretrain")
        | dict(method=cell.method, seed=cell.seed, preset=plan.preset)
        | flatten(plan.bench, "bench")
    )
    with clock.part("tracking"):
        cell_run = CellRun(inv.tracker, cell.name, inv.tags | tags, inv.parent)
    with cell_run as run:
        with clock.part("tracking"):
            run.describe(params, inv.task, config_json=True)
            run.log(0, budget_metrics(spec))

        def log(step: int, metrics: dict[str, float]) -> None:
            with clock.part("tracking"):
                run.log(step, metrics)
            progress.evaluated(metrics)

        def resumed(step: int) -> None:
            run.tag({"resumed_at_step": str(step)})
            progress.resumed(step)

        with time_limit(plan.bench.cell_timeout):
            trained = train_cell(spec, checkpoints, Hooks(log, progress.tick, resumed), clock)
            final, sweep, samples = evaluate_cell(spec, trained.generator, clock)
        with clock.part("tracking"):
            run.log(trained.last_step, final | trained.perf)
            run.log(trained.last_step, sweep)
            run.text(_samples_text(samples[:1000]), "samples.txt")
            # after every metric, from a CPU copy: keeping it changes no number and no stream
            record = generator_record(
                trained.generator, cell.method, cell.seed, inv.task.identity, cell.key
            )
            run.keep_generator(record)
        # the breakdown last, so that it counts every part before it (this log call excepted)
        run.log(trained.last_step, clock.metrics())
    if run.result.status in (Status.FINISHED, Status.DIVERGED):
        checkpoints.discard()  # a failed or timed-out cell keeps it: a rerun may continue
    return run.result


def _samples_text(samples) -> str:
    return "\n".join(" ".join(map(str, row)) for row in samples.tolist())

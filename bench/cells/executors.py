"""Where cells run: here one after another, in `--jobs N` worker processes, or as Ray tasks.

Each seed's shared MLE pre-training runs once first (a `PretrainJob`), then its cells
(`CellJob`s). Every worker logs its own cell to MLflow; the driver follows their results and
records a cell whose worker was lost (its run would otherwise stay RUNNING) as killed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bench.cells.allocator import keep_freed_memory
from bench.cells.checkpoint import cell_lock
from bench.cells.keys import Cell
from bench.cells.lifecycle import run_cell
from bench.cells.plan import Invocation, Plan, pick_device
from bench.cells.pool import ProcessPool
from bench.cells.progress import CellProgress, QuietProgress
from bench.cells.ray_pool import RayPool
from bench.cells.results import CellResult, Status
from bench.cells.shared_runs import pretrain_seed
from bench.store.tracker import Tracker
from oracle.data import Task, load_task


def run_cells(inv: Invocation, todo: list[Cell], progress: CellProgress) -> None:
    """Run `todo` with the plan's executor."""
    plan = inv.plan
    if plan.executor == "ray":
        schedule(RayPool(plan), inv, todo, progress)
    elif plan.jobs > 1:
        try:
            with ProcessPool(plan) as pool:
                schedule(pool, inv, todo, progress)
        except KeyboardInterrupt:  # the pool killed the workers still busy after the grace
            mark_lost_cells(inv, todo)
            raise
    else:
        for seed in dict.fromkeys(cell.seed for cell in todo):
            progress.start_pretraining(seed)
            pretrain_seed(inv, seed, progress)
            for cell in (c for c in todo if c.seed == seed):
                progress.start(cell.method, cell.seed)
                if run_cell(inv, cell, progress).status is Status.FAILED:
                    inv.tracker.check_reachable()  # a server gone: stop, not fail every cell


def mark_lost_cells(inv: Invocation, cells: list[Cell]) -> None:
    """After an interrupt: a worker killed before it could end its cell's run left it RUNNING;
    mark each such run KILLED, where the cell's lock is free (no live process holds the cell)."""
    for cell in cells:
        with cell_lock(inv.plan.cache_dir, cell.key) as held:
            if held:
                inv.tracker.mark_killed(cell.key)


# ----- jobs: what a worker runs -----
@dataclass(frozen=True)
class PretrainJob:
    """The pre-training of one seed and its run in the store."""

    plan: Plan
    seed: int
    parent: str
    tags: dict

    def __call__(self) -> CellResult:
        try:
            plan, task = worker_setup(self.plan)
            tracker = Tracker(plan.tracking_uri, plan.experiment)
            inv = Invocation(plan, task, tracker, self.parent, self.tags)
            return pretrain_seed(inv, self.seed, QuietProgress())
        except Exception as e:
            return CellResult(Status.FAILED, f"{type(e).__name__}: {e}")


@dataclass(frozen=True)
class CellJob:
    """One cell in a worker: its own task data (from the cache), device and tracker."""

    plan: Plan
    cell: Cell
    parent: str
    tags: dict

    def __call__(self) -> CellResult:
        plan, task = worker_setup(self.plan)
        tracker = Tracker(plan.tracking_uri, plan.experiment)
        inv = Invocation(plan, task, tracker, self.parent, self.tags)
        return run_cell(inv, self.cell, QuietProgress())


def worker_setup(plan: Plan) -> tuple[Plan, Task]:
    """A worker's own plan (its device: a Ray worker's GPU) and the task data, from the cache."""
    keep_freed_memory()  # as in the driver: --jobs workers and Ray tasks train cells too
    plan = dataclasses.replace(
        plan, device=pick_device("auto" if plan.device.type == "cuda" else plan.device.type)
    )
    task = load_task(plan.oracle, plan.bench.n_train, plan.bench.n_test, plan.cache_dir)
    task.oracle.to(plan.device)
    return plan, task


def schedule(pool, inv: Invocation, todo: list[Cell], progress: CellProgress) -> None:
    """Each seed's pre-training first (once, not once per cell), then its cells."""
    plan, tracker = inv.plan, inv.tracker
    jobs = [PretrainJob(plan, seed, inv.parent, inv.tags) for seed in {c.seed: 0 for c in todo}]
    pending = {pool.submit(job): job for job in jobs}
    while pending:
        handle, result = pool.wait_one(list(pending))
        job = pending.pop(handle)
        if result.status is Status.FAILED:
            tracker.check_reachable()  # a server gone: stop, not fail every cell
        if isinstance(job, PretrainJob):
            if result.status not in (Status.FINISHED, Status.REUSED):  # its cells will fail too
                progress.note(f"pre-training of seed {job.seed}: {result} (see its run)")
            for cell in (c for c in todo if c.seed == job.seed):
                cell_job = CellJob(plan, cell, inv.parent, inv.tags)
                pending[pool.submit(cell_job)] = cell_job
            continue
        cell = job.cell
        if result.worker_lost:  # its run may be left RUNNING
            with cell_lock(plan.cache_dir, cell.key) as held:  # free once its holder is dead
                if held:
                    tracker.mark_killed(cell.key, result.status.value)
        progress.finished(cell.method, cell.seed, result)

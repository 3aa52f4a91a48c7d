"""The runs an invocation's cells share: each seed's pre-training and the reference rows.

Like cells, each is keyed, computed under its lock (so two invocations started together compute
it once) and reused from the store when a finished run of its key is there.
"""

from __future__ import annotations

from bench.cells.cell_run import CellRun
from bench.cells.checkpoint import cell_lock
from bench.cells.keys import reference_key
from bench.cells.plan import Invocation
from bench.cells.results import CellResult, Status
from bench.metrics.evaluate import EvalSettings, final_metrics, reference_models
from methods.config import flatten


def run_references(inv: Invocation) -> None:
    """The reference rows (oracle, unigram, uniform): final metrics of each, one run each."""
    plan, tracker, task = inv.plan, inv.tracker, inv.task
    ev = EvalSettings.of(plan.bench, plan.device)
    for name, model in reference_models(task).items():
        key = reference_key(plan, name, task)
        with cell_lock(plan.cache_dir, key, wait=True):
            finished = None if plan.force else tracker.finished_run(key)
            if finished is not None:
                tracker.add_reused(inv.parent, finished)
                continue
            tracker.mark_killed(key)
            tags = dict(kind="reference", method=name, seed="0", cell_key=key)
            tags["source_version"] = plan.code["reference"]
            # not contained: a reference row that cannot be computed stops the invocation
            with CellRun(tracker, f"ref-{name}", inv.tags | tags, inv.parent, contain=False) as run:
                metrics, _ = final_metrics(model.to(plan.device), task, ev)
                run.log(0, metrics)


def pretrain_seed(inv: Invocation, seed: int, progress) -> CellResult:
    """Train (or load from the cache) the pre-training of `seed`, and make sure the store has it
    once: a run `pretrain-s<seed>` (tag kind=pretrain) with its learning curve, keyed like a
    cell, so every method's own run starts at its own step 0. Its status: finished, reused (a
    run of this key exists), or failed or diverged (the cells will fail on it too, each with
    its own traceback)."""
    plan, tracker = inv.plan, inv.tracker
    pretraining = plan.pretraining(inv.task)
    key = pretraining.key(seed)
    with cell_lock(plan.cache_dir, f"pretrain-{key}", wait=True):
        if tracker.finished_run(key) is not None:
            pretraining.generator(seed, tick=progress.tick)  # fills a cache that lacks it
            return CellResult(Status.REUSED)
        tracker.mark_killed(key)
        tags = dict(kind="pretrain", method="pretrain", seed=str(seed), cell_key=key)
        tags["source_version"] = plan.code["pretrain"]
        with CellRun(tracker, f"pretrain-s{seed}", inv.tags | tags, inv.parent) as run:
            run.describe(flatten(plan.pretrain, "pretrain") | {"seed": seed}, inv.task)
            _, updates, seconds = pretraining.generator(seed, log=run.log, tick=progress.tick)
            run.log(updates, {"perf/pretrain_s": seconds})
        return run.result

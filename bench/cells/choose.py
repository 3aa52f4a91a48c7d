"""Which cells of an invocation still need running, and which are reused or running elsewhere."""

from __future__ import annotations

from bench.cells.checkpoint import cell_busy
from bench.cells.keys import Cell, cell_key
from bench.cells.plan import Invocation


def cells_to_run(inv: Invocation, progress) -> list[Cell]:
    """The cells still to run: a cell finished in the store is reused (linked to this parent);
    a cell another live invocation is running is recorded on the parent as running elsewhere."""
    plan, tracker = inv.plan, inv.tracker
    todo = []
    for seed in plan.seeds:
        for method in plan.methods:
            cell = Cell(method, seed, cell_key(plan, method, seed, inv.task))
            reused = None if plan.force else tracker.finished_run(cell.key)
            if reused is not None:
                tracker.add_reused(inv.parent, reused)
                progress.reused(method, seed, reused)
            elif cell_busy(plan.cache_dir, cell.key):
                tracker.add_busy(inv.parent, cell.key, method, seed)
                progress.skipped(method, seed, "running in another invocation, skipped")
            else:
                todo.append(cell)
    return todo

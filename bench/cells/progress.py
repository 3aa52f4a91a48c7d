"""Live progress of a benchmark invocation: which cell, how far, the latest NLL-oracle."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.cells.results import CellResult, Status
from bench.train.pretrain import pretrain_updates


class CellProgress:
    """One bar for the whole invocation, one for the current (method, seed) cell."""

    def __init__(self, plan, n_cells: int) -> None:
        self.plan = plan
        self.bar = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.all = self.bar.add_task("all cells", total=n_cells, info="")
        self.cell = None
        self.current = ""  # "method seed s" of the cell running in this process
        self.unfinished: list[str] = []  # "method seed s: status" of cells without a result

    def __enter__(self) -> CellProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start(self, method: str, seed: int) -> None:
        self.current = f"{method} seed {seed}"
        self._bar(f"{method} seed {seed}", self.plan.configs[method].updates, "training")

    def start_pretraining(self, seed: int) -> None:
        """The shared pre-training of `seed` (not a cell: the overall bar does not advance)."""
        total = pretrain_updates(self.plan.pretrain, self.plan.bench.n_train)
        self._bar(f"pre-training seed {seed}", total, "")

    def _bar(self, description: str, total: int, info: str) -> None:
        if self.cell is not None:
            self.bar.remove_task(self.cell)
        self.cell = self.bar.add_task(description, total=total, info=info)

    def reused(self, method: str, seed: int, run_id: str) -> None:
        self.bar.console.log(
            f"{method} seed {seed}: already finished (MLflow run {run_id}), "
            "reused; --force re-runs it"
        )
        self.bar.advance(self.all)

    def tick(self, scalars: dict) -> None:
        self.bar.advance(self.cell)

    def resumed(self, updates: int) -> None:
        """The cell continues from a checkpoint after `updates` updates: the bar jumps there."""
        self.bar.update(self.cell, completed=updates)

    def evaluated(self, metrics: dict) -> None:
        if "learning_curve/nll_oracle" in metrics:
            nll = metrics["learning_curve/nll_oracle"]
            self.bar.update(self.cell, info=f"NLL-oracle {nll:.3f}")

    def note(self, text: str) -> None:
        self.bar.console.log(text)

    def skipped(self, method: str, seed: int, sentence: str) -> None:
        """A cell not run here (another invocation runs it); `sentence` says why."""
        self.bar.console.log(f"{method} seed {seed}: {sentence}")
        self.unfinished.append(f"{method} seed {seed}: {Status.BUSY.value}")
        self.bar.advance(self.all)

    def finished(self, method: str, seed: int, result: CellResult) -> None:
        """A cell that ran elsewhere (a worker process, a Ray task) came to `result`."""
        if result.status is not Status.FINISHED:
            self.bar.console.log(f"{method} seed {seed}: {result}")
        self._record(f"{method} seed {seed}", result)
        self.bar.advance(self.all)

    def ended(self, result: CellResult) -> None:
        """The current cell came to `result`."""
        if result.status is not Status.FINISHED:
            self.bar.console.log(f"{self.bar.tasks[-1].description}: {result}")
        self._record(self.current, result)
        self.bar.advance(self.all)

    def _record(self, cell: str, result: CellResult) -> None:
        if result.status in NO_RESULT:
            self.unfinished.append(f"{cell}: {result.status.value}")


# ends that leave a cell without a result (a diverged cell is one: its method diverged)
NO_RESULT = (Status.FAILED, Status.TIMEOUT, Status.KILLED, Status.BUSY)


class QuietProgress:
    """No display: for cells running in remote workers."""

    def start(self, method: str, seed: int) -> None: ...

    def tick(self, scalars: dict) -> None: ...

    def start_pretraining(self, seed: int) -> None: ...

    def resumed(self, updates: int) -> None: ...

    def evaluated(self, metrics: dict) -> None: ...

    def note(self, text: str) -> None: ...

    def skipped(self, method: str, seed: int, sentence: str) -> None: ...

    def finished(self, method: str, seed: int, result: CellResult) -> None: ...

    def ended(self, result: CellResult) -> None: ...

"""Live progress of a benchmark invocation: which cell, how far, the latest NLL-oracle; plain
lines instead of bars when the output is not a terminal."""

from __future__ import annotations

import time

from rich.console import Console
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
    """One bar for the whole invocation, one for the current (method, seed) cell, in a terminal;
    to a file or pipe (nohup, a batch job) no bars but one plain line, flushed, per cell start
    and end with the elapsed time and an estimate of what remains."""

    def __init__(self, plan, n_cells: int, console: Console | None = None) -> None:
        self.plan, self.n_cells = plan, n_cells
        self.console = console or Console(log_path=False)  # no source link on every line
        self.plain = not self.console.is_terminal
        self.bar = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=self.plain,
        )
        self.all = self.bar.add_task("all cells", total=n_cells, info="")
        self.cell = None
        self.current = ""  # "method seed s" of the cell running in this process
        self.unfinished: list[tuple[str, str]] = []  # ("method seed s", why) without a result
        self.t0 = self.cell_t0 = time.monotonic()
        self.done = self.trained = 0  # cells ended (reused or skipped too), cells trained

    def __enter__(self) -> CellProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def _log(self, text: str) -> None:
        if self.plain:
            self.console.print(f"[{_clock(time.monotonic() - self.t0)}] {text}", markup=False)
            self.console.file.flush()
        else:
            self.bar.console.log(text)

    def start(self, method: str, seed: int) -> None:
        self.current, self.cell_t0 = f"{method} seed {seed}", time.monotonic()
        if self.plain:
            self._log(f"start {self.current} ({self.done + 1}/{self.n_cells})")
        self._bar(f"{method} seed {seed}", self.plan.configs[method].updates, "training")

    def start_pretraining(self, seed: int) -> None:
        """The shared pre-training of `seed` (not a cell: the overall bar does not advance)."""
        total = pretrain_updates(self.plan.pretrain, self.plan.bench.n_train)
        if self.plain:
            self._log(f"start pre-training seed {seed}")
        self._bar(f"pre-training seed {seed}", total, "")

    def _bar(self, description: str, total: int, info: str) -> None:
        if self.cell is not None:
            self.bar.remove_task(self.cell)
        self.cell = self.bar.add_task(description, total=total, info=info)

    def reused(self, method: str, seed: int, run_id: str) -> None:
        self._log(
            f"{method} seed {seed}: already finished (MLflow run {run_id}), "
            "reused; --force re-runs it"
        )
        self._advance()

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
        self._log(text)

    def skipped(self, method: str, seed: int, sentence: str) -> None:
        """A cell not run here (another invocation runs it); `sentence` says why."""
        self._log(f"{method} seed {seed}: {sentence}")
        self.unfinished.append((f"{method} seed {seed}", f"{Status.BUSY.value}: {sentence}"))
        self._advance()

    def finished(self, method: str, seed: int, result: CellResult) -> None:
        """A cell that ran elsewhere (a worker process, a Ray task) came to `result`."""
        self._ended(f"{method} seed {seed}", result, None)

    def ended(self, result: CellResult) -> None:
        """The current cell came to `result`."""
        self._ended(self.current, result, time.monotonic() - self.cell_t0)

    def _ended(self, cell: str, result: CellResult, seconds: float | None) -> None:
        self.trained += 1
        self._advance()
        if self.plain:
            took = "" if seconds is None else f" after {_clock(seconds)}"
            self._log(f"end {cell}: {result}{took}; {self._remaining()}")
        elif result.status is not Status.FINISHED:
            self.bar.console.log(f"{cell}: {result}")
        if result.status in NO_RESULT:
            self.unfinished.append((cell, str(result)))

    def unfinished_summary(self) -> str:
        """One line of the cells without a result, grouped by why: 'mle seed 0, mle seed 1:
        failed: OSError: ...; seqgan seed 0: busy: ...'."""
        cells_by_why: dict[str, list[str]] = {}
        for cell, why in self.unfinished:
            cells_by_why.setdefault(" ".join(why.split()), []).append(cell)
        return "; ".join(f"{', '.join(cells)}: {why}" for why, cells in cells_by_why.items())

    def _advance(self) -> None:
        self.done += 1
        self.bar.advance(self.all)

    def _remaining(self) -> str:
        """'k/n cells done, about T left': the time per trained cell so far, times the cells
        left (an estimate: cells differ in cost, and reused ones cost nothing)."""
        left = self.n_cells - self.done
        text = f"{self.done}/{self.n_cells} cells done"
        if left and self.trained:
            per_cell = (time.monotonic() - self.t0) / self.trained
            text += f", about {_clock(per_cell * left)} left"
        return text


def _clock(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


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

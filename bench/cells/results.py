"""What a cell (or a seed's pre-training) came to: a status and its message, typed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    """A cell's end; the value is its MLflow tag `cell_status` (busy and reused: no run)."""

    FINISHED = "finished"
    DIVERGED = "diverged"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KILLED = "killed"
    BUSY = "busy"  # another live invocation holds the cell
    REUSED = "reused"  # finished in the store already

    @property
    def mlflow(self) -> str:
        """The MLflow run status of a run that ends with this cell status."""
        return {"finished": "FINISHED", "timeout": "KILLED", "killed": "KILLED"}.get(
            self.value, "FAILED"
        )


@dataclass(frozen=True)
class CellResult:
    """A status, a sentence for the log that names it, and whether the worker was lost: a
    worker that died or was killed could not end its run, which the driver then marks with
    `status`."""

    status: Status
    message: str = ""
    worker_lost: bool = False

    def __str__(self) -> str:
        return self.message or self.status.value


def worker_died(exitcode: int | None) -> CellResult:
    return CellResult(Status.KILLED, f"killed: worker process died, exit code {exitcode}", True)


def worker_timed_out(grace_s: float) -> CellResult:
    message = f"timeout: worker killed {grace_s:g} s past --bench.cell-timeout"
    return CellResult(Status.TIMEOUT, message, True)


def worker_error(error: BaseException) -> CellResult:
    """The job failed outside its cell's own error handling (its run may be left RUNNING)."""
    message = f"killed: the worker failed outside its cell ({type(error).__name__}: {error})"
    return CellResult(Status.KILLED, message, True)

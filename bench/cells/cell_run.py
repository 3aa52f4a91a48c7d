"""The MLflow run of a cell, a seed's pre-training or a reference row, start to end.

Every MLflow call of a run's lifecycle goes through `CellRun`, and the run ends with exactly one
status on every path out of its `with` block: the block's end is `finished`; `Diverged`,
`CellTimeout` and any other exception end it diverged, timeout or failed, and are swallowed
(one broken cell must not stop the suite) unless `contain` is False; Ctrl-C ends it killed and
is re-raised, as is any other BaseException (SystemExit: recorded failed).
"""

from __future__ import annotations

import traceback

from bench.cells.results import CellResult, Status
from bench.cells.timelimit import CellTimeout
from bench.store.generators import log_generator
from bench.store.tracker import Tracker
from bench.train.loop import Diverged
from oracle.data import Task


class CellRun:
    """One run in the store; `result` holds how it ended once its block is left."""

    def __init__(
        self, tracker: Tracker, name: str, tags: dict[str, str], parent: str, contain: bool = True
    ) -> None:
        self.tracker, self.contain = tracker, contain
        self.id = tracker.start(name, tags, parent)
        self.result: CellResult | None = None

    def describe(self, params: dict, task: Task, config_json: bool = False) -> None:
        """Its params (and, with `config_json`, the same as the artifact config.json) and the
        task's data splits as MLflow datasets."""
        self.tracker.log_params(self.id, params)
        if config_json:
            self.tracker.log_json(self.id, params, "config.json")
        self.tracker.log_datasets(self.id, task.identity, {"train": task.train, "test": task.test})

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(self.id, step, metrics)

    def tag(self, tags: dict[str, str]) -> None:
        self.tracker.set_tags(self.id, tags)

    def text(self, text: str, name: str) -> None:
        self.tracker.log_text(self.id, text, name)

    def keep_generator(self, record: dict) -> None:
        """The trained generator as the artifact generator.pt (`bench.store.generators`)."""
        log_generator(self.tracker, self.id, record)

    def __enter__(self) -> CellRun:
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if kind is None:
            self._end(CellResult(Status.FINISHED))
            return False
        if issubclass(kind, KeyboardInterrupt):
            self._end(CellResult(Status.KILLED, "interrupted"))
            return False
        if issubclass(kind, Diverged):
            extra = {
                "diverged_step": error.step,
                "diverged_metric": error.key,
                "diverged_value": error.value,
            }
            message = f"diverged at step {error.step}: {error.key} = {error.value:.4g}"
            self._end(CellResult(Status.DIVERGED, message), extra)
        elif issubclass(kind, CellTimeout):
            message = f"timeout: {error}; a rerun resumes it"
            self._end(CellResult(Status.TIMEOUT, message), {"timeout_s": error.seconds})
        elif issubclass(kind, Exception):
            self.text("".join(traceback.format_exception(kind, error, tb)), "traceback.txt")
            text = f"{kind.__name__}: {error}"
            message = f"failed: {text} (traceback.txt in its MLflow run)"
            self._end(CellResult(Status.FAILED, message), {"error": text})
        else:  # SystemExit and the like: record, then let it go on
            self._end(CellResult(Status.FAILED, f"{kind.__name__}"), {"error": kind.__name__})
            return False
        return self.contain

    def _end(self, result: CellResult, extra: dict | None = None) -> None:
        self.result = result
        self.tag({"cell_status": result.status.value} | (extra or {}))
        self.tracker.end(self.id, result.status.mlflow)

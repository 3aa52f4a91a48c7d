"""A wall-clock limit on a cell: `--bench.cell-timeout`, raised in the main thread by SIGALRM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class CellTimeout(BaseException):
    """A cell ran past its limit (BaseException: no `except Exception` swallows it)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after --bench.cell-timeout {seconds:g} s")
        self.seconds = seconds


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CellTimeout in this (main) thread once `seconds` of wall time pass; 0: no limit.

    The alarm can land between any two bytecodes, also inside `torch.no_grad()`'s exit before
    it switches gradients back on: torch's grad mode is restored on the way out, or every later
    cell of this process would train without gradients."""
    if seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise CellTimeout(seconds)

    grad_enabled = torch.is_grad_enabled()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        torch.set_grad_enabled(grad_enabled)

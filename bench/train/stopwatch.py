"""Where a cell's wall time goes: seconds per named part, summed, logged as `perf/<part>_s`.

The parts a cell records (bench/train/cell.py, bench/cells/lifecycle.py) are listed in PARTS;
`perf/cell_s` is the whole cell. A finished cell logs them once, at its end. The report's "Where
the time goes" table (bench/report/timing.py) reads them back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# part -> what it times; every one is logged as perf/<part>_s
PARTS = {
    "pretrain_load": "loading the seed's cached pre-trained generator",
    "setup": "building the trainer (a learned discriminator's pre-training included)",
    "train": "the generator updates themselves (the method's steps)",
    "curve_eval": "learning-curve points during training",
    "checkpoint": "loading and saving the training state kept between kills",
    "final_sample": "drawing the final samples",
    "final_score": "final NLL-oracle, NLL-test, entropy and divergences",
    "final_bleu": "final BLEU against the held-out set",
    "final_self_bleu": "final Self-BLEU",
    "sweep": "the temperature sweep",
    "tracking": "MLflow: the run, params, metrics, artifacts (and preparing them)",
}


class Stopwatch:
    """Seconds per part, summed over every entry of `part(name)`, and the cell's own seconds;
    `state()` goes into a checkpoint and `resume` adds it back, so a resumed cell's parts count
    each killed process's share up to its last checkpoint."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started, self.before = time.perf_counter(), 0.0

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        if name not in PARTS:
            raise ValueError(f"unknown part {name!r}; known: {', '.join(PARTS)}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def cell_s(self) -> float:
        """The cell's seconds: since this stopwatch was made, plus the resumed processes'."""
        return self.before + time.perf_counter() - self.started

    def state(self) -> dict:
        return {"seconds": dict(self.seconds), "cell_s": self.cell_s()}

    def resume(self, state: dict) -> None:
        for name, seconds in state["seconds"].items():
            self.add(name, seconds)
        self.before += state["cell_s"]

    def metrics(self) -> dict[str, float]:
        """`perf/<part>_s` of every part entered so far, and `perf/cell_s` (`cell_s`)."""
        out = {f"perf/{name}_s": s for name, s in self.seconds.items()}
        return out | {"perf/cell_s": self.cell_s()}

"""Checkpoints inside a cell: a killed cell continues from its last one, not from the start.

One file per cell, named by the cell's key (`bench.cells.keys.cell_key`), so only a run whose result
would be the same can pick it up. Written atomically: a kill mid-write leaves the previous
checkpoint intact. Removed once the cell finishes or diverges; a failed or timed-out cell keeps
it, so a rerun continues.
"""

from __future__ import annotations

import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from oracle.cache_file import load_verified, save_verified

FORMAT = 1


def checkpoint_path(cache_dir: Path, cell_key: str) -> Path:
    """Where the cell with this key keeps its checkpoint."""
    return Path(cache_dir) / "checkpoints" / f"{cell_key}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically, behind its digest: a kill mid-write leaves the previous checkpoint."""
    save_verified(state | {"format": FORMAT}, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none or it cannot be read or is damaged (its
    digest does not match): then the cell starts over, never from a corrupt state."""
    if not path.exists():
        return None
    try:
        state = load_verified(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unreadable or damaged: say so, and train the cell from its start
        print(f"bench.run: ignoring unreadable checkpoint {path} ({e})", file=sys.stderr)
        return None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        print(f"bench.run: ignoring checkpoint {path} of another format", file=sys.stderr)
        return None
    return state


def remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)


@contextmanager
def cell_lock(cache_dir: Path, cell_key: str, wait: bool = False) -> Iterator[bool]:
    """Hold the cell's lock while it runs; yields False (and holds nothing) when another live
    process holds it, or with `wait`, waits for it. The kernel drops the lock when its holder
    dies, even by SIGKILL."""
    path = Path(cache_dir) / "checkpoints" / f"{cell_key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cell_busy(cache_dir: Path, cell_key: str) -> bool:
    """Whether another live process is running this cell right now."""
    with cell_lock(cache_dir, cell_key) as acquired:
        return not acquired


class CellCheckpoint:
    """The checkpoint file of one cell (`bench.train.cell.Checkpoints`)."""

    def __init__(self, cache_dir: Path, cell_key: str) -> None:
        self.path = checkpoint_path(cache_dir, cell_key)

    def __str__(self) -> str:
        return str(self.path)

    def load(self) -> dict[str, Any] | None:
        return load_checkpoint(self.path)

    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.path, state)

    def discard(self) -> None:
        remove_checkpoint(self.path)

"""Liveness of an invocation's driver process, from tags it wrote on its parent run."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux /proc), '' where unknown: with
    the pid, it names one process, so a recycled pid is not mistaken for a live driver."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def driver_tags() -> dict[str, str]:
    """Tags naming the invocation's process, so a later one can tell it died (see
    `Tracker.mark_stale_parents`)."""
    pid = os.getpid()
    return {
        "driver_host": platform.node(),
        "driver_pid": str(pid),
        "driver_start": _process_start(pid),
    }


def driver_alive(tags: dict[str, str]) -> bool | None:
    """Whether the invocation that wrote `tags` (driver_tags) still runs; None: cannot tell
    (another host, or tags from before they existed)."""
    if tags.get("driver_host") != platform.node() or not tags.get("driver_pid", "").isdigit():
        return None
    pid = int(tags["driver_pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    start = tags.get("driver_start", "")
    return not start or _process_start(pid) == start

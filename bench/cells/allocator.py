"""Process memory settings for training loops: keep freed heap memory instead of re-faulting it.

glibc's malloc returns large freed blocks to the OS, and torch's per-update temporaries of a few
MB are such blocks: every update would page-fault its memory afresh. Only where memory comes
from changes, never a computed value. Measurements: docs/bench.md, Allocator.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 32 * 2**20  # blocks below this come from the heap: glibc's maximum on 64-bit
TRIM_THRESHOLD = 2**30  # keep up to 1 GiB of freed heap: RSS stays at the cell's peak


def keep_freed_memory() -> bool:
    """Tune glibc malloc for this process (idempotent); False where there is no glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # macOS, musl: their allocators are left as they are
        return False
    return bool(
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )

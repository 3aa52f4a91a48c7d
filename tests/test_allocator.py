"""glibc malloc tuning: freed per-update temporaries stay in the heap instead of going back to
the OS (and being page-faulted in afresh by the next update)."""

import subprocess
import sys

import pytest

# malloc a 20 MB block (a per-update temporary's size), free it: where did it live, and is the
# heap still as large afterwards? Plain ctypes on libc, in a fresh process, without torch.
PROBE = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
if sys.argv[1] == "tuned":  # twice, as a driver and its workers may: idempotent
    from bench.cells.allocator import keep_freed_memory
    assert keep_freed_memory() is True and keep_freed_memory() is True
def heap():
    line = next(l for l in open("/proc/self/maps") if l.rstrip().endswith("[heap]"))
    return tuple(int(v, 16) for v in line.split()[0].split("-"))
block = libc.malloc(20 * 2**20)
lo, hi = heap()
libc.free(block)
print(lo <= block < hi, heap()[1] == hi)
"""


def _probe(mode: str) -> tuple[bool, bool]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    in_heap, kept = out.stdout.split()
    return in_heap == "True", kept == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_a_freed_block_of_a_temporarys_size_stays_in_the_heap():
    assert _probe("default")[0] is False  # glibc's default: mmap'd, unmapped again on free
    assert _probe("tuned") == (True, True)  # from the heap, and the heap is not trimmed

"""glibc malloc tuning: freed per-update temporaries are reused, not page-faulted afresh."""

import subprocess
import sys

import pytest

from bench.allocator import keep_freed_memory

PROBE = """
import resource, sys, torch
from bench.allocator import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
w = torch.randn(32, 5000)
def update():  # a read-out's temporaries: (1280, 5000) logits, softmax, log-softmax, product
    logits = torch.randn(1280, 32) @ w
    return (logits.softmax(-1) * logits.log_softmax(-1)).sum()
for _ in range(10):  # warm up: the first updates fault their memory in any case
    update()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    update()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_temporaries_are_reused_instead_of_faulted_in_again():
    default, tuned = _faults("default"), _faults("tuned")
    assert default > 1000  # glibc's defaults unmap or trim some temporaries every update
    assert tuned < default / 10  # measured: 6218 page faults by default, 0 tuned


def test_tuning_is_idempotent():
    assert keep_freed_memory() == keep_freed_memory()

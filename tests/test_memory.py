"""Freed memory kept for reuse: a large block's pages stay with the process for the next block."""

import subprocess
import sys

import pytest

# Fills a 256 MB block, frees it, and prints how many MB the process's resident memory grew by.
KEPT_AFTER_FREE = """
import sys
import numpy as np
from inmsrl.memory import reuse_freed_memory
def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) // 1024
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
before = resident_mb()
block = np.empty(64 * 2**20, dtype=np.float32)
block.fill(1.0)
del block
print(resident_mb() - before)
"""


def kept_mb(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", KEPT_AFTER_FREE, mode], capture_output=True, text=True,
                         check=True)
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_large_blocks_stay_mapped_for_reuse():
    assert kept_mb("default") < 64  # glibc unmaps the block: the next one is faulted in and zeroed again
    assert kept_mb("reuse") >= 200  # kept: the next block of that size reuses the pages

"""Freed memory kept for reuse, and resident memory moved into huge pages for the search."""

import ctypes
import mmap
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from inmsrl.memory import use_huge_pages

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


def huge_kb(address: int) -> int:
    """AnonHugePages (kB) of the mapping of this process that holds ``address``."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split()[0]
            if "-" in first and ":" not in first:
                begin, end = (int(part, 16) for part in first.split("-"))
                inside = begin <= address < end
            elif inside and first == "AnonHugePages:":
                return int(line.split()[1])
    raise AssertionError(f"no mapping holds {address:#x}")


def huge_pages_possible() -> bool:
    release = tuple(int(part) for part in platform.release().split(".")[:2] if part.isdigit())
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return release >= (6, 1) and mode.is_file() and "[never]" not in mode.read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux") or not huge_pages_possible(),
                    reason="MADV_COLLAPSE: Linux 6.1 or later with transparent huge pages")
def test_a_resident_range_moves_into_huge_pages_with_its_contents():
    # private anonymous memory, as malloc maps it (whatever the allocator's settings in this process),
    # faulted in 4 KiB pages: not advised for huge ones
    block = mmap.mmap(-1, 16 * 2**20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    block.write(os.urandom(len(block)))
    address = ctypes.addressof(ctypes.c_char.from_buffer(block))
    before = block[:]
    assert use_huge_pages(address, len(block))
    assert huge_kb(address) >= 2048
    assert block[:] == before
    assert not use_huge_pages(address, 2**20)  # no whole 2 MiB page inside

"""How the process's large blocks of memory are kept: freed ones reused, searched ones in huge pages.

**Freed memory reused** (glibc only). glibc's ``malloc`` serves every block over its mmap threshold
(at most 32 MB) with a fresh ``mmap`` and returns it with ``munmap`` when freed. A paper-size U-Net
makes and frees tensors of hundreds of megabytes in every forward pass, so each pass page-faults all
of them in again and the kernel zeroes them: a paper-size Cascade embeds about a fifth faster on the
CPU without that (``bench/search.py`` runs with and without). Serving them from the heap and never
trimming it keeps the pages mapped; the cost is that the process keeps its peak memory until it
exits, which suits a command that embeds a catalogue and ends. This is what a caching allocator
(jemalloc, tcmalloc) preloaded by hand would give, without the preload.

**Huge pages** (Linux 6.1 and later). A search walks a graph of a million windows and reads scattered
rows of large arrays: with 4 KiB pages nearly every read also misses the TLB and walks the page
tables. Memory that numpy allocates is advised for transparent huge pages when it is first touched;
memory that faiss allocates (or that was reused) is not, so :func:`use_huge_pages` asks the kernel to
collapse a resident range into 2 MiB pages at once (``MADV_COLLAPSE``): at a million windows a walk
from cold caches takes a third of the time or less (``bench/search.py`` compares them).

Imports nothing from the package.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
_MADV_COLLAPSE = 25  # from Linux's mman-common.h
HUGE_PAGE = 2 * 2**20


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except (OSError, TypeError):
        return None
    if hasattr(libc, "mallopt"):
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if hasattr(libc, "madvise"):
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        libc.madvise.restype = ctypes.c_int
    return libc


@functools.cache
def reuse_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of unmapping them (once per process).

    Returns whether it took effect: ``False`` where the C library has no ``mallopt`` (macOS, musl).
    Only blocks allocated afterwards are affected; call it before the work that repeats.
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


def use_huge_pages(address: int, nbytes: int) -> bool:
    """Collapse the whole 2 MiB pages of the resident range ``[address, address + nbytes)`` into
    transparent huge pages now. Returns whether the kernel did (``False`` before Linux 6.1, on other
    systems, where huge pages are disabled, or for a range under 2 MiB); the memory is the same."""
    madvise = getattr(_libc(), "madvise", None)
    first = -(-address // HUGE_PAGE) * HUGE_PAGE
    end = (address + nbytes) // HUGE_PAGE * HUGE_PAGE
    if madvise is None or end <= first or not sys.platform.startswith("linux"):
        return False
    return madvise(first, end - first, _MADV_COLLAPSE) == 0

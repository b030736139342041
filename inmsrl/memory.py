"""Keep the memory that large tensors free inside the process, for the next ones (glibc only).

glibc's ``malloc`` serves every block over its mmap threshold (at most 32 MB) with a fresh ``mmap``
and returns it with ``munmap`` when freed. A paper-size U-Net makes and frees tensors of hundreds of
megabytes in every forward pass, so each pass page-faults all of them in again and the kernel zeroes
them: about a tenth of a CPU embedding's time (``bench/search.py`` runs with and without). Serving
them from the heap and never trimming it makes the pages stay mapped; the cost is that the process
keeps its peak memory until it exits, which suits a command that embeds a catalogue and ends. This
is what a caching allocator (jemalloc, tcmalloc) preloaded by hand would give, without the preload.
Imports nothing from the package.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


@functools.cache
def reuse_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse instead of unmapping them (once per process).

    Returns whether it took effect: ``False`` where the C library has no ``mallopt`` (macOS, musl).
    Only blocks allocated afterwards are affected; call it before the work that repeats.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))

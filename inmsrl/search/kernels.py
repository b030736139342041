"""Compiled distance kernels of the approximate search (numba).

An approximate query reads a few thousand scattered catalogue windows and every track's mean vector;
in numpy that means copying the windows out (a fancy index) before a matrix product, and at a million
windows the copying costs more than the arithmetic. These kernels compute the weighted distances
``Σ_s w_s ‖q_s − x_s‖`` straight from the (memory-mapped) arrays, in float32 with direct differences
(no ``‖q‖² + ‖x‖² − 2q·x`` cancellation), the tracks shared out among the threads. One call runs at a
time: a threaded server may search from several threads, and not every numba threading layer allows
parallel kernels to be launched concurrently.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

# Sums may be reordered (SIMD) and fused (FMA), which keeps the worst-case rounding bound that the search's
# exact re-ranking relies on; no approximate square roots or reciprocals.
FAST_MATH = {"reassoc", "contract"}
_ONE_AT_A_TIME = threading.Lock()


@njit(parallel=True, fastmath=FAST_MATH, cache=True)
def _track_mean_distances(codes: np.ndarray, low: np.ndarray, step: np.ndarray, query: np.ndarray,
                          sources: np.ndarray, weights: np.ndarray, tracks: np.ndarray,
                          out: np.ndarray) -> None:
    for k in prange(tracks.shape[0]):
        t = tracks[k]
        best = np.float32(np.inf)
        for i in range(query.shape[0]):
            total = np.float32(0.0)
            for j in range(sources.shape[0]):
                s = sources[j]
                squared = np.float32(0.0)
                for d in range(query.shape[2]):
                    diff = query[i, s, d] - (low[s, d] + step[s, d] * np.float32(codes[s, t, d]))
                    squared += diff * diff
                total += weights[j] * np.sqrt(squared)
            best = min(best, total)
        out[k] = best


@njit(parallel=True, fastmath=FAST_MATH, cache=True)
def _window_distances(vectors: np.ndarray, query: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                      firsts: np.ndarray, counts: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    for t in prange(firsts.shape[0]):
        for k in range(counts[t]):
            row = firsts[t] + k
            best = np.float32(np.inf)
            for i in range(query.shape[0]):
                total = np.float32(0.0)
                for j in range(sources.shape[0]):
                    s = sources[j]
                    squared = np.float32(0.0)
                    for d in range(query.shape[2]):
                        diff = query[i, s, d] - vectors[s, row, d]
                        squared += diff * diff
                    total += weights[j] * np.sqrt(squared)
                best = min(best, total)
            out[offsets[t] + k] = best


def track_mean_distances(codes: np.ndarray, low: np.ndarray, step: np.ndarray, query: np.ndarray,
                          sources: np.ndarray, weights: np.ndarray, tracks: np.ndarray,
                          out: np.ndarray) -> None:
    """``out[k]``: the smallest over query windows of the weighted distance to the means of track
    ``tracks[k]``.

    The means are stored in 8 bits, ``low + step * codes`` per dimension (a quarter of the memory
    traffic of float32; the scan only chooses candidates). ``codes`` (sources, tracks, dim) uint8;
    ``low``/``step`` (sources, dim); ``query`` (windows, sources, dim); ``sources``/``weights``: the
    weighted instruments and their weights."""
    with _ONE_AT_A_TIME:
        _track_mean_distances(codes, low, step, query, sources, weights, tracks, out)


def window_distances(vectors: np.ndarray, query: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                     firsts: np.ndarray, counts: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[offsets[t] + k]``: the smallest over query windows of the weighted distance to window
    ``firsts[t] + k`` (``k < counts[t]``) of ``vectors`` (sources, windows, dim)."""
    with _ONE_AT_A_TIME:
        _window_distances(vectors, query, sources, weights, firsts, counts, offsets, out)


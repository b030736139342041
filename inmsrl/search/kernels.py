"""Compiled distance kernels of the search (numba).

An approximate query reads every track's mean vector and a few thousand scattered catalogue windows;
in numpy that means copying the windows out (a fancy index) before a matrix product, and at a million
windows the copying, and the many small numpy steps around it, cost more than the arithmetic. These
kernels compute the weighted distances ``Σ_s w_s ‖q_s − x_s‖`` in place, without copies: the scan of
the 8-bit track means and the candidates' windows from 16-bit codes (half the memory to read) in
float32, the tracks shared out among the threads; then (for exact search too) each shortlisted track's
best pair in float64 from the stored, memory-mapped float32 vectors. One call runs at a time: a
threaded server may search from several threads, and not every numba threading layer allows parallel
kernels to be launched concurrently.
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
def _track_mean_distances(codes: np.ndarray, low: np.ndarray, step: np.ndarray, norms: np.ndarray,
                          query: np.ndarray, sources: np.ndarray, weights: np.ndarray, tracks: np.ndarray,
                          out: np.ndarray) -> None:
    windows, weighted, dim = query.shape[0], sources.shape[0], query.shape[2]
    # ‖q − m‖² = ‖q‖² − 2q·low + ‖m‖² − 2(q ⊙ step)·code, m = low + step ⊙ code: one product a code.
    scaled = np.empty((windows, weighted, dim), np.float32)
    constant = np.zeros((windows, weighted), np.float32)
    for i in range(windows):
        for j in range(weighted):
            s = sources[j]
            for d in range(dim):
                scaled[i, j, d] = 2 * query[i, s, d] * step[s, d]
                constant[i, j] += query[i, s, d] * (query[i, s, d] - 2 * low[s, d])
    for k in prange(tracks.shape[0]):
        t = tracks[k]
        best = np.float32(np.inf)
        for i in range(windows):
            total = np.float32(0.0)
            for j in range(weighted):
                s = sources[j]
                dot = np.float32(0.0)
                for d in range(dim):
                    dot += scaled[i, j, d] * np.float32(codes[s, t, d])
                total += weights[j] * np.sqrt(max(constant[i, j] + norms[s, t] - dot, np.float32(0.0)))
            best = min(best, total)
        out[k] = best


@njit(parallel=True, fastmath=FAST_MATH, cache=True)
def _window_distances(codes: np.ndarray, low: np.ndarray, step: np.ndarray, query: np.ndarray,
                      sources: np.ndarray, weights: np.ndarray, firsts: np.ndarray, counts: np.ndarray,
                      offsets: np.ndarray, out: np.ndarray) -> None:
    windows, weighted, dim = query.shape[0], sources.shape[0], query.shape[2]
    shifted = np.empty((windows, weighted, dim), np.float32)  # q − low: then q − x = shifted − step ⊙ code
    for i in range(windows):
        for j in range(weighted):
            for d in range(dim):
                shifted[i, j, d] = query[i, sources[j], d] - low[sources[j], d]
    for t in prange(firsts.shape[0]):
        for k in range(counts[t]):
            row = firsts[t] + k
            best = np.float32(np.inf)
            for i in range(windows):
                total = np.float32(0.0)
                for j in range(weighted):
                    s = sources[j]
                    squared = np.float32(0.0)
                    for d in range(dim):
                        diff = shifted[i, j, d] - step[s, d] * np.float32(codes[s, row, d])
                        squared += diff * diff
                    total += weights[j] * np.sqrt(squared)
                best = min(best, total)
            out[offsets[t] + k] = best


def track_mean_distances(codes: np.ndarray, low: np.ndarray, step: np.ndarray, norms: np.ndarray,
                         query: np.ndarray, sources: np.ndarray, weights: np.ndarray, tracks: np.ndarray,
                         out: np.ndarray) -> None:
    """``out[k]``: the smallest over query windows of the weighted distance to the means of track
    ``tracks[k]``.

    The means are stored in 8 bits, ``low + step * codes`` per dimension, with their squared norms
    (the scan only chooses candidates, so the rounding of ``‖q‖² + ‖m‖² − 2q·m`` does not matter).
    ``codes`` (sources, tracks, dim) uint8; ``low``/``step`` (sources, dim); ``norms`` (sources,
    tracks); ``query`` (windows, sources, dim); ``sources``/``weights``: the weighted instruments and
    their weights."""
    with _ONE_AT_A_TIME:
        _track_mean_distances(codes, low, step, norms, query, sources, weights, tracks, out)


def window_distances(codes: np.ndarray, low: np.ndarray, step: np.ndarray, query: np.ndarray,
                     sources: np.ndarray, weights: np.ndarray, firsts: np.ndarray, counts: np.ndarray,
                     offsets: np.ndarray, out: np.ndarray) -> None:
    """``out[offsets[t] + k]``: the smallest over query windows of the weighted distance to window
    ``firsts[t] + k`` (``k < counts[t]``), whose vectors are stored in 16 bits, ``low + step * codes``
    per dimension: ``codes`` (sources, windows, dim) uint16, ``low``/``step`` (sources, dim). Computed
    from the differences ``q − x`` (no cancellation: the rounding is a small fraction of the distance);
    16-bit codes halve the memory it reads."""
    with _ONE_AT_A_TIME:
        _window_distances(codes, low, step, query, sources, weights, firsts, counts, offsets, out)


@njit(fastmath=FAST_MATH, cache=True)
def _best_pairs(vectors: np.ndarray, query: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                best: np.ndarray, firsts: np.ndarray, counts: np.ndarray, offsets: np.ndarray,
                limits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    distance = np.full(firsts.shape[0], np.inf)
    row = np.full(firsts.shape[0], -1, np.int64)
    query_window = np.zeros(firsts.shape[0], np.int64)
    per_source = np.zeros((firsts.shape[0], sources.shape[0]))
    each = np.empty(sources.shape[0])
    for t in range(firsts.shape[0]):
        for k in range(counts[t]):
            if best[offsets[t] + k] > limits[t]:
                continue
            x_row = firsts[t] + k
            for i in range(query.shape[0]):
                total = 0.0
                for j in range(sources.shape[0]):
                    s = sources[j]
                    squared = 0.0
                    for d in range(query.shape[2]):
                        diff = np.float64(query[i, s, d]) - np.float64(vectors[s, x_row, d])
                        squared += diff * diff
                    each[j] = np.sqrt(squared)
                    total += weights[j] * each[j]
                if total < distance[t]:
                    distance[t], row[t], query_window[t] = total, x_row, i
                    per_source[t] = each
    return distance, row, query_window, per_source


def best_pairs(vectors: np.ndarray, query: np.ndarray, sources: np.ndarray, weights: np.ndarray,
               best: np.ndarray, firsts: np.ndarray, counts: np.ndarray, offsets: np.ndarray,
               limits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each track's exact (float64) best pair: its distance, catalogue row, query window, and the
    distance of each of ``sources`` in it.

    Track ``t`` has windows ``firsts[t] + k`` (``k < counts[t]``) with float32 distances
    ``best[offsets[t] + k]``; only those within ``limits[t]`` are computed again (the others cannot be
    its best). Ties go to the earlier window, then the earlier query window."""
    with _ONE_AT_A_TIME:
        return _best_pairs(vectors, query, sources, weights, best, firsts, counts, offsets, limits)

"""Compiled distance kernels of the search (numba).

An approximate query reads every track's mean vector and a few thousand scattered catalogue windows;
in numpy that means copying the windows out (a fancy index) before a matrix product, and at a million
windows the copying, and the many small numpy steps around it, cost more than the arithmetic. These
kernels compute the weighted distances ``Σ_s w_s ‖q_s − x_s‖`` in place, without copies: in one call,
the scans of the 8-bit track means, the choice of the candidates and their windows' distances from
16-bit codes (half the memory to read), in float32, the tracks shared out among the threads; then
(for exact search too) each shortlisted track's best pair in float64 from the stored, memory-mapped
float32 vectors. One call runs at a time: a threaded server may search from several threads, and not
every numba threading layer allows parallel kernels to be launched concurrently.
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


@njit(cache=True)
def _kth_smallest(values: np.ndarray, kth: int) -> float:
    """The ``kth`` smallest of ``values`` (0-based): quickselect on a copy."""
    a = values.copy()
    left, right = 0, a.shape[0] - 1
    while right > left:
        x, y, z = a[left], a[(left + right) // 2], a[right]
        pivot = max(min(x, y), min(max(x, y), z))  # median of three
        i, j = left, right
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if kth <= j:
            right = j
        elif kth >= i:
            left = i
        else:
            break
    return a[kth]


@njit(cache=True)
def _smallest(values: np.ndarray, ids: np.ndarray, count: int) -> np.ndarray:
    """The ``ids`` of the ``count`` smallest ``values`` (ties: the earlier ones), in no set order.

    Many values and few wanted (the mean scans): a threshold from every few-th value leaves a few more
    than ``count`` to select among, in one pass; quickselect over all of them otherwise."""
    if count >= values.shape[0]:
        return ids
    below = np.arange(values.shape[0])
    if values.shape[0] > 8 * count:
        sample = values[::max(1, values.shape[0] // 2048)]
        rank = min(sample.shape[0] - 1, int(1.5 * count * sample.shape[0] / values.shape[0]) + 8)
        candidates = np.flatnonzero(values <= _kth_smallest(sample, rank))
        if candidates.shape[0] >= count:
            below = candidates
    kept = values[below]
    kth = _kth_smallest(kept, count - 1)
    chosen = np.empty(count, ids.dtype)
    n = 0
    for k in range(below.shape[0]):
        if kept[k] < kth:
            chosen[n] = ids[below[k]]
            n += 1
    for k in range(below.shape[0]):
        if n == count:
            break
        if kept[k] == kth:
            chosen[n] = ids[below[k]]
            n += 1
    for k in range(below.shape[0]):  # only with NaNs, which compare false: every id must be a valid one
        if n == count:
            break
        if not kept[k] <= kth:
            chosen[n] = ids[below[k]]
            n += 1
    return chosen


@njit(fastmath=FAST_MATH, cache=True)
def _nearest_means(codes: np.ndarray, low: np.ndarray, step: np.ndarray, norms: np.ndarray,
                   query: np.ndarray, sources: np.ndarray, weights: np.ndarray, tracks: np.ndarray,
                   count: int) -> np.ndarray:
    """The ``count`` of ``tracks`` whose means are nearest to a query window in the weighted distance."""
    if count >= tracks.shape[0]:
        return tracks
    distances = np.empty(tracks.shape[0], np.float32)
    _track_mean_distances(codes, low, step, norms, query, sources, weights, tracks, distances)
    return _smallest(distances, tracks, count)


@njit(fastmath=FAST_MATH, cache=True)
def _candidate_windows(mean_codes: np.ndarray, mean_low: np.ndarray, mean_step: np.ndarray,
                       mean_norms: np.ndarray, codes: np.ndarray, low: np.ndarray, step: np.ndarray,
                       all_firsts: np.ndarray, all_counts: np.ndarray, query: np.ndarray, primary: np.ndarray,
                       primary_weights: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                       tracks: np.ndarray, primary_count: int, count: int, graph_tracks: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if primary.shape[0] < sources.shape[0]:
        tracks = _nearest_means(mean_codes, mean_low, mean_step, mean_norms, query, primary, primary_weights,
                                tracks, primary_count)
    tracks = _nearest_means(mean_codes, mean_low, mean_step, mean_norms, query, sources, weights, tracks,
                            count)
    tracks = np.unique(np.concatenate((tracks, graph_tracks)))
    firsts, counts = all_firsts[tracks], all_counts[tracks]
    offsets = np.cumsum(counts) - counts
    best = np.empty(counts.sum(), np.float32)
    _window_distances(codes, low, step, query, sources, weights, firsts, counts, offsets, best)
    return best, tracks, offsets


def candidate_windows(means: tuple[np.ndarray, ...], window_codes: tuple[np.ndarray, ...],
                      extents: tuple[np.ndarray, np.ndarray], query: np.ndarray, primary: np.ndarray,
                      primary_weights: np.ndarray, sources: np.ndarray, weights: np.ndarray,
                      tracks: np.ndarray, primary_count: int, count: int, graph_tracks: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An approximate query's candidate tracks and the float32 distance of each of their windows.

    Candidates: the ``count`` of ``tracks`` whose means are nearest to a query window in the weighted
    distance (first narrowed to ``primary_count`` by the ``primary`` instruments alone, when they are
    not all of ``sources``), and ``graph_tracks``. ``means``: the tracks' 8-bit means (codes
    ``(sources, tracks, dim)`` uint8, offset and step ``(sources, dim)``, the squared norms they
    stand for ``(sources, tracks)``; the scan only chooses candidates, so the rounding of
    ``‖q‖² + ‖m‖² − 2q·m`` does not matter). ``window_codes``: every window in 16 bits (codes
    ``(sources, windows, dim)`` uint16, offset and step ``(sources, dim)``), from which the windows'
    distances are computed as differences ``q − x`` (no cancellation; half the memory of float32 to
    read). ``extents``: each track's first window and window count (a track's windows are one range).
    ``query`` (windows, sources, dim); ``sources``/``weights``: the weighted instruments.

    Returns ``(best, tracks, offsets)``: the candidate tracks ascending; for window ``k`` of the
    ``t``-th, ``best[offsets[t] + k]`` is the smallest over query windows of its weighted distance.
    One compiled call, so that the selections and the bookkeeping between the scans cost no numpy
    steps."""
    with _ONE_AT_A_TIME:
        return _candidate_windows(*means, *window_codes, *extents, query, primary, primary_weights, sources,
                                  weights, tracks, primary_count, count, graph_tracks)


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

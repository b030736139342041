"""The evaluation item sets of paper §4.2, built from a test dump's segment table and seeded.

* **normal** — every 10 s segment (MES-Normal, §4.2.1).
* **pseudo** — MES-Pseudo's test set (§4.2.2, Fig. 5), per target source b: ``num_targets`` pieces
  where b plays are drawn and removed from the pool; for each, ``others_per_target`` other pieces of
  the remaining pool give the non-target sources. Each target piece T yields the normal piece (T, T)
  and the pseudo pieces (T, N): segment i takes b from segment i of T and every other source from
  segment i of N (as long as both have a segment i). 10 targets × (1 + 3) = the paper's 40 pieces.
  Segments where b is silent in T are left out.
* **vis** — the visualisation set (§4.2.4, Fig. 6, Table 6), per target source b: ``num_pieces``
  pieces, up to ``segments_per_piece`` segments retrieved from each (ones where b plays for the target
  role, any for the non-target role), and for every (target, non-target) pair of pieces — the 10 × 10
  = 100 pseudo pieces, the diagonal being normal pieces — ``per_pair`` pseudo segments mixing a random
  retrieved target segment with a random retrieved non-target segment.
* **abx** — the clips of ABX triplets (5 s, positions from the ABX set), all sources of the clip.

Every random choice comes from ``(seed, source name)``, so the sets are identical for every model and
job, and the same for a source whatever other sources the dump has.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from inmsrl.data.abx import AbxClipError, AbxTriplet, clip_origin, track_index_by_number
from inmsrl.data.segments import SegmentTable
from inmsrl.eval.embeddings import NO_TARGET, EvalItems

SET_NAMES = ("normal", "pseudo", "vis", "abx")


class TestSetError(ValueError):
    """The test data cannot give the evaluation set asked for (too few pieces, unknown clips)."""


def _rng(seed: int, source: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(source.encode())])


def _items(name: str, length: int, origins: list[np.ndarray], targets: list[int], num_sources: int
           ) -> EvalItems:
    if not origins:
        return EvalItems(name, length, np.zeros((0, num_sources, 2), np.int64), np.zeros(0, np.int64))
    return EvalItems(name, length, np.stack(origins).astype(np.int64), np.array(targets, dtype=np.int64))


def _origin(table: SegmentTable, target: int, target_segment: int, other_segment: int,
            num_sources: int) -> np.ndarray:
    """(S, 2) origins: source ``target`` from one table segment, every other source from another."""
    origin = np.empty((num_sources, 2), dtype=np.int64)
    origin[:] = table.track[other_segment], table.start[other_segment]
    origin[target] = table.track[target_segment], table.start[target_segment]
    return origin


def pseudo_test_items(table: SegmentTable, sources: Sequence[str], targets: Sequence[str],
                      num_targets: int = 10, others_per_target: int = 3, seed: int = 0,
                      name: str = "pseudo") -> EvalItems:
    """MES-Pseudo's test set for each source of ``targets`` (see the module docstring).

    With fewer pieces than ``num_targets + others_per_target`` the number of target pieces shrinks so
    that ``others_per_target`` remain for the non-target sources (small corpora); fewer than two
    target pieces is an error (no music ID to tell apart).
    """
    if len(sources) < 2:
        raise TestSetError("MES-Pseudo needs at least two sources (a target and the others)")
    tracks = np.unique(table.track)
    origins, labels = [], []
    for source in targets:
        b = list(sources).index(source)
        eligible = np.unique(table.track[table.active[:, b]])
        count = min(num_targets, len(eligible), len(tracks) - others_per_target)
        if count < 2:
            raise TestSetError(f"MES-Pseudo for {source}: {len(eligible)} of {len(tracks)} test pieces have "
                               f"{source}; need two target pieces and {others_per_target} more pieces")
        rng = _rng(seed, source)
        chosen = np.sort(rng.choice(eligible, size=count, replace=False))
        pool = np.setdiff1d(tracks, chosen)
        for target_piece in chosen:
            others = np.sort(rng.choice(pool, size=others_per_target, replace=False))
            target_segments = table.segments_of(int(target_piece))
            for other_piece in (target_piece, *others):
                other_segments = table.segments_of(int(other_piece))
                for i in range(min(len(target_segments), len(other_segments))):
                    if table.active[target_segments[i], b]:
                        origins.append(_origin(table, b, target_segments[i], other_segments[i], len(sources)))
                        labels.append(b)
    return _items(name, table.length, origins, labels, len(sources))


def visualisation_items(table: SegmentTable, sources: Sequence[str], targets: Sequence[str],
                        num_pieces: int = 10, segments_per_piece: int = 10, per_pair: int = 10,
                        seed: int = 0, name: str = "vis") -> EvalItems:
    """The pseudo segments of the t-SNE figure and Table 6, for each source of ``targets``."""
    origins, labels = [], []
    for source in targets:
        b = list(sources).index(source)
        eligible = np.unique(table.track[table.active[:, b]])
        count = min(num_pieces, len(eligible))
        if count < 2:
            raise TestSetError(f"visualisation for {source}: only {len(eligible)} test piece(s) have "
                               f"{source}")
        rng = _rng(seed + 1, source)
        pieces = np.sort(rng.choice(eligible, size=count, replace=False))
        as_target, as_other = {}, {}
        for piece in pieces:
            segments = table.segments_of(int(piece))
            active = segments[table.active[segments, b]]
            as_target[piece] = rng.choice(active, size=min(segments_per_piece, len(active)), replace=False)
            as_other[piece] = rng.choice(segments, size=min(segments_per_piece, len(segments)), replace=False)
        for target_piece in pieces:
            for other_piece in pieces:
                for _ in range(per_pair):
                    origins.append(_origin(table, b, int(rng.choice(as_target[target_piece])),
                                           int(rng.choice(as_other[other_piece])), len(sources)))
                    labels.append(b)
    return _items(name, table.length, origins, labels, len(sources))


def abx_items(triplets: Iterable[AbxTriplet], track_ids: Sequence[str], num_sources: int, sample_rate: int,
              name: str = "abx") -> EvalItems:
    """Each distinct clip (X, A, B, Y or C) of ``triplets`` once, with all its sources."""
    index = track_index_by_number(track_ids)
    seen: dict[tuple[int, int], None] = {}
    length = None
    for triplet in triplets:
        for clip in (triplet.x, triplet.a, triplet.b):
            if length is not None and clip.num_samples != length:
                raise TestSetError(f"ABX clip {clip.path} has {clip.num_samples} samples, others {length}")
            length = clip.num_samples
            try:
                seen.setdefault(clip_origin(clip, index, sample_rate, f"triplet {triplet.key}: "))
            except AbxClipError as err:
                raise TestSetError(str(err)) from err
    origins = [np.tile(np.array(key, dtype=np.int64), (num_sources, 1)) for key in seen]
    return _items(name, length or 0, origins, [NO_TARGET] * len(origins), num_sources)

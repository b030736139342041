"""The swap test: how much of an instrument's embedding movement comes from that instrument.

For instrument b, take a test segment s and a segment s' of another piece, both with b audible. Three
items are embedded: the segment itself (all sources from s), the *target swap* (b from s', every
other source from s) and the *others swap* (b from s, every other source from s'). With ``e`` the
model's b-embedding, the target swap moves it by ``d_t = |e(target swap) - e(s)|`` and the others swap
by ``d_o = |e(others swap) - e(s)|``; the target share ``Σ d_t / Σ (d_t + d_o)`` over the pairs is 1
for a model that hears b only, 0 for one that hears only the rest, and about the target's share of
the signal for an untrained network. Models fed the clean stems (Clean) score 1 by construction.

:func:`swap_items` builds the items (consecutive triples: segment, target swap, others swap), the
embedding jobs embed them like any other set, and :func:`swap_shares` reads the shares back.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from inmsrl.data.segments import SegmentTable
from inmsrl.eval.embeddings import EmbeddingSet, EvalItems

ROLES = ("segment", "target_swap", "others_swap")


def swap_items(table: SegmentTable, sources: Sequence[str], targets: Sequence[str], pairs: int = 50,
               seed: int = 0, name: str = "swap") -> EvalItems:
    """For each source of ``targets``, ``pairs`` (segment, other piece's segment) pairs with the source
    audible in both, as consecutive item triples (segment, target swap, others swap)."""
    origins, labels = [], []
    for source in targets:
        b = list(sources).index(source)
        active = np.flatnonzero(table.active[:, b])
        if len(np.unique(table.track[active])) < 2:
            continue  # fewer than two pieces with this source: nothing to swap
        rng = np.random.default_rng([seed, zlib.crc32(f"swap/{source}".encode())])
        for _ in range(pairs):
            first = int(rng.choice(active))
            others = active[table.track[active] != table.track[first]]
            second = int(rng.choice(others))
            here = np.array([table.track[first], table.start[first]], dtype=np.int64)
            there = np.array([table.track[second], table.start[second]], dtype=np.int64)
            segment = np.tile(here, (len(sources), 1))
            target_swap, others_swap = segment.copy(), np.tile(there, (len(sources), 1))
            target_swap[b], others_swap[b] = there, here
            origins += [segment, target_swap, others_swap]
            labels += [b, b, b]
    if not origins:
        return EvalItems(name, table.length, np.zeros((0, len(sources), 2), np.int64), np.zeros(0, np.int64))
    return EvalItems(name, table.length, np.stack(origins), np.array(labels, dtype=np.int64))


@dataclass(frozen=True)
class SwapShare:
    """The target share of the embedding movement over ``pairs`` pairs, and the mean movements."""

    share: float
    pairs: int
    target_movement: float
    others_movement: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def swap_shares(embeddings: EmbeddingSet) -> dict[str, SwapShare]:
    """The swap test per embedded source that the set has item triples for."""
    shares = {}
    for j, name in enumerate(embeddings.sources):
        b = embeddings.dump_sources.index(name)
        rows = np.flatnonzero(embeddings.target == b)
        if len(rows) < 3:
            continue
        if len(rows) % 3:
            raise ValueError(f"swap set of {embeddings.name!r}: {len(rows)} {name} items are not triples")
        vectors = embeddings.vectors[rows, j].reshape(-1, 3, embeddings.vectors.shape[-1]).astype(np.float64)
        origins = embeddings.origins[rows].reshape(-1, 3, *embeddings.origins.shape[1:])
        if not (np.array_equal(origins[:, 1, b], origins[:, 2, (b + 1) % origins.shape[2]])
                and np.array_equal(origins[:, 0, b], origins[:, 2, b])):
            raise ValueError(f"swap set of {embeddings.name!r}: the {name} items are not in "
                             "(segment, target swap, others swap) order")
        target = np.linalg.norm(vectors[:, 1] - vectors[:, 0], axis=-1)
        others = np.linalg.norm(vectors[:, 2] - vectors[:, 0], axis=-1)
        total = float(np.sum(target + others))
        shares[name] = SwapShare(float(np.sum(target)) / total if total > 0 else float("nan"), len(target),
                                 float(np.mean(target)), float(np.mean(others)))
    return shares

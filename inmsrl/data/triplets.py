"""Training examples drawn from a dump: S4 triplets, pseudo-musical-piece triplets, source subsets.

Every example is described by its *origin*: for each role (anchor, positive, negative) and each
source, the (track, start sample) its audio is cut from. The audio is the dump's slice at that origin,
so an example can always be traced back to its pieces and segments (and the tests do).

* **S4** (paper §2.1): anchor and positive are two different segments of one piece, the negative a
  segment of another piece; all sources of a role come from the same segment.
* **Pseudo-musical pieces** (§2.2, Fig. 1; docs/design.md §5), for target source b and four different
  pieces A2, A, N, N2: anchor = b of A2 + the others of A; positive = b of another segment of A2 + the
  others of N; negative = b of N2 + the others of another segment of A. The *additional* triplet has
  the same anchor, swaps positive and negative, and targets another source c (shared with A by the
  new positive, not by the new negative).
* **Source subsets**: one segment of one piece with a random non-empty subset of its sources, for
  the Direct pre-training on the 31 subsets of five sources.

Triplets come in groups, as the authors' code batches them (the paper is silent on it): *per target*
— one basic triplet for each target source, so that a batch of B groups gives each instrument's
extractor B triplets, as the paper's one training run per instrument does (Clean, Cascade); or *pair*
— a basic pseudo-musical-piece triplet and its additional triplet, always in the same batch (Direct).

The target source is active (docs/design.md §3 silence rule) in every segment that carries it. Examples
are derived from ``(seed, index)`` alone — or ``(seed, epoch, index)`` for fresh examples every epoch
("DA", §3.2.3) — so they do not depend on the number of loader workers or the order of loading.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from inmsrl.data.dump import INT16_SCALE, Dump
from inmsrl.data.segments import SegmentTable

ANCHOR, POSITIVE, NEGATIVE = 0, 1, 2
KINDS = ("s4", "pseudo")
GROUPINGS = ("per_target", "pair")
_MAX_DRAWS = 1000


class SamplingError(ValueError):
    """The data cannot supply the examples asked for (too few pieces or active segments)."""


def nonempty_subsets(num_sources: int) -> list[tuple[int, ...]]:
    """All non-empty subsets of ``range(num_sources)`` (31 for five sources), smallest first."""
    return [combo for size in range(1, num_sources + 1)
            for combo in itertools.combinations(range(num_sources), size)]


@dataclass(frozen=True)
class TripletRecipe:
    """Where each (role, source) of a triplet comes from: ``origin[role, source] = (track, start)``."""

    target: int
    origin: np.ndarray


class ActiveSegments:
    """Per source, the segments in which it is active, grouped by track, for drawing examples."""

    def __init__(self, table: SegmentTable):
        self.table = table
        num_sources = table.active.shape[1]
        self.by_track: list[dict[int, np.ndarray]] = []
        for s in range(num_sources):
            idx = np.flatnonzero(table.active[:, s])
            groups = {int(t): idx[table.track[idx] == t] for t in np.unique(table.track[idx])}
            self.by_track.append(groups)

    def pieces(self, source: int, min_segments: int) -> np.ndarray:
        """Tracks with at least ``min_segments`` segments where ``source`` is active."""
        return np.array(sorted(t for t, segs in self.by_track[source].items() if len(segs) >= min_segments),
                        dtype=np.int64)

    def draw(self, rng: np.random.Generator, source: int, track: int, count: int) -> list[int]:
        """``count`` different segments of ``track`` where ``source`` is active (as segment indices)."""
        return [int(i) for i in rng.choice(self.by_track[source][track], size=count, replace=False)]


def _distinct(rng: np.random.Generator, pools: Sequence[np.ndarray], what: str) -> list[int]:
    """One track from each pool, all different (rejection sampling)."""
    for _ in range(_MAX_DRAWS):
        picks = [int(rng.choice(pool)) for pool in pools]
        if len(set(picks)) == len(picks):
            return picks
    raise SamplingError(f"cannot find {len(pools)} different pieces for {what}")


class TripletSampler:
    """Draws S4 and pseudo-musical-piece triplet recipes from a segment table."""

    def __init__(self, table: SegmentTable, targets: Sequence[int]):
        self.table = table
        self.num_sources = table.active.shape[1]
        self.targets = list(targets)
        if not self.targets:
            raise SamplingError("no target sources given")
        self.active = ActiveSegments(table)
        self._two = {b: self.active.pieces(b, 2) for b in self.targets}
        self._one = {b: self.active.pieces(b, 1) for b in self.targets}
        tracks, counts = np.unique(table.track, return_counts=True)
        self._any_two, self._any_one = tracks[counts >= 2], tracks
        for b in self.targets:
            if len(self._two[b]) < 1 or len(self._one[b]) < 2:
                raise SamplingError(f"source {b}: too few pieces where it is active to draw triplets "
                                    f"({len(self._two[b])} with two active segments, "
                                    f"{len(self._one[b])} with one)")

    def _origin(self, segments: Sequence[Sequence[int]]) -> np.ndarray:
        """(3, S, 2) origins from per-role, per-source segment indices."""
        seg = np.asarray(segments, dtype=np.int64)
        return np.stack([self.table.track[seg], self.table.start[seg]], axis=-1).astype(np.int64)

    def s4(self, rng: np.random.Generator, b: int | None = None) -> TripletRecipe:
        """Anchor and positive from one piece, negative from another; target b (random if None) active
        in all three."""
        b = int(rng.choice(self.targets)) if b is None else b
        anchor_piece, negative_piece = _distinct(rng, [self._two[b], self._one[b]], "an S4 triplet")
        seg_a, seg_p = self.active.draw(rng, b, anchor_piece, 2)
        (seg_n,) = self.active.draw(rng, b, negative_piece, 1)
        rows = [[seg] * self.num_sources for seg in (seg_a, seg_p, seg_n)]
        return TripletRecipe(b, self._origin(rows))

    def pseudo_basic(self, rng: np.random.Generator, b: int) -> TripletRecipe:
        """A basic pseudo-musical-piece triplet for target ``b`` alone (no additional triplet, so the
        other pieces need no active source of their own)."""
        a2, n2, a, n = _distinct(rng, [self._two[b], self._one[b], self._any_two, self._any_one],
                                 "a pseudo-musical-piece triplet")
        a2_1, a2_2 = self.active.draw(rng, b, a2, 2)
        (n2_1,) = self.active.draw(rng, b, n2, 1)
        a_1, a_2 = (int(x) for x in rng.choice(self.table.segments_of(a), size=2, replace=False))
        n_1 = int(rng.choice(self.table.segments_of(n)))

        def piece(target_segment: int, others_segment: int) -> list[int]:
            return [target_segment if s == b else others_segment for s in range(self.num_sources)]

        return TripletRecipe(b, self._origin([piece(a2_1, a_1), piece(a2_2, n_1), piece(n2_1, a_2)]))

    def pseudo_pair(self, rng: np.random.Generator) -> tuple[TripletRecipe, TripletRecipe]:
        """A basic pseudo-musical-piece triplet for target b and its additional triplet for c != b."""
        if len(self.targets) < 2:
            raise SamplingError("pseudo-musical-piece triplets need at least two target sources")
        b, c = (int(x) for x in rng.choice(self.targets, size=2, replace=False))
        # A2 (two segments, b active), N2 (b active), A (two segments, c active), N (c active).
        a2, n2, a, n = _distinct(rng, [self._two[b], self._one[b], self._two[c], self._one[c]],
                                 "a pseudo-musical-piece triplet")
        a2_1, a2_2 = self.active.draw(rng, b, a2, 2)
        (n2_1,) = self.active.draw(rng, b, n2, 1)
        a_1, a_2 = self.active.draw(rng, c, a, 2)
        (n_1,) = self.active.draw(rng, c, n, 1)

        def piece(target_segment: int, others_segment: int) -> list[int]:
            return [target_segment if s == b else others_segment for s in range(self.num_sources)]

        anchor, positive, negative = piece(a2_1, a_1), piece(a2_2, n_1), piece(n2_1, a_2)
        basic = TripletRecipe(b, self._origin([anchor, positive, negative]))
        additional = TripletRecipe(c, self._origin([anchor, negative, positive]))
        return basic, additional


def render(dump: Dump, origin: np.ndarray, length: int) -> np.ndarray:
    """int16 audio ``(roles, S, length)`` of the origins ``(roles, S, 2)``, each source cut from its place.

    Loaders hand int16 to the training loop (half the bytes of float32 through collation and worker
    queues); :func:`pcm_to_float` converts on the device.
    """
    roles, num_sources, _ = origin.shape
    out = np.empty((roles, num_sources, length), dtype=np.int16)
    for r in range(roles):
        for s in range(num_sources):
            track, start = origin[r, s]
            out[r, s] = dump.pcm(int(track), s, int(start), length)
    return out


def pcm_to_float(audio: torch.Tensor) -> torch.Tensor:
    """int16 loader audio → float32 in [-1, 1) (do it after moving the batch to the device)."""
    return audio.float() / INT16_SCALE


class DrawnDataset(Dataset):
    """``size`` examples, each drawn from ``(seed, index)`` alone — or ``(seed, epoch, index)`` with
    ``fresh_every_epoch`` — so that loading is reproducible whatever the workers or the order."""

    def __init__(self, size: int, seed: int, fresh_every_epoch: bool):
        self.size, self.seed, self.fresh_every_epoch, self.epoch = size, seed, fresh_every_epoch, 0

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, draw: int) -> np.random.Generator:
        """The generator of draw ``draw`` in the current epoch."""
        key = [self.seed, self.epoch, draw] if self.fresh_every_epoch else [self.seed, draw]
        return np.random.default_rng(key)


class TripletDataset(DrawnDataset):
    """``size`` groups of triplets of ``kind`` ("s4" or "pseudo"), ``grouping`` "per_target" (one
    triplet per target source) or "pair" (a pseudo triplet and its additional triplet).

    Item: int16 ``audio`` (G, 3, S, L), ``target`` (G,), ``origin`` (G, 3, S, 2). With
    ``fresh_every_epoch`` the groups are redrawn each epoch (call :meth:`set_epoch`), else the set is
    fixed by the seed.
    """

    def __init__(self, dump: Dump, table: SegmentTable, kind: str, targets: Sequence[int], size: int,
                 seed: int = 0, fresh_every_epoch: bool = False, grouping: str = "per_target"):
        if kind not in KINDS:
            raise ValueError(f"triplet kind {kind!r} is not one of {KINDS}")
        if grouping not in GROUPINGS:
            raise ValueError(f"triplet grouping {grouping!r} is not one of {GROUPINGS}")
        if grouping == "pair" and kind != "pseudo":
            raise ValueError("additional triplets (grouping 'pair') exist for pseudo-musical pieces only")
        if tuple(table.active.shape[1:]) != (len(dump.sources),):
            raise ValueError("segment table and dump disagree on the number of sources")
        super().__init__(size, seed, fresh_every_epoch)
        self.dump, self.table, self.kind, self.grouping = dump, table, kind, grouping
        try:
            self.sampler = TripletSampler(table, targets)
        except SamplingError as err:
            names = ", ".join(f"{i} = {name}" for i, name in enumerate(dump.sources))
            raise SamplingError(f"{dump.root}, {table.length}-sample segments: {err} (sources {names})"
                                ) from None

    @property
    def group_size(self) -> int:
        """Triplets per item."""
        return 2 if self.grouping == "pair" else len(self.sampler.targets)

    def recipes(self, index: int) -> list[TripletRecipe]:
        """The triplets of item ``index``, in group order."""
        rng = self.rng(index)
        if self.grouping == "pair":
            return list(self.sampler.pseudo_pair(rng))
        if self.kind == "s4":
            return [self.sampler.s4(rng, b) for b in self.sampler.targets]
        return [self.sampler.pseudo_basic(rng, b) for b in self.sampler.targets]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        recipes = self.recipes(index)
        audio = np.stack([render(self.dump, recipe.origin, self.table.length) for recipe in recipes])
        return {"audio": torch.from_numpy(audio),
                "target": torch.tensor([recipe.target for recipe in recipes]),
                "origin": torch.from_numpy(np.stack([recipe.origin for recipe in recipes]))}


class SubsetMixtureDataset(DrawnDataset):
    """Mixtures of a random non-empty subset of the sources (Direct pre-training).

    By default every source comes from one segment of one piece (the authors' code). With ``pseudo``
    each source comes from its own random segment of any piece, as in a pseudo-musical piece: then no
    source tells the model anything about another's piece, so the only way to predict a source's
    embedding is to hear that source — with few training pieces, the parts of a segment otherwise
    give away its piece.

    Item: ``audio`` (S, L) int16 with the left-out sources zeroed, ``subset`` (S,) bool, ``active``
    (S,) bool (in the subset and not silent), ``origin`` (S, 2), ``segments`` (S,) the table row each
    source was cut from.
    """

    def __init__(self, dump: Dump, table: SegmentTable, size: int, seed: int = 0,
                 fresh_every_epoch: bool = True, pseudo: bool = False):
        if len(table) == 0:
            raise SamplingError(f"{dump.root}: no segment of {table.length} samples (every track is shorter)")
        super().__init__(size, seed, fresh_every_epoch)
        self.dump, self.table, self.pseudo = dump, table, pseudo
        self.subsets = nonempty_subsets(len(dump.sources))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.rng(index)
        num_sources = len(self.dump.sources)
        segments = (rng.integers(len(self.table), size=num_sources) if self.pseudo
                    else np.full(num_sources, rng.integers(len(self.table))))
        subset = np.zeros(num_sources, dtype=bool)
        subset[list(self.subsets[int(rng.integers(len(self.subsets)))])] = True
        origin = np.stack([self.table.track[segments], self.table.start[segments]], axis=-1).astype(np.int64)
        audio = render(self.dump, origin[None], self.table.length)[0] * subset[:, None]
        active = self.table.active[segments, np.arange(num_sources)]
        return {"audio": torch.from_numpy(audio), "subset": torch.from_numpy(subset),
                "active": torch.from_numpy(subset & active), "origin": torch.from_numpy(origin),
                "segments": torch.from_numpy(segments.astype(np.int64))}


class SegmentDataset(DrawnDataset):
    """Random segments of the table with all their sources (separation training, validation sets).

    Item: ``audio`` (S, L) int16, ``active`` (S,) bool, ``origin`` (S, 2). With ``active_source`` only
    segments where that source is active are drawn (a separator learns nothing from a silent target).
    """

    def __init__(self, dump: Dump, table: SegmentTable, size: int, seed: int = 0,
                 fresh_every_epoch: bool = True, active_source: int | None = None):
        candidates = (np.arange(len(table)) if active_source is None
                      else np.flatnonzero(table.active[:, active_source]))
        if len(candidates) == 0:
            where = "" if active_source is None else f" where {dump.sources[active_source]} is active"
            raise SamplingError(f"{dump.root}: no {table.length}-sample segment to draw from{where}")
        super().__init__(size, seed, fresh_every_epoch)
        self.dump, self.table, self.candidates = dump, table, candidates

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        seg = int(self.rng(index).choice(self.candidates))
        origin = np.tile([self.table.track[seg], self.table.start[seg]],
                         (len(self.dump.sources), 1)).astype(np.int64)
        audio = render(self.dump, origin[None], self.table.length)[0]
        return {"audio": torch.from_numpy(audio), "active": torch.from_numpy(self.table.active[seg].copy()),
                "origin": torch.from_numpy(origin)}


def make_loader(dataset: Dataset, batch_size: int, workers: int = 0, seed: int = 0,
                shuffle: bool = False) -> DataLoader:
    """A reproducible loader: items depend only on their index, the shuffling on ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      generator=generator, persistent_workers=workers > 0, drop_last=False)

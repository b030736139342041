"""Embeddings of evaluation items, stored once so that every metric reads the same vectors.

An evaluation item is described by its *origin*: for each source of the dump, the (track, start
sample) its audio is cut from (the format of :func:`inmsrl.data.triplets.render`). A normal test
segment has one origin for all sources; a pseudo-musical piece takes the target source from one piece
and the others from another. :class:`EmbeddingSet` keeps, per item, the origins (the track / segment /
source keys), the source it was built for, the model's vector of every embedded source (of that one
source only, for an item built for one) and whether that source is audible in the item (silent
targets are left out of the music-ID scores).

Any model with the common interface (``embed``, ``sources``, ``takes_stems``) works: Clean gets the
clean stems, the others the mixture, i.e. the sum of the stems. Parallel jobs each embed a contiguous
share of the items (:func:`part_rows`) and write one file; :meth:`EmbeddingSet.load_parts` puts them
back together in order and refuses an incomplete set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inmsrl.data.dump import INT16_SCALE, Dump
from inmsrl.data.segments import SegmentTable, active_in_segments
from inmsrl.data.triplets import render

NO_TARGET = -1  # an item built for every source (a normal segment or clip)


class EmbeddingFileError(RuntimeError):
    """Embedding files that are missing, incomplete or do not belong together."""


@dataclass(frozen=True)
class EvalItems:
    """What to embed: ``origins[i, s] = (track, start)`` of source ``s`` of item ``i``, all ``length``
    samples long, and the dump source each item was built for (``NO_TARGET`` for all of them)."""

    name: str
    length: int
    origins: np.ndarray
    target: np.ndarray

    def __post_init__(self) -> None:
        if self.origins.ndim != 3 or self.origins.shape[-1] != 2 or len(self.target) != len(self.origins):
            raise ValueError(f"evaluation items {self.name!r}: origins must be (n, sources, 2) and "
                             f"target (n,), got {self.origins.shape} and {self.target.shape}")

    def __len__(self) -> int:
        return len(self.origins)

    def subset(self, rows: np.ndarray) -> EvalItems:
        return EvalItems(self.name, self.length, self.origins[rows], self.target[rows])


def segment_items(name: str, table: SegmentTable, num_sources: int) -> EvalItems:
    """Every segment of ``table`` as an item whose sources all come from the same segment."""
    origin = np.stack([table.track.astype(np.int64), table.start.astype(np.int64)], axis=-1)
    return EvalItems(name, table.length, np.repeat(origin[:, None, :], num_sources, axis=1),
                     np.full(len(table), NO_TARGET, dtype=np.int64))


def part_rows(count: int, part: int, num_parts: int) -> np.ndarray:
    """Rows of part ``part`` (1-based, as ``JOB``) of ``num_parts`` contiguous, near-equal shares."""
    if not 1 <= part <= num_parts:
        raise ValueError(f"part {part} is not in 1..{num_parts}")
    bounds = np.linspace(0, count, num_parts + 1).round().astype(int)
    return np.arange(bounds[part - 1], bounds[part])


@dataclass(frozen=True)
class EmbeddingSet:
    """``vectors[i, j]``: the embedding of source ``sources[j]`` for item ``i`` of set ``name``.

    ``origins`` index ``track_ids`` (the dump's tracks) and follow ``dump_sources``; ``active[i, j]``
    says whether ``sources[j]`` is audible in item ``i`` (docs/design.md §3 silence rule); an item built for
    one source has NaN vectors and ``False`` for the others, which it was not embedded for.
    """

    name: str
    sources: tuple[str, ...]
    dump_sources: tuple[str, ...]
    track_ids: tuple[str, ...]
    length: int
    origins: np.ndarray
    target: np.ndarray
    vectors: np.ndarray
    active: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.origins)

    def source_track(self, source: str) -> np.ndarray:
        """Per item, the id of the track that ``source``'s audio comes from."""
        column = self.origins[:, self.dump_sources.index(source), 0]
        return np.array(self.track_ids, dtype=object)[column] if len(column) else np.zeros(0, object)

    def column(self, source: str) -> int:
        """The axis-1 position of ``source`` in ``vectors``; an error naming the set if not embedded."""
        if source not in self.sources:
            raise KeyError(f"embedding set {self.name!r} has no {source!r} embedding "
                           f"(it has {', '.join(self.sources)})")
        return self.sources.index(source)

    def save(self, path: str | Path) -> None:
        """Write as ``.npz`` under a temporary name first, so a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, name=self.name, sources=np.array(self.sources),
                 dump_sources=np.array(self.dump_sources), track_ids=np.array(self.track_ids),
                 length=self.length, origins=self.origins, target=self.target, vectors=self.vectors,
                 active=self.active, meta_keys=np.array(list(self.meta), dtype=str),
                 meta_values=np.array(list(self.meta.values()), dtype=str))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSet:
        try:
            with np.load(path) as data:
                return cls(str(data["name"]), _strings(data["sources"]), _strings(data["dump_sources"]),
                           _strings(data["track_ids"]), int(data["length"]), data["origins"], data["target"],
                           data["vectors"], data["active"],
                           dict(zip(_strings(data["meta_keys"]), _strings(data["meta_values"]), strict=True)))
        except (OSError, KeyError, ValueError) as err:
            raise EmbeddingFileError(f"{path}: not an embedding file ({err})") from err

    @classmethod
    def concatenate(cls, parts: list[EmbeddingSet]) -> EmbeddingSet:
        """Merge the parts embedded by parallel jobs (same model, set and dump), keeping their order."""
        if not parts:
            raise EmbeddingFileError("no embedding parts to merge")
        first = parts[0]
        for p in parts[1:]:
            if (p.name, p.sources, p.dump_sources, p.track_ids, p.length) != (
                    first.name, first.sources, first.dump_sources, first.track_ids, first.length):
                raise EmbeddingFileError(f"cannot merge embedding parts of different sets, models or dumps "
                                         f"({first.name!r} and {p.name!r})")
        meta = {k: v for k, v in first.meta.items() if k not in ("part", "rows")}
        return cls(first.name, first.sources, first.dump_sources, first.track_ids, first.length,
                   *(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("origins", "target", "vectors", "active")), meta)

    @classmethod
    def load_parts(cls, directory: str | Path, name: str) -> EmbeddingSet:
        """Set ``name`` from its part files ``<name>.<J>-of-<N>.npz`` in ``directory``, all N present."""
        directory = Path(directory)
        pattern = re.compile(rf"^{re.escape(name)}\.(\d+)-of-(\d+)\.npz$")
        found = {}
        for path in directory.glob(f"{name}.*-of-*.npz") if directory.is_dir() else []:
            match = pattern.match(path.name)
            if match:
                found.setdefault(int(match.group(2)), {})[int(match.group(1))] = path
        if not found:
            raise EmbeddingFileError(f"{directory}: no embedding files of set {name!r} "
                                     f"({name}.J-of-N.npz); run 'inmsrl embed' first")
        if len(found) > 1:
            raise EmbeddingFileError(f"{directory}: set {name!r} has parts of {sorted(found)} jobs mixed; "
                                     f"remove the stale ones and embed again")
        (num_parts,) = found
        missing = sorted(set(range(1, num_parts + 1)) - set(found[num_parts]))
        if missing:
            raise EmbeddingFileError(f"{directory}: set {name!r} misses part(s) {missing} of {num_parts} "
                                     f"(a job of 'inmsrl embed' failed; see its log)")
        return cls.concatenate([cls.load(found[num_parts][j]) for j in range(1, num_parts + 1)])


def part_path(directory: str | Path, name: str, part: int, num_parts: int) -> Path:
    """Where part ``part`` of ``num_parts`` of set ``name`` is stored."""
    return Path(directory) / f"{name}.{part}-of-{num_parts}.npz"


def _strings(array: np.ndarray) -> tuple[str, ...]:
    return tuple(str(x) for x in np.atleast_1d(array))


def _activity(audio: np.ndarray, source_index: list[int]) -> np.ndarray:
    """(batch, len(source_index)) whether each source is audible in its rendered item (silence rule)."""
    length = audio.shape[-1]
    start = np.zeros(1, dtype=np.int64)
    return np.array([[bool(active_in_segments(item[s].astype(np.float32) / INT16_SCALE, start, length)[0])
                      for s in source_index] for item in audio], dtype=bool).reshape(len(audio),
                                                                                      len(source_index))


@torch.no_grad()
def embed_items(model: torch.nn.Module, dump: Dump, items: EvalItems, batch_size: int = 8,
                device: str | torch.device = "cpu", rows: np.ndarray | None = None) -> EmbeddingSet:
    """Embed items ``rows`` (all by default) with ``model`` in eval mode, ``batch_size`` at a time.

    An item built for one source (a pseudo or visualisation item) is embedded for that source only —
    its other columns are never read, and a Cascade would otherwise run every separator on it. Those
    columns hold NaN and are marked inactive, so no metric can take them for a vector. The model is put
    in channels_last layout: faster on CPU by bench/embed_throughput.py, and cuDNN's preferred layout.
    """
    model = model.to(device, memory_format=torch.channels_last).eval()
    rows = np.arange(len(items)) if rows is None else np.asarray(rows, dtype=np.int64)
    if items.origins.shape[1] != len(dump.sources):
        raise ValueError(f"items {items.name!r} have {items.origins.shape[1]} sources, {dump.root} has "
                         f"{len(dump.sources)}")
    sources = tuple(model.sources)
    source_index = [dump.sources.index(name) for name in sources]
    dim = int(getattr(model, "embedding_dim", 0))
    vectors = np.full((len(rows), len(sources), dim), np.nan, dtype=np.float32)
    active = np.zeros((len(rows), len(sources)), dtype=bool)
    targets = items.target[rows]
    for target in np.unique(targets):
        if target == NO_TARGET:
            columns = list(range(len(sources)))
        elif dump.sources[target] in sources:
            columns = [sources.index(dump.sources[target])]
        else:
            raise ValueError(f"items {items.name!r} built for {dump.sources[target]!r}, which "
                             f"{type(model).__name__} does not embed")
        positions = np.flatnonzero(targets == target)
        for begin in range(0, len(positions), batch_size):
            batch = positions[begin:begin + batch_size]
            audio = np.stack([render(dump, items.origins[rows[i]][None], items.length)[0] for i in batch])
            stems = torch.from_numpy(audio).to(device).float() / INT16_SCALE
            inputs = stems if getattr(model, "takes_stems", False) else stems.sum(dim=1)
            embedded = model.embed(inputs, [sources[j] for j in columns]).float().cpu().numpy()
            vectors[batch[:, None], columns] = embedded
            active[batch[:, None], columns] = _activity(audio, [source_index[j] for j in columns])
    return EmbeddingSet(
        name=items.name, sources=sources, dump_sources=tuple(dump.sources), track_ids=tuple(dump.track_ids),
        length=items.length, origins=items.origins[rows], target=targets, vectors=vectors, active=active,
        meta={"sample_rate": str(dump.sample_rate)})


def embed_segments(model: torch.nn.Module, dump: Dump, table: SegmentTable, batch_size: int = 8,
                   device: str | torch.device = "cpu", rows: np.ndarray | None = None) -> EmbeddingSet:
    """Embed the segments ``rows`` of ``table`` (all by default): the MES-Normal items."""
    return embed_items(model, dump, segment_items("normal", table, len(dump.sources)), batch_size, device,
                       rows)

"""Embeddings of every segment of a dumped set, stored once so every metric reads the same vectors.

An :class:`EmbeddingSet` keys row ``i`` by the segment's track id and start sample and holds, per
embedded source, the vector and whether the source is active in the segment (silent targets are left
out of the music-ID scores). Any model with the common interface (``embed``, ``sources``,
``takes_stems``) works: Clean gets the clean stems, the others the mixture (the sum of the stems).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inmsrl.data.dump import INT16_SCALE, Dump
from inmsrl.data.segments import SegmentTable


@dataclass(frozen=True)
class EmbeddingSet:
    """``vectors[i, s]``: the embedding of source ``sources[s]`` in segment ``i``."""

    sources: tuple[str, ...]
    track_ids: np.ndarray
    starts: np.ndarray
    vectors: np.ndarray
    active: np.ndarray

    def __len__(self) -> int:
        return len(self.track_ids)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, sources=np.array(self.sources), track_ids=self.track_ids, starts=self.starts,
                 vectors=self.vectors, active=self.active)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingSet:
        with np.load(path) as data:
            return cls(tuple(str(s) for s in data["sources"]), data["track_ids"], data["starts"],
                       data["vectors"], data["active"])

    @classmethod
    def concatenate(cls, parts: list[EmbeddingSet]) -> EmbeddingSet:
        """Merge the parts embedded by parallel jobs (same sources), keeping their order."""
        if not parts or any(p.sources != parts[0].sources for p in parts):
            raise ValueError("cannot merge embedding parts of different sources (or no parts)")
        return cls(parts[0].sources, *(np.concatenate([getattr(p, f) for p in parts])
                                       for f in ("track_ids", "starts", "vectors", "active")))


@torch.no_grad()
def embed_segments(model: torch.nn.Module, dump: Dump, table: SegmentTable, batch_size: int = 8,
                   device: str | torch.device = "cpu", rows: np.ndarray | None = None) -> EmbeddingSet:
    """Embed segments ``rows`` of ``table`` (all by default) with ``model`` in eval mode."""
    model = model.to(device).eval()
    rows = np.arange(len(table)) if rows is None else np.asarray(rows)
    source_index = [dump.sources.index(name) for name in model.sources]
    vectors = []
    for begin in range(0, len(rows), batch_size):
        batch = rows[begin:begin + batch_size]
        audio = np.stack([dump.audio[:, dump.offsets[table.track[i]] + table.start[i]:
                                     dump.offsets[table.track[i]] + table.start[i] + table.length]
                          for i in batch])
        stems = torch.from_numpy(audio).to(device).float() / INT16_SCALE
        inputs = stems if getattr(model, "takes_stems", False) else stems.sum(dim=1)
        vectors.append(model.embed(inputs).float().cpu().numpy())
    dim = getattr(model, "embedding_dim", 0)
    return EmbeddingSet(
        sources=tuple(model.sources),
        track_ids=np.array([dump.track_ids[table.track[i]] for i in rows]),
        starts=table.start[rows].astype(np.int64),
        vectors=np.concatenate(vectors) if vectors else np.zeros((0, len(source_index), dim), np.float32),
        active=table.active[rows][:, source_index])

"""A track's embeddings on disk: per-window vectors with start times, and the pooled track vector.

One ``.npz`` per track (what ``inmsrl embed-files`` writes and ``inmsrl index`` reads)::

    vectors  float32 (windows, sources, dim)   one embedding per instrument per window
    starts   float64 (windows,)                window start times in seconds
    pooled   float32 (sources, dim)            mean over the windows: one vector per instrument
    meta     JSON: track id, audio path, duration, sources, model name and digest, window, hop,
             and the fingerprint of what it was computed from (model, settings, audio file)

A file is written under a temporary name and renamed, so a killed job never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SUFFIX = ".npz"


class EmbeddingFileError(ValueError):
    """An embedding file that is missing, damaged or does not fit the others; names the file."""


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (a model file's identity: the same weights give the same digest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def audio_fingerprint(path: str | Path, model_digest: str, window: float, hop: float,
                      dtype: str = "float32") -> str:
    """What a track's embeddings depend on: the model, the windowing, the precision of the arithmetic
    and the audio file (size, mtime)."""
    stat = os.stat(path)
    text = f"{model_digest}|{window!r}|{hop!r}|{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if dtype != "float32":  # (float32 fingerprints are those of files embedded before the option)
        text += f"|{dtype}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class TrackEmbedding:
    """The embeddings of one track (or query) and where they came from."""

    track_id: str
    sources: tuple[str, ...]
    vectors: np.ndarray   # (windows, sources, dim)
    starts: np.ndarray    # (windows,) seconds
    duration: float       # seconds of audio
    path: str = ""        # the audio file ("" for an array)
    meta: dict[str, Any] = field(default_factory=dict)  # model, model_digest, window, hop, fingerprint

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.starts = np.asarray(self.starts, dtype=np.float64)
        if self.vectors.ndim != 3 or self.vectors.shape[1] != len(self.sources) or \
                len(self.starts) != len(self.vectors) or not len(self.vectors):
            raise EmbeddingFileError(f"track {self.track_id!r}: vectors must be (windows ≥ 1, "
                                     f"{len(self.sources)} sources, dim) with one start per window, got "
                                     f"{self.vectors.shape} "
                                     f"and {self.starts.shape}")

    @property
    def pooled(self) -> np.ndarray:
        """One vector per instrument for the whole track: the mean over its windows."""
        return self.vectors.mean(axis=0)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "track_id": self.track_id, "sources": list(self.sources),
                "duration": self.duration, "path": self.path}
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
        try:
            np.savez(tmp, vectors=self.vectors, starts=self.starts, pooled=self.pooled,
                     meta=np.array(json.dumps(meta)))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path) -> TrackEmbedding:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                vectors, starts = data["vectors"], data["starts"]
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
            raise EmbeddingFileError(f"{path} is not a readable track embedding file: {err}") from err
        try:
            track_id, sources = meta.pop("track_id"), tuple(meta.pop("sources"))
            duration, audio = float(meta.pop("duration")), str(meta.pop("path"))
        except KeyError as err:
            raise EmbeddingFileError(f"{path}: metadata lacks {err}") from err
        return cls(track_id, sources, vectors, starts, duration, audio, meta)


def output_path(out_dir: str | Path, track_id: str) -> Path:
    """Where the embeddings of ``track_id`` go under ``out_dir`` (the id's folders are kept)."""
    return Path(out_dir) / f"{track_id}{SUFFIX}"


def find_embedding_files(paths: list[str | Path]) -> list[Path]:
    """The embedding files named, and those under named folders (recursive), sorted."""
    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += sorted(p for p in given.rglob(f"*{SUFFIX}") if not p.name.startswith("."))
        elif given.is_file():
            found.append(given)
        else:
            raise EmbeddingFileError(f"{given}: no such embedding file or folder")
    return found

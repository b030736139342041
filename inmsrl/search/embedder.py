"""Embed any audio with a trained model: files of any format and rate, or arrays, in windows.

``Embedder.from_pretrained(path)`` loads a packed model file, a ``final.pt`` or an experiment directory
(:mod:`inmsrl.models.pretrained`), refuses models that cannot embed a mixture (a Clean model needs clean
stems; a separator has no embedding), and embeds audio in ``window``-second windows every ``hop``
seconds, ``batch_size`` windows at a time, streaming the file so memory stays bounded whatever its
length. The result is a :class:`~inmsrl.search.embedding_file.TrackEmbedding`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from inmsrl.audio.stream import Window, array_windows, stream_windows
from inmsrl.models.pretrained import Pretrained, load_pretrained
from inmsrl.models.unet import fold_batch_norms
from inmsrl.search.embedding_file import TrackEmbedding, audio_fingerprint, file_digest

if TYPE_CHECKING:
    from inmsrl.search.index import Index

WINDOW_SECONDS = 10.0  # the MES segments of the paper's evaluation
HOP_SECONDS = 5.0
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: the first GPU if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Embedder:
    """A trained embedding model ready to embed audio windows of a user's music."""

    def __init__(self, pretrained: Pretrained, device: str | torch.device = "auto", batch_size: int = 8,
                 window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS, dtype: str = "float32"):
        """``dtype``: the precision of the arithmetic. ``bfloat16`` (autocast) is about twice as fast on a
        CPU with bfloat16 matrix units (``bench/search.py`` measures it) and a usual choice on GPUs; its
        vectors differ from float32's by rounding. ``float16`` is for GPUs only."""
        if window <= 0 or hop <= 0:
            raise ValueError(f"window and hop must be positive seconds, got {window} and {hop}")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.pretrained = pretrained
        self.device = pick_device(device) if isinstance(device, str) else device
        if dtype not in DTYPES or (dtype == "float16" and self.device.type != "cuda"):
            raise ValueError(f"dtype must be float32 or bfloat16 (or float16 on a GPU), got {dtype!r} on "
                             f"{self.device}")
        self.dtype = dtype
        # channels_last: what stage 8 embeds with, faster on every device (bench/embed_throughput.py);
        # BatchNorms folded into the convolutions: the same vectors in less time (this model only infers).
        self.model = fold_batch_norms(pretrained.require_mixture_embedder().eval()).to(
            self.device, memory_format=torch.channels_last)
        self.batch_size, self.window, self.hop = batch_size, window, hop
        self.model_digest = file_digest(pretrained.path)

    @classmethod
    def from_pretrained(cls, path: str | Path, **options) -> Embedder:
        """The model of a packed file, ``final.pt`` or experiment directory (options: see ``__init__``)."""
        return cls(load_pretrained(path), **options)

    @property
    def sources(self) -> tuple[str, ...]:
        """The instruments embedded, in the order of the vectors' second axis."""
        return tuple(self.model.sources)

    @property
    def sample_rate(self) -> int:
        return self.pretrained.card.sample_rate

    @property
    def name(self) -> str:
        return self.pretrained.card.name

    @property
    def window_samples(self) -> int:
        return round(self.window * self.sample_rate)

    @property
    def hop_samples(self) -> int:
        return round(self.hop * self.sample_rate)

    def model_info(self) -> dict[str, object]:
        """What an index records of the model its vectors come from."""
        return {"model": self.name, "model_digest": self.model_digest,
                "model_path": str(self.pretrained.path), "window": self.window, "hop": self.hop,
                "sample_rate": self.sample_rate, "dtype": self.dtype}

    def fingerprint(self, path: str | Path) -> str:
        """What this embedder's vectors of the audio file ``path`` depend on (to skip what is up to date)."""
        return audio_fingerprint(path, self.model_digest, self.window, self.hop, self.dtype)

    @torch.inference_mode()
    def _embed_batch(self, batch: list[np.ndarray]) -> np.ndarray:
        audio = torch.from_numpy(np.stack(batch)).to(self.device)
        with torch.autocast(self.device.type, dtype=DTYPES[self.dtype], enabled=self.dtype != "float32"):
            return self.model.embed(audio).float().cpu().numpy()

    def embed_windows(self, windows: Iterable[Window]) -> tuple[np.ndarray, np.ndarray, float]:
        """``(vectors (windows, sources, dim), starts (windows,), seconds of audio)``, in batches."""
        vectors, starts, batch, end = [], [], [], 0.0
        for item in windows:
            batch.append(item.samples)
            starts.append(item.start)
            end = max(end, item.end)
            if len(batch) == self.batch_size:
                vectors.append(self._embed_batch(batch))
                batch = []
        if batch:
            vectors.append(self._embed_batch(batch))
        return np.concatenate(vectors), np.asarray(starts), end

    def embed_file(self, path: str | Path, track_id: str | None = None) -> TrackEmbedding:
        """The embeddings of an audio file (any format soundfile or ffmpeg decodes, any rate/channels)."""
        path = Path(path)
        fingerprint = self.fingerprint(path)
        vectors, starts, duration = self.embed_windows(
            stream_windows(path, self.sample_rate, self.window_samples, self.hop_samples))
        return TrackEmbedding(track_id or path.name, self.sources, vectors, starts, duration,
                              str(path.resolve()), {**self.model_info(), "fingerprint": fingerprint})

    def embed_array(self, audio: np.ndarray, sample_rate: int, track_id: str = "array") -> TrackEmbedding:
        """The embeddings of a signal ``(samples,)`` or ``(channels, samples)`` at ``sample_rate``."""
        windows = array_windows(audio, sample_rate, self.sample_rate, self.window_samples, self.hop_samples)
        vectors, starts, duration = self.embed_windows(windows)
        return TrackEmbedding(track_id, self.sources, vectors, starts, duration, "", self.model_info())



def index_embedder(index: Index, model: str | Path | None = None, device: str = "auto") -> Embedder:
    """An embedder for queries of ``index``: its model (or ``model``, which must be the same weights)
    with its windowing, so query vectors compare with the indexed ones."""
    from inmsrl.search.index import SearchIndexError

    model_path = model or index.model.get("model_path")
    if not model_path:
        raise SearchIndexError("the index records no model: give --model to embed audio queries")
    embedder = Embedder.from_pretrained(model_path, device=device,
                                        window=index.model.get("window", WINDOW_SECONDS),
                                        hop=index.model.get("hop", HOP_SECONDS),
                                        dtype=index.model.get("dtype", "float32"))
    if index.model.get("model_digest") and embedder.model_digest != index.model["model_digest"]:
        raise SearchIndexError(f"{model_path} is not the model the index was built with "
                               f"({index.model.get('model_path')}): its vectors would not be comparable")
    return embedder

"""Separation quality (SDR, paper §4.4.1) of a separator, with museval's BSS Eval v4.

A track is separated in chunks (the U-Net sees bounded inputs, as in training), each chunk's
estimated magnitudes are given the mixture's phase and inverted, and museval scores every source over
1 s frames. A track's score is the median over its frames (frames where the reference is silent are
undefined, NaN, and skipped); the set's score is the median over tracks. The unprocessed mixture,
scored the same way, is the reference row every separator must beat.
"""

from __future__ import annotations

from collections.abc import Sequence

import museval
import numpy as np
import torch

from inmsrl.data.dump import Dump
from inmsrl.models.separator import SourceSeparator


@torch.no_grad()
def separate(separator: SourceSeparator, mixture: np.ndarray, chunk_samples: int,
             device: str | torch.device = "cpu") -> np.ndarray:
    """Waveform estimates ``(len(separator.sources), samples)`` of a mono ``mixture``."""
    separator = separator.to(device).eval()
    stft = separator.spectrogram
    window = torch.hann_window(stft.n_fft, device=device)
    estimates = np.zeros((len(separator.sources), len(mixture)), dtype=np.float32)
    for begin in range(0, len(mixture), chunk_samples):
        chunk = torch.from_numpy(np.ascontiguousarray(mixture[begin:begin + chunk_samples])).to(device)
        spec = torch.stft(chunk, stft.n_fft, stft.hop_length, window=window, center=True,
                          return_complex=True)
        magnitudes = separator.separate_magnitude(spec.abs()[None]).magnitudes[0]
        complex_estimates = magnitudes * torch.exp(1j * spec.angle())
        waves = torch.istft(complex_estimates, stft.n_fft, stft.hop_length, window=window, center=True,
                            length=len(chunk))
        estimates[:, begin:begin + len(chunk)] = waves.cpu().numpy()
    return estimates


def frame_median_sdr(references: np.ndarray, estimates: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per source, the median SDR over 1 s frames (NaN where every frame is undefined)."""
    sdr, _, _, _ = museval.evaluate(references[..., None], estimates[..., None], win=sample_rate,
                                    hop=sample_rate)
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in sdr])


def sdr_scores(separator: SourceSeparator, dump: Dump, tracks: Sequence[int] | None = None,
               chunk_seconds: float = 10.0, device: str | torch.device = "cpu"
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Median-over-tracks SDR per source of ``separator`` and of the unprocessed mixture."""
    tracks = range(dump.num_tracks) if tracks is None else tracks
    rows = [dump.sources.index(name) for name in separator.sources]
    model_scores, mixture_scores = [], []
    for t in tracks:
        stems = dump.segment(t, 0, int(dump.lengths[t]))
        mixture = stems.sum(axis=0)
        references = stems[rows]
        estimates = separate(separator, mixture, int(chunk_seconds * dump.sample_rate), device)
        model_scores.append(frame_median_sdr(references, estimates, dump.sample_rate))
        mixture_scores.append(frame_median_sdr(references, np.tile(mixture, (len(rows), 1)),
                                               dump.sample_rate))

    def summary(scores: list[np.ndarray]) -> dict[str, float]:
        table = np.array(scores)
        with np.errstate(all="ignore"):
            return {name: float(np.nanmedian(table[:, i])) for i, name in enumerate(separator.sources)}

    return summary(model_scores), summary(mixture_scores)

"""Separation quality (SDR, paper §4.4.1, Table 4) of any separating model, with museval's BSS Eval v4.

A model separates when it has a separation part: the stage-3 separators, Cascade and Cascade-FT
(their separators), Direct-Reconst (its reconstruction decoders). A track is separated in chunks (the
U-Nets see bounded inputs, as in training), each chunk's estimated magnitudes get the mixture's phase
and are inverted, and museval scores every source over 1 s frames. A track's score is the median over
its frames (frames where the reference is silent are undefined, NaN, and skipped); the set's score is
the median over tracks. The unprocessed mixture, scored the same way, is the reference row every
separator must beat. museval is slow, so tracks are split over parallel jobs (:func:`sdr_per_track`
on a share of the tracks; :func:`median_over_tracks` merges).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import museval
import numpy as np
import torch

from inmsrl.data.dump import Dump
from inmsrl.models.separator import SourceSeparator


@dataclass(frozen=True)
class Separating:
    """What SDR scoring needs of a model: its separated sources, its STFT and magnitudes → estimates."""

    sources: tuple[str, ...]
    n_fft: int
    hop_length: int
    module: torch.nn.Module
    magnitudes: Callable[[torch.Tensor], torch.Tensor]  # (batch, bins, frames) → (batch, S, bins, frames)


def separating_part(model: torch.nn.Module) -> Separating:
    """The separation part of ``model``; a ValueError for a model that does not separate."""
    if isinstance(model, SourceSeparator):
        return Separating(model.sources, model.spectrogram.n_fft, model.spectrogram.hop_length, model,
                          lambda mag: model.separate_magnitude(mag).magnitudes)
    separator = getattr(model, "separator", None)
    if isinstance(separator, SourceSeparator):
        return separating_part(separator)
    if hasattr(model, "decoders") and hasattr(model, "decode"):  # Direct-Reconst
        def reconstruct(mag: torch.Tensor) -> torch.Tensor:
            features = model.encode(mag)
            return torch.stack([model.decode(features, mag, k).magnitude for k in range(len(model.sources))],
                               dim=1)

        return Separating(tuple(model.sources), model.spectrogram.n_fft, model.spectrogram.hop_length, model,
                          reconstruct)
    raise ValueError(f"{type(model).__name__} has no separation part (separators or reconstruction "
                     f"decoders) to score with SDR")


def resynthesise(magnitudes: torch.Tensor, mixture: torch.Tensor, n_fft: int, hop_length: int
                 ) -> torch.Tensor:
    """Waveforms ``(batch, S, samples)`` of separated ``magnitudes`` with the ``mixture``'s phase."""
    window = torch.hann_window(n_fft, device=mixture.device)
    spec = torch.stft(mixture, n_fft, hop_length, window=window, center=True, return_complex=True)
    complex_estimates = magnitudes * torch.exp(1j * spec.angle()).unsqueeze(1)
    batch, sources = magnitudes.shape[:2]
    waves = torch.istft(complex_estimates.reshape(batch * sources, *complex_estimates.shape[2:]), n_fft,
                        hop_length, window=window, center=True, length=mixture.shape[-1])
    return waves.reshape(batch, sources, -1)


@torch.no_grad()
def separate(model: torch.nn.Module | Separating, mixture: np.ndarray, chunk_samples: int,
             device: str | torch.device = "cpu") -> np.ndarray:
    """Waveform estimates ``(len(sources), samples)`` of a mono ``mixture``."""
    part = model if isinstance(model, Separating) else separating_part(model)
    part.module.to(device).eval()
    window = torch.hann_window(part.n_fft, device=device)
    estimates = np.zeros((len(part.sources), len(mixture)), dtype=np.float32)
    for begin in range(0, len(mixture), chunk_samples):
        chunk = torch.from_numpy(np.ascontiguousarray(mixture[begin:begin + chunk_samples])).to(device)[None]
        spec = torch.stft(chunk, part.n_fft, part.hop_length, window=window, center=True, return_complex=True)
        waves = resynthesise(part.magnitudes(spec.abs()), chunk, part.n_fft, part.hop_length)
        estimates[:, begin:begin + chunk.shape[-1]] = waves[0].float().cpu().numpy()
    return estimates


def frame_median_sdr(references: np.ndarray, estimates: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per source, the median SDR over 1 s frames; NaN for a source silent in the whole track (museval
    cannot score an all-zero reference) or whose every frame is undefined."""
    result = np.full(len(references), np.nan)
    audible = np.flatnonzero(np.abs(references).max(axis=1) > 0)
    if len(audible) == 0:
        return result
    sdr, _, _, _ = museval.evaluate(references[audible, :, None], estimates[audible, :, None],
                                    win=sample_rate, hop=sample_rate)
    with np.errstate(all="ignore"):
        result[audible] = [np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in sdr]
    return result


def sdr_per_track(model: torch.nn.Module | None, dump: Dump, tracks: Sequence[int] | None = None,
                  sources: Sequence[str] | None = None, chunk_seconds: float = 10.0,
                  device: str | torch.device = "cpu", max_seconds: float | None = None
                  ) -> dict[str, dict[str, float]]:
    """``{track_id: {source: frame-median SDR}}`` of ``model``'s estimates, or of the unprocessed
    mixture as the estimate of every source in ``sources`` (all the dump's) when ``model`` is None;
    with ``max_seconds``, of each track's first ``max_seconds`` only (museval is slow)."""
    part = None if model is None else separating_part(model)
    names = tuple(part.sources if part else (sources or dump.sources))
    rows = [dump.sources.index(name) for name in names]
    result = {}
    for t in range(dump.num_tracks) if tracks is None else tracks:
        length = int(dump.lengths[t])
        if max_seconds is not None:
            length = min(length, round(max_seconds * dump.sample_rate))
        stems = dump.segment(t, 0, length)
        mixture = stems.sum(axis=0)
        estimates = (np.tile(mixture, (len(rows), 1)) if part is None
                     else separate(part, mixture, int(chunk_seconds * dump.sample_rate), device))
        scores = frame_median_sdr(stems[rows], estimates, dump.sample_rate)
        result[dump.track_ids[t]] = {name: float(v) for name, v in zip(names, scores, strict=True)}
    return result


def median_over_tracks(per_track: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per source, the median over tracks of the per-track scores (NaN tracks skipped)."""
    sources = list(dict.fromkeys(name for scores in per_track.values() for name in scores))
    result = {}
    for name in sources:
        values = np.array([scores.get(name, np.nan) for scores in per_track.values()], dtype=float)
        result[name] = float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
    return result


def sdr_scores(separator: torch.nn.Module, dump: Dump, tracks: Sequence[int] | None = None,
               chunk_seconds: float = 10.0, device: str | torch.device = "cpu"
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Median-over-tracks SDR per source of ``separator`` and of the unprocessed mixture."""
    part = separating_part(separator)
    model = median_over_tracks(sdr_per_track(separator, dump, tracks, None, chunk_seconds, device))
    mixture = median_over_tracks(sdr_per_track(None, dump, tracks, part.sources, chunk_seconds, device))
    return model, mixture

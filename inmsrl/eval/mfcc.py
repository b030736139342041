"""The non-learned baseline of every table: MFCC statistics per source (the classical approach).

Each source is described by the mean and the covariance (upper triangle) of its MFCCs over the item —
the timbre model of classical music-similarity work that the paper cites. It has the embedding-model
interface, so every metric scores it like a trained model:

* ``MfccStatistics(all_sources, sources)`` reads the clean stems (the baseline of Clean);
* ``MfccStatistics(all_sources, sources, separator)`` reads the separator's estimates of the mixture,
  resynthesised with the mixture's phase (the baseline of Cascade, with the stage-3 separators).

Nothing is trained; distances are Euclidean on the raw statistics. The analysis keeps the paper's
time-frequency resolution at any sample rate: a window of 2048 samples and a hop of 512 at 44.1 kHz,
scaled with the rate (1024 and 256 at 22.05 kHz).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchaudio
from torch import nn

from inmsrl.audio.features import HOP_LENGTH, N_FFT, SAMPLE_RATE
from inmsrl.eval.sdr import resynthesise
from inmsrl.models.base import EmbeddingModel, check_waveform
from inmsrl.models.separator import SourceSeparator

N_MFCC = 20
MFCC_MELS = 128


def mfcc_statistics_dim(n_mfcc: int) -> int:
    """Length of mean + upper-triangular covariance of ``n_mfcc`` coefficients."""
    return n_mfcc + n_mfcc * (n_mfcc + 1) // 2


class MfccStatistics(EmbeddingModel):
    """Waveforms → per source ``[mean(MFCC), triu(cov(MFCC))]`` of ``mfcc_statistics_dim`` values."""

    def __init__(self, all_sources: Sequence[str], sources: Sequence[str],
                 separator: SourceSeparator | None = None, n_mfcc: int = N_MFCC,
                 sample_rate: int = SAMPLE_RATE, n_fft: int | None = None, hop_length: int | None = None,
                 n_mels: int = MFCC_MELS):
        super().__init__()
        scale = sample_rate / SAMPLE_RATE
        n_fft = n_fft or max(64, round(N_FFT * scale))
        hop_length = hop_length or max(16, round(HOP_LENGTH * scale))
        self.all_sources = tuple(all_sources)
        self.sources = tuple(sources)
        unknown = [name for name in self.sources if name not in self.all_sources]
        if unknown:
            raise ValueError(f"MFCC baseline: source(s) {', '.join(unknown)} not in "
                             f"{', '.join(self.all_sources)}")
        if separator is not None and tuple(separator.sources) != self.sources:
            raise ValueError(f"MFCC baseline: the separator separates {', '.join(separator.sources)}, "
                             f"not {', '.join(self.sources)}")
        self.separator = separator
        self.takes_stems = separator is None
        self.embedding_dim = mfcc_statistics_dim(n_mfcc)
        self.mfcc = torchaudio.transforms.MFCC(sample_rate, n_mfcc, melkwargs={
            "n_fft": n_fft, "hop_length": hop_length, "n_mels": n_mels, "center": True})
        self._triu = torch.triu_indices(n_mfcc, n_mfcc)

    def source_waveforms(self, x: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        """``(batch, len(sources), samples)``: the clean stems, or the separator's estimates."""
        sources = self.source_subset(sources)
        if self.separator is None:
            check_waveform(x, 3, "the MFCC baseline's input (the stems)")
            return x[:, [self.all_sources.index(name) for name in sources]]
        check_waveform(x, 2, "the MFCC baseline's input (the mixture)")
        stft = self.separator.spectrogram
        magnitudes = self.separator(x, sources).magnitudes
        return resynthesise(magnitudes, x, stft.n_fft, stft.hop_length)

    def embed(self, x: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        coefficients = self.mfcc(self.source_waveforms(x, sources).float())  # (batch, S, n_mfcc, frames)
        mean = coefficients.mean(dim=-1)
        centred = coefficients - mean.unsqueeze(-1)
        covariance = centred @ centred.transpose(-1, -2) / max(coefficients.shape[-1] - 1, 1)
        return torch.cat([mean, covariance[..., self._triu[0], self._triu[1]]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    def extractor_modules(self) -> list[nn.Module]:
        return []

    def separation_modules(self) -> list[nn.Module]:
        return [self.separator] if self.separator is not None else []

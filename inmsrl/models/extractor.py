"""The instrument-dependent music similarity feature extractor (§3.1.1, §4.3).

Log-mel (259 Slaney bands, in dB and standardised per example by default; see
:class:`~inmsrl.audio.features.LogMel`) → U-Net encoder whose last layer has no BatchNorm/activation →
mean over time → flatten channels × frequency → Linear → 128. The head (:class:`EmbeddingHead`) is shared with
Direct, which applies it to the encoder of the mixture magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inmsrl.audio.features import MEL_BANDS, N_FFT, SAMPLE_RATE, LogMel
from inmsrl.models.unet import LEAKY_SLOPE, PAPER_CHANNELS, UNetEncoder, encoded_size

EMBEDDING_DIM = 128


class EmbeddingHead(nn.Module):
    """Feature map ``(batch, channels, freq, time)`` → mean over time → flatten → Linear → ``out_dim``.

    Averaging over time makes the embedding independent of the segment length (3, 5, 10 s alike);
    the frequency axis is kept, so ``freq`` is fixed by the input's bins and the encoder depth.
    """

    def __init__(self, channels: int, freq: int, out_dim: int):
        super().__init__()
        self.channels = channels
        self.freq = freq
        self.linear = nn.Linear(channels * freq, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[1:3] != (self.channels, self.freq):
            raise ValueError(f"the embedding head expects (batch, {self.channels}, {self.freq}, time), "
                             f"got {tuple(features.shape)}")
        return self.linear(features.mean(dim=-1).flatten(1))


class FeatureExtractor(nn.Module):
    """STFT magnitude ``(batch, bins, frames)`` of one instrument → embedding ``(batch, embedding_dim)``.

    It takes the magnitude (not the log-mel) so that a separator's output feeds it and E2E fine-tuning
    back-propagates through the log-mel into the separator.
    """

    def __init__(self, channels: Sequence[int] = PAPER_CHANNELS, mel_bands: int = MEL_BANDS,
                 embedding_dim: int = EMBEDDING_DIM, negative_slope: float = LEAKY_SLOPE,
                 n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, mel_scale: str = "db",
                 standardize: bool = True):
        super().__init__()
        self.log_mel = LogMel(mel_bands, n_fft, sample_rate, mel_scale, standardize)
        self.encoder = UNetEncoder(1, channels, plain_last=True, negative_slope=negative_slope)
        depth = len(self.encoder.channels)
        self.head = EmbeddingHead(self.encoder.channels[-1], encoded_size(mel_bands, depth), embedding_dim)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        if magnitude.dim() != 3:
            raise ValueError(f"a feature extractor takes a magnitude (batch, bins, frames), "
                             f"got {tuple(magnitude.shape)}")
        return self.head(self.encoder(self.log_mel(magnitude).unsqueeze(1))[-1])


class ExtractorSet(nn.ModuleDict):
    """One :class:`FeatureExtractor` per source, keyed by name; magnitudes in, one vector per source out."""

    def __init__(self, sources: Sequence[str], **extractor_options):
        try:
            super().__init__({name: FeatureExtractor(**extractor_options) for name in sources})
        except KeyError as err:
            raise ValueError(f"a source name cannot be used as a module key: {err}") from err
        self.sources = tuple(sources)

    def embed(self, magnitudes: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        """``(batch, len(sources), bins, frames)`` → ``(batch, len(sources), embedding_dim)``; ``sources``
        (all of them by default) names the extractor of each magnitude."""
        sources = self.sources if sources is None else tuple(sources)
        if magnitudes.dim() != 4 or magnitudes.shape[1] != len(sources):
            raise ValueError(f"expected magnitudes (batch, {len(sources)} sources, bins, frames), "
                             f"got {tuple(magnitudes.shape)}")
        return torch.stack([self[name](magnitudes[:, k]) for k, name in enumerate(sources)], dim=1)

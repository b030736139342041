"""Direct and Direct-Reconst (§2.2, §3.2): one disentangled extractor on the mixture magnitude.

:class:`Direct`: U-Net encoder (channels 16, 32, 64, 128, 256, S × 128; last layer without
BatchNorm/activation) on the mixture STFT magnitude (linear as in the authors' code, or in dB and
standardised, :class:`~inmsrl.audio.features.MagnitudeScale`), mean over time, flatten, Linear → S × 128 (640
for the five Slakh sources). Block k of the embedding (components ``128k … 128k + 127``) belongs to
the k-th source of the data directory; :class:`~inmsrl.models.conditioning.Conditioning1D` masks the
others before the triplet loss.

:class:`DirectReconst` adds one U-Net decoder per source, fed the shared encoder's skips and the
bottleneck masked to that source's channel block (Conditioning3D, so the bottleneck has S × block
channels); each decoder predicts a mask for the mixture magnitude, trained with L1 to the source's
magnitude (multi-task with the triplet loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from inmsrl.audio.features import HOP_LENGTH, N_FFT, MagnitudeScale, Spectrogram
from inmsrl.models.base import EmbeddingModel, by_route, check_source_names, check_waveform, module_dict
from inmsrl.models.conditioning import Conditioning1D, Conditioning3D
from inmsrl.models.extractor import EMBEDDING_DIM, EmbeddingHead
from inmsrl.models.separator import MaskedMagnitude
from inmsrl.models.unet import DROPOUT, LEAKY_SLOPE, UNetDecoder, UNetEncoder, encoded_size

ENCODER_CHANNELS = (16, 32, 64, 128, 256)  # the bottleneck (last) width is added: num_sources × block


def direct_channels(num_sources: int, block_size: int = EMBEDDING_DIM,
                    channels: Sequence[int] = ENCODER_CHANNELS) -> tuple[int, ...]:
    """The paper's Direct encoder widths for ``num_sources``: (16, 32, 64, 128, 256, 640) for five."""
    return (*channels, num_sources * block_size)


class EncoderFeatures(NamedTuple):
    """The shared encoder's outputs: skips (shallowest first) and the bottleneck."""

    skips: list[torch.Tensor]
    bottleneck: torch.Tensor  # (batch, channels[-1], freq, time); 640 × 17 × 5 for 3 s


class DirectOutput(NamedTuple):
    embedding: torch.Tensor  # (batch, num_sources * embedding_dim), unmasked
    features: EncoderFeatures
    mixture_magnitude: torch.Tensor  # (batch, bins, frames)


class Direct(EmbeddingModel):
    """Mixture ``(batch, samples)`` → disentangled embedding ``(batch, S × embedding_dim)``.

    ``sources`` is the data directory's full source list; every source gets a block.
    """

    def __init__(self, sources: Sequence[str], channels: Sequence[int] | None = None,
                 embedding_dim: int = EMBEDDING_DIM, negative_slope: float = LEAKY_SLOPE,
                 n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, input_scale: str = "linear",
                 standardize: bool = False):
        super().__init__()
        self.sources = check_source_names(sources)
        self.all_sources = self.sources
        self.embedding_dim = embedding_dim
        if channels is None:
            channels = direct_channels(len(self.sources), embedding_dim)
        channels = tuple(channels)
        self.spectrogram = Spectrogram(n_fft, hop_length)
        self.input_scale = MagnitudeScale(input_scale, standardize)
        self.encoder = UNetEncoder(1, channels, plain_last=True, negative_slope=negative_slope)
        self.head = EmbeddingHead(channels[-1], encoded_size(self.spectrogram.num_bins, len(channels)),
                                  len(self.sources) * embedding_dim)
        self.conditioning = Conditioning1D(len(self.sources), embedding_dim)

    def encode(self, mixture_magnitude: torch.Tensor) -> EncoderFeatures:
        *skips, bottleneck = self.encoder(self.input_scale(mixture_magnitude).unsqueeze(1))
        return EncoderFeatures(skips, bottleneck)

    def forward(self, mixture: torch.Tensor) -> DirectOutput:
        check_waveform(mixture, 2, "the mixture")
        magnitude = self.spectrogram(mixture)
        features = self.encode(magnitude)
        return DirectOutput(self.head(features.bottleneck), features, magnitude)

    def embed(self, mixture: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        # Direct.forward, not self(): Direct-Reconst's forward would also run every decoder. The encoder
        # is shared, so a subset of sources only picks blocks of the one embedding.
        columns = [self.sources.index(name) for name in self.source_subset(sources)]
        embedding = Direct.forward(self, mixture).embedding
        return embedding.view(embedding.shape[0], len(self.sources), self.embedding_dim)[:, columns]

    def condition(self, embedding: torch.Tensor, source: int | torch.Tensor) -> torch.Tensor:
        """Conditioning1D: keep the block of ``source`` (an index, or one per example) and zero the rest."""
        return self.conditioning(embedding, source)

    def extractor_modules(self) -> list[nn.Module]:
        return [self.encoder, self.head]

    def separation_modules(self) -> list[nn.Module]:
        return []


class DirectReconstOutput(NamedTuple):
    embedding: torch.Tensor  # (batch, num_sources * embedding_dim), unmasked
    reconstructions: torch.Tensor  # (batch, sources, bins, frames): mask × mixture magnitude
    masks: torch.Tensor  # (batch, sources, bins, frames)
    mixture_magnitude: torch.Tensor  # (batch, bins, frames)


class DirectReconst(Direct):
    """Direct plus one reconstruction decoder per source behind Conditioning3D (§3.2.1).

    The bottleneck's channels split into ``len(sources)`` blocks of ``channels[-1] / len(sources)``;
    decoder k sees only block k. A pre-trained :class:`Direct` checkpoint loads into it with
    ``strict=False`` (same encoder and head names).
    """

    separates = True

    def __init__(self, sources: Sequence[str], channels: Sequence[int] | None = None,
                 embedding_dim: int = EMBEDDING_DIM, dropout: float = DROPOUT,
                 negative_slope: float = LEAKY_SLOPE, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                 decoder_activation: str = "leaky_relu", dropout_kind: str = "channel",
                 input_scale: str = "linear", standardize: bool = False):
        super().__init__(sources, channels, embedding_dim, negative_slope, n_fft, hop_length, input_scale,
                         standardize)
        channels = self.encoder.channels
        if channels[-1] % len(self.sources):
            raise ValueError(f"Direct-Reconst's bottleneck width {channels[-1]} must split into "
                             f"{len(self.sources)} equal source blocks (Conditioning3D)")
        self.conditioning3d = Conditioning3D(len(self.sources), channels[-1] // len(self.sources))
        self.decoders = module_dict({name: UNetDecoder(channels, out_channels=1, dropout=dropout,
                                                   activation=decoder_activation, dropout_kind=dropout_kind,
                                                   negative_slope=negative_slope)
                                     for name in self.sources})
        self.mask_activation = nn.Sigmoid()

    def decode(self, features: EncoderFeatures, mixture_magnitude: torch.Tensor,
               source: int) -> MaskedMagnitude:
        """Source ``source``'s reconstruction from the shared encoder's features (Conditioning3D first)."""
        bottleneck = self.conditioning3d(features.bottleneck, source)
        logits = self.decoders[self.sources[source]](bottleneck, features.skips, mixture_magnitude.shape[-2:])
        mask = self.mask_activation(logits).squeeze(1)
        return MaskedMagnitude(mask * mixture_magnitude, mask)

    def forward(self, mixture: torch.Tensor, route: torch.Tensor | None = None) -> DirectReconstOutput:
        """Embedding and every source's reconstruction; with ``route`` (one source index per item) only
        that source's decoder runs on the item, and ``reconstructions``/``masks`` are ``(batch, 1,
        bins, frames)`` (the authors' code trains each triplet's target decoder only)."""
        direct = super().forward(mixture)
        if route is not None:
            def path(k: int, rows: torch.Tensor) -> torch.Tensor:
                features = EncoderFeatures([skip[rows] for skip in direct.features.skips],
                                           direct.features.bottleneck[rows])
                output = self.decode(features, direct.mixture_magnitude[rows], k)
                return torch.stack([output.magnitude, output.mask], dim=1)

            routed = by_route(route, path)
            return DirectReconstOutput(direct.embedding, routed[:, :1], routed[:, 1:],
                                       direct.mixture_magnitude)
        outputs = [self.decode(direct.features, direct.mixture_magnitude, k)
                   for k in range(len(self.sources))]
        return DirectReconstOutput(direct.embedding,
                                   torch.stack([o.magnitude for o in outputs], dim=1),
                                   torch.stack([o.mask for o in outputs], dim=1),
                                   direct.mixture_magnitude)

    def target_magnitudes(self, stems: torch.Tensor) -> torch.Tensor:
        """Clean stems ``(batch, sources, samples)`` → the L1 targets ``(batch, sources, bins, frames)``."""
        check_waveform(stems, 3, "the target stems")
        if stems.shape[1] != len(self.sources):
            raise ValueError(f"expected one stem per source ({', '.join(self.sources)}), "
                             f"got {stems.shape[1]}")
        return self.spectrogram(stems)

    def separation_modules(self) -> list[nn.Module]:
        return [self.decoders]

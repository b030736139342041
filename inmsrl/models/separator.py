"""Music source separation (§3.1): one mask U-Net per instrument on the mixture magnitude.

:class:`Separator` is one instrument's U-Net (Jansson et al. 2017): it predicts a sigmoid mask and
returns mask × mixture magnitude, trained with L1 to the clean stem's magnitude. :class:`SourceSeparator`
holds one per source, takes waveforms and computes the STFT itself, so that training, SDR scoring and
the Cascade model all feed it audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from inmsrl.audio.features import HOP_LENGTH, N_FFT, MagnitudeScale, Spectrogram
from inmsrl.models.base import check_source_names, check_waveform, module_dict
from inmsrl.models.unet import DROPOUT, LEAKY_SLOPE, PAPER_CHANNELS, UNetDecoder, UNetEncoder


class MaskedMagnitude(NamedTuple):
    """A separated (or reconstructed) magnitude and the mask that produced it, same shapes."""

    magnitude: torch.Tensor
    mask: torch.Tensor


class Separator(nn.Module):
    """Mixture magnitude ``(batch, bins, frames)`` → the instrument's masked magnitude and its mask.

    The encoder reads the magnitude as ``input_scale`` says (linear by default; decibels, standardised
    per example, let a small network see the quiet harmonics that tell two instruments apart); the
    mask always multiplies the linear mixture magnitude.
    """

    def __init__(self, channels: Sequence[int] = PAPER_CHANNELS, dropout: float = DROPOUT,
                 negative_slope: float = LEAKY_SLOPE, decoder_activation: str = "leaky_relu",
                 dropout_kind: str = "channel", input_scale: str = "linear", standardize: bool = False):
        super().__init__()
        self.input_scale = MagnitudeScale(input_scale, standardize)
        self.encoder = UNetEncoder(1, channels, negative_slope=negative_slope)
        self.decoder = UNetDecoder(channels, out_channels=1, dropout=dropout, activation=decoder_activation,
                                   dropout_kind=dropout_kind, negative_slope=negative_slope)
        self.mask_activation = nn.Sigmoid()

    def forward(self, magnitude: torch.Tensor) -> MaskedMagnitude:
        if magnitude.dim() != 3:
            raise ValueError(f"a separator takes a magnitude (batch, bins, frames), "
                             f"got {tuple(magnitude.shape)}")
        x = magnitude.unsqueeze(1)
        *skips, bottleneck = self.encoder(self.input_scale(magnitude).unsqueeze(1))
        mask = self.mask_activation(self.decoder(bottleneck, skips, x.shape[-2:])).squeeze(1)
        return MaskedMagnitude(mask * magnitude, mask)


class Separation(NamedTuple):
    """What :class:`SourceSeparator` returns; source axis in the order of its ``sources``."""

    mixture_magnitude: torch.Tensor  # (batch, bins, frames)
    magnitudes: torch.Tensor  # (batch, sources, bins, frames)
    masks: torch.Tensor  # (batch, sources, bins, frames)


class SourceSeparator(nn.Module):
    """One :class:`Separator` per source; mixture waveform ``(batch, samples)`` in.

    ``sources`` picks which sources it separates (any subset of the data directory's, in any order);
    the separators sit in ``self.separators[name]`` so that a model trained for one set of sources
    loads into another by name (:meth:`load_separators`).
    """

    def __init__(self, sources: Sequence[str], channels: Sequence[int] = PAPER_CHANNELS,
                 dropout: float = DROPOUT, negative_slope: float = LEAKY_SLOPE,
                 n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, decoder_activation: str = "leaky_relu",
                 dropout_kind: str = "channel", input_scale: str = "linear", standardize: bool = False):
        super().__init__()
        self.sources = check_source_names(sources)
        self.spectrogram = Spectrogram(n_fft, hop_length)
        self.separators = module_dict({name: Separator(channels, dropout, negative_slope, decoder_activation,
                                                       dropout_kind, input_scale, standardize)
                                       for name in self.sources})

    def magnitude(self, waveform: torch.Tensor) -> torch.Tensor:
        """STFT magnitude of any waveform ``(..., samples)``: the L1 targets come from here too."""
        return self.spectrogram(waveform)

    def separate_magnitude(self, mixture_magnitude: torch.Tensor, sources: Sequence[str] | None = None
                           ) -> Separation:
        """Separate ``sources`` (all of them by default, in that order) from a mixture magnitude."""
        outputs = [self.separators[name](mixture_magnitude) for name in (sources or self.sources)]
        return Separation(mixture_magnitude,
                          torch.stack([o.magnitude for o in outputs], dim=1),
                          torch.stack([o.mask for o in outputs], dim=1))

    def forward(self, mixture: torch.Tensor, sources: Sequence[str] | None = None) -> Separation:
        check_waveform(mixture, 2, "the mixture")
        return self.separate_magnitude(self.magnitude(mixture), sources)

    def load_separators(self, other: SourceSeparator) -> None:
        """Copy the weights of every source this model shares with ``other`` (e.g. MSS → Cascade)."""
        missing = [name for name in self.sources if name not in other.separators]
        if missing:
            raise ValueError(f"no separator for {', '.join(missing)} in the model to load from "
                             f"(it has {', '.join(other.sources)})")
        for name in self.sources:
            self.separators[name].load_state_dict(other.separators[name].state_dict())

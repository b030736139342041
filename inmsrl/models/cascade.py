"""Clean and Cascade (§2.1, §3.1): one similarity feature extractor per instrument.

- :class:`Clean` feeds each extractor its clean stem (an upper bound: clean stems are rarely
  available).
- :class:`Cascade` feeds each extractor the output of that instrument's separator on the mixture.
  Cascade-FT (E2E fine-tuning, §3.1.2) is the same model with every parameter trained and an
  auxiliary L1 loss on the separated magnitudes, which :meth:`Cascade.forward` returns.

Both may embed only a subset of the data directory's sources (the paper's Slakh models leave
residuals out): ``sources`` lists the embedded ones, ``all_sources`` the directory's.
Training passes a ``route`` (one embedded-source index per item) so that every item runs through its
own instrument's separator and extractor only (:func:`~inmsrl.models.base.by_route`): the paper trains
one run per instrument, and the other paths' outputs would be thrown away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from inmsrl.audio.features import HOP_LENGTH, MEL_BANDS, N_FFT, SAMPLE_RATE, Spectrogram
from inmsrl.models.base import EmbeddingModel, RoutedOutput, by_route, check_source_names, check_waveform
from inmsrl.models.extractor import EMBEDDING_DIM, ExtractorSet
from inmsrl.models.separator import Separation, SourceSeparator
from inmsrl.models.unet import DROPOUT, LEAKY_SLOPE, PAPER_CHANNELS


def embedded_sources(all_sources: Sequence[str], sources: Sequence[str] | None) -> tuple[str, ...]:
    """The embedded subset (all of them when ``None``), checked against the directory's sources."""
    all_sources = check_source_names(all_sources, "all_sources")
    if sources is None:
        return all_sources
    sources = check_source_names(sources, "embedded sources")
    unknown = [name for name in sources if name not in all_sources]
    if unknown:
        raise ValueError(f"embedded source(s) {', '.join(unknown)} not among the data directory's "
                         f"sources ({', '.join(all_sources)})")
    return sources


class Clean(EmbeddingModel):
    """Clean stems ``(batch, len(all_sources), samples)`` → ``(batch, len(sources), embedding_dim)``."""

    takes_stems = True

    def __init__(self, all_sources: Sequence[str], sources: Sequence[str] | None = None,
                 extractor_channels: Sequence[int] = PAPER_CHANNELS, mel_bands: int = MEL_BANDS,
                 embedding_dim: int = EMBEDDING_DIM, negative_slope: float = LEAKY_SLOPE,
                 n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, sample_rate: int = SAMPLE_RATE,
                 mel_scale: str = "db", standardize: bool = True):
        super().__init__()
        self.sources = embedded_sources(all_sources, sources)
        self.all_sources = tuple(all_sources)
        self.embedding_dim = embedding_dim
        self.spectrogram = Spectrogram(n_fft, hop_length)
        self.extractors = ExtractorSet(self.sources, channels=extractor_channels, mel_bands=mel_bands,
                                       embedding_dim=embedding_dim, negative_slope=negative_slope,
                                       n_fft=n_fft, sample_rate=sample_rate, mel_scale=mel_scale,
                                       standardize=standardize)
        self._stem_index = [self.all_sources.index(name) for name in self.sources]

    def forward(self, stems: torch.Tensor, sources: Sequence[str] | None = None,
                route: torch.Tensor | None = None) -> torch.Tensor | RoutedOutput:
        """``(batch, len(sources), embedding_dim)``; with ``route`` (one index into ``self.sources``
        per item), each item's vector of that source only, as a :class:`RoutedOutput`."""
        check_waveform(stems, 3, "Clean's input (the stems)")
        if stems.shape[1] != len(self.all_sources):
            raise ValueError(f"Clean takes one stem per data-directory source "
                             f"({', '.join(self.all_sources)}), got {stems.shape[1]} stems")
        if route is not None:
            def path(k: int, rows: torch.Tensor) -> torch.Tensor:
                name = self.sources[k]
                return self.extractors[name](self.spectrogram(stems[rows, self._stem_index[k]]))

            return RoutedOutput(by_route(route, path), None)
        sources = self.source_subset(sources)
        stem_index = [self.all_sources.index(name) for name in sources]
        return self.extractors.embed(self.spectrogram(stems[:, stem_index]), sources)

    def embed(self, stems: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        return self(stems, sources)

    def extractor_modules(self) -> list[nn.Module]:
        return [self.extractors]

    def separation_modules(self) -> list[nn.Module]:
        return []


class CascadeOutput(NamedTuple):
    embeddings: torch.Tensor  # (batch, sources, embedding_dim)
    separation: Separation  # separated magnitudes and masks, for the auxiliary L1 loss


class Cascade(EmbeddingModel):
    """Mixture ``(batch, samples)`` → separators → extractors → ``(batch, len(sources), embedding_dim)``."""

    separates = True

    def __init__(self, all_sources: Sequence[str], sources: Sequence[str] | None = None,
                 separator_channels: Sequence[int] = PAPER_CHANNELS,
                 extractor_channels: Sequence[int] = PAPER_CHANNELS, dropout: float = DROPOUT,
                 mel_bands: int = MEL_BANDS, embedding_dim: int = EMBEDDING_DIM,
                 negative_slope: float = LEAKY_SLOPE, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                 sample_rate: int = SAMPLE_RATE, mel_scale: str = "db", standardize: bool = True,
                 decoder_activation: str = "leaky_relu", dropout_kind: str = "channel",
                 separator_input: dict | None = None):
        super().__init__()
        self.sources = embedded_sources(all_sources, sources)
        self.all_sources = tuple(all_sources)
        self.embedding_dim = embedding_dim
        self.separator = SourceSeparator(self.sources, separator_channels, dropout, negative_slope,
                                         n_fft, hop_length, decoder_activation, dropout_kind,
                                         **(separator_input or {}))
        self.extractors = ExtractorSet(self.sources, channels=extractor_channels, mel_bands=mel_bands,
                                       embedding_dim=embedding_dim, negative_slope=negative_slope,
                                       n_fft=n_fft, sample_rate=sample_rate, mel_scale=mel_scale,
                                       standardize=standardize)
        self._stem_index = [self.all_sources.index(name) for name in self.sources]

    def forward(self, mixture: torch.Tensor, route: torch.Tensor | None = None
                ) -> CascadeOutput | RoutedOutput:
        """Every separator and extractor on every item; with ``route`` (one index into ``self.sources``
        per item), only the item's own instrument's, as a :class:`RoutedOutput` with its separated
        magnitude (for the auxiliary L1 loss)."""
        if route is None:
            separation = self.separator(mixture)
            return CascadeOutput(self.extractors.embed(separation.magnitudes), separation)
        check_waveform(mixture, 2, "the mixture")
        magnitude = self.separator.magnitude(mixture)
        separated = by_route(route, lambda k, rows: self.separator.separators[self.sources[k]](
            magnitude[rows]).magnitude)
        embeddings = by_route(route, lambda k, rows: self.extractors[self.sources[k]](separated[rows]))
        return RoutedOutput(embeddings, separated)

    def embed(self, mixture: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        sources = self.source_subset(sources)
        return self.extractors.embed(self.separator(mixture, sources).magnitudes, sources)

    def target_magnitudes(self, stems: torch.Tensor) -> torch.Tensor:
        """Clean stems ``(batch, len(all_sources), samples)`` → the auxiliary L1 loss's targets.

        Shape ``(batch, len(sources), bins, frames)``, in the order of the separated magnitudes.
        """
        check_waveform(stems, 3, "the target stems")
        if stems.shape[1] != len(self.all_sources):
            raise ValueError(f"expected one stem per data-directory source ({', '.join(self.all_sources)}), "
                             f"got {stems.shape[1]} stems")
        return self.separator.magnitude(stems[:, self._stem_index])

    def routed_target_magnitudes(self, stems: torch.Tensor, route: torch.Tensor) -> torch.Tensor:
        """``(batch, bins, frames)``: each item's clean magnitude of its own instrument (``route``)."""
        check_waveform(stems, 3, "the target stems")
        index = torch.as_tensor(self._stem_index, device=stems.device)[route]
        return self.separator.magnitude(stems[torch.arange(len(stems), device=stems.device), index])

    def extractor_modules(self) -> list[nn.Module]:
        return [self.extractors]

    def separation_modules(self) -> list[nn.Module]:
        return [self.separator]

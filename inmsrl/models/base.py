"""The interface every embedding model shares, so scoring, search and training treat them alike.

An embedding model (Clean, Cascade/Cascade-FT, Direct, Direct-Reconst) takes waveforms and returns one
``embedding_dim`` vector per embedded source from :meth:`EmbeddingModel.embed`. Its parameters split
into two groups: the similarity feature extractors (the only part PAFT trains, §3.3) and the
separation part (separators, reconstruction decoders), which E2E-FT trains as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import torch
from torch import nn


def check_source_names(sources: Sequence[str], what: str = "sources") -> tuple[str, ...]:
    """Source names as a tuple; they key ``ModuleDict``s, so they must be unique, non-empty, dot-free."""
    names = tuple(sources)
    if not names:
        raise ValueError(f"{what} is empty: a model needs at least one source")
    for name in names:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"bad source name {name!r} in {what}: need a non-empty string without '.'")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate source name(s) in {what}: {', '.join(duplicates)}")
    return names


def module_dict(modules: dict[str, nn.Module]) -> nn.ModuleDict:
    """An ``nn.ModuleDict`` keyed by source name, with a clear error for names that clash with it."""
    try:
        return nn.ModuleDict(modules)
    except KeyError as err:
        raise ValueError(f"a source name cannot be used as a module key: {err}") from err


def check_waveform(x: torch.Tensor, dims: int, what: str) -> None:
    """Refuse the wrong input layout early, naming the layout expected."""
    layout = {2: "(batch, samples)", 3: "(batch, sources, samples)"}[dims]
    if x.dim() != dims:
        raise ValueError(f"{what} must be a waveform {layout}, got shape {tuple(x.shape)}")


class RoutedOutput(NamedTuple):
    """A per-instrument model's output when each item goes through one instrument's path only."""

    embeddings: torch.Tensor  # (batch, embedding_dim): each item's vector of its own instrument
    separated: torch.Tensor | None  # (batch, bins, frames): its separated magnitude (None for Clean)


def by_route(route: torch.Tensor, compute: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run each item through its own path: ``compute(k, rows)`` gives the outputs of the items ``rows``
    (a 1-D index tensor) whose ``route`` is ``k``; the results come back in item order.

    Training a per-instrument model on a batch that mixes instruments this way costs what training
    each instrument separately costs, not that times the number of instruments (every path on every
    item), and each path's BatchNorm sees only its own instrument's examples, as in a run of its own.
    """
    if route.dim() != 1:
        raise ValueError(f"route must be one path index per item (1-D), got shape {tuple(route.shape)}")
    output: torch.Tensor | None = None
    for k in torch.unique(route).tolist():
        rows = torch.nonzero(route == k).squeeze(1)
        part = compute(int(k), rows)
        if output is None:
            output = part.new_zeros((len(route), *part.shape[1:]))
        output = output.index_copy(0, rows, part.to(output.dtype))
    if output is None:
        raise ValueError("an empty batch has no route")
    return output


class EmbeddingModel(nn.Module):
    """Base of the embedding models: ``sources``, ``embedding_dim``, ``embed`` and parameter groups.

    ``sources`` are the embedded sources, in the order of ``embed``'s second axis; ``all_sources``
    is the data directory's source list the model was built for.
    """

    sources: tuple[str, ...]
    all_sources: tuple[str, ...]
    embedding_dim: int
    # What ``embed`` takes: the mixture (batch, samples), or the clean stems (batch, sources, samples).
    takes_stems: bool = False
    # Whether it has a separation part that estimates each source (separators, reconstruction decoders).
    separates: bool = False

    def embed(self, x: torch.Tensor, sources: Sequence[str] | None = None) -> torch.Tensor:
        """Waveforms → ``(batch, len(sources), self.embedding_dim)``, ``sources`` being all embedded
        sources by default. A subset computes only what those sources need (a Cascade runs only their
        separators), which is what evaluation items built for one instrument ask for."""
        raise NotImplementedError

    def source_subset(self, sources: Sequence[str] | None) -> tuple[str, ...]:
        """``sources`` checked against the embedded ones (all of them for ``None``)."""
        if sources is None:
            return self.sources
        unknown = [name for name in sources if name not in self.sources]
        if unknown:
            raise ValueError(f"{type(self).__name__} does not embed {', '.join(map(repr, unknown))} "
                             f"(it embeds {', '.join(self.sources)})")
        return tuple(sources)

    def extractor_modules(self) -> list[nn.Module]:
        """The similarity feature extractor(s): what PAFT trains."""
        raise NotImplementedError

    def separation_modules(self) -> list[nn.Module]:
        """Separators or reconstruction decoders (empty where the model has none)."""
        raise NotImplementedError

    def extractor_parameters(self) -> Iterator[nn.Parameter]:
        for module in self.extractor_modules():
            yield from module.parameters()

    def separation_parameters(self) -> Iterator[nn.Parameter]:
        for module in self.separation_modules():
            yield from module.parameters()

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"extractor": [...], "separation": [...]}``, together every parameter exactly once."""
        return {"extractor": list(self.extractor_parameters()),
                "separation": list(self.separation_parameters())}


def num_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Parameter count of ``module`` (for logs and reports)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

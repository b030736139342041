"""Fixed block masks that tie each source to its own slice of a disentangled feature (§2.2, §3.2.3).

The disentangled feature of Direct has one block of ``block_size`` components per source, in the
order of the data directory's ``sources`` file (components 0–127 belong to its first source).
Conditioning keeps the target source's block and zeroes the rest; the masks are constants (*authors'
code*: not learned), so they are non-persistent buffers that follow the module across devices but
stay out of checkpoints.

- :class:`Conditioning1D` masks the embedding vector ``(batch, S * block)`` (Direct, §2.2).
- :class:`Conditioning3D` masks the channels of a feature map ``(batch, S * block, freq, time)``:
  the bottleneck that feeds each Direct-Reconst decoder (§3.2.3).
"""

from __future__ import annotations

import torch
from torch import nn


def block_masks(num_sources: int, block_size: int) -> torch.Tensor:
    """``(num_sources, num_sources * block_size)`` one-hot block masks: row k keeps block k."""
    if num_sources < 1 or block_size < 1:
        raise ValueError(f"block masks need num_sources >= 1 and block_size >= 1, "
                         f"got {num_sources} and {block_size}")
    return torch.eye(num_sources).repeat_interleave(block_size, dim=1)


def _as_index(source: int | torch.Tensor, batch: int, num_sources: int, device: torch.device) -> torch.Tensor:
    """A per-example source index ``(batch,)`` from an int (same target for all) or a tensor."""
    index = torch.as_tensor(source, device=device, dtype=torch.long)
    if index.dim() == 0:
        index = index.expand(batch)
    if index.shape != (batch,):
        raise ValueError(f"source index must be an int or have shape ({batch},), got {tuple(index.shape)}")
    # Checked on the CPU only: on an accelerator the check would stall the stream every step.
    if index.device.type == "cpu" and bool(((index < 0) | (index >= num_sources)).any()):
        raise ValueError(f"source index out of range 0..{num_sources - 1}: {index.tolist()}")
    return index


class _BlockConditioning(nn.Module):
    def __init__(self, num_sources: int, block_size: int):
        super().__init__()
        self.num_sources = num_sources
        self.block_size = block_size
        self.register_buffer("masks", block_masks(num_sources, block_size), persistent=False)

    def extra_repr(self) -> str:
        return f"num_sources={self.num_sources}, block_size={self.block_size}"

    def _mask_for(self, features: torch.Tensor, source: int | torch.Tensor) -> torch.Tensor:
        if features.shape[1] != self.masks.shape[1]:
            raise ValueError(f"expected {self.masks.shape[1]} = {self.num_sources} × {self.block_size} "
                             f"features on axis 1, got shape {tuple(features.shape)}")
        index = _as_index(source, features.shape[0], self.num_sources, features.device)
        return self.masks[index].to(features.dtype)


class Conditioning1D(_BlockConditioning):
    """Embedding ``(batch, S * block)`` → the same with every block but the target's zeroed."""

    def forward(self, embedding: torch.Tensor, source: int | torch.Tensor) -> torch.Tensor:
        return embedding * self._mask_for(embedding, source)


class Conditioning3D(_BlockConditioning):
    """Feature map ``(batch, S * block, freq, time)`` → the target's channel block, others zeroed."""

    def forward(self, features: torch.Tensor, source: int | torch.Tensor) -> torch.Tensor:
        return features * self._mask_for(features, source)[:, :, None, None]

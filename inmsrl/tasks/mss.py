"""Stage 3: one music-source-separation U-Net per instrument (paper §3.1; Jansson et al. 2017).

The separator of the one source in ``model.target_sources`` (``model.type: separator``) sees the mixture
magnitude of a random 3 s segment in which that source is active and is trained with L1 between its
masked magnitude and the clean stem's magnitude. Validation uses a fixed set of 10 s segments of the
validation dump. The recipe runs one such training per instrument (``model.target_sources=[piano]``);
the model config names the source, so the experiment's ``final.pt`` rebuilds itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from inmsrl.data.triplets import SegmentDataset
from inmsrl.models.config import build_model
from inmsrl.tasks.common import (
    DATASET_OPTIONS,
    DatasetTask,
    TaskConfigError,
    open_set,
    option,
    source_indices,
    stems_of,
    unwrap,
)
from inmsrl.train.task import RunContext, register_task


@register_task("mss")
class MSSTask(DatasetTask):
    """Config ``task``: train_dump, valid_dump, segment_seconds (3), valid_segment_seconds (10),
    train_examples, valid_examples, batch_size, num_workers; ``model``: type separator, one target source."""

    options = DATASET_OPTIONS

    def __init__(self, config: dict[str, Any], context: RunContext):
        self.config, self.context = config, context
        model_config = config.get("model", {})
        targets = model_config.get("target_sources") or []
        if model_config.get("type") != "separator" or len(targets) != 1:
            raise TaskConfigError("the mss task trains one separator: set model.type: separator and "
                                  f"model.target_sources to one source (got {model_config!r})")
        self.source = targets[0]
        self.train = open_set(option(config, "train_dump"), option(config, "segment_seconds", 3.0), config)
        self.valid = open_set(option(config, "valid_dump"), option(config, "valid_segment_seconds", 10.0),
                              config)
        (self.index,) = source_indices(self.train.dump, [self.source])
        self.batch_size = option(config, "batch_size", 64)
        self.workers = option(config, "num_workers", 0)
        self.train_set = SegmentDataset(self.train.dump, self.train.table, option(config, "train_examples"),
                                        seed=context.seed, active_source=self.index)
        self.valid_set = SegmentDataset(self.valid.dump, self.valid.table, option(config, "valid_examples"),
                                        seed=context.seed, fresh_every_epoch=False, active_source=self.index)

    def build_model(self) -> nn.Module:
        return build_model(self.config["model"], self.train.dump.sources)

    def losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return separation_losses(model, stems_of(batch), self.index)


def separation_losses(model: nn.Module, stems: torch.Tensor, source: int) -> dict[str, torch.Tensor]:
    """L1 between the separated and the clean magnitude of ``source``; ``stems`` (B, S, L) float."""
    separation = model(stems.sum(dim=1))
    target = unwrap(model).magnitude(stems[:, source])
    return {"loss": (separation.magnitudes[:, 0].float() - target).abs().mean()}

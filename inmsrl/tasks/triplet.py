"""Stages 4 and 5: triplet training of the Clean and Cascade extractors, and E2E-FT (Cascade-FT).

A batch holds triplets (anchor, positive, negative) of stems and a target source per triplet
(:mod:`inmsrl.data.triplets`: S4, or pseudo-musical pieces with basic and additional triplets). Clean
embeds each role's clean stems, Cascade the role's mixture (the sum of its stems); the loss is the
triplet loss (Eq. 1) on the target source's embedding. Configs choose the variant:

* stage 4, Clean: ``model.type: clean``; Cascade: ``model.type: cascade`` with ``task.separators``
  pointing at the stage-3 experiments, which stay frozen (kept in eval mode, not optimised);
* the "w/o pseudo-musical-pieces" ablation: ``task.triplets: s4``;
* stage 5, E2E-FT: ``task.init`` = the stage-4 Cascade, ``task.train_separators: true`` and
  ``task.separation_weight`` > 0 — everything trains on the triplet loss plus the auxiliary L1
  separation loss over the anchor, positive and negative (paper §3.1.2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from inmsrl.data.triplets import KINDS, TripletDataset
from inmsrl.models.config import build_model
from inmsrl.tasks.common import (
    DATASET_OPTIONS,
    DatasetTask,
    TaskConfigError,
    load_separators_into,
    load_trained,
    open_set,
    option,
    source_indices,
    stems_of,
    triplet_loss,
    unwrap,
)
from inmsrl.train.options import Option
from inmsrl.train.task import RunContext, register_task


@register_task("triplet")
class TripletTask(DatasetTask):
    """Config ``task``: train_dump, valid_dump, triplets (pseudo | s4), fresh_every_epoch, margin,
    segment_seconds (3), valid_segment_seconds (10), train_examples, valid_examples, batch_size,
    num_workers, separators (``exp/mss/{source}`` or null), init (an experiment dir or null),
    train_separators, separation_weight."""

    options = (*DATASET_OPTIONS,
               Option("triplets", str, "pseudo", choices=KINDS), Option("fresh_every_epoch", bool, False),
               Option("margin", float, 0.2, minimum=0), Option("separators", str, None),
               Option("init", str, None), Option("train_separators", bool, False),
               Option("separation_weight", float, 0.0, minimum=0))

    def __init__(self, config: dict[str, Any], context: RunContext):
        self.config, self.context = config, context
        self.train = open_set(option(config, "train_dump"), option(config, "segment_seconds", 3.0))
        self.valid = open_set(option(config, "valid_dump"), option(config, "valid_segment_seconds", 10.0))
        self.sources = list(self.train.dump.sources)
        self.margin = float(option(config, "margin", 0.2))
        self.batch_size = option(config, "batch_size", 64)
        self.workers = option(config, "num_workers", 0)
        self.train_separators = bool(option(config, "train_separators", False))
        self.separation_weight = float(option(config, "separation_weight", 0.0))
        model_config = config.get("model", {})
        targets = model_config.get("target_sources") or self.sources
        self.targets = source_indices(self.train.dump, list(targets))
        kind = option(config, "triplets", "pseudo")
        self.train_set = TripletDataset(self.train.dump, self.train.table, kind, self.targets,
                                        option(config, "train_examples"), seed=context.seed,
                                        fresh_every_epoch=bool(option(config, "fresh_every_epoch", False)))
        self.valid_set = TripletDataset(self.valid.dump, self.valid.table, kind, self.targets,
                                        option(config, "valid_examples"), seed=context.seed + 1)
        # Row of the model's embedding for each dump source index (−1: not embedded).
        self.embedding_row = torch.full((len(self.sources),), -1, dtype=torch.long)
        for row, index in enumerate(self.targets):
            self.embedding_row[index] = row

    def build_model(self) -> nn.Module:
        model = build_model(self.config.get("model", {}), self.sources)
        separators = option(self.config, "separators", None)
        if separators:
            if not hasattr(model, "separator"):
                raise TaskConfigError("task.separators is set but the model has no separators")
            load_separators_into(model.separator, str(separators), self.sources)
        init = option(self.config, "init", None)
        if init:
            model.load_state_dict(load_trained(Path(init), self.sources).state_dict())
        if self.separation_weight > 0 and not hasattr(model, "target_magnitudes"):
            raise TaskConfigError("task.separation_weight > 0 needs a model with separators (cascade)")
        return model

    def trainable_parameters(self, model: nn.Module):
        inner = unwrap(model)
        return inner.parameters() if self.train_separators else inner.extractor_parameters()

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        if not self.train_separators:  # frozen separators keep their batch-norm statistics
            for module in unwrap(model).separation_modules():
                module.eval()

    def losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rows = self.embedding_row.to(batch["target"].device)[batch["target"]]
        return triplet_losses(model, stems_of(batch), rows, self.margin, self.separation_weight)


def triplet_losses(model: nn.Module, stems: torch.Tensor, rows: torch.Tensor, margin: float,
                   separation_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Losses of a batch of triplets: ``stems`` (B, 3, S, L) float, ``rows`` (B,) the target's row in
    the model's embeddings; the auxiliary L1 separation loss over all three roles if weighted."""
    batch_size = stems.shape[0]
    flat = stems.flatten(0, 1)                    # (B·3, S, L)
    inner = unwrap(model)
    output = model(flat) if inner.takes_stems else model(flat.sum(dim=1))
    embeddings = output if isinstance(output, torch.Tensor) else output.embeddings
    embeddings = embeddings.float().view(batch_size, 3, *embeddings.shape[1:])
    chosen = embeddings[torch.arange(batch_size, device=embeddings.device), :, rows]  # (B, 3, D)
    triplet = triplet_loss(chosen[:, 0], chosen[:, 1], chosen[:, 2], margin)
    losses = {"loss": triplet, "triplet": triplet.detach()}
    if separation_weight > 0:
        target = inner.target_magnitudes(flat)
        separation = (output.separation.magnitudes.float() - target).abs().mean()
        losses["separation"] = separation.detach()
        losses["loss"] = triplet + separation_weight * separation
    return losses

"""Stages 4 and 5: triplet training of the Clean and Cascade extractors, and E2E-FT (Cascade-FT).

A batch holds groups of triplets (anchor, positive, negative) of stems, one triplet per target
instrument in each group (:mod:`inmsrl.data.triplets`: S4 or pseudo-musical pieces), so that a batch
of ``batch_size`` groups trains every instrument's extractor on ``batch_size`` triplets — the paper
trains one run per instrument with 64 triplets per step, and the instruments' paths share nothing.
Each triplet runs through its own instrument's path only (Clean: its extractor on the clean stem;
Cascade: its separator on the mixture, the sum of the stems, then its extractor). The loss is the sum
over instruments of each instrument's mean triplet loss (Eq. 1), i.e. what separate runs optimise.
Configs choose the variant:

* stage 4, Clean: ``model.type: clean``; Cascade: ``model.type: cascade`` with ``task.separators``
  pointing at the stage-3 experiments, which stay frozen (kept in eval mode, not optimised);
* the "w/o pseudo-musical-pieces" ablation: ``task.triplets: s4``;
* stage 5, E2E-FT: ``task.init`` = the stage-4 Cascade, ``task.train_separators: true`` and
  ``task.separation_weight`` > 0 — everything trains on the triplet loss plus the auxiliary L1
  separation loss of each triplet's instrument over the anchor, positive and negative (paper §3.1.2);
  as in the authors' code the three roles' mean L1 losses are summed (``separation_loss: role_sum``;
  ``mean`` takes a third of that).
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
    triplet_terms,
    unwrap,
)
from inmsrl.train.options import Option
from inmsrl.train.task import RunContext, register_task

SEPARATION_LOSSES = ("role_sum", "mean")


@register_task("triplet")
class TripletTask(DatasetTask):
    """Config ``task``: train_dump, valid_dump, triplets (pseudo | s4), fresh_every_epoch, margin,
    segment_seconds (3), valid_segment_seconds (10), train_examples / valid_examples (triplets per
    instrument and epoch), batch_size (triplets per instrument and step), num_workers, separators
    (``exp/mss/{source}`` or null), init (an experiment dir or null), train_separators,
    separation_weight, separation_loss (role_sum | mean)."""

    options = (*DATASET_OPTIONS,
               Option("triplets", str, "pseudo", choices=KINDS), Option("fresh_every_epoch", bool, False),
               Option("margin", float, 0.2, minimum=0), Option("separators", str, None),
               Option("init", str, None), Option("train_separators", bool, False),
               Option("separation_weight", float, 0.0, minimum=0),
               Option("separation_loss", str, "role_sum", choices=SEPARATION_LOSSES))

    def __init__(self, config: dict[str, Any], context: RunContext):
        self.config, self.context = config, context
        self.train = open_set(option(config, "train_dump"), option(config, "segment_seconds", 3.0), config)
        self.valid = open_set(option(config, "valid_dump"), option(config, "valid_segment_seconds", 10.0),
                              config)
        self.sources = list(self.train.dump.sources)
        self.margin = float(option(config, "margin", 0.2))
        self.batch_size = option(config, "batch_size", 64)
        self.workers = option(config, "num_workers", 0)
        self.train_separators = bool(option(config, "train_separators", False))
        self.separation_weight = float(option(config, "separation_weight", 0.0))
        self.separation_loss = option(config, "separation_loss", "role_sum")
        model_config = config.get("model", {})
        self.embedded = list(model_config.get("target_sources") or self.sources)
        self.targets = source_indices(self.train.dump, self.embedded)
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
        if self.separation_weight > 0 and not hasattr(model, "routed_target_magnitudes"):
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
        stems = stems_of(batch).flatten(0, 1)                      # groups → (B·G, 3, S, L)
        rows = self.embedding_row.to(batch["target"].device)[batch["target"].flatten()]
        return triplet_losses(model, stems, rows, self.margin, self.separation_weight, self.separation_loss,
                              names=self.embedded, per_instrument=True)


def triplet_losses(model: nn.Module, stems: torch.Tensor, rows: torch.Tensor, margin: float,
                   separation_weight: float = 0.0, separation_loss: str = "role_sum",
                   names: list[str] | None = None, per_instrument: bool = False,
                   routed: bool = True) -> dict[str, torch.Tensor]:
    """Losses of a batch of triplets for a Clean or Cascade model.

    ``stems`` (B, 3, S, L) float; ``rows`` (B,) the row of each triplet's instrument in the model's
    embeddings. ``routed`` runs each triplet through its instrument's path only; otherwise every path
    runs on every item and the triplet's row is picked (what DDP needs when a batch may lack an
    instrument: every parameter must take part). ``per_instrument`` sums the instruments' mean losses
    (separate runs' objectives) instead of averaging over all triplets. With ``separation_weight``,
    the auxiliary L1 loss between each role's separated magnitude of the triplet's instrument and its
    clean magnitude is added: per role the mean over triplets, summed over the three roles
    (``role_sum``, the authors' code) or their mean (``mean``). ``names`` (the model's embedded sources)
    add per-instrument losses to the log.
    """
    batch_size = stems.shape[0]
    flat = stems.flatten(0, 1)                                    # (B·3, S, L)
    roles = rows.repeat_interleave(3)
    inner = unwrap(model)
    inputs = flat if inner.takes_stems else flat.sum(dim=1)
    if routed:
        output = model(inputs, route=roles)
        vectors, separated = output.embeddings, output.separated
    else:
        output = model(inputs)
        embeddings = output if isinstance(output, torch.Tensor) else output.embeddings
        vectors = embeddings[torch.arange(len(roles), device=roles.device), roles]
        separated = (None if isinstance(output, torch.Tensor) else
                     output.separation.magnitudes[torch.arange(len(roles), device=roles.device), roles])
    chosen = vectors.float().view(batch_size, 3, -1)
    per_triplet = triplet_terms(chosen[:, 0], chosen[:, 1], chosen[:, 2], margin)
    per_role_l1 = None
    if separation_weight > 0:
        target = inner.routed_target_magnitudes(flat, roles)
        per_role_l1 = (separated.float() - target).abs().mean(dim=(-2, -1)).view(batch_size, 3)
    scale = 3.0 if separation_loss == "role_sum" else 1.0
    groups = [torch.ones_like(rows, dtype=torch.bool)] if not per_instrument else [
        rows == k for k in torch.unique(rows).tolist()]
    triplet = sum(per_triplet[g].mean() for g in groups)
    losses = {"loss": triplet, "triplet": triplet.detach()}
    if per_role_l1 is not None:
        separation = sum(scale * per_role_l1[g].mean() for g in groups)
        losses["separation"] = separation.detach()
        losses["loss"] = triplet + separation_weight * separation
    if names is not None:
        for k in torch.unique(rows).tolist():
            losses[f"triplet_{names[k]}"] = per_triplet[rows == k].mean().detach()
    return losses

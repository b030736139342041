"""Stage 6: the Direct family — pre-training to Clean targets, then triplet (and reconstruction) training.

* ``direct_pretrain`` (paper §2.2, §3.2.2; docs/design.md §5, *authors' code*): the disentangled extractor
  (``model.type: direct``) sees the mixture of a random non-empty subset of a segment's sources (31
  subsets for five) and regresses, with MSE, the concatenation of the per-source embeddings of a
  trained, frozen Clean model (``task.clean``, an experiment dir); the block of a source outside the
  subset or silent in the segment is a zero vector; as in the authors' code the concatenation is
  L2-normalised (``normalize_targets``). Clean is frozen and each source of a segment is embedded
  alone, so the targets of every (segment, source) of the segment tables are computed once, before
  training, and looked up. The Clean model must embed every source of the data
  directory with Direct's per-source ``embedding_dim`` — the recipe trains ``clean_all`` (Clean over
  all sources, residuals included) for this, because stage 4's Clean leaves residuals out.
* ``direct_triplet``: the triplet loss (Eq. 1) on the embedding masked to the target source's block
  (Conditioning1D), from the pre-trained model (``task.init``). Configs choose the variant:
  *Direct* — fixed pseudo-musical-piece set (``fresh_every_epoch: false``); *Direct w/ DA* — fresh
  pieces every epoch (``true``); *Direct-Reconst* — ``model.type: direct_reconst`` with
  ``reconstruction_weight`` > 0: each role's mixture is also reconstructed by the decoder of the
  triplet's target source behind Conditioning3D, with L1 to its clean magnitude, the three roles'
  mean losses summed (multi-task, §3.2.2; the authors' code; ``reconstruction: all_sources`` averages
  every decoder's loss instead). A Direct checkpoint initialises Direct-Reconst's encoder and head;
  its decoders start fresh. Every item of a batch is a basic triplet with its additional triplet
  (positive and negative swapped, another target): ``batch_size`` pairs are 2 × ``batch_size``
  triplets per step, ``train_examples`` pairs per epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from inmsrl.data.triplets import KINDS, SubsetMixtureDataset, TripletDataset
from inmsrl.models.config import build_model
from inmsrl.models.direct import Direct, DirectReconst
from inmsrl.models.extractor import EMBEDDING_DIM
from inmsrl.tasks.common import (
    DATASET_OPTIONS,
    DatasetTask,
    DumpedSet,
    TaskConfigError,
    load_trained,
    open_set,
    option,
    stems_of,
    triplet_loss,
    unwrap,
)
from inmsrl.train.options import Option
from inmsrl.train.task import RunContext, register_task


def _model_type(config: dict[str, Any], allowed: tuple[str, ...], task: str) -> str:
    kind = config.get("model", {}).get("type")
    if kind not in allowed:
        raise TaskConfigError(f"training config: task {task} trains model.type {' or '.join(allowed)}, "
                              f"got {kind!r}")
    return kind


MIXTURES = ("segment", "pseudo")
RECONSTRUCTIONS = ("target", "all_sources")


class _DirectTask(DatasetTask):
    """What both stage-6 tasks share: the dumps, the loaders and the model built for the dump's sources."""

    def __init__(self, config: dict[str, Any], context: RunContext):
        self.config, self.context = config, context
        self.train = open_set(option(config, "train_dump"), option(config, "segment_seconds", 3.0), config)
        self.valid = open_set(option(config, "valid_dump"), option(config, "valid_segment_seconds", 10.0),
                              config)
        if self.valid.dump.sources != self.train.dump.sources:
            raise TaskConfigError(f"{self.valid.dump.root} has sources {', '.join(self.valid.dump.sources)}, "
                                  f"{self.train.dump.root} has {', '.join(self.train.dump.sources)}")
        # Every source gets a block of the embedding, in the order of the data directory's sources.
        self.sources = list(self.train.dump.sources)
        self.batch_size = option(config, "batch_size", 64)
        self.workers = option(config, "num_workers", 0)

    train_set: Any
    valid_set: Any


@register_task("direct_pretrain")
class DirectPretrainTask(_DirectTask):
    """Config ``task``: train_dump, valid_dump, clean (the Clean experiment dir), normalize_targets
    (true), mixtures (segment: all sources of one segment, the authors' code | pseudo: each source
    from its own random segment), segment_seconds (3), valid_segment_seconds (10), train_examples,
    valid_examples, batch_size, num_workers; ``model.type: direct``."""

    options = (*DATASET_OPTIONS, Option("clean", str), Option("normalize_targets", bool, True),
               Option("mixtures", str, "segment", choices=MIXTURES))

    def __init__(self, config: dict[str, Any], context: RunContext):
        super().__init__(config, context)
        _model_type(config, ("direct",), "direct_pretrain")
        clean_dir = option(config, "clean")
        if not clean_dir:
            raise TaskConfigError("training config: task.clean must name the trained Clean experiment "
                                  "whose embeddings are the pre-training targets")
        self.clean = load_trained(Path(clean_dir), self.sources)
        dim = config["model"].get("embedding_dim", EMBEDDING_DIM)
        embedded = tuple(getattr(self.clean, "sources", ()))
        clean_dim = getattr(self.clean, "embedding_dim", None)
        uncovered = set(self.sources) - set(embedded)
        if not getattr(self.clean, "takes_stems", False) or uncovered or clean_dim != dim:
            raise TaskConfigError(
                f"task.clean={clean_dir}: the pre-training targets need a Clean model that embeds every "
                f"source ({', '.join(self.sources)}) in {dim} dimensions (model.embedding_dim); this one "
                f"embeds {', '.join(embedded) or 'nothing'} in {clean_dim} "
                "(train one with conf/clean_all.yaml)")
        self.normalize_targets = bool(option(config, "normalize_targets", True))
        mixtures = option(config, "mixtures", "segment")
        self.clean.requires_grad_(False)
        self.clean.to(context.device).eval()
        # Clean's embedding row of each block of Direct (the data directory's source order).
        self.clean_rows = [self.clean.sources.index(name) for name in self.sources]
        self.train_set = WithCleanTargets(
            SubsetMixtureDataset(self.train.dump, self.train.table, option(config, "train_examples"),
                                 seed=context.seed, pseudo=mixtures == "pseudo"),
            self.segment_targets(self.train))
        self.valid_set = WithCleanTargets(
            SubsetMixtureDataset(self.valid.dump, self.valid.table, option(config, "valid_examples"),
                                 seed=context.seed + 1, fresh_every_epoch=False, pseudo=mixtures == "pseudo"),
            self.segment_targets(self.valid))

    def build_model(self) -> nn.Module:
        return build_model(self.config["model"], self.sources)

    @torch.no_grad()
    def segment_targets(self, dumped: DumpedSet, batch_size: int = 32) -> torch.Tensor:
        """Clean's embedding of every source of every segment of ``dumped``: ``(segments, S, D)``, on
        the CPU (each source's extractor sees only its own stem, so a subset's targets are rows of it)."""
        table, rows = dumped.table, []
        device = next(self.clean.parameters()).device
        for begin in range(0, len(table), batch_size):
            segments = range(begin, min(begin + batch_size, len(table)))
            stems = torch.from_numpy(np.stack([dumped.dump.segment(int(table.track[i]), int(table.start[i]),
                                                                   table.length) for i in segments]))
            rows.append(self.clean(stems.to(device)).float()[:, self.clean_rows].cpu())
        return torch.cat(rows)

    def targets(self, embeddings: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """The concatenated Clean embeddings ``(B, S·D)`` of a batch's segments (``embeddings`` (B, S, D)),
        zero where not ``active``, scaled to unit length with ``normalize_targets``."""
        target = (embeddings.float() * active[:, :, None].to(torch.float32)).flatten(1)
        if self.normalize_targets:
            target = torch.nn.functional.normalize(target, dim=1)
        return target

    def losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stems = stems_of(batch)
        target = self.targets(batch["clean"], batch["active"])
        output = model(stems.sum(dim=1)).embedding.float()
        squared = (output - target).square().view(len(target), len(self.sources), -1)
        per_source = squared.mean(dim=(0, 2)).detach()
        return {"loss": squared.mean(),
                **{f"mse_{name}": per_source[k] for k, name in enumerate(self.sources)}}


@register_task("direct_triplet")
class DirectTripletTask(_DirectTask):
    """Config ``task``: train_dump, valid_dump, init (the pre-trained Direct experiment dir, or null),
    triplets (pseudo), fresh_every_epoch, margin (0.2), segment_seconds (3), valid_segment_seconds
    (10), train_examples / valid_examples (basic triplets, each with its additional one), batch_size
    (pairs per step), num_workers, triplet_weight (1), reconstruction_weight (0; > 0 needs
    ``model.type: direct_reconst``), reconstruction (target | all_sources)."""

    options = (*DATASET_OPTIONS, Option("init", str, None), Option("triplets", str, "pseudo", choices=KINDS),
               Option("fresh_every_epoch", bool, False), Option("margin", float, 0.2, minimum=0),
               Option("triplet_weight", float, 1.0, minimum=0),
               Option("reconstruction_weight", float, 0.0, minimum=0),
               Option("reconstruction", str, "target", choices=RECONSTRUCTIONS))

    def __init__(self, config: dict[str, Any], context: RunContext):
        super().__init__(config, context)
        kind = _model_type(config, ("direct", "direct_reconst"), "direct_triplet")
        self.margin = float(option(config, "margin", 0.2))
        self.triplet_weight = float(option(config, "triplet_weight", 1.0))
        self.reconstruction_weight = float(option(config, "reconstruction_weight", 0.0))
        if (kind == "direct_reconst") != (self.reconstruction_weight > 0):
            raise TaskConfigError(
                "training config: task.reconstruction_weight > 0 goes with model.type direct_reconst (its "
                f"decoders learn from nothing else), got type {kind} and weight {self.reconstruction_weight}")
        self.reconstruction = option(config, "reconstruction", "target")
        triplets = option(config, "triplets", "pseudo")
        if triplets != "pseudo":
            raise TaskConfigError(f"task.triplets: Direct trains on pseudo-musical pieces (basic and "
                                  f"additional triplets), got {triplets!r}")
        targets = list(range(len(self.sources)))
        self.train_set = TripletDataset(self.train.dump, self.train.table, triplets, targets,
                                        option(config, "train_examples"), seed=context.seed,
                                        fresh_every_epoch=bool(option(config, "fresh_every_epoch", False)),
                                        grouping="pair")
        self.valid_set = TripletDataset(self.valid.dump, self.valid.table, triplets, targets,
                                        option(config, "valid_examples"), seed=context.seed + 1,
                                        grouping="pair")

    def build_model(self) -> nn.Module:
        model = build_model(self.config["model"], self.sources)
        init = option(self.config, "init", None)
        if init:
            initialise_from(model, Path(init), self.sources)
        return model

    def losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return direct_triplet_losses(model, stems_of(batch).flatten(0, 1), batch["target"].flatten(),
                                     self.margin, self.triplet_weight, self.reconstruction_weight,
                                     self.reconstruction)


class WithCleanTargets(Dataset):
    """A subset-mixture dataset whose items also carry ``clean``: the Clean embedding (S, D) of each
    source in the segment it was cut from, looked up in ``embeddings`` (segments, S, D)."""

    def __init__(self, dataset: SubsetMixtureDataset, embeddings: torch.Tensor):
        self.dataset, self.embeddings = dataset, embeddings

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.dataset[index]
        rows = item["segments"]
        return {**item, "clean": self.embeddings[rows, torch.arange(len(rows))]}


def initialise_from(model: Direct, exp_dir: Path, sources: list[str]) -> None:
    """Load a trained Direct (or Direct-Reconst) into ``model``; only Direct-Reconst's decoders start new."""
    trained = load_trained(exp_dir, sources)
    if not isinstance(trained, Direct):
        raise TaskConfigError(f"task.init={exp_dir} holds a {type(trained).__name__}, not a Direct model")
    try:
        missing, unexpected = model.load_state_dict(trained.state_dict(), strict=False)
    except RuntimeError as err:  # shape mismatches: another embedding_dim or channel list
        raise TaskConfigError(f"task.init={exp_dir} does not fit this model config: {err}") from err
    fresh = [key for key in missing if not (isinstance(model, DirectReconst) and key.startswith("decoders."))]
    if fresh or unexpected:
        raise TaskConfigError(f"task.init={exp_dir} does not fit this model config: missing "
                              f"{', '.join(fresh) or 'nothing'}; "
                              f"unexpected {', '.join(unexpected) or 'nothing'}")


def direct_triplet_losses(model: nn.Module, stems: torch.Tensor, targets: torch.Tensor, margin: float,
                          triplet_weight: float = 1.0, reconstruction_weight: float = 0.0,
                          reconstruction: str = "target") -> dict[str, torch.Tensor]:
    """Losses of a batch of triplets for Direct/Direct-Reconst.

    ``stems`` (B, 3, S, L) float, ``targets`` (B,) the target source of each triplet (= its block).
    The triplet loss sees the embeddings masked to the target's block (Conditioning1D), averaged over
    the triplets. With a reconstruction weight, ``reconstruction`` "target": the L1 between the target
    source's decoder output and its clean magnitude, each role's mean summed over the three roles (the
    authors' code; only that decoder runs); "all_sources": every decoder's L1 averaged over sources
    and roles. Per-source L1 losses are logged as ``l1_<source>``.
    """
    batch_size = stems.shape[0]
    flat = stems.flatten(0, 1)                                            # (B·3, S, L)
    inner = unwrap(model)
    roles = targets.repeat_interleave(3)                                  # the target of each row of flat
    routed = reconstruction_weight > 0 and reconstruction == "target"
    output = model(flat.sum(dim=1), route=roles) if routed else model(flat.sum(dim=1))
    masked = inner.condition(output.embedding.float(), roles).view(batch_size, 3, -1)
    triplet = triplet_loss(masked[:, 0], masked[:, 1], masked[:, 2], margin)
    losses = {"loss": triplet_weight * triplet, "triplet": triplet.detach()}
    if reconstruction_weight > 0:
        if routed:
            target = inner.spectrogram(flat[torch.arange(len(roles), device=roles.device), roles])
            error = (output.reconstructions[:, 0].float() - target).abs().mean(dim=(-2, -1))
            loss = 3.0 * error.mean()
            for k, name in enumerate(inner.sources):
                if bool((roles == k).any()):
                    losses[f"l1_{name}"] = error[roles == k].mean().detach()
        else:
            clean = inner.target_magnitudes(flat)                         # (B·3, S, bins, frames)
            per_source = (output.reconstructions.float() - clean).abs().mean(dim=(0, 2, 3))
            loss = per_source.mean()
            losses.update({f"l1_{name}": per_source[k].detach() for k, name in enumerate(inner.sources)})
        losses["reconstruction"] = loss.detach()
        losses["loss"] = losses["loss"] + reconstruction_weight * loss
    return losses

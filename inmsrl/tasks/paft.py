"""Stage 7: perception-aware fine-tuning (PAFT, paper §3.3) of a trained model on the ABX answers.

Every triplet of the ABX training split becomes a triplet of the loss (Eq. 1): anchor = X, positive =
the clip the listeners' majority judged closer to X, negative = the other clip, embedded as the model's
vector of the triplet's instrument. The split is the one scoring uses
(:func:`inmsrl.data.abx.split_train_test` of *all* triplets, ``train_fraction`` 0.7, ``split_seed`` = the
recipe's seed, which ``inmsrl score --seed`` gets too), so no held-out triplet is ever trained on; a
``valid_fraction`` of the training split (stratified the same way) is the trainer's validation set.
Triplets without a majority (ties) and of instruments the model does not embed are left out.

What the model hears (``task.pieces``, §3.3):

* ``normal`` — each clip's own mixture (all sources from the clip's track and time); Clean gets the
  clip's clean stems (its extractor of the instrument only ever sees that stem);
* ``pseudo`` — pseudo-musical pieces built around the ABX clips, as §2.2 builds them: the target
  instrument comes from the clip, the other sources from two pieces A ≠ N of ``train_dump`` (the
  validation triplets: of ``valid_dump``), 5 s segments of its segment table cut to the clips' length.
  anchor = X's target + the others of a segment of A; positive = the chosen clip's target + the others
  of a segment of N; negative = the other clip's target + the others of another segment of A. So the
  non-target parts pull the anchor towards the negative, and only the target instrument tells the
  positive apart. The pieces are drawn from ``(seed, triplet)`` or, with ``fresh_every_epoch``,
  ``(seed, epoch, triplet)``.

Only the feature extractors train (``extractor_parameters``); the rest stays in eval mode, so its
weights *and* BatchNorm statistics are bit-identical afterwards — checked at the end of training,
which fails rather than write ``final.pt`` if they moved. With ``keep_batchnorm_stats`` the trainable
parts' BatchNorm layers normalise with their trained statistics and leave them as they are: small
batches split four ways by instrument give a BatchNorm too few examples to estimate new ones.
*Cascade-PAFT* (``train_separators: true``, ``separation_weight`` > 0, from the stage-4 Cascade) does
E2E-FT and PAFT at once: the separators train too, with the auxiliary L1 separation loss (§3.1.2) on
the clean target stems of the three inputs.

On one process, Clean and Cascade run only each triplet's instrument path (its separator and
extractor): the loss is the same as the full forward's (a test checks it), at a quarter of the cost
for four instruments; the auxiliary loss covers each triplet's own separator, over the three roles as
in E2E-FT (:func:`inmsrl.tasks.triplet.triplet_losses`). Under DDP the full forward runs so that
gradients are averaged (:mod:`inmsrl.train.task`); an extractor's BatchNorm batch statistics then
cover the whole batch rather than its own instrument's triplets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from inmsrl.data.abx import (
    AbxClipError,
    AbxTriplet,
    clip_origin,
    read_abx_set,
    split_train_test,
    track_index_by_number,
)
from inmsrl.data.dump import Dump
from inmsrl.data.triplets import render
from inmsrl.models.config import build_model
from inmsrl.tasks.common import (
    DatasetTask,
    DumpedSet,
    TaskConfigError,
    check_sample_rate,
    load_trained,
    open_set,
    option,
    stems_of,
    unwrap,
)
from inmsrl.tasks.direct import direct_triplet_losses
from inmsrl.tasks.triplet import triplet_losses
from inmsrl.train.options import Option
from inmsrl.train.task import RunContext, register_task

PIECES = ("pseudo", "normal")
ROLES = ("anchor", "positive", "negative")
DIRECT_TYPES = ("direct", "direct_reconst")


def embedded_sources(model_config: dict[str, Any], sources: Sequence[str]) -> list[str]:
    """The sources a model of ``model_config`` embeds (Direct: all; Clean/Cascade: target_sources)."""
    if model_config.get("type") in DIRECT_TYPES:
        return list(sources)
    return list(model_config.get("target_sources") or sources)


def clip_origins(triplet: AbxTriplet, clip_dump: Dump) -> np.ndarray:
    """(3, 2) (dump track index, start) of X, the positive and the negative clip of ``triplet``, with
    the mapping scoring uses (:func:`inmsrl.data.abx.clip_origin`)."""
    index = track_index_by_number(clip_dump.track_ids)
    try:
        origins = [clip_origin(clip, index, clip_dump.sample_rate, f"triplet {triplet.key}: ")
                   for clip in (triplet.x, triplet.positive, triplet.negative)]
    except AbxClipError as err:
        raise TaskConfigError(f"{err} ({clip_dump.root}; task.abx_dump: the dump of the ABX clips' tracks)"
                              ) from err
    return np.array(origins, dtype=np.int64)


def paft_triplets(triplets: Sequence[AbxTriplet], instruments: Sequence[str], split_seed: int,
                  train_fraction: float = 0.7, valid_fraction: float = 0.1, confident_only: bool = False
                  ) -> tuple[list[AbxTriplet], list[AbxTriplet]]:
    """PAFT's (training, validation) triplets: the training share of *all* ``triplets`` split as scoring
    splits them, restricted to ``instruments`` and to triplets with a majority (or confident ones), then
    ``valid_fraction`` of it held out for validation (stratified by instrument and condition)."""
    if not 0.0 <= valid_fraction < 1.0:
        raise TaskConfigError(f"task.valid_fraction must lie in [0, 1), got {valid_fraction}")
    train, _held_out = split_train_test(triplets, train_fraction, split_seed)
    usable = [t for t in train if t.instrument in instruments and t.majority is not None
              and (t.is_confident() or not confident_only)]
    return split_train_test(usable, 1.0 - valid_fraction, split_seed)


class PaftDataset(Dataset):
    """ABX triplets as model inputs; item = int16 ``audio`` (3 roles, S, L), ``target`` (dump source),
    ``clip_origin`` (3, 2) and ``other_origin`` (3, 2) — (track, start) of the target part in the clip
    dump and of the other parts (in ``others``' dump for pseudo pieces, the clip's for normal ones) —
    and ``triplet`` (the index into ``triplets``).

    ``size`` None: every triplet once per epoch; else ``size`` items per epoch, walking through
    seeded permutations of the triplets so that every triplet comes once before any comes twice.
    """

    def __init__(self, triplets: Sequence[AbxTriplet], clip_dump: Dump, pieces: str,
                 others: DumpedSet | None = None, size: int | None = None, seed: int = 0,
                 fresh_every_epoch: bool = False):
        if pieces not in PIECES:
            raise TaskConfigError(f"task.pieces must be one of {', '.join(PIECES)}, got {pieces!r}")
        if not triplets:
            raise TaskConfigError("no ABX triplet to fine-tune on (check task.abx_dir and the instruments)")
        self.triplets, self.clip_dump, self.pieces, self.others = list(triplets), clip_dump, pieces, others
        self.size, self.seed, self.fresh_every_epoch, self.epoch = size, seed, fresh_every_epoch, 0
        self.clips = np.stack([clip_origins(t, clip_dump) for t in self.triplets])  # (n, 3, 2)
        self.targets = np.array([clip_dump.sources.index(t.instrument) for t in self.triplets])
        lengths = {c.num_samples for t in self.triplets for c in (t.x, t.a, t.b)}
        if len(lengths) != 1:
            raise TaskConfigError(f"the ABX clips have different lengths: {sorted(lengths)} samples")
        (self.length,) = lengths
        if pieces == "pseudo":
            self._check_others()

    def _check_others(self) -> None:
        if self.others is None:
            raise TaskConfigError("pseudo-musical pieces need a dump of non-target parts (task.train_dump)")
        dump, table = self.others.dump, self.others.table
        if tuple(dump.sources) != tuple(self.clip_dump.sources):
            raise TaskConfigError(f"{dump.root} has sources {', '.join(dump.sources)}, the ABX clips' dump "
                                  f"{self.clip_dump.root} has {', '.join(self.clip_dump.sources)}")
        if table.length < self.length:
            raise TaskConfigError(f"{dump.root}: its segment table has {table.length}-sample segments, "
                                  f"shorter than the ABX clips ({self.length} samples)")
        tracks, counts = np.unique(table.track, return_counts=True)
        self.two_segment_pieces = tracks[counts >= 2]
        self.all_pieces = tracks
        if len(self.two_segment_pieces) < 1 or len(tracks) < 2:
            raise TaskConfigError(f"{dump.root}: pseudo pieces need two pieces, one with two segments of "
                                  f"{self.length} samples; it has {len(tracks)} piece(s)")

    def __len__(self) -> int:
        return len(self.triplets) if self.size is None else self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def triplet_index(self, index: int) -> int:
        """The triplet behind item ``index`` of the current epoch."""
        if self.size is None:
            return index
        position = max(self.epoch - 1, 0) * self.size + index
        cycle, offset = divmod(position, len(self.triplets))
        return int(np.random.default_rng([self.seed, cycle]).permutation(len(self.triplets))[offset])

    def other_origins(self, triplet: int) -> np.ndarray:
        """(3, 2) origins of the non-target parts: segments of A, N, A (pseudo) or the clips (normal)."""
        if self.pieces == "normal":
            return self.clips[triplet]
        key = [self.seed, self.epoch, triplet] if self.fresh_every_epoch else [self.seed, triplet]
        rng = np.random.default_rng(key)
        table = self.others.table
        piece_a = int(rng.choice(self.two_segment_pieces))
        piece_n = int(rng.choice(self.all_pieces[self.all_pieces != piece_a]))
        a_1, a_2 = rng.choice(table.segments_of(piece_a), size=2, replace=False)
        n_1 = rng.choice(table.segments_of(piece_n))
        segments = np.array([a_1, n_1, a_2])
        return np.stack([table.track[segments], table.start[segments]], axis=-1).astype(np.int64)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        triplet = self.triplet_index(index)
        target, clips = int(self.targets[triplet]), self.clips[triplet]
        others = self.other_origins(triplet)
        num_sources = len(self.clip_dump.sources)
        dump = self.clip_dump if self.pieces == "normal" else self.others.dump
        audio = render(dump, np.repeat(others[:, None, :], num_sources, axis=1), self.length)
        for role, (track, start) in enumerate(clips):
            audio[role, target] = self.clip_dump.pcm(int(track), target, int(start), self.length)
        return {"audio": torch.from_numpy(audio), "target": torch.tensor(target),
                "clip_origin": torch.from_numpy(clips.copy()), "other_origin": torch.from_numpy(others),
                "triplet": torch.tensor(triplet)}


def frozen_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer outside the feature extractors (what PAFT must not move)."""
    inner = unwrap(model)
    extractor = {id(t) for module in inner.extractor_modules()
                 for t in (*module.parameters(), *module.buffers())}
    digest = hashlib.sha256()
    for key, tensor in inner.state_dict(keep_vars=True).items():
        if id(tensor) in extractor:
            continue
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@register_task("paft")
class PaftTask(DatasetTask):
    """Config ``task``: init (the experiment to fine-tune), abx_dir, abx_dump (the dump holding the ABX
    clips' tracks), train_dump / valid_dump (the non-target parts of pseudo pieces), pieces (pseudo |
    normal), fresh_every_epoch, split_seed (0; = the scoring seed), train_fraction (0.7), valid_fraction
    (0.1), confident_only (false), train_examples / valid_examples (null: all), margin (0.2), batch_size,
    num_workers, keep_batchnorm_stats (false), train_separators and separation_weight (Cascade-PAFT).
    ``model`` must describe the model in ``init`` (the fine-tuned model is stored with this config)."""

    shuffle_train = True  # the ABX triplets come in a fixed order; visit them in a new one each epoch
    options = (
        Option("init", str), Option("abx_dir", str), Option("abx_dump", str),
        Option("train_dump", str), Option("valid_dump", str), Option("pieces", str, "pseudo", choices=PIECES),
        Option("fresh_every_epoch", bool, False), Option("split_seed", int, 0, minimum=0),
        Option("train_fraction", float, 0.7, above=0, maximum=1),
        Option("valid_fraction", float, 0.1, minimum=0, below=1), Option("confident_only", bool, False),
        Option("train_examples", int, None, minimum=1), Option("valid_examples", int, None, minimum=1),
        Option("margin", float, 0.2, minimum=0), Option("batch_size", int, 64, minimum=1),
        Option("num_workers", int, 0, minimum=0), Option("train_separators", bool, False),
        Option("separation_weight", float, 0.0, minimum=0), Option("keep_batchnorm_stats", bool, False),
    )

    def __init__(self, config: dict[str, Any], context: RunContext):
        self.config, self.context = config, context
        self.model_config = config.get("model") or {}
        self.kind = self.model_config.get("type")
        init = option(config, "init")
        if not init:
            raise TaskConfigError("training config: task.init must name the experiment PAFT fine-tunes")
        self.init = Path(init)
        self.margin = float(option(config, "margin", 0.2))
        self.batch_size = option(config, "batch_size", 64)
        self.workers = option(config, "num_workers", 0)
        self.train_separators = bool(option(config, "train_separators", False))
        self.separation_weight = float(option(config, "separation_weight", 0.0))
        self.keep_batchnorm_stats = bool(option(config, "keep_batchnorm_stats", False))
        if (self.train_separators or self.separation_weight > 0) and self.kind != "cascade":
            raise TaskConfigError(f"task.train_separators / task.separation_weight (Cascade-PAFT) need "
                                  f"model.type cascade, got {self.kind!r}")
        clip_dump = Dump.open(option(config, "abx_dump"))
        check_sample_rate(clip_dump, config)
        self.sources = list(clip_dump.sources)
        instruments = embedded_sources(self.model_config, self.sources)
        abx_dir = option(config, "abx_dir")
        abx = read_abx_set(abx_dir)
        if not any(t.instrument in instruments for t in abx.triplets):
            raise TaskConfigError(f"{abx_dir} (task.abx_dir): no ABX triplet of the instruments the model "
                                  f"embeds ({', '.join(instruments)})")
        train, valid = paft_triplets(abx.triplets, instruments, int(option(config, "split_seed", 0)),
                                     float(option(config, "train_fraction", 0.7)),
                                     float(option(config, "valid_fraction", 0.1)),
                                     bool(option(config, "confident_only", False)))
        pieces = option(config, "pieces", "pseudo")
        seconds = (abx.triplets[0].x.num_samples / clip_dump.sample_rate) if abx.triplets else 5.0
        train_others = valid_others = None
        if pieces == "pseudo":
            train_others = open_set(option(config, "train_dump"), round(seconds), config)
            valid_others = open_set(option(config, "valid_dump"), round(seconds), config)
        fresh = bool(option(config, "fresh_every_epoch", False))
        self.train_set = PaftDataset(train, clip_dump, pieces, train_others,
                                     option(config, "train_examples", None), seed=context.seed,
                                     fresh_every_epoch=fresh)
        self.valid_set = PaftDataset(valid, clip_dump, pieces, valid_others,
                                     option(config, "valid_examples", None), seed=context.seed + 1)
        # Row of the model's embedding for each dump source index (−1: not embedded).
        self.embedding_row = torch.full((len(self.sources),), -1, dtype=torch.long)
        for row, name in enumerate(instruments):
            self.embedding_row[self.sources.index(name)] = row
        self.frozen = ""

    def build_model(self) -> nn.Module:
        model = build_model(self.model_config, self.sources)
        trained = load_trained(self.init, self.sources)
        try:
            model.load_state_dict(trained.state_dict())
        except RuntimeError as err:
            raise TaskConfigError(f"task.init={self.init}: the trained model does not fit this config's "
                                  f"model section (copy that of {self.init}/config.yaml): {err}") from err
        if not self.train_separators:
            self._check_split(model)
            self.frozen = frozen_digest(model)
        return model

    @staticmethod
    def _check_split(model: nn.Module) -> None:
        """Assert that the extractors and the frozen rest together hold every parameter exactly once."""
        groups = model.parameter_groups()
        grouped = [id(p) for group in groups.values() for p in group]
        if len(grouped) != len(set(grouped)) or set(grouped) != {id(p) for p in model.parameters()}:
            raise TaskConfigError(f"{type(model).__name__}: extractor and separation parameters do not "
                                  "partition the model's parameters; PAFT cannot tell what to freeze")

    def trainable_parameters(self, model: nn.Module):
        inner = unwrap(model)
        return inner.parameters() if self.train_separators else inner.extractor_parameters()

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        if not self.train_separators:  # frozen parts: no dropout, no BatchNorm statistics updates
            inner = unwrap(model)
            inner.eval()
            for module in inner.extractor_modules():
                module.train()
        if self.keep_batchnorm_stats:
            for module in unwrap(model).modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def on_train_end(self, model: nn.Module) -> None:
        if self.frozen and frozen_digest(model) != self.frozen:
            raise RuntimeError("PAFT changed a frozen (non-extractor) weight or BatchNorm statistic")

    def losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        stems, targets = stems_of(batch), batch["target"]
        if self.kind in DIRECT_TYPES:
            return direct_triplet_losses(model, stems, targets, self.margin)
        rows = self.embedding_row.to(targets.device)[targets]
        # One process: each triplet through its instrument's path; under DDP every path runs, since a
        # batch of ABX triplets may lack an instrument and DDP needs every parameter in every step.
        return triplet_losses(model, stems, rows, self.margin, self.separation_weight,
                              routed=model is unwrap(model))

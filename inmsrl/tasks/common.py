"""What the training tasks share: the data they open, the triplet loss, and loading trained models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from inmsrl.audio.features import SAMPLE_RATE
from inmsrl.data.dump import Dump
from inmsrl.data.segments import SegmentTable, ensure_segment_tables
from inmsrl.data.triplets import pcm_to_float
from inmsrl.models.config import build_model
from inmsrl.models.pretrained import ModelFileError, load_pretrained, read_model_file
from inmsrl.models.separator import SourceSeparator
from inmsrl.train.options import Option
from inmsrl.train.task import RunContext, Task, sharded_loader


class TaskConfigError(ValueError):
    """A task section of a training config is missing a key or names something that does not exist."""


def option(config: Mapping[str, Any], key: str, default: Any = ...) -> Any:
    """``config["task"][key]``, or ``default``; a missing required key is an error naming it."""
    task = config.get("task", {})
    if key in task:
        return task[key]
    if default is ...:
        raise TaskConfigError(f"training config: task.{key} is required for task {task.get('name')!r}")
    return default


@dataclass(frozen=True)
class DumpedSet:
    """A dumped data set and its table of segments of one length."""

    dump: Dump
    table: SegmentTable


def open_set(dump_dir: str | Path, seconds: float, config: Mapping[str, Any] | None = None) -> DumpedSet:
    """The dump in ``dump_dir`` with its ``seconds``-long segment table (built if missing); with the
    training ``config``, checked to be at the sample rate its model computes features for."""
    dump = Dump.open(dump_dir)
    if config is not None:
        check_sample_rate(dump, config)
    return DumpedSet(dump, ensure_segment_tables(dump, [seconds])[seconds])


def check_sample_rate(dump: Dump, config: Mapping[str, Any]) -> None:
    """Refuse a dump at another rate than the training config's model computes its features for."""
    rate = ((config.get("model") or {}).get("stft") or {}).get("sample_rate", SAMPLE_RATE)
    if rate != dump.sample_rate:
        raise TaskConfigError(f"{dump.root} is sampled at {dump.sample_rate} Hz, but the model's features "
                              f"are set for {rate} Hz (model.stft.sample_rate): set it to "
                              f"{dump.sample_rate}, with n_fft and hop_length to match")


def source_indices(dump: Dump, names: list[str]) -> list[int]:
    """Positions of ``names`` in the dump's source list, with an error naming an unknown one."""
    unknown = [n for n in names if n not in dump.sources]
    if unknown:
        raise TaskConfigError(f"source(s) {', '.join(unknown)} not in {dump.root} "
                              f"(it has {', '.join(dump.sources)})")
    return [dump.sources.index(n) for n in names]


# The ``task:`` options of every stage that trains on segments of two dumps (mss, triplet, direct_*).
DATASET_OPTIONS = (
    Option("train_dump", str), Option("valid_dump", str),
    Option("segment_seconds", float, 3.0, above=0), Option("valid_segment_seconds", float, 10.0, above=0),
    Option("train_examples", int, minimum=1), Option("valid_examples", int, minimum=1),
    Option("batch_size", int, 64, minimum=1), Option("num_workers", int, 0, minimum=0),
)


class DatasetTask(Task):
    """A task whose data are one training and one validation dataset, loaded in global batches of
    ``batch_size`` shared among the DDP processes (every training stage); subclasses set the
    attributes below and implement ``build_model`` and ``losses``."""

    context: RunContext
    train_set: Dataset
    valid_set: Dataset
    batch_size: int
    workers: int = 0
    shuffle_train: bool = False

    def train_loader(self, epoch: int) -> DataLoader:
        return sharded_loader(self.train_set, batch_size=self.batch_size, context=self.context, epoch=epoch,
                              shuffle=self.shuffle_train, num_workers=self.workers)

    def valid_loader(self) -> DataLoader:
        return sharded_loader(self.valid_set, batch_size=self.batch_size, context=self.context,
                              num_workers=self.workers)


def triplet_terms(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                  margin: float) -> torch.Tensor:
    """Eq. 1 of the paper per triplet: max(0, d(a, p) − d(a, n) + margin), Euclidean, no normalisation."""
    d_pos = torch.linalg.vector_norm(anchor - positive, dim=-1)
    d_neg = torch.linalg.vector_norm(anchor - negative, dim=-1)
    return torch.relu(d_pos - d_neg + margin)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """Eq. 1 of the paper averaged over the batch."""
    return triplet_terms(anchor, positive, negative, margin).mean()


def stems_of(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The float stems of a loader batch (int16 on the wire)."""
    return pcm_to_float(batch["audio"])


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def _final_checkpoint(exp_dir: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        return read_model_file(Path(exp_dir), map_location)
    except ModelFileError as err:
        raise TaskConfigError(str(err)) from err


def load_trained(exp_dir: str | Path, sources: Sequence[str],
                 map_location: str | torch.device = "cpu") -> nn.Module:
    """The model a finished training in ``exp_dir`` produced (its ``final.pt`` and model config)."""
    try:
        return load_pretrained(Path(exp_dir), sources, map_location).model.train()
    except ModelFileError as err:
        raise TaskConfigError(str(err)) from err


def trained_stamp(exp_dir: str | Path) -> str:
    """Which ``final.pt`` (path and modification time) a result was computed from: a result stamped
    the same is still up to date, one stamped otherwise belongs to an older model."""
    final = Path(exp_dir) / "final.pt"
    return f"{final.resolve()}:{final.stat().st_mtime_ns}"


def load_separators_into(separator: SourceSeparator, pattern: str, sources: Sequence[str]) -> None:
    """Fill each of ``separator``'s U-Nets from its own stage-3 experiment, ``pattern`` with ``{source}``."""
    for name in separator.sources:
        trained = load_trained(pattern.format(source=name), sources)
        separator.separators[name].load_state_dict(trained.separators[name].state_dict())


def trained_separator_sources(pattern: str, sources: Sequence[str]) -> list[str]:
    """The sources (in ``sources``' order) with a finished stage-3 experiment at ``pattern``
    (``exp/mss/{source}``): the instruments a separator set can be built from when none are named."""
    found = [name for name in sources if (Path(pattern.format(source=name)) / "final.pt").is_file()]
    if not found:
        raise TaskConfigError(f"no finished separator at {pattern} for any source of the data "
                              f"({', '.join(sources)}): train stage 3 first, or name the sources")
    return found


def load_separator_set(pattern: str, names: Sequence[str], sources: Sequence[str]) -> SourceSeparator:
    """The separators of ``names``, trained one per experiment in stage 3, as one SourceSeparator."""
    config = dict(_final_checkpoint(pattern.format(source=names[0]))["config"]["model"],
                  target_sources=list(names))
    separator = build_model(config, sources)
    load_separators_into(separator, pattern, sources)
    return separator

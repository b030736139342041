"""Trained models that stand alone: the metadata a checkpoint carries, packed model files, loading.

A finished training's ``final.pt`` and a packed model file (``inmsrl pack``) both hold plain data only
(tensors, strings, numbers, lists, dicts) and are read with ``torch.load(weights_only=True)``: loading
a model file never unpickles code, so a model from someone else is safe to open. Besides the weights
they hold the model config and what the model needs to be rebuilt and fed without the training data:

- ``sources``: the data directory's source list the model was built for (``build_model``'s second
  argument), so no dump is needed;
- ``sample_rate``, ``n_fft``, ``hop_length``: what audio the model takes;
- ``inmsrl_version`` and ``git_revision``: the code that trained it.

A model is rebuilt with :func:`~inmsrl.models.config.build_model` from its config and sources and
filled with its state dict; nothing else of its internals is assumed here.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inmsrl.audio.features import HOP_LENGTH, N_FFT, SAMPLE_RATE
from inmsrl.environment import git_revision
from inmsrl.models.base import EmbeddingModel
from inmsrl.models.config import build_model
from inmsrl.models.separator import SourceSeparator
from inmsrl.version import __version__

PACKED_FORMAT = "inmsrl-model"
PACKED_VERSION = 1
FINAL_CHECKPOINT = "final.pt"


class ModelFileError(ValueError):
    """A model file or experiment that cannot be loaded; the message names it and says why."""


def data_sources(model: nn.Module) -> tuple[str, ...] | None:
    """The source list ``model`` was built for (``build_model``'s ``sources``), None for a foreign model."""
    if isinstance(model, EmbeddingModel):
        return tuple(model.all_sources)
    if isinstance(model, SourceSeparator):
        return tuple(model.sources)  # built from target_sources ⊆ the directory's: rebuilds the same
    return None


def signal_settings(model_config: Mapping[str, Any]) -> dict[str, int]:
    """The sample rate and STFT a model config asks for (the toolkit's defaults where it is silent)."""
    stft = model_config.get("stft") or {}
    return {"sample_rate": int(stft.get("sample_rate", SAMPLE_RATE)), "n_fft": int(stft.get("n_fft", N_FFT)),
            "hop_length": int(stft.get("hop_length", HOP_LENGTH))}


def standalone_metadata(model: nn.Module, model_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a checkpoint of ``model`` must carry to be loaded without its training data."""
    meta: dict[str, Any] = {"inmsrl_version": __version__, "git_revision": git_revision()}
    sources = data_sources(model)
    if sources is not None and model_config is not None:
        meta.update(sources=list(sources), **signal_settings(model_config))
    return meta


@dataclass
class ModelCard:
    """Everything about a trained model but its weights: how to rebuild it and where it came from."""

    name: str
    model_config: dict[str, Any]
    sources: tuple[str, ...]
    sample_rate: int
    n_fft: int
    hop_length: int
    inmsrl_version: str = "unknown"
    git_revision: str = "unknown"
    training: dict[str, Any] = field(default_factory=dict)  # epochs, best epoch and validation loss
    scores: dict[str, Any] = field(default_factory=dict)    # the model's rows of the recipe's RESULTS.json

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model_config": self.model_config, "sources": list(self.sources),
                "sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "inmsrl_version": self.inmsrl_version, "git_revision": self.git_revision,
                "training": self.training, "scores": self.scores}


@dataclass
class Pretrained:
    """A loaded model with its card, and the file it came from."""

    model: nn.Module
    card: ModelCard
    path: Path

    @property
    def embeds_mixtures(self) -> bool:
        """Whether the model embeds a mixture (what a user's audio file is)."""
        return isinstance(self.model, EmbeddingModel) and not self.model.takes_stems

    def require_mixture_embedder(self) -> EmbeddingModel:
        """The model as an embedding model of mixtures; a clear error for a separator or a Clean model."""
        if not isinstance(self.model, EmbeddingModel):
            raise ModelFileError(f"{self.path}: a {type(self.model).__name__} separates sources; it is not "
                                 f"an embedding model (use a Cascade, Cascade-FT, Direct or PAFT model)")
        if self.model.takes_stems:
            raise ModelFileError(f"{self.path}: a {type(self.model).__name__} model embeds clean stems (one "
                                 f"per source: {', '.join(self.card.sources)}), not mixtures, so it cannot "
                                 f"embed an audio file; use a Cascade, Cascade-FT, Direct or PAFT model")
        return self.model


def checkpoint_path(path: str | Path) -> Path:
    """The model file of ``path``: the file itself, or an experiment directory's ``final.pt``."""
    path = Path(path)
    if path.is_dir() or (not path.exists() and not path.suffix):  # an experiment directory
        final = path / FINAL_CHECKPOINT
        if not final.is_file():
            raise ModelFileError(f"{final} does not exist: the training in {path} has not finished")
        return final
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    return path


def read_model_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The plain dictionary stored in a model file, read without unpickling any code."""
    path = checkpoint_path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ModelFileError(f"{path} is refused: it holds Python objects other than tensors and plain "
                             f"data, and loading it could run code ({str(err).splitlines()[0]})") from err
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise ModelFileError(f"{path} is not a readable model file: {err}") from err
    if not isinstance(state, dict) or "model" not in state:
        raise ModelFileError(f"{path} is not an inmsrl model file (no 'model' weights in it)")
    return state


def _card(state: Mapping[str, Any], path: Path, sources: Sequence[str] | None) -> ModelCard:
    if state.get("format") == PACKED_FORMAT:
        if state.get("format_version", 0) > PACKED_VERSION:
            raise ModelFileError(f"{path} is a packed model of format version {state['format_version']}; "
                                 f"this inmsrl ({__version__}) reads up to {PACKED_VERSION}: update inmsrl")
        meta = dict(state["card"])
        name, model_config = meta.pop("name"), meta.pop("model_config")
    else:
        config = state.get("config") or {}
        if "model" not in config:
            raise ModelFileError(f"{path} holds no model config (config.model)")
        meta = dict(state.get("standalone") or {})
        model_config = config["model"]
        name = path.parent.name if path.name == FINAL_CHECKPOINT else path.stem
        meta.setdefault("training", {k: state[k] for k in ("epoch", "valid_loss") if k in state})
    if sources is not None:
        meta["sources"] = list(sources)
    if not meta.get("sources"):
        raise ModelFileError(f"{path} does not record the sources the model was built for (a checkpoint "
                             f"written before inmsrl stored them): give them as --sources NAME..., the "
                             f"words of the sources file of the data it was trained on, or train it again")
    settings = signal_settings(model_config)
    return ModelCard(name=name, model_config=dict(model_config), sources=tuple(meta["sources"]),
                     sample_rate=int(meta.get("sample_rate", settings["sample_rate"])),
                     n_fft=int(meta.get("n_fft", settings["n_fft"])),
                     hop_length=int(meta.get("hop_length", settings["hop_length"])),
                     inmsrl_version=str(meta.get("inmsrl_version", "unknown")),
                     git_revision=str(meta.get("git_revision", "unknown")),
                     training=dict(meta.get("training") or {}), scores=dict(meta.get("scores") or {}))


def load_pretrained(path: str | Path, sources: Sequence[str] | None = None,
                    map_location: str | torch.device = "cpu") -> Pretrained:
    """The model of a packed file, a ``final.pt`` or an experiment directory, with its card.

    ``sources`` overrides the recorded source list (a training passes its dump's); it is required only
    for checkpoints that predate the recorded one.
    """
    file = checkpoint_path(path)
    state = read_model_file(file, map_location)
    card = _card(state, file, sources)
    try:
        model = build_model(card.model_config, card.sources)
        model.load_state_dict({k.removeprefix("module."): v for k, v in state["model"].items()})
    except (ValueError, RuntimeError, KeyError) as err:
        raise ModelFileError(f"{file}: the weights do not fit the model its config describes: {err}") from err
    return Pretrained(model.eval(), card, file)


def pack(pretrained: Pretrained, scores: Mapping[str, Any] | None = None,
         name: str | None = None) -> dict[str, Any]:
    """The packed form of a loaded model: weights, card and ``scores``; ``torch.save`` it to a file."""
    card = pretrained.card
    if name:
        card.name = name
    if scores:
        card.scores = dict(scores)
    return {"format": PACKED_FORMAT, "format_version": PACKED_VERSION, "card": card.to_dict(),
            "model": {k: v.detach().cpu().contiguous() for k, v in pretrained.model.state_dict().items()}}

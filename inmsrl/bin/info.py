"""Print the versions, git revision and compute devices of this installation, or what a model file holds.

``inmsrl info`` describes the installation; ``inmsrl info FILE`` a packed model, a ``final.pt`` or an
experiment directory: its type, instruments, audio settings, the code that trained it, its training
summary and its scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a model file or experiment directory to describe")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def describe_model(path: str) -> dict[str, Any]:
    """What ``inmsrl info FILE`` prints: the model's card plus what its loaded form tells."""
    from inmsrl.models.base import EmbeddingModel, num_parameters
    from inmsrl.models.pretrained import load_pretrained

    pretrained = load_pretrained(path)
    model = pretrained.model
    card = pretrained.card.to_dict()
    described = {"file": str(pretrained.path), "name": card.pop("name"),
                 "type": card["model_config"].get("type"), "class": type(model).__name__,
                 "parameters": num_parameters(model)}
    if isinstance(model, EmbeddingModel):
        described.update(embeds=list(model.sources), embedding_dim=model.embedding_dim,
                         input="clean stems" if model.takes_stems else "mixture", separates=model.separates,
                         embeds_audio_files=pretrained.embeds_mixtures)
    return {**described, **card}


def _print_environment(info: dict[str, Any]) -> None:
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, version in value.items():
                print(f"  {name:14s} {version}")
        elif isinstance(value, list):
            print(f"{key}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{key:16s}{value}")


def _print_model(info: dict[str, Any], indent: str = "") -> None:
    for key, value in info.items():
        if isinstance(value, dict) and value:
            print(f"{indent}{key}:")
            _print_model(value, indent + "  ")
        elif isinstance(value, list):
            print(f"{indent}{key:20s}{' '.join(map(str, value))}")
        elif isinstance(value, float):
            print(f"{indent}{key:20s}{value:.4g}")
        else:
            print(f"{indent}{key:20s}{value if value != {} else '-'}")


def run(args: argparse.Namespace) -> int:
    if args.model:
        from inmsrl.models.pretrained import ModelFileError

        try:
            info = describe_model(args.model)
        except ModelFileError as err:
            print(f"inmsrl info: {err}", file=sys.stderr)
            return 1
    else:
        from inmsrl.environment import describe

        info = describe()
    if args.json:
        print(json.dumps(info, indent=2))
    elif args.model:
        _print_model(info)
    else:
        _print_environment(info)
    return 0

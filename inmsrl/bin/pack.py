"""Pack a trained model into one file: weights, config, sources, audio settings, version and scores.

The file loads on any machine with inmsrl, without the training data, and never runs code when read
(``torch.load(weights_only=True)``). Scores are the model's rows of the recipe's RESULTS.json (found
beside the experiment folder, or given with --results); ``inmsrl info FILE`` shows what is in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="experiment directory (exp/cascade_ft) or its final.pt")
    parser.add_argument("-o", "--out", required=True, help="the packed model file to write")
    parser.add_argument("--results", help="RESULTS.json to take the scores from [the recipe's, if any]")
    parser.add_argument("--name", help="model name [the experiment directory's name]")
    parser.add_argument("--sources", nargs="+",
                        help="the training data's sources, for a checkpoint that does not record them")


def model_scores(results: dict[str, Any], name: str) -> dict[str, Any]:
    """Every row that RESULTS.json holds for the model ``name`` (MES, SDR, ABX agreement, ...)."""
    scores = {table: rows[name] for table, rows in results.items()
              if table not in ("environment", "config", "chance") and isinstance(rows, dict) and name in rows}
    abx = results.get("abx", {}).get("models", {})
    if name in abx:
        scores["abx"] = abx[name]
    return scores


def _results_file(model: Path, given: str | None) -> Path | None:
    if given:
        return Path(given)
    exp_dir = model if model.is_dir() else model.parent
    for candidate in (exp_dir.parent.parent / "RESULTS.json", exp_dir.parent / "RESULTS.json"):
        if candidate.is_file():
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    from inmsrl.models.base import num_parameters
    from inmsrl.models.pretrained import ModelFileError, load_pretrained, pack
    from inmsrl.train.checkpoint import atomic_save

    model = Path(args.model)
    try:
        pretrained = load_pretrained(model, args.sources)
        name = args.name or pretrained.card.name
        results = _results_file(model, args.results)
        scores = {}
        if results is not None:
            try:
                scores = model_scores(json.loads(results.read_text()), name)
            except (OSError, json.JSONDecodeError) as err:
                print(f"inmsrl pack: cannot read {results}: {err}", file=sys.stderr)
                return 1
        packed = pack(pretrained, scores, name)
    except ModelFileError as err:
        print(f"inmsrl pack: {err}", file=sys.stderr)
        return 1
    atomic_save(packed, args.out)
    size = Path(args.out).stat().st_size / 2**20
    params = num_parameters(pretrained.model)
    where = f"scores from {results}" if scores else "no scores (no RESULTS.json row for it)"
    print(f"{args.out}: {name}, {params:,} parameters, {size:.1f} MiB; {where}")
    return 0

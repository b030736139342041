#!/usr/bin/env python3
"""How much of the other instruments do the stage-3 separators remove? For each separator, its L1 to the
target's magnitude on segments where the target plays, beside the L1 of a silent output and of the
unprocessed mixture (the two floors a separator must beat). Run from the recipe directory:

    . ./path.sh && local/separation_floor.py [--dump dump/validation] [--exp exp/mss] [--segments 64]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from inmsrl.data.dump import Dump
from inmsrl.data.segments import ensure_segment_tables
from inmsrl.models.pretrained import load_pretrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", default="dump/validation")
    parser.add_argument("--exp", default="exp/mss", help="folder of one separator experiment per source")
    parser.add_argument("--segments", type=int, default=64, help="segments per source [64]")
    parser.add_argument("--seconds", type=float, default=3.0, help="segment length [3]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dump = Dump.open(args.dump)
    table = ensure_segment_tables(dump, [args.seconds])[args.seconds]
    rng = np.random.default_rng(args.seed)
    print(f"{'source':10} {'separator':>10} {'silence':>10} {'mixture':>10} {'below silence':>14}")
    for s, name in enumerate(dump.sources):
        if not Path(args.exp, name, "done").is_file():
            continue  # no finished separator for this source (the residuals)
        model = load_pretrained(Path(args.exp, name)).model
        playing = np.flatnonzero(table.active[:, s])
        rows = rng.choice(playing, min(args.segments, len(playing)), replace=False)
        stems = torch.from_numpy(np.stack([
            dump.segment(int(table.track[i]), int(table.start[i]), table.length) for i in rows]))
        with torch.no_grad():
            target, mixture = model.magnitude(stems[:, s]), stems.sum(dim=1)
            separated = model(mixture).magnitudes[:, 0]
            own, silent = (separated - target).abs().mean().item(), target.abs().mean().item()
            unprocessed = (model.magnitude(mixture) - target).abs().mean().item()
        print(f"{name:10} {own:10.4f} {silent:10.4f} {unprocessed:10.4f} {1 - own / silent:13.0%}")


if __name__ == "__main__":
    main()

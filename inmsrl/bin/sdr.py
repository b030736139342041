"""SDR (museval, 1 s frames) per test track of a separating model, or of the unprocessed mixture.

Scores Cascade, Cascade-FT (their separators), Direct-Reconst (its decoders) or the stage-3 separators
(--separators exp/mss/{source}); --mixture scores the mixture itself as every source's estimate, the
reference row of Table 4. museval is slow, so run it as a job array: ``JOB=1:N ... inmsrl sdr --part
JOB --num-parts N`` writes ``<name>.<JOB>-of-<N>.json`` (per-track scores of its share of the
tracks) into --out; ``inmsrl score`` takes the median over all tracks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dump", required=True, help="dumped test set (e.g. dump/test)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--exp-dir", help="a finished experiment with a separation part")
    what.add_argument("--separators", help="stage-3 experiments, '{source}' standing for the instrument")
    what.add_argument("--mixture", action="store_true", help="score the unprocessed mixture")
    parser.add_argument("--sources", nargs="+", default=["drums", "bass", "piano", "guitar"],
                        help="instruments of --separators / --mixture [drums bass piano guitar]")
    parser.add_argument("--out", required=True, help="directory of the SDR files (exp/scores/sdr)")
    parser.add_argument("--name", help="row name [experiment directory name, 'mss' or 'mixture']")
    parser.add_argument("--part", type=int, default=1, help="this job's share, 1..N [%(default)s]")
    parser.add_argument("--num-parts", type=int, default=1, help="N [%(default)s]")
    parser.add_argument("--chunk-seconds", type=float, default=10.0,
                        help="separation chunk length [%(default)s]")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... or auto [%(default)s]")


def run(args: argparse.Namespace) -> int:
    import torch

    from inmsrl.data.dump import Dump, DumpError
    from inmsrl.eval.embeddings import part_rows
    from inmsrl.eval.sdr import sdr_per_track
    from inmsrl.tasks.common import TaskConfigError, load_separator_set, load_trained

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        dump = Dump.open(args.dump)
        if args.mixture:
            model, name = None, args.name or "mixture"
        elif args.separators:
            model, name = load_separator_set(args.separators, args.sources, dump.sources), args.name or "mss"
        else:
            model, name = load_trained(args.exp_dir, dump.sources), args.name or Path(args.exp_dir).name
        tracks = part_rows(dump.num_tracks, args.part, args.num_parts)
        scores = sdr_per_track(model, dump, [int(t) for t in tracks], args.sources if args.mixture else None,
                               args.chunk_seconds, device)
    except (DumpError, TaskConfigError, ValueError, FileNotFoundError) as err:
        print(f"inmsrl sdr: {err}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{name}.*-of-*.json"):
        if not stale.name.endswith(f"-of-{args.num_parts}.json"):
            stale.unlink()
    path = out / f"{name}.{args.part}-of-{args.num_parts}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    clean = {t: {s: (None if v != v else v) for s, v in row.items()} for t, row in scores.items()}
    tmp.write_text(json.dumps({"model": name, "dump": str(dump.root), "tracks": clean}, indent=1) + "\n")
    os.replace(tmp, path)
    for track, row in scores.items():
        print(f"{track}: " + " ".join(f"{s}={v:.2f}" for s, v in row.items()))
    return 0

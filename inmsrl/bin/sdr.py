"""SDR (museval, 1 s frames) per test track of a separating model, or of the unprocessed mixture.

Scores Cascade, Cascade-FT (their separators), Direct-Reconst (its decoders) or the stage-3 separators
(--separators exp/mss/{source}); --mixture scores the mixture itself as every source's estimate, the
reference row of Table 4. museval is slow, so run it as a job array: ``JOB=1:N ... inmsrl sdr --part
JOB --num-parts N`` writes ``<name>.<JOB>-of-<N>.json`` (per-track scores of its share of the
tracks) into --out; ``inmsrl score`` takes the median over all tracks. A part already written for the
same model checkpoint, dump and options is kept, so a re-run of stage 8 scores nothing twice.
"""

from __future__ import annotations

import argparse
import hashlib
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
    parser.add_argument("--sources", nargs="+", default=None,
                        help="instruments of --separators / --mixture [--mixture: every source of the "
                             "dump; --separators: every one with a finished separator there]")
    parser.add_argument("--out", required=True, help="directory of the SDR files (exp/scores/sdr)")
    parser.add_argument("--name", help="row name [experiment directory name, 'mss' or 'mixture']")
    parser.add_argument("--part", type=int, default=1, help="this job's share, 1..N [%(default)s]")
    parser.add_argument("--num-parts", type=int, default=1, help="N [%(default)s]")
    parser.add_argument("--chunk-seconds", type=float, default=10.0,
                        help="separation chunk length [%(default)s]")
    parser.add_argument("--tracks", type=int, default=None,
                        help="score only the first N tracks of the dump (museval costs about 0.7 s per "
                             "second of 4-source audio on one CPU core) [all]")
    parser.add_argument("--seconds", type=float, default=None,
                        help="score only the first S seconds of each track [whole tracks]")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... or auto [%(default)s]")


def _fingerprint(args: argparse.Namespace, sources: list[str], dump_root: Path, tracks) -> str:
    """What a part's scores depend on: the model's checkpoint(s), the dump, the tracks and the chunks."""
    from inmsrl.tasks.common import trained_stamp

    if args.mixture:
        origin = f"mixture:{' '.join(sources)}"
    elif args.separators:
        origin = "|".join(trained_stamp(args.separators.format(source=s)) for s in sources)
    else:
        origin = trained_stamp(args.exp_dir)
    text = f"{origin}|{dump_root.resolve()}|{list(tracks)}|{args.chunk_seconds}|{args.seconds}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _kept(path: Path, fingerprint: str) -> bool:
    try:
        return json.loads(path.read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    import torch

    from inmsrl.data.dump import Dump, DumpError
    from inmsrl.eval.embeddings import part_rows
    from inmsrl.eval.sdr import sdr_per_track
    from inmsrl.tasks.common import (
        TaskConfigError,
        load_separator_set,
        load_trained,
        trained_separator_sources,
    )

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    out = Path(args.out)
    try:
        dump = Dump.open(args.dump)
        default_name = "mixture" if args.mixture else "mss" if args.separators else Path(args.exp_dir).name
        name = args.name or default_name
        if args.tracks is not None and args.tracks < 1 or args.seconds is not None and args.seconds <= 0:
            raise ValueError(f"--tracks and --seconds must be positive, got {args.tracks} and {args.seconds}")
        scored = dump.num_tracks if args.tracks is None else min(args.tracks, dump.num_tracks)
        tracks = part_rows(scored, args.part, args.num_parts)
        path = out / f"{name}.{args.part}-of-{args.num_parts}.json"
        sources = list(args.sources or (trained_separator_sources(args.separators, dump.sources)
                                        if args.separators else dump.sources))
        fingerprint = _fingerprint(args, sources, dump.root, tracks)
        if _kept(path, fingerprint):
            print(f"{path}: up to date, kept")
            return 0
        if args.mixture:
            model = None
        elif args.separators:
            model = load_separator_set(args.separators, sources, dump.sources)
        else:
            model = load_trained(args.exp_dir, dump.sources)
        scores = sdr_per_track(model, dump, [int(t) for t in tracks], sources if args.mixture else None,
                               args.chunk_seconds, device, args.seconds)
    except (DumpError, TaskConfigError, ValueError, FileNotFoundError) as err:
        print(f"inmsrl sdr: {err}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{name}.*-of-*.json"):
        if not stale.name.endswith(f"-of-{args.num_parts}.json"):
            stale.unlink()
    tmp = path.with_name(f".{path.name}.tmp")
    clean = {t: {s: (None if v != v else v) for s, v in row.items()} for t, row in scores.items()}
    tmp.write_text(json.dumps({"model": name, "dump": str(dump.root), "fingerprint": fingerprint,
                               "seconds": args.seconds, "tracks": clean}, indent=1) + "\n")
    os.replace(tmp, path)
    for track, row in scores.items():
        print(f"{track}: " + " ".join(f"{s}={v:.2f}" for s, v in row.items()))
    return 0

"""Embed the evaluation sets of a test dump with one model (one share of the items per job).

Sets (paper §4.2): normal (every 10 s segment, MES-Normal), pseudo (MES-Pseudo's pseudo test pieces),
vis (the pseudo segments of the t-SNE figure and Table 6), abx (the clips of the confident ABX
triplets), and swap (the swap test of disentanglement, :mod:`inmsrl.eval.swap`). The model is a
finished experiment (--exp-dir, its final.pt) or an MFCC baseline
(--baseline mfcc-clean | mfcc-cascade --separators exp/mss/{source}). Run as a job array,
``JOB=1:N ... inmsrl embed --part JOB --num-parts N``: each job writes ``<set>.<JOB>-of-<N>.npz``
into --out; ``inmsrl score`` reads the parts back together. A part already written for the same
model checkpoint, dump and options is kept (a re-run of stage 8 embeds nothing new).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dump", required=True, help="dumped test set (e.g. dump/test)")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--exp-dir", help="a finished experiment (exp/clean, exp/cascade_ft, ...)")
    model.add_argument("--baseline", choices=("mfcc-clean", "mfcc-cascade"),
                       help="MFCC statistics of the clean stems, or of the stage-3 separators' estimates")
    parser.add_argument("--separators", help="stage-3 experiments for mfcc-cascade, '{source}' standing "
                                             "for the instrument (exp/mss/{source})")
    parser.add_argument("--sources", nargs="+", default=None,
                        help="instruments of the baselines [mfcc-clean: every source of the dump; "
                             "mfcc-cascade: every source with a finished separator at --separators]")
    parser.add_argument("--out", required=True, help="directory of this model's embedding files")
    parser.add_argument("--name", help="model name in the tables [the experiment's directory name]")
    parser.add_argument("--sets", nargs="+", default=["normal", "pseudo", "vis", "abx", "swap"],
                        choices=("normal", "pseudo", "vis", "abx", "swap"), help="[all]")
    parser.add_argument("--abx-dir", help="ABX set in the Inst-Sim-ABX format (clips of the test dump)")
    parser.add_argument("--part", type=int, default=1, help="this job's share, 1..N [%(default)s]")
    parser.add_argument("--num-parts", type=int, default=1, help="N, the number of jobs [%(default)s]")
    parser.add_argument("--segment-seconds", type=float, default=10.0, help="MES segments [%(default)s]")
    parser.add_argument("--pseudo-targets", type=int, default=10, help="MES-Pseudo target pieces [10]")
    parser.add_argument("--pseudo-others", type=int, default=3,
                        help="non-target pieces per target piece [%(default)s]")
    parser.add_argument("--vis-pieces", type=int, default=10, help="pieces of the t-SNE figure [10]")
    parser.add_argument("--vis-segments", type=int, default=10, help="segments retrieved per piece [10]")
    parser.add_argument("--vis-per-pair", type=int, default=10,
                        help="pseudo segments per (target, non-target) piece pair [%(default)s]")
    parser.add_argument("--swap-pairs", type=int, default=50,
                        help="segment pairs per instrument of the swap test [%(default)s]")
    parser.add_argument("--seed", type=int, default=0, help="[%(default)s]")
    parser.add_argument("--batch-size", type=int, default=8, help="[%(default)s]")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... or auto [%(default)s]")


def _model(args: argparse.Namespace, dump_sources: tuple[str, ...], sample_rate: int):
    """(model, name, kind, fingerprint of what it was built from)."""
    from inmsrl.eval.mfcc import MfccStatistics
    from inmsrl.tasks.common import load_separator_set, load_trained, trained_separator_sources, trained_stamp

    if args.exp_dir:
        model = load_trained(args.exp_dir, dump_sources)
        return model, args.name or Path(args.exp_dir).name, "learned", trained_stamp(args.exp_dir)
    if args.baseline == "mfcc-clean":
        model = MfccStatistics(dump_sources, args.sources or dump_sources, sample_rate=sample_rate)
        return model, args.name or "mfcc_clean", "baseline", "mfcc-clean"
    if not args.separators:
        raise ValueError("--baseline mfcc-cascade needs --separators (e.g. exp/mss/{source})")
    names = args.sources or trained_separator_sources(args.separators, dump_sources)
    separator = load_separator_set(args.separators, names, dump_sources)
    stamps = [trained_stamp(args.separators.format(source=s)) for s in names]
    return (MfccStatistics(dump_sources, names, separator, sample_rate=sample_rate),
            args.name or "mfcc_cascade", "baseline",
            f"mfcc-cascade:{'|'.join(stamps)}")


def _items(args: argparse.Namespace, dump, name: str):
    from inmsrl.data.abx import confident, read_abx_set
    from inmsrl.data.segments import ensure_segment_tables
    from inmsrl.eval.embeddings import segment_items
    from inmsrl.eval.swap import swap_items
    from inmsrl.eval.testsets import abx_items, pseudo_test_items, visualisation_items

    table = ensure_segment_tables(dump, [args.segment_seconds])[args.segment_seconds]
    if name == "normal":
        return segment_items("normal", table, len(dump.sources))
    if name == "pseudo":
        return pseudo_test_items(table, dump.sources, dump.sources, args.pseudo_targets, args.pseudo_others,
                                 args.seed)
    if name == "vis":
        return visualisation_items(table, dump.sources, dump.sources, args.vis_pieces, args.vis_segments,
                                   args.vis_per_pair, args.seed)
    if name == "swap":
        return swap_items(table, dump.sources, dump.sources, args.swap_pairs, args.seed)
    if not args.abx_dir:
        return None
    triplets = confident(read_abx_set(args.abx_dir).triplets)
    return abx_items(triplets, dump.track_ids, len(dump.sources), dump.sample_rate)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from inmsrl.data.abx import AbxFormatError
    from inmsrl.data.dump import Dump, DumpError
    from inmsrl.environment import compute_devices
    from inmsrl.eval.embeddings import EmbeddingFileError, EmbeddingSet, embed_items, part_path, part_rows
    from inmsrl.eval.testsets import TestSetError
    from inmsrl.memory import reuse_freed_memory
    from inmsrl.tasks.common import TaskConfigError

    reuse_freed_memory()  # every batch frees and makes the same large tensors again
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    out = Path(args.out)
    try:
        dump = Dump.open(args.dump)
        model, name, kind, origin = _model(args, dump.sources, dump.sample_rate)
        for set_name in args.sets:
            try:
                items = _items(args, dump, set_name)
            except TestSetError as err:  # a small corpus may not give every set; the others still score
                print(f"inmsrl embed: WARNING: {set_name} set skipped: {err}", file=sys.stderr)
                continue
            if items is None:
                print(f"inmsrl embed: {set_name}: no --abx-dir, skipped", file=sys.stderr)
                continue
            # Only embed the items the model can use: a pseudo item built for a source it lacks is waste.
            keep = np.isin(items.target, [-1, *(dump.sources.index(s) for s in model.sources)])
            items = items.subset(np.flatnonzero(keep))
            rows = part_rows(len(items), args.part, args.num_parts)
            content = hashlib.sha256(items.origins.tobytes()).hexdigest()
            fingerprint = hashlib.sha256(f"{origin}|{dump.root.resolve()}|{content}|{items.length}".encode()
                                         ).hexdigest()[:16]
            path = part_path(out, set_name, args.part, args.num_parts)
            if path.exists():
                try:
                    if EmbeddingSet.load(path).meta.get("fingerprint") == fingerprint:
                        print(f"{path}: up to date, kept")
                        continue
                except EmbeddingFileError:
                    pass
            for stale in out.glob(f"{set_name}.*-of-*.npz"):
                if not stale.name.endswith(f"-of-{args.num_parts}.npz"):
                    stale.unlink()
            embeddings = embed_items(model, dump, items, args.batch_size, device, rows)
            device_name = next((d for d in compute_devices() if d.startswith(str(device))), str(device))
            embeddings.meta.update(fingerprint=fingerprint, label=_label(name), kind=kind, device=device_name,
                                   exp_dir=str(args.exp_dir or ""), part=str(args.part))
            embeddings.save(path)
            print(f"{path}: {len(embeddings)} of {len(items)} {set_name} items on {device_name}")
    except (DumpError, TaskConfigError, AbxFormatError, TestSetError, EmbeddingFileError, ValueError,
            FileNotFoundError) as err:
        print(f"inmsrl embed: {err}", file=sys.stderr)
        return 1
    return 0


def _label(name: str) -> str:
    from inmsrl.eval.scoring import model_label

    return model_label(name)

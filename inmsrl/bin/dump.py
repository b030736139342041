"""Decode a data directory once into a memory-mapped dump and build its segment tables.

Resumes an interrupted dump; a finished one is reused, unless the audio it was made from changed
since (then it is dumped again, segment tables included). Prints the share of segments in which each
source is active, so a silent source class is seen before training.
"""

from __future__ import annotations

import argparse
import sys

from inmsrl.audio.io import SAMPLE_RATE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", required=True, help="data directory (see docs/design.md)")
    parser.add_argument("--out", required=True, help="dump directory to write (e.g. dump/train)")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE, help="[%(default)s]")
    parser.add_argument("--segments", type=float, nargs="+", default=[3.0, 5.0, 10.0], metavar="SEC",
                        help="segment lengths of the tables to build, in seconds [3 5 10]")
    parser.add_argument("--jobs", type=int, default=1, help="decoding processes [%(default)s]")


def run(args: argparse.Namespace) -> int:
    from inmsrl.audio.io import AudioReadError
    from inmsrl.data.datadir import DataDirError
    from inmsrl.data.dump import DumpError, dump_data_dir
    from inmsrl.data.segments import ensure_segment_tables

    try:
        dump = dump_data_dir(args.data_dir, args.out, sample_rate=args.sample_rate, jobs=args.jobs,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (DataDirError, DumpError, AudioReadError) as err:
        print(f"inmsrl dump: {err}", file=sys.stderr)
        return 1
    hours = dump.lengths.sum() / dump.sample_rate / 3600
    print(f"{dump.root}: {dump.num_tracks} tracks, {hours:.2f} h, sources {' '.join(dump.sources)}")
    for seconds, table in ensure_segment_tables(dump, args.segments).items():
        if not len(table):
            print(f"  {seconds:g} s segments: 0 (every track is shorter)")
            continue
        shares = " ".join(f"{name} {share:.0%}"
                          for name, share in zip(dump.sources, table.active.mean(axis=0), strict=True))
        print(f"  {seconds:g} s segments: {len(table)}; active: {shares}")
    return 0

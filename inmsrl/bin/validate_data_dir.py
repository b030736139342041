"""Check data directories against the contract (sources, <source>.scp, mix.scp, track2dur).

Prints ``OK`` and a summary per directory, or every problem found with its file and line; the exit
status is 1 when any directory is malformed. ``--check-audio`` decodes every audio file to its end
(in ``--jobs`` processes), so a truncated or undecodable file, or one holding NaN/inf samples, is
found here rather than by a later stage.
"""

from __future__ import annotations

import argparse
import os
import sys

from inmsrl.data.datadir import DEFAULT_DURATION_TOLERANCE

MAX_SHOWN = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="data directory, e.g. data/train")
    parser.add_argument("--check-audio", action="store_true",
                        help="decode every audio file to its end: decodable, not truncated, no NaN/inf "
                             "samples, one sample rate per track, length as in track2dur")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1), metavar="J",
                        help="with --check-audio, decoding processes (default: %(default)s)")
    parser.add_argument("--sample-rate", type=int, default=None,
                        help="with --check-audio, require this sample rate")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_DURATION_TOLERANCE, metavar="SECONDS",
                        help="allowed difference between a file's length and track2dur "
                             "(default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from inmsrl.data.datadir import DataDir, validate_data_dir

    if args.jobs < 1:
        print(f"validate-data-dir: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    status = 0
    for path in args.dirs:
        errors = validate_data_dir(path, check_audio=args.check_audio, sample_rate=args.sample_rate,
                                   duration_tolerance=args.tolerance, decode=args.check_audio,
                                   jobs=args.jobs, progress=True)
        if errors:
            status = 1
            print(f"{path}: {len(errors)} problem(s)", file=sys.stderr)
            for error in errors[:MAX_SHOWN]:
                print(f"  {error}", file=sys.stderr)
            if len(errors) > MAX_SHOWN:
                print(f"  ... and {len(errors) - MAX_SHOWN} more", file=sys.stderr)
            continue
        data = DataDir.load(path)
        hours = sum(data.durations.values()) / 3600
        audio = ", audio decoded" if args.check_audio else ""
        print(f"OK {path}: {len(data)} tracks, {hours:.2f} h, sources: {' '.join(data.sources)}{audio}")
    return status

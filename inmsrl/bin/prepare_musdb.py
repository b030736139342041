"""Recipe stage 1 for MUSDB18-HQ: check the corpus, split it, write mono sources and the data directories.

Reads a MUSDB18-HQ folder (``train/`` and ``test/`` of ``<Artist - Title>/`` track folders holding
the mixture and one stereo WAV per source) and writes ``OUT/{train,validation,test}/``: validation is
the standard split, the 14 train tracks that the ``musdb`` package's ``configs/mus.yaml`` lists (or
``--validation-tracks FILE``), whose sources and file names the same configuration gives. Every track
is checked before anything is written, and every problem is reported at once, naming the track and
file (missing, unreadable, mono, sample rate or length unlike the mixture's). Each source is mixed
down to mono into ``AUDIO_OUT/<set>/<id>/<source>.flac``; re-running keeps what is up to date. See
:mod:`inmsrl.data.musdb`.
"""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="the MUSDB18-HQ folder (with train/ and test/)")
    parser.add_argument("--out", required=True, help="data folder; writes OUT/<set>/ (e.g. data)")
    parser.add_argument("--audio-out", default=None, metavar="DIR",
                        help="where the mono source files go (default: audio/ beside OUT)")
    parser.add_argument("--validation-tracks", default=None, metavar="FILE",
                        help="train/ folder names of the validation set, one per line (default: the "
                             "musdb package's standard 14)")
    parser.add_argument("--jobs", type=int, default=1, metavar="J", help="parallel processes (default: 1)")


def run(args: argparse.Namespace) -> int:
    from inmsrl.audio.io import AudioReadError
    from inmsrl.data.datadir import DataDirError
    from inmsrl.data.musdb import MusdbError, prepare_musdb, read_track_list

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s prepare-musdb %(levelname)s: %(message)s")
    if args.jobs < 1:
        print(f"prepare-musdb: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    try:
        validation = read_track_list(args.validation_tracks) if args.validation_tracks else None
        written = prepare_musdb(args.corpus, args.out, audio_out=args.audio_out, validation_tracks=validation,
                                jobs=args.jobs)
    except (MusdbError, DataDirError, AudioReadError) as err:
        print(f"prepare-musdb: error: {err}", file=sys.stderr)
        return 1
    for path in written.values():
        print(path)
    return 0

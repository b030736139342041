"""Recipe stage 1 for Slakh2100: split the corpus, write per-class submixes and the data directories.

Reads the original ``slakh2100_flac`` or the ``slakh2100_flac_redux`` layout (or the synthetic corpus of
``inmsrl synth``), sums each track's rendered stems into drums/bass/piano/guitar/residuals by MIDI
program, writes them as ``AUDIO_OUT/<set>/<TrackNNNNN>/<source>.flac`` and ``OUT/<set>/`` data
directories that list the corpus's own ``mix.flac``. Re-running resumes: a finished submix is kept
while its stem files are unchanged (size and modification time) and made again when one changed. Folders
that are not tracks and metadata that is probably wrong (drum-like stems without is_drum, tracks without
rendered stems, stereo stems) are warned about, with their number at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys

from inmsrl.data.slakh import LAYOUTS, PAPER_TRAIN_TRACKS, SPLIT_CHOICES, SPLITS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True,
                        help="Slakh2100 folder (either release) or a synthetic one")
    parser.add_argument("--out", required=True, help="data folder; writes OUT/<set>/ (e.g. data)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto",
                        help="corpus layout (default: detected; see inmsrl.data.slakh)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="paper",
                        help="paper: first --paper-train redux-train tracks, all validation and test; "
                             "redux: the redux folders as they are (default: %(default)s)")
    parser.add_argument("--paper-train", type=int, default=PAPER_TRAIN_TRACKS, metavar="N",
                        help="training tracks of the paper split (default: %(default)s)")
    parser.add_argument("--redux-json", default=None, metavar="PATH",
                        help="slakh-utils splits/redux.json; needed for the original layout")
    parser.add_argument("--audio-out", default=None, metavar="DIR",
                        help="where submix FLACs go (default: audio/ beside OUT, i.e. OUT/../audio)")
    parser.add_argument("--sets", default=",".join(SPLITS),
                        help="comma-separated sets to prepare (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, metavar="J", help="parallel processes (default: 1)")
    parser.add_argument("--max-tracks", type=int, default=None, metavar="N",
                        help="keep only the first N tracks of each set, by id (for quick trials)")


def run(args: argparse.Namespace) -> int:
    from inmsrl.audio.io import AudioReadError
    from inmsrl.data.datadir import DataDirError
    from inmsrl.data.slakh import SlakhError, prepare_slakh

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s prepare-slakh %(levelname)s: %(message)s")
    sets = [name.strip() for name in args.sets.split(",") if name.strip()]
    for name, value in (("--jobs", args.jobs), ("--paper-train", args.paper_train),
                        ("--max-tracks", args.max_tracks)):
        if value is not None and value < 1:
            print(f"prepare-slakh: {name} must be at least 1, got {value}", file=sys.stderr)
            return 2
    try:
        written = prepare_slakh(args.corpus, args.out, audio_out=args.audio_out, layout=args.layout,
                                split=args.split, redux_json=args.redux_json, sets=sets, jobs=args.jobs,
                                max_tracks=args.max_tracks, paper_train=args.paper_train)
    except (SlakhError, DataDirError, AudioReadError) as err:
        print(f"prepare-slakh: error: {err}", file=sys.stderr)
        return 1
    for path in written.values():
        print(path)
    return 0

"""Generate a synthetic corpus in the Slakh2100 redux layout (train/validation/test, FLAC stems, MIDI,
metadata.yaml with hidden per-stem attributes), or with ``--layout musdb`` in MUSDB18-HQ's (train/ and
test/ of stereo mixture/vocals/drums/bass/other WAVs, the validation tracks listed in
validation_tracks.txt; the Slakh-layout corpus it is grouped from stays in OUT/slakh). Re-running with
the same options resumes; with other options into the same folder it stops with an error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _splits(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from err
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}")
    return values  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to create or resume")
    parser.add_argument("--num-tracks", type=int, required=True, help="number of tracks over all splits")
    parser.add_argument("--duration", type=float, required=True, help="length of every track in seconds")
    parser.add_argument("--eval-duration", type=float, default=None,
                        help="length of the validation and test tracks in seconds (default: --duration); "
                             "the music-ID vote needs several segments per song, training does not need "
                             "longer songs")
    parser.add_argument("--seed", type=int, required=True, help="seed that fixes every track's content")
    parser.add_argument("--soundfont", type=Path, default=None,
                        help="General MIDI .sf2 file (default: TimGM6mb.sf2 shipped with pretty_midi)")
    parser.add_argument("--splits", type=_splits, default=(0.7, 0.15, 0.15),
                        help="train,validation,test fractions (default 0.7,0.15,0.15)")
    parser.add_argument("--sample-rate", type=int, default=44100, help="audio sample rate (default 44100)")
    parser.add_argument("--vocal-chance", type=float, default=None,
                        help="chance that a song has a sung line on a GM voice or synth lead program "
                             "(default: 0 for --layout slakh, 0.9 for --layout musdb)")
    parser.add_argument("--layout", choices=("slakh", "musdb"), default="slakh",
                        help="slakh: Slakh2100 redux (default); musdb: MUSDB18-HQ, the stems grouped into "
                             "vocals (GM voice/lead programs), drums, bass and other, panned to stereo")
    parser.add_argument("--jobs", type=int, default=1, help="tracks rendered in parallel (default 1)")


def run(args: argparse.Namespace) -> int:
    from inmsrl.data.musdb import MusdbError
    from inmsrl.data.synth import SynthError, SynthOptions, generate_corpus
    from inmsrl.data.synth.musdb_layout import DEFAULT_VOCAL_CHANCE, generate_musdb_corpus

    musdb = args.layout == "musdb"
    vocal_chance = args.vocal_chance if args.vocal_chance is not None else \
        DEFAULT_VOCAL_CHANCE if musdb else 0.0
    try:
        options = SynthOptions(num_tracks=args.num_tracks, duration=args.duration, seed=args.seed,
                               soundfont=args.soundfont, splits=args.splits, sample_rate=args.sample_rate,
                               eval_duration=args.eval_duration, vocal_chance=vocal_chance)
        generate = generate_musdb_corpus if musdb else generate_corpus
        summary = generate(args.out, options, jobs=max(1, args.jobs))
    except (SynthError, MusdbError) as err:
        print(f"inmsrl synth: error: {err}", file=sys.stderr)
        return 1
    print(f"synth: {len(summary.generated)} tracks written, {len(summary.skipped)} already complete, "
          f"in {args.out}", file=sys.stderr)
    return 0

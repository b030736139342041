#!/usr/bin/env bash
# Stage 0 of the mini MUSDB recipe: generates a synthetic corpus in MUSDB18-HQ's layout into $MINI_MUSDB
# (db.sh) with `inmsrl synth --layout musdb`: songs like mini_slakh's, most with a sung line on a GM
# voice or synth lead program, their stems grouped into vocals, drums, bass and other and panned to
# stereo. Finished tracks are kept, so a re-run resumes; other options for an existing corpus are refused
# (delete the folder to regenerate).
set -euo pipefail
num_tracks=192     # 160 train, 12 validation, 20 test, as mini_slakh
duration=20        # seconds per training track
eval_duration=60   # seconds per validation and test track: six 10 s segments for the 5-NN music-ID vote
splits=0.8334,0.0625,0.1041  # train,validation,test fractions (validation tracks sit in train/, listed)
sample_rate=22050  # the models keep the paper's time-frequency resolution at half of MUSDB's 44.1 kHz
vocal_chance=0.9   # songs with a vocal line
seed=0
soundfont=         # a General MIDI .sf2; empty: the one shipped with pretty_midi
jobs=2
. utils/parse_options.sh
. ./db.sh

opts=(--layout musdb --out "${MINI_MUSDB}" --num-tracks "${num_tracks}" --duration "${duration}"
      --eval-duration "${eval_duration}" --splits "${splits}" --sample-rate "${sample_rate}"
      --vocal-chance "${vocal_chance}" --seed "${seed}" --jobs "${jobs}")
[ -n "${soundfont}" ] && opts+=(--soundfont "${soundfont}")
inmsrl synth "${opts[@]}"

#!/usr/bin/env bash
# Stage 0 of the mini recipe: generates the synthetic Slakh-format corpus into $MINI_SLAKH (db.sh)
# with `inmsrl synth`. Finished tracks are kept, so a re-run resumes; changing the options of an
# existing corpus is refused by the generator (delete the folder to regenerate).
set -euo pipefail
num_tracks=72      # tracks over train/validation/test: 40/12/20 with the splits below
duration=30        # seconds per training track
eval_duration=60   # seconds per validation and test track: six 10 s segments, so the 5-NN vote of
                   # MES-Normal can find a song's own segments (with three, a neighbour song outvotes
                   # a perfectly separated one 3 to 2)
splits=0.556,0.167,0.277  # train,validation,test fractions
seed=0
soundfont=         # a General MIDI .sf2; empty: the one shipped with pretty_midi
jobs=2             # parallel rendering processes
. utils/parse_options.sh
. ./db.sh

opts=(--out "${MINI_SLAKH}" --num-tracks "${num_tracks}" --duration "${duration}" --seed "${seed}"
      --eval-duration "${eval_duration}" --splits "${splits}" --jobs "${jobs}")
[ -n "${soundfont}" ] && opts+=(--soundfont "${soundfont}")
inmsrl synth "${opts[@]}"

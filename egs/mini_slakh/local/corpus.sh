#!/usr/bin/env bash
# Stage 0 of the mini recipe: generates the synthetic Slakh-format corpus into $MINI_SLAKH (db.sh)
# with `inmsrl synth`. Finished tracks are kept, so a re-run resumes; changing the options of an
# existing corpus is refused by the generator (delete the folder to regenerate).
set -euo pipefail
num_tracks=40      # tracks over train/validation/test
duration=30        # seconds per track
splits=0.6,0.15,0.25  # train,validation,test fractions: 24/6/10 tracks, enough test songs for 5-NN
seed=0
soundfont=         # a General MIDI .sf2; empty: the one shipped with pretty_midi
jobs=2             # parallel rendering processes
. utils/parse_options.sh
. ./db.sh

opts=(--out "${MINI_SLAKH}" --num-tracks "${num_tracks}" --duration "${duration}" --seed "${seed}"
      --splits "${splits}" --jobs "${jobs}")
[ -n "${soundfont}" ] && opts+=(--soundfont "${soundfont}")
inmsrl synth "${opts[@]}"

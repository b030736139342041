#!/usr/bin/env bash
# Stage 0 of the mini recipe: generates the synthetic Slakh-format corpus into $MINI_SLAKH (db.sh)
# with `inmsrl synth`. Finished tracks are kept, so a re-run resumes; changing the options of an
# existing corpus is refused by the generator (delete the folder to regenerate).
set -euo pipefail
num_tracks=192     # tracks over train/validation/test: 160/12/20 with the splits below
duration=20        # seconds per training track: many short songs rather than a few long ones (on
                   # validation songs, Direct's pre-training reached a drums swap-test share of 0.68
                   # from 160 songs of 20 s, 0.46 from 40 songs of 30 s)
eval_duration=60   # seconds per validation and test track: six 10 s segments, so the 5-NN vote of
                   # MES-Normal can find a song's own segments (with three, a neighbour song outvotes
                   # a perfectly separated one 3 to 2)
splits=0.8334,0.0625,0.1041  # train,validation,test fractions
sample_rate=22050  # half of Slakh's 44.1 kHz: the models keep the paper's time-frequency resolution
                   # (n_fft 1024, hop 256 = 46 ms, 11.6 ms) at less than half the cost on a CPU
seed=0
soundfont=         # a General MIDI .sf2; empty: the one shipped with pretty_midi
jobs=2             # parallel rendering processes
. utils/parse_options.sh
. ./db.sh

opts=(--out "${MINI_SLAKH}" --num-tracks "${num_tracks}" --duration "${duration}" --seed "${seed}"
      --eval-duration "${eval_duration}" --splits "${splits}" --sample-rate "${sample_rate}" --jobs "${jobs}")
[ -n "${soundfont}" ] && opts+=(--soundfont "${soundfont}")
inmsrl synth "${opts[@]}"

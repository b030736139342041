#!/usr/bin/env bash
# Stage 1 of the MUSDB18-HQ recipe: data directories data/{train,validation,test} with the standard
# split (validation: the 14 train tracks of the musdb package's configs/mus.yaml; test: test/). Every
# track is checked first (missing stems, mono files, sample rates or lengths unlike the mixture's are
# errors naming the track and file); each stereo source is mixed down to mono beside the data folder.
set -euo pipefail
data_dir=data
validation_tracks=   # a file of train/ folder names (one per line) instead of the standard 14
jobs=4
. utils/parse_options.sh
. ./db.sh
db_require MUSDB18HQ

opts=(--corpus "${MUSDB18HQ}" --out "${data_dir}" --audio-out "$(dirname "${data_dir}")/sources"
      --jobs "${jobs}")
[ -n "${validation_tracks}" ] && opts+=(--validation-tracks "${validation_tracks}")
inmsrl prepare-musdb "${opts[@]}"

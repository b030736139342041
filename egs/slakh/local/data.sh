#!/usr/bin/env bash
# Stage 1 of the Slakh recipe: per-class submixes and data directories with the paper's split
# (§4.1: the first 1200 redux-train tracks, 270 validation, the redux test tracks).
set -euo pipefail
data_dir=data
split=paper        # paper | redux
redux_json=        # the original release only: redux.json, listing the omitted duplicate tracks
jobs=8
. utils/parse_options.sh
. ./db.sh
db_require SLAKH

opts=(--corpus "${SLAKH}" --split "${split}" --out "${data_dir}" --audio-out "$(dirname "${data_dir}")/submixes"
      --jobs "${jobs}")
[ -n "${redux_json}" ] && opts+=(--redux-json "${redux_json}")
inmsrl prepare-slakh "${opts[@]}"

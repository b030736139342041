#!/usr/bin/env bash
# Stage 1 of the mini MUSDB recipe: data directories from the synthetic corpus, prepared exactly as the
# real MUSDB18-HQ (egs/musdb18hq/local/data.sh), with the generator's validation tracks in place of the
# musdb package's 14.
set -euo pipefail
data_dir=data
jobs=2
. utils/parse_options.sh
. ./db.sh
db_require MINI_MUSDB

inmsrl prepare-musdb --corpus "${MINI_MUSDB}" --out "${data_dir}" \
  --audio-out "$(dirname "${data_dir}")/sources" --jobs "${jobs}" \
  --validation-tracks "${MINI_MUSDB}/validation_tracks.txt"

#!/usr/bin/env bash
# Stage 1 of the mini recipe: data directories from the synthetic corpus. It is in Slakh's redux layout,
# so the Slakh preparation prepares it, with the generator's own train/validation/test folders.
set -euo pipefail
data_dir=data
. utils/parse_options.sh
. ./db.sh
db_require MINI_SLAKH

inmsrl prepare-slakh --corpus "${MINI_SLAKH}" --layout redux --split redux \
  --out "${data_dir}" --audio-out "$(dirname "${data_dir}")/submixes"

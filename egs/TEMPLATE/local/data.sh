#!/usr/bin/env bash
# Stage 1: write data/<set>/{sources, <source>.scp, mix.scp, track2dur} for every set (docs/design.md §3);
# the stage validates them afterwards. See egs/slakh/local/data.sh for an example.
set -euo pipefail
data_dir=data
. utils/parse_options.sh
. ./db.sh
echo "local/data.sh: not written yet for this recipe: prepare ${data_dir}/<set>/ here" >&2
exit 1

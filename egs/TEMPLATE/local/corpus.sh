#!/usr/bin/env bash
# Stage 0: make the corpus available. Check that it exists where db.sh says (or generate it), and tell
# the user how to get it otherwise. See egs/slakh/local/corpus.sh for an example.
set -euo pipefail
. ./db.sh
echo "local/corpus.sh: not written yet for this recipe: check or fetch your corpus here" >&2
exit 1

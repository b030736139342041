#!/usr/bin/env bash
# MUSDB18-HQ recipe: the paper's models for MUSDB's four sources (vocals, drums, bass, other; every one
# is a target). Set MUSDB18HQ in db.sh and the job backend in cmd.sh. MUSDB has no human ABX
# judgements, so PAFT (stage 7) and the perceptual agreement of stage 8 are skipped, with a message.
#   ./run.sh                          every stage
#   ./run.sh --stage 3 --stop-stage 6 a range; see ./inmsrl.sh --help
set -euo pipefail

./inmsrl.sh \
  --nj 16 \
  --ngpu 1 \
  --conf-dir conf \
  --triplet-models "clean cascade" \
  --direct-teacher clean \
  --search-weights vocals=1 \
  "$@"

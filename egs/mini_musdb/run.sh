#!/usr/bin/env bash
# The mini MUSDB recipe: the pipeline on a small synthetic corpus in MUSDB18-HQ's layout (vocals, drums,
# bass, other; all four are targets) that stage 0 generates, sized for a laptop CPU like mini_slakh.
# There are no human ABX judgements for it, so stage 7 (PAFT) and the agreement of stage 8 are skipped.
#   ./run.sh                          every stage
#   ./run.sh --stage 3 --stop-stage 4 a range; see ./inmsrl.sh --help
set -euo pipefail

./inmsrl.sh \
  --nj 2 \
  --sample-rate 22050 \
  --conf-dir conf \
  --direct-teacher clean \
  --search-weights vocals=1 \
  --score-opts "--pseudo-targets 5 --vis-pieces 6 --vis-segments 3 --vis-per-pair 2" \
  --sdr-opts "--tracks 4 --seconds 30" \
  "$@"

#!/usr/bin/env bash
# The mini recipe: the whole inmsrl pipeline on a small synthetic Slakh-format corpus that stage 0
# generates (no download), sized for a laptop CPU. Like ESPnet's mini_an4, CI runs it too.
#   ./run.sh                          every stage
#   ./run.sh --stage 3 --stop-stage 4 a range; see ./inmsrl.sh --help
set -euo pipefail

./inmsrl.sh \
  --nj 2 \
  --sample-rate 22050 \
  --conf-dir conf \
  --target-sources "drums bass piano guitar" \
  --search-weights piano=1 \
  --paft-models "clean cascade cascade_normal cascade_ft cascade_ft_normal cascade_paft" \
  --direct-teacher clean \
  --score-opts "--pseudo-targets 5 --vis-pieces 6 --vis-segments 3 --vis-per-pair 2" \
  --sdr-opts "--tracks 4 --seconds 30" \
  "$@"

#!/usr/bin/env bash
# Slakh2100 recipe: reproduces the paper (APSIPA Trans. SIP 2025, e303) at full size. Set SLAKH (and
# INST_SIM_ABX for PAFT and perceptual scoring) in db.sh, and the job backend in cmd.sh.
#   ./run.sh                          every stage
#   ./run.sh --stage 3 --stop-stage 6 a range; see ./inmsrl.sh --help
set -euo pipefail

./inmsrl.sh \
  --nj 16 \
  --ngpu 1 \
  --conf-dir conf/paper \
  --target-sources "drums bass piano guitar" \
  --search-weights piano=1 \
  --triplet-models "clean cascade cascade_wo_pseudo" \
  --paft-models "clean cascade cascade_normal cascade_paft cascade_ft cascade_ft_normal direct_da direct_reconst" \
  "$@"

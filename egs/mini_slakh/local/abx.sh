#!/usr/bin/env bash
# Stage 2 (ABX part) of the mini recipe: an ABX set in the public Inst-Sim-ABX format for the synthetic
# test tracks, answered by simulated listeners who judge by the generator's hidden attributes.
set -euo pipefail
out=dump/abx
triplets=240       # per instrument and condition, as in the public set
seed=0
. utils/parse_options.sh
. ./db.sh
db_require MINI_SLAKH

if [ -f "${out}/inst_sim_abx_answers.csv" ]; then
  echo "local/abx.sh: ${out} exists; kept (remove it to simulate again)"
else
  inmsrl abx-simulate --corpus "${MINI_SLAKH}" --split test --out "${out}" --triplets "${triplets}" \
    --seed "${seed}"
fi
inmsrl abx-table --abx-dir "${out}"

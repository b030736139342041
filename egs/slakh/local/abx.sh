#!/usr/bin/env bash
# Stage 2 (ABX part) of the Slakh recipe: the public Inst-Sim-ABX answers (Hashizume & Toda, ICASSP
# 2025), whose clips are cut from the redux test tracks. Checks them, prints Table 1 of the paper, and
# links them where the later stages look (dump/abx).
set -euo pipefail
out=dump/abx
. utils/parse_options.sh
. ./db.sh
if ! db_require INST_SIM_ABX; then
  echo "local/abx.sh: get the Inst-Sim-ABX answers (inst_sim_abx_answers.csv and dict_triplet_*.json)" >&2
  echo "local/abx.sh: from the authors' repository and set INST_SIM_ABX in db.sh." >&2
  exit 1
fi
inmsrl abx-table --abx-dir "${INST_SIM_ABX}"
mkdir -p "$(dirname "${out}")"
ln -sfn "$(cd "${INST_SIM_ABX}" && pwd)" "${out}"

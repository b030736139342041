# Where the corpora live on this machine. Fill in the paths your recipe needs; stages that need an
# unset one stop with a message naming it (db_require). Environment variables of the same name win.
SLAKH=${SLAKH:-}                 # Slakh2100: slakh2100_flac_redux/ or the original release folder
INST_SIM_ABX=${INST_SIM_ABX:-}   # Inst-Sim-ABX answers: the folder with inst_sim_abx_answers.csv
MINI_SLAKH=${MINI_SLAKH:-downloads/mini_slakh}   # synthetic corpus made by the mini recipe

db_require() {  # db_require NAME...: fail with a clear message unless each named path is set
  local name
  for name in "$@"; do
    if [ -z "${!name:-}" ]; then
      echo "db.sh: ${name} is not set. Edit $(pwd)/db.sh (or export ${name}=/path) to point at it." >&2
      return 1
    fi
    if [ ! -e "${!name}" ]; then
      echo "db.sh: ${name}=${!name} does not exist. Fix it in $(pwd)/db.sh." >&2
      return 1
    fi
  done
}

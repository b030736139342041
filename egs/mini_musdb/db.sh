# Where the corpora live on this machine. Fill in the paths your recipe needs; stages that need an
# unset one stop with a message naming it (db_require). Environment variables of the same name win.
MINI_MUSDB=${MINI_MUSDB:-downloads/mini_musdb}   # synthetic MUSDB18-HQ-layout corpus made by stage 0

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

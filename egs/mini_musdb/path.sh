# Sourced by the recipe scripts: activates the environment built by tools/install.sh and puts the
# Kaldi-style tools (utils/) on PATH. MAIN_ROOT is the repository root, two levels above the recipe.
MAIN_ROOT=$PWD/../..

if [ -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "${MAIN_ROOT}/tools/venv/bin/activate"
elif ! command -v inmsrl >/dev/null 2>&1; then
  echo "path.sh: no environment: ${MAIN_ROOT}/tools/venv does not exist and 'inmsrl' is not on PATH." >&2
  echo "path.sh: build it with 'make -C ${MAIN_ROOT} env' (or pip install -e ${MAIN_ROOT} in yours)." >&2
  return 1 2>/dev/null || exit 1
fi
export PATH="${MAIN_ROOT}/utils:${PATH}"
export PYTHONUNBUFFERED=1   # progress output reaches the logs as it happens
export LC_ALL=C             # sort order of scp files must not depend on the user's locale

#!/usr/bin/env bash
# Builds the inmsrl environment from nothing: system packages (when root), the virtual environment
# tools/venv (ESPnet's convention; egs/*/path.sh activates it) with the pinned requirements, and the
# package itself in editable mode. Idempotent: when nothing it depends on changed, it returns at once.
#
# Usage: tools/install.sh [--force]
#   PYTHON=/path/to/python3.11 tools/install.sh   to choose the interpreter (default: python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/tools/venv"
stamp="$venv/.inmsrl-installed"
python=${PYTHON:-python3}
force=false
[ "${1:-}" = "--force" ] && force=true

log() { echo "[tools/install.sh] $*" >&2; }

# 1. System packages. museval reads audio through stempeg, which calls ffmpeg/ffprobe, and
# `inmsrl embed-files` decodes mp3/m4a/aac/opus with them. The listening page's browser test drives
# Debian's chromium (with its chromedriver); a machine without it still runs everything else.
missing=()
for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
packages=()
[ ${#missing[@]} -gt 0 ] && packages+=(ffmpeg)
[ -x /usr/bin/chromium ] || packages+=(chromium chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing system package(s) ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  elif [ ${#missing[@]} -gt 0 ]; then
    log "ERROR: ${missing[*]} not found on PATH. museval needs them. Install the system package"
    log "       'ffmpeg' (Debian/Ubuntu: sudo apt-get install ffmpeg; conda: conda install ffmpeg)"
    log "       and run this script again."
    exit 1
  else
    log "WARNING: /usr/bin/chromium is missing: the listening page's browser test will fail."
    log "         Install it as root: apt-get install chromium chromium-driver"
  fi
fi

# 2. The virtual environment, rebuilt only when its inputs changed.
inputs=("$root/setup.py" "$root/tools/requirements.txt" "$root/tools/requirements-dev.txt" "$0")
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if ! $force && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  log "environment up to date: $venv"
  exit 0
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  log "ERROR: '$python' is not Python >= 3.10 (the recipes are tested with 3.11)."
  log "       Set PYTHON=/path/to/python3.11 and run again."
  exit 1
fi
# A new environment is about 6.5 GB (torch and its CUDA libraries), and pip unpacks wheels under
# $TMPDIR on the way: check for room first rather than let pip fail half-way through.
need_gb=${INMSRL_INSTALL_FREE_GB:-8}
if [ ! -x "$venv/bin/python" ]; then
  for dir in "$root/tools" "${TMPDIR:-/tmp}"; do
    free_gb=$(df -Pk "$dir" | awk 'NR == 2 { print int($4 / 1048576) }')
    if [ "$free_gb" -lt "$need_gb" ]; then
      log "ERROR: only ${free_gb} GB free on the file system of $dir; building $venv needs about"
      log "       ${need_gb} GB there. Free some space (or set TMPDIR to a roomier place) and run"
      log "       again; INMSRL_INSTALL_FREE_GB=N changes the threshold."
      exit 1
    fi
  done
  log "creating virtual environment $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-cache-dir)
log "installing pinned requirements (torch is large: the first run takes a few minutes)"
"${pip[@]}" install -q -r "$root/tools/requirements.txt" -r "$root/tools/requirements-dev.txt"
# tinysoundfont declares pyaudio for live playback only; rendering to arrays does not need it, and
# pyaudio would have to compile against system PortAudio headers.
"${pip[@]}" install -q --no-deps "tinysoundfont==0.3.7"
"${pip[@]}" install -q --no-deps --no-build-isolation -e "$root"
"$venv/bin/python" -c 'import torch, torchaudio, museval, soundfile, tinysoundfont, faiss, inmsrl' \
  || { log "ERROR: the environment was built but does not import; see the messages above."; exit 1; }
echo "$want" > "$stamp"
log "environment ready: $venv ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"

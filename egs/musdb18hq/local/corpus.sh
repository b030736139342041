#!/usr/bin/env bash
# Stage 0 of the MUSDB18-HQ recipe: checks that the corpus is where db.sh says. The recipe does not
# download it: MUSDB18-HQ (Rafii et al., 2019; over 20 GB of WAV) is distributed on Zenodo
# (doi:10.5281/zenodo.3338373) on request; unpack musdb18hq.zip and set MUSDB18HQ in db.sh.
set -euo pipefail
. ./db.sh
if ! db_require MUSDB18HQ; then
  echo "local/corpus.sh: get MUSDB18-HQ (musdb18hq.zip, Zenodo doi:10.5281/zenodo.3338373), unzip it" >&2
  echo "local/corpus.sh: and set MUSDB18HQ=/path/to/musdb18hq (the folder with train/ and test/) in db.sh." >&2
  exit 1
fi
if [ -d "${MUSDB18HQ}/train" ] && [ -d "${MUSDB18HQ}/test" ]; then
  echo "local/corpus.sh: MUSDB18-HQ found at ${MUSDB18HQ}" \
    "($(find "${MUSDB18HQ}/train" "${MUSDB18HQ}/test" -mindepth 1 -maxdepth 1 -type d | wc -l) track folders)"
else
  echo "local/corpus.sh: ${MUSDB18HQ} holds no train/ and test/ folders: is MUSDB18HQ the unpacked" >&2
  echo "local/corpus.sh: MUSDB18-HQ folder (not MUSDB18's .stem.mp4 release, which needs decoding first)?" >&2
  exit 1
fi

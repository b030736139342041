#!/usr/bin/env bash
# Stage 0 of the Slakh recipe: checks that Slakh2100 is where db.sh says. The corpus (about 100 GB of
# FLAC) is not downloaded by the recipe: fetch slakh2100_flac_redux (or the original release) from the
# Slakh2100 project page (Manilow et al., 2019; distributed on Zenodo), unpack it, set SLAKH in db.sh.
set -euo pipefail
. ./db.sh
if ! db_require SLAKH; then
  echo "local/corpus.sh: download Slakh2100 (slakh2100_flac_redux.tar.gz) from its project page," >&2
  echo "local/corpus.sh: unpack it and set SLAKH=/path/to/slakh2100_flac_redux in db.sh." >&2
  exit 1
fi
if [ -d "${SLAKH}/train" ] || compgen -G "${SLAKH}/Track*" >/dev/null; then
  echo "local/corpus.sh: Slakh2100 found at ${SLAKH}"
else
  echo "local/corpus.sh: ${SLAKH} holds neither train/ nor Track*/ folders: is SLAKH the folder of the" >&2
  echo "local/corpus.sh: unpacked release (slakh2100_flac_redux or the original slakh2100_flac)?" >&2
  exit 1
fi

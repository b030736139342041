#!/usr/bin/env bash
# One training per source as one task of a job array:
#   scripts/train_per_source.sh <sources.list> <task-id> <config> <exp-root> <ngpu> [key=value ...]
# trains the <task-id>-th source (1-based line of <sources.list>) into <exp-root>/<source> with
# model.target_sources=[<source>]. The stage scripts call it as ${cuda_cmd} JOB=1:N ... so that every
# backend (run.pl, queue.pl, slurm.pl) gets the per-source trainings as one array.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: $0 <sources.list> <task-id> <config> <exp-root> <ngpu> [key=value ...]" >&2
  exit 1
fi
list=$1 task_id=$2 config=$3 exp_root=$4 ngpu=$5
shift 5
source=$(sed -n "${task_id}p" "${list}")
if [ -z "${source}" ]; then
  echo "$0: ${list} has no line ${task_id}" >&2
  exit 1
fi
echo "training ${source} (task ${task_id} of $(wc -l < "${list}")) into ${exp_root}/${source}"
exec inmsrl train --config "${config}" --exp-dir "${exp_root}/${source}" --ngpu "${ngpu}" \
  "model.target_sources=[${source}]" "$@"

#!/usr/bin/env bash
# One training of a list as one task of a job array:
#   scripts/train_array.sh <trainings.list> <task-id> <ngpu> [key=value ...]
# Line <task-id> (1-based) of <trainings.list> is "<exp-dir> <config> [key=value ...]"; the training
# runs `inmsrl train` into <exp-dir> with the command line's overrides first and the line's after them
# (so a line's seed=2 beats a common seed=0). The stages call it as ${cuda_cmd} JOB=1:N ... so that
# every backend (run.pl, queue.pl, slurm.pl) runs the list as one array: the separators of stage 3,
# the extractors of stage 4, the Direct variants of stage 6, the PAFT runs of stage 7. A finished experiment is skipped and a killed one resumes, as always.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 <trainings.list> <task-id> <ngpu> [key=value ...]" >&2
  exit 1
fi
list=$1 task_id=$2 ngpu=$3
shift 3
line=$(sed -n "${task_id}p" "${list}")
read -r -a words <<< "${line}"
if [ "${#words[@]}" -lt 2 ]; then
  echo "$0: ${list} line ${task_id} is not '<exp-dir> <config> [key=value ...]': '${line}'" >&2
  exit 1
fi
exp=${words[0]} config=${words[1]}
echo "training ${exp} (${config}; task ${task_id} of $(grep -c . "${list}"))"
exec inmsrl train --config "${config}" --exp-dir "${exp}" --ngpu "${ngpu}" "$@" "${words[@]:2}"

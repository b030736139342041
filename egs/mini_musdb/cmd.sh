# Job backend for every stage, in Kaldi's style: the recipe runs "${train_cmd} JOB=1:N log cmd ...".
#   local : utils/run.pl   — this machine; GPUs shared out with CUDA_VISIBLE_DEVICES
#   sge   : utils/queue.pl — Grid Engine (qsub); options translated by conf/queue.conf
#   slurm : utils/slurm.pl — Slurm (one array job per call); options translated by conf/slurm.conf
# Choose with cmd_backend= here, or `cmd_backend=slurm ./run.sh` for one run.
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
  local)
    export train_cmd="run.pl"
    export cuda_cmd="run.pl"
    export decode_cmd="run.pl"
    ;;
  sge)
    export train_cmd="queue.pl --config conf/queue.conf --mem 4G"
    export cuda_cmd="queue.pl --config conf/queue.conf --mem 8G --gpu 1"
    export decode_cmd="queue.pl --config conf/queue.conf --mem 4G"
    ;;
  slurm)
    export train_cmd="slurm.pl --config conf/slurm.conf --mem 2G"
    export cuda_cmd="slurm.pl --config conf/slurm.conf --mem 8G --gpu 1"
    export decode_cmd="slurm.pl --config conf/slurm.conf --mem 2G"
    ;;
  *)
    echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (use local, sge or slurm)" >&2
    return 1 2>/dev/null || exit 1
    ;;
esac

#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munge + slurmctld + slurmd), for trying slurm.pl and for
# the test suite: `tools/slurm/local_slurm.sh start|stop|status`. Installs Debian's slurm-wlm and
# munge when run as root and they are missing. The cluster's files live in $INMSRL_SLURM_DIR
# (default /var/tmp/inmsrl-slurm); its configuration becomes /etc/slurm/slurm.conf unless that file
# exists and was not written by this script.
set -euo pipefail

dir=${INMSRL_SLURM_DIR:-/var/tmp/inmsrl-slurm}
conf=/etc/slurm/slurm.conf
marker="# written by inmsrl tools/slurm/local_slurm.sh"

log() { echo "[local_slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (slurmd runs jobs as their owner)"; }

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  need_root "installing slurm-wlm and munge"
  log "installing Debian packages slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
  if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script; refusing to replace a real cluster's config"
  fi
  local host mem_mb
  host=$(hostname)
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  mkdir -p "$dir"/{state,spool} /etc/slurm
  chown -R slurm:slurm "$dir"
  cat > "$conf" <<CONF
$marker
ClusterName=inmsrl
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=slurm
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=2
MinJobAge=600
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
DefMemPerCPU=256
NodeName=$host CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

running() { pgrep -x "$1" >/dev/null; }

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

wait_for_node() {
  local i
  for i in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then return 0; fi
    sleep 0.5
  done
  die "the node did not become idle in 30 s; see $dir/slurmctld.log and $dir/slurmd.log"
}

start() {
  install_packages
  need_root "starting the local cluster"
  write_config
  if ! munge_works; then
    [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge
    # --force: a munged killed earlier leaves its socket and pid file behind.
    runuser -u munge -- /usr/sbin/munged --force
    local i
    for i in $(seq 1 20); do munge_works && break; sleep 0.25; done
    munge_works || die "munged does not answer; see /var/log/munge/munged.log"
  fi
  running slurmctld || slurmctld -f "$conf"
  running slurmd || slurmd -f "$conf"
  wait_for_node
  log "Slurm is up: $(sinfo -h -o '%P %D node(s) %T' | head -n 1) (logs in $dir)"
}

stop() {
  local daemon
  for daemon in slurmd slurmctld; do
    pkill -x "$daemon" 2>/dev/null || true
  done
  log "stopped slurmd and slurmctld (munged left running)"
}

status() {
  if running slurmctld && running slurmd && sinfo >/dev/null 2>&1; then
    sinfo
  else
    log "the local cluster is not running"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

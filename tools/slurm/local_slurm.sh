#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munge + slurmctld + slurmd), for trying slurm.pl and for
# the test suite: `tools/slurm/local_slurm.sh start|stop|status`. Installs Debian's slurm-wlm and
# munge when run as root and they are missing. The cluster's files live in $INMSRL_SLURM_DIR
# (default /var/tmp/inmsrl-slurm); its configuration becomes /etc/slurm/slurm.conf unless that file
# exists and was not written by this script.
#
# Memory requests are enforced, so that slurm.pl's report of an over-memory task can be tried and
# tested: with a cgroup-v1 memory controller this machine lets us use, by task/cgroup (the kernel kills
# the task, Slurm records OUT_OF_MEMORY); otherwise by jobacct_gather/linux's OverMemoryKill, which
# polls every task's memory each second and kills a task above its request. INMSRL_SLURM_MEMORY=cgroup
# or =poll picks one. A changed configuration restarts running daemons.
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
  local host mem_mb memory
  host=$(hostname)
  mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  memory=$(memory_enforcement)
  mkdir -p "$dir"/{state,spool} /etc/slurm
  chown -R slurm:slurm "$dir"
  local plugins
  if [ "$memory" = cgroup ]; then
    plugins="ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=NoOverMemoryKill"
    cat > "$conf.new" <<CGROUP
$marker
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainRAMSpace=yes
ConstrainSwapSpace=$([ -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ] && echo yes || echo no)
CGROUP
    replace_if_changed "$conf.new" /etc/slurm/cgroup.conf
  else
    plugins="ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill"
  fi
  log "memory requests are enforced by $([ "$memory" = cgroup ] && echo "task/cgroup (cgroup v1)" \
    || echo "jobacct_gather/linux OverMemoryKill (polled every second)")"
  cat > "$conf.new" <<CONF
$marker
ClusterName=inmsrl
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=slurm
SlurmdUser=root
$plugins
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
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
  replace_if_changed "$conf.new" "$conf"
}

# cgroup when this machine has a cgroup-v1 memory hierarchy we may create groups in, else poll.
memory_enforcement() {
  local choice=${INMSRL_SLURM_MEMORY:-auto} probe=/sys/fs/cgroup/memory/inmsrl-slurm-probe.$$
  case "$choice" in
    cgroup|poll) echo "$choice"; return ;;
    auto) ;;
    *) die "INMSRL_SLURM_MEMORY must be cgroup, poll or auto, not '$choice'" ;;
  esac
  if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && mkdir "$probe" 2>/dev/null; then
    rmdir "$probe"
    echo cgroup
  else
    echo poll
  fi
}

# Move $1 over $2 unless they are equal; note a change, so that running daemons are restarted.
replace_if_changed() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    rm -f "$1"
  else
    mv "$1" "$2"
    config_changed=1
  fi
}
config_changed=0

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
  if [ "$config_changed" = 1 ] && { running slurmctld || running slurmd; }; then
    log "the configuration changed: restarting slurmctld and slurmd"
    stop
  fi
  running slurmctld || slurmctld -f "$conf"
  running slurmd || slurmd -f "$conf"
  wait_for_node
  log "Slurm is up: $(sinfo -h -o '%P %D node(s) %T' | head -n 1) (logs in $dir)"
}

stop() {  # the daemons this cluster started, by their pid files
  local daemon pid i
  for daemon in slurmd slurmctld; do
    pid=$(cat "$dir/$daemon.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || continue
    for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
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

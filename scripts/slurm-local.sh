#!/usr/bin/env bash
# Start a real single-node Slurm (munged + slurmctld + slurmd) on this Debian machine, for running the workflow
# through snakemake-executor-plugin-slurm with workflow/profiles/slurm-local. Run as root.
#   scripts/slurm-local.sh          install if needed, configure, start, wait until the node is idle
#   scripts/slurm-local.sh --stop   stop the three daemons
# Idempotent: daemons already running (per their pid files) are left alone unless slurm.conf had to change.
# No accounting database: profiles/slurm-local polls job states with squeue, which only sees finished jobs for
# MinJobAge seconds, so MinJobAge is kept far above the plugin's status-check interval (40 s, x3 = 120 s).
set -euo pipefail

CONF=/etc/slurm/slurm.conf            # where Debian's slurm-wlm (>= 20.11) reads its config
STATE=/var/lib/slurm
LOGS=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
MUNGE_KEY=/etc/munge/munge.key
TIMEOUT=60                            # seconds to wait for the node to become idle

die() { echo "slurm-local: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and starts system daemons)"

stop_daemon() {  # <pidfile> <name>: TERM the daemon named in its pid file, wait up to 15 s for it to exit
  local pidfile=$1 name=$2 pid i
  if ! running "$pidfile"; then echo "$name: not running"; return 0; fi
  pid=$(cat "$pidfile")
  kill "$pid"
  for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || { echo "$name: stopped (pid $pid)"; return 0; }; sleep 0.1; done
  die "$name (pid $pid) did not exit within 15 s"
}

stop_all() {  # slurmd before slurmctld, munged last (both slurm daemons authenticate through it)
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  stop_daemon "$MUNGE_PID" munged
}

case "${1:-}" in
  --stop) stop_all; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--stop]" ;;
esac

t0=$(now)

# 1. Packages. slurm-wlm pulls in slurmctld, slurmd and the client tools; munge authenticates the daemons.
if ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  echo "installing slurm-wlm and munge with apt ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge >/dev/null
fi
t_installed=$(now)

# No systemd here (PID 1 is not systemd: `systemctl is-system-running` says offline), so the daemons are started
# directly below; anything the packages' maintainer scripts started is found through the same pid files.

# 2. Munge key: the package usually creates one; make sure it exists with the owner and mode munged insists on.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s "$MUNGE_KEY" ]; then
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$MUNGE_KEY"
  else
    dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
  fi
fi
chown munge:munge "$MUNGE_KEY"
chmod 0400 "$MUNGE_KEY"

# 3. slurm.conf for this host alone.
# The node must be named as slurmd names itself (the short hostname, not necessarily "localhost"); NodeAddr and
# the controller address are pinned to 127.0.0.1 so nothing depends on DNS.
NODE=$(hostname -s)
CPUS=$(nproc)
# RealMemory slightly below what slurmd measures: a node configured with more memory than it reports is drained
# ("Low RealMemory"). Keep a margin of 10 % (at least 512 MB) for the OS and the daemons.
MEM_MB=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
MARGIN=$(( MEM_MB / 10 > 512 ? MEM_MB / 10 : 512 ))
REAL_MEM=$(( MEM_MB - MARGIN ))

new_conf=$(cat <<EOF
# Written by scripts/slurm-local.sh (avqa): one node, no accounting database. Regenerated on every run.
ClusterName=avqa-local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=${STATE}/slurmctld
SlurmdSpoolDir=${STATE}/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=${LOGS}/slurmctld.log
SlurmdLogFile=${LOGS}/slurmd.log
# No cgroups needed (containers often lack a usable cgroup hierarchy).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# CPUs and memory are the consumable resources, so several small jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
MpiDefault=none
# No slurmdbd: sacct cannot answer, so Snakemake polls with squeue, which keeps finished jobs for MinJobAge s.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=600
# A node that was down (e.g. after --stop) returns to service as soon as its slurmd registers.
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${REAL_MEM} State=UNKNOWN
PartitionName=local Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
)

install -d -m 0755 /etc/slurm "$STATE/slurmctld" "$STATE/slurmd" "$LOGS"
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
  printf '%s\n' "$new_conf" > "$CONF"
  echo "wrote $CONF (node $NODE, CPUs=$CPUS, RealMemory=$REAL_MEM MB)"
  # Node definitions are only read at start-up, so running slurm daemons are restarted on a changed config.
  if running "$CTLD_PID" || running "$SLURMD_PID"; then
    echo "config changed: restarting the slurm daemons"
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
  fi
fi

# 4. Daemons, each only if not already running (this is what makes a second run a no-op).
if running "$MUNGE_PID"; then echo "munged: already running (pid $(cat "$MUNGE_PID"))"; else
  runuser -u munge -- /usr/sbin/munged
  echo "munged: started"
fi
for i in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
munge -n | unmunge >/dev/null || die "munge round trip failed; see /var/log/munge/munged.log"
if running "$CTLD_PID"; then echo "slurmctld: already running (pid $(cat "$CTLD_PID"))"; else
  /usr/sbin/slurmctld          # daemonizes; writes $CTLD_PID
  echo "slurmctld: started"
fi
if running "$SLURMD_PID"; then echo "slurmd: already running (pid $(cat "$SLURMD_PID"))"; else
  /usr/sbin/slurmd             # daemonizes; writes $SLURMD_PID
  echo "slurmd: started"
fi

# 5. Wait until the controller answers and the node is idle (or mixed/allocated, if jobs are already running).
state=""
for _ in $(seq $(( TIMEOUT * 2 ))); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    *drain*|*inval*|*fail*) break ;;   # will not recover by waiting
  esac
  sleep 0.5
done
case "$state" in
  idle|mixed|allocated|completing) ;;
  *)
    {
      echo "node $NODE is not usable after up to ${TIMEOUT} s (state: '${state:-no answer from slurmctld}')"
      scontrol show node "$NODE" 2>/dev/null | grep -E "State=|Reason=" || true
      for f in "$LOGS/slurmctld.log" "$LOGS/slurmd.log" /var/log/munge/munged.log; do
        echo "--- tail $f"; tail -n 20 "$f" 2>/dev/null || true
      done
    } >&2
    exit 1 ;;
esac
t_up=$(now)

sinfo
echo "slurm-local: node $NODE $state, partition local, CPUs=$CPUS, RealMemory=${REAL_MEM} MB;" \
  "install $(secs "$t0" "$t_installed") s, start $(secs "$t_installed" "$t_up") s"

#!/usr/bin/env bash
# A real one-node Slurm cluster in a folder, for the campaign tests: `start DIR` installs Debian's slurm-wlm and munge
# if missing, starts munged (private key, socket, pid and log under DIR, not /etc/munge), slurmctld and slurmd (one
# node with this machine's CPUs and memory from `slurmd -C`, proctrack/linuxproc, no cgroups, free TCP ports chosen
# now), waits until the node is idle and prints the `export SLURM_CONF=...` line the client commands need.
# `stop DIR` cancels the cluster's jobs and stops the three daemons from their pid files. Both are idempotent; root
# only (SlurmUser=root). Everything lives in DIR: slurm.conf, munge/, state/, spool/, *.log, *.pid.
set -euo pipefail

usage() {
    printf 'usage: %s start DIR | stop DIR\n' "$(basename "$0")" >&2
    exit 2
}
[ $# -eq 2 ] || usage
command="$1"
case "$command" in start|stop) ;; *) usage ;; esac
if [ "$(id -u)" -ne 0 ]; then
    printf 'error: the cluster runs its daemons as root (SlurmUser=root): run as root\n' >&2
    exit 1
fi
case "$2" in *[[:space:]]*) printf 'error: DIR must have no spaces (slurm.conf): %s\n' "$2" >&2; exit 1 ;; esac
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
conf="$dir/slurm.conf"
socket="$dir/munge-socket/munge.socket"
export SLURM_CONF="$conf"

alive() {  # alive PIDFILE: the process named in PIDFILE runs, and is this cluster's daemon (not a reused pid)
    local pid command_line
    [ -s "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    command_line="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    case "$command_line" in *"$dir/"*) return 0 ;; *) return 1 ;; esac
}

stop_daemon() {  # stop_daemon NAME PIDFILE: TERM, up to 15 s, then KILL
    local name="$1" pidfile="$2" pid
    alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        printf 'warning: %s (pid %s) did not stop on TERM in 15 s; killing it\n' "$name" "$pid" >&2
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    printf '==> stopped %s (pid %s)\n' "$name" "$pid" >&2
}

show_logs() {
    local log
    for log in "$dir/munge/munged.log" "$dir/slurmctld.log" "$dir/slurmd.log"; do
        [ -f "$log" ] || continue
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 30 "$log" >&2
    done
}

fail() {
    printf 'error: %s\n' "$1" >&2
    show_logs
    exit 1
}

stop_cluster() {
    local jobs
    if alive "$dir/slurmctld.pid"; then  # end the jobs first: slurmd leaves running job steps behind
        jobs="$(timeout 10 squeue -h -o %A 2>/dev/null || true)"
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs 2>/dev/null || true
            for _ in $(seq 100); do [ -z "$(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.1; done
        fi
    fi
    stop_daemon slurmd "$dir/slurmd.pid"
    stop_daemon slurmctld "$dir/slurmctld.pid"
    stop_daemon munged "$dir/munge/munged.pid"
}
if [ "$command" = stop ]; then
    stop_cluster
    exit 0
fi

# --- start ---
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null || ! command -v mungekey >/dev/null; then
    printf '==> installing slurm-wlm and munge (apt-get, about 20 s)\n' >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$dir/apt.log" 2>&1 || { cat "$dir/apt.log" >&2; fail 'apt-get update failed'; }
    apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$dir/apt.log" 2>&1 \
        || { cat "$dir/apt.log" >&2; fail 'apt-get install slurm-wlm munge failed'; }
fi

if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && alive "$dir/munge/munged.pid"; then
    printf '==> the cluster in %s is already running\n' "$dir" >&2
    printf 'export SLURM_CONF=%s\n' "$conf"
    exit 0
fi
# Half a cluster (a daemon died, or a stale pid file): start again from a clean slate of daemons.
stop_cluster

# munged checks permissions: its key, log, pid and seed in a folder only root reads; the socket in a folder that every
# user can enter, and every folder above it too (execute for all).
chmod a+x "$dir"
path="$dir"
while [ "$path" != / ]; do
    path="$(dirname "$path")"
    [ "$(( $(stat -c %a "$path" | sed 's/^/0/') & 1 ))" -eq 1 ] \
        || fail "munged needs every folder above its socket to be executable by all; $path is not (chmod o+x)"
done
rm -rf "$dir/state" "$dir/spool"  # a fresh cluster: no jobs, node state or job ids from an earlier start
mkdir -p "$dir/munge" "$dir/munge-socket" "$dir/state" "$dir/spool"
chmod 700 "$dir/munge"
chmod 755 "$dir/munge-socket"
if [ ! -s "$dir/munge/munge.key" ]; then
    mungekey --create --bits=1024 --keyfile="$dir/munge/munge.key" || fail 'mungekey could not create the key'
fi
chmod 600 "$dir/munge/munge.key"
printf '==> starting munged (socket %s)\n' "$socket" >&2
munged --origin=127.0.0.1 --socket="$socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" || fail 'munged did not start'
munge -n -S "$socket" | unmunge -S "$socket" >/dev/null || fail 'munge cannot encode and decode a credential'

# Two free TCP ports (none listening on them now, per /proc/net/tcp and tcp6).
port_in_use() {
    local hex
    hex="$(printf ':%04X ' "$1")"
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '{print $2 " "}' | grep -q -- "$hex"
}
pick_port() {
    local port
    for _ in $(seq 200); do
        port=$(( 20000 + RANDOM % 30000 ))
        [ "$port" != "${1:-}" ] && ! port_in_use "$port" && { echo "$port"; return 0; }
    done
    fail 'no free TCP port found in 20000-49999'
}
ctld_port="$(pick_port)"
slurmd_port="$(pick_port "$ctld_port")"

# The node: this machine's real CPUs, boards, sockets, cores, threads and memory, as slurmd itself measures them.
node="$(hostname -s 2>/dev/null || uname -n | cut -d. -f1)"
hardware="$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')"
case "$hardware" in *CPUs=*RealMemory=*) ;; *) fail "unexpected slurmd -C output: $hardware" ;; esac

cat >"$conf" <<EOF
# Written by scripts/slurm_cluster.sh: a one-node cluster for tests, everything under $dir.
ClusterName=flowpolicy
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
PlugStackConfig=$dir/plugstack.conf
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node $hardware State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
: >"$dir/plugstack.conf"  # no SPANK plugins (not the system's /etc/slurm/plugstack.conf)

printf '==> starting slurmctld (port %s) and slurmd (node %s, port %s)\n' "$ctld_port" "$node" "$slurmd_port" >&2
slurmctld -f "$conf" >>"$dir/slurmctld.out" 2>&1 || { cat "$dir/slurmctld.out" >&2; fail 'slurmctld did not start'; }
slurmd -f "$conf" -N "$node" >>"$dir/slurmd.out" 2>&1 || { cat "$dir/slurmd.out" >&2; fail 'slurmd did not start'; }

state=''
for _ in $(seq 120); do  # 60 s
    state="$(timeout 5 sinfo -h -N -n "$node" -o %T 2>/dev/null || true)"
    [ "$state" = idle ] && break
    alive "$dir/slurmctld.pid" || { sleep 0.5; alive "$dir/slurmctld.pid" || fail 'slurmctld exited'; }
    alive "$dir/slurmd.pid" || { sleep 0.5; alive "$dir/slurmd.pid" || fail 'slurmd exited'; }
    sleep 0.5
done
[ "$state" = idle ] || fail "the node $node is not idle after 60 s (sinfo state: '${state:-no answer}')"
printf '==> cluster up: node %s idle, %s\n' "$node" "$(sinfo -h -N -o '%c CPUs, %m MB')" >&2
printf 'export SLURM_CONF=%s\n' "$conf"

#!/usr/bin/env bash
# slurm-smoke.sh: end-to-end check of sharded diffegg runs under a real Slurm: a single-node cluster on localhost.
#
# Usage:  tools/slurm-smoke.sh [CLI]        run the check (from any directory)
#         tools/slurm-smoke.sh --start      only start the localhost cluster (munge, slurmctld, slurmd) and print SLURM_CONF
#         tools/slurm-smoke.sh --stop       stop the daemons this script started
#   CLI   DiffEgg.Cli.dll (run with `dotnet`) or an executable; default $DIFFEGG_CLI, else
#         src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll (relative to the repository root)
#
# Steps: (a) use the Slurm cluster that answers (`sinfo`), else start munge + slurmctld + slurmd on localhost with a
# slurm.conf of its own in $SLURM_SMOKE_DIR (default ${TMPDIR:-/tmp}/diffegg-slurm-smoke; root needed; installs
# slurm-wlm and munge with apt-get when missing); (b) `diffegg synth` a small dataset; (c) the single-process reference:
# edges, then panoptic; (d) deploy/slurm/submit.sh: edges as an N-task array + dependent merge job, then panoptic the same
# way (chained with afterok), waits for all jobs; (e) compares the merged outputs with the reference byte for byte
# (cmp on every file, diff -r) and checks the manifests; (f) resubmits the panoptic array: every image must be skipped and
# the merge must again equal the reference. Prints PASS/FAIL per check; exit 0 only when all pass.
#
# Environment: SHARDS (3), COUNT (12 images), SIZE (64), SEED (3), TIMEOUT (1800 s for the jobs),
#   KEEP=1 keeps the work folder, DIFFEGG_CLI (see CLI), SLURM_SMOKE_DIR (cluster folder), SLURM_SMOKE_OWN=1 starts the
#   localhost cluster even when another one answers. The cluster stays up after the run (--stop stops it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster_dir="${SLURM_SMOKE_DIR:-${TMPDIR:-/tmp}/diffegg-slurm-smoke}"
shards="${SHARDS:-3}" count="${COUNT:-12}" size="${SIZE:-64}" seed="${SEED:-3}" timeout="${TIMEOUT:-1800}"

log() { printf '[slurm-smoke] %s\n' "$*"; }
die() { printf '[slurm-smoke] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- (a) the cluster
stop_cluster() {
  for d in slurmd slurmctld; do
    local pf="$cluster_dir/$d.pid"
    if [[ -s "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then
      log "stopping $d (pid $(cat "$pf"))"; kill "$(cat "$pf")"
    fi
  done
}

ensure_installed() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  [[ $EUID -eq 0 ]] || die "slurmctld/slurmd/sbatch/munged missing: run as root once, or: sudo apt-get install -y slurm-wlm munge"
  command -v apt-get >/dev/null || die "Slurm is missing and apt-get is not available: install slurm-wlm and munge"
  log "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends slurm-wlm munge \
    || { apt-get update && apt-get install -y --no-install-recommends slurm-wlm munge; }
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

ensure_munge() {
  munge_ok && return 0
  [[ $EUID -eq 0 ]] || die "munged is not running and only root can start it"
  local key=/etc/munge/munge.key
  if [[ ! -s $key ]]; then
    log "creating $key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile="$key" --force
    else dd if=/dev/urandom of="$key" bs=1 count=1024 status=none; fi
  fi
  if id munge >/dev/null 2>&1; then
    chown munge:munge /etc/munge "$key"; chmod 700 /etc/munge; chmod 400 "$key"
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge; chmod 755 /run/munge
    log "starting munged (user munge)"
    runuser -u munge -- munged
  else
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    log "starting munged --force (no munge user)"
    munged --force
  fi
  for _ in $(seq 20); do munge_ok && return 0; sleep 0.5; done
  die "munged does not answer: munge -n | unmunge: $(munge -n 2>&1 | unmunge 2>&1 | head -3)"
}

write_conf() {
  local node cpus
  node="$(hostname -s)"
  cpus="$(nproc)"
  mkdir -p "$cluster_dir/state" "$cluster_dir/spool" "$cluster_dir/log"
  cat > "$cluster_dir/slurm.conf" <<CONF
# Written by tools/slurm-smoke.sh: single-node Slurm on localhost, daemons as root, no cgroups, no accounting.
ClusterName=diffegg-smoke
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=${SLURM_SMOKE_CTLD_PORT:-6817}
SlurmdPort=${SLURM_SMOKE_SLURMD_PORT:-6818}
StateSaveLocation=${cluster_dir}/state
SlurmdSpoolDir=${cluster_dir}/spool
SlurmctldPidFile=${cluster_dir}/slurmctld.pid
SlurmdPidFile=${cluster_dir}/slurmd.pid
SlurmctldLogFile=${cluster_dir}/log/slurmctld.log
SlurmdLogFile=${cluster_dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# keep finished jobs visible to scontrol for an hour (no accounting database, so no sacct)
MinJobAge=3600
# a job whose afterok dependency failed is cancelled instead of pending forever
DependencyParameters=kill_invalid_depend
# jobs run at the submitting shell's nice value
PropagatePrioProcess=1
MpiDefault=none
MailProg=/bin/true
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=smoke Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
}

pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_own_cluster() {
  ensure_installed
  ensure_munge
  export SLURM_CONF="$cluster_dir/slurm.conf"
  if pid_alive "$cluster_dir/slurmctld.pid" && pid_alive "$cluster_dir/slurmd.pid" && scontrol ping >/dev/null 2>&1; then
    log "localhost cluster already running (SLURM_CONF=$SLURM_CONF)"
  else
    [[ $EUID -eq 0 ]] || die "starting slurmctld/slurmd as SlurmUser=root needs root"
    stop_cluster
    write_conf
    log "starting slurmctld and slurmd (SLURM_CONF=$SLURM_CONF, logs in $cluster_dir/log)"
    slurmctld -f "$SLURM_CONF" || die "slurmctld failed: $(tail -5 "$cluster_dir/log/slurmctld.log" 2>/dev/null)"
    for _ in $(seq 30); do scontrol ping >/dev/null 2>&1 && break; sleep 0.5; done
    scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer: $(tail -5 "$cluster_dir/log/slurmctld.log" 2>/dev/null)"
    slurmd -f "$SLURM_CONF" || die "slurmd failed: $(tail -5 "$cluster_dir/log/slurmd.log" 2>/dev/null)"
  fi
  local state=""
  for _ in $(seq 60); do
    state="$(sinfo -h -o %t 2>/dev/null | head -1)"
    [[ "$state" =~ ^(idle|mix|alloc|comp) ]] && break
    if [[ "$state" =~ ^(down|drain|drng|fail) ]]; then scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true; fi
    sleep 1
  done
  [[ "$state" =~ ^(idle|mix|alloc|comp) ]] \
    || die "node not ready (sinfo state '$state'): $(scontrol show node 2>&1 | grep -i reason; tail -5 "$cluster_dir/log/slurmd.log" 2>/dev/null)"
  log "node $(hostname -s) is $state"
}

ensure_cluster() {
  if [[ "${SLURM_SMOKE_OWN:-0}" != 1 ]] && command -v sinfo >/dev/null && timeout 10 sinfo -h >/dev/null 2>&1 \
     && [[ "${SLURM_CONF:-}" != "$cluster_dir/slurm.conf" ]]; then
    log "using the Slurm cluster that answers (${SLURM_CONF:-default slurm.conf}): $(sinfo -h -o '%P %D %t' | head -3 | tr '\n' ' ')"
    return 0
  fi
  start_own_cluster
}

case "${1:-}" in
  --stop) stop_cluster; exit 0;;
  --start) SLURM_SMOKE_OWN=1 ensure_cluster; echo "export SLURM_CONF=$cluster_dir/slurm.conf"; exit 0;;
  -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
esac

# ---------------------------------------------------------------- the CLI
cli="${1:-${DIFFEGG_CLI:-src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll}}"
[[ "$cli" = /* ]] || cli="$repo/$cli"
[[ -e "$cli" ]] || die "CLI not found: $cli (build it, or pass the DLL/executable as the first argument)"
if [[ "$cli" == *.dll ]]; then command -v dotnet >/dev/null || die "dotnet not on PATH (needed for $cli)"; export DIFFEGG="dotnet $cli"
else export DIFFEGG="$cli"; fi
read -r -a diffegg <<< "$DIFFEGG"
"${diffegg[@]}" edges --help 2>&1 | grep -q -- '--shard-index' \
  || die "this CLI has no --shard-index (edges --help): build the sharding feature first ($cli)"

ensure_cluster

# ---------------------------------------------------------------- (b) data, (c) reference
work="$(mktemp -d "${TMPDIR:-/tmp}/diffegg-slurm-smoke.XXXXXX")"
if [[ "${KEEP:-0}" == 1 ]]; then log "work folder (kept): $work"; else trap 'rm -rf "$work"' EXIT; log "work folder: $work"; fi
cd "$work"   # every path below is relative to it, in the reference and in the jobs alike (the jobs run here)

# the reference must not see any scheduler's shard variables
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_COUNT JOB_COMPLETION_INDEX DIFFEGG_SHARD_COUNT \
  AWS_BATCH_JOB_ARRAY_INDEX AWS_BATCH_JOB_ARRAY_SIZE

log "(b) synth --count $count --size $size --seed $seed"
"${diffegg[@]}" synth --count "$count" --size "$size" --seed "$seed" --split test --out D > synth.log
pan_args=(--images D/images --semantic D/semantic --categories D/panoptic.json)
log "(c) reference: edges, panoptic (one process each)"
"${diffegg[@]}" edges --input D/images --out ref/E > ref-edges.log
"${diffegg[@]}" panoptic "${pan_args[@]}" --edges ref/E --out ref/P > ref-panoptic.log

# ---------------------------------------------------------------- (d) sharded runs under Slurm
submit="$repo/deploy/slurm/submit.sh"
array_job="" merge_job=""
submit_step() {  # submit_step OUT -- args...: sets array_job and merge_job
  local out="$1"; shift
  local ids; ids="$("$submit" "$shards" "$out" "$@")" || die "submit.sh failed for $out"
  array_job="$(sed -n 's/^ARRAY_JOB=//p' <<< "$ids")"
  merge_job="$(sed -n 's/^MERGE_JOB=//p' <<< "$ids")"
  [[ -n "$array_job" && -n "$merge_job" ]] || die "submit.sh printed no job ids: $ids"
}

job_state() {  # the state of a job, or of the worst task of an array: COMPLETED, FAILED, CANCELLED, PENDING, ...
  local out; out="$(scontrol show job -o "$1" 2>/dev/null || true)"
  if [[ -z "$out" ]] && command -v sacct >/dev/null; then
    out="$(sacct -n -X -P -o State -j "$1" 2>/dev/null | sed 's/^/JobState=/')"
  fi
  [[ -n "$out" ]] || { echo UNKNOWN; return; }
  local states; states="$(grep -o 'JobState=[A-Z_]*' <<< "$out" | cut -d= -f2 | sort -u)"
  if [[ "$states" == COMPLETED ]]; then echo COMPLETED; else grep -v '^COMPLETED$' <<< "$states" | head -1; fi
}

wait_jobs() {  # wait_jobs ID...: until none is queued or running (a never-satisfiable dependency is cancelled)
  local deadline=$((SECONDS + timeout))
  while :; do
    local q; q="$(squeue -h -o '%i %T %r' -j "$(IFS=,; echo "$*")" 2>/dev/null || true)"
    [[ -z "$q" ]] && return 0
    if grep -q DependencyNeverSatisfied <<< "$q"; then
      log "a dependency failed; cancelling: $(grep DependencyNeverSatisfied <<< "$q" | tr '\n' ' ')"
      scancel "$@" || true
    fi
    (( SECONDS < deadline )) || { log "timeout after ${timeout}s; cancelling $*"; scancel "$@" || true; return 1; }
    sleep 3
  done
}

log "(d) submitting: edges ($shards tasks) → merge → panoptic ($shards tasks, afterok) → merge"
submit_step E -- edges --input D/images --out E
e_array="$array_job" e_merge="$merge_job"
AFTER="$e_merge" submit_step P -- panoptic "${pan_args[@]}" --edges E --out P
p_array="$array_job" p_merge="$merge_job"
log "jobs: edges array $e_array, edges merge $e_merge, panoptic array $p_array, panoptic merge $p_merge"
wait_jobs "$e_array" "$e_merge" "$p_array" "$p_merge" || true

# ---------------------------------------------------------------- (e) compare
fails=0
check() {  # check NAME COMMAND...
  local name="$1"; shift
  if "$@" > check.out 2>&1; then echo "PASS  $name"
  else echo "FAIL  $name"; sed 's/^/      /' check.out | head -20; fails=$((fails + 1)); fi
}
state_is() { [[ "$(job_state "$1")" == "$2" ]] || { echo "job $1: $(job_state "$1"), expected $2"; return 1; }; }
same_tree() {  # same_tree REF OUT: the same file names, and every file byte-identical
  diff -r "$1" "$2" || return 1
  local n=0 f
  while IFS= read -r -d '' f; do cmp "$1/$f" "$2/$f" || return 1; n=$((n + 1)); done \
    < <(cd "$1" && find . -type f -print0)
  [[ $n -gt 0 ]] || { echo "$1 is empty"; return 1; }
  echo "$n file(s) identical"
}
manifests() {  # manifests PARTS: shard-i-of-n.json for every i
  local i; for ((i = 0; i < shards; i++)); do [[ -s "$1/shard-$i-of-$shards.json" ]] || { echo "missing $1/shard-$i-of-$shards.json"; ls -la "$1"; return 1; }; done
}
pngs_equal() {
  local n=0 f
  for f in ref/P/panoptic/*.png; do cmp "$f" "P/panoptic/${f##*/}" || return 1; n=$((n + 1)); done
  [[ $n -eq $count ]] || { echo "$n PNGs, expected $count"; return 1; }
}
skipped_all() {  # every shard's manifest of the resubmitted run reports done 0
  manifests P.parts || return 1
  local f; for f in P.parts/shard-*-of-"$shards".json; do
    grep -Eq '"done": *0\b' "$f" || { echo "$f:"; cat "$f"; return 1; }
  done
}

log "(e) results"
check "edges array job $e_array completed"        state_is "$e_array" COMPLETED
check "edges merge job $e_merge completed"        state_is "$e_merge" COMPLETED
check "panoptic array job $p_array completed"     state_is "$p_array" COMPLETED
check "panoptic merge job $p_merge completed"     state_is "$p_merge" COMPLETED
check "edges manifests E.parts/shard-*-of-$shards.json"    manifests E.parts
check "panoptic manifests P.parts/shard-*-of-$shards.json" manifests P.parts
check "edges: E equals the reference file by file"         same_tree ref/E E
check "panoptic: cmp panoptic.json"                        cmp ref/P/panoptic.json P/panoptic.json
check "panoptic: cmp every panoptic/*.png"                 pngs_equal
check "panoptic: diff -r ref/P P"                          same_tree ref/P P

log "(f) resume: resubmitting the panoptic array (every part exists, so every image is skipped)"
submit_step P -- panoptic "${pan_args[@]}" --edges E --out P
r_array="$array_job" r_merge="$merge_job"
wait_jobs "$r_array" "$r_merge" || true
check "resubmitted panoptic array job $r_array completed"  state_is "$r_array" COMPLETED
check "resubmitted panoptic merge job $r_merge completed"  state_is "$r_merge" COMPLETED
check "resubmitted shards did no work (done 0)"            skipped_all
check "panoptic after resume: diff -r ref/P P"             same_tree ref/P P

if (( fails > 0 )); then
  log "job logs:"; for f in slurm-logs/*.out; do echo "--- $f"; tail -5 "$f"; done
  echo "FAIL ($fails check(s) failed)"; exit 1
fi
echo "PASS (all checks; $shards shards, $count images)"

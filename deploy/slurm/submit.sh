#!/usr/bin/env bash
# submit.sh: submit a sharded diffegg run to Slurm: an N-task array (diffegg-array.sbatch) and a merge job
# (diffegg-merge.sbatch) that starts only when every task succeeded (--dependency=afterok:ARRAY).
#
# Usage:  deploy/slurm/submit.sh N OUT -- <diffegg command line>
#   N    number of shards (array tasks 0..N-1)
#   OUT  the --out of the command line (what `diffegg merge OUT` assembles)
#   e.g. deploy/slurm/submit.sh 8 out/edges -- edges --input data/images --out out/edges
#        deploy/slurm/submit.sh 8 out/pan -- panoptic --images data/images --edges out/edges \
#             --semantic data/semantic --categories data/panoptic.json --out out/pan
# Prints ARRAY_JOB=<id> and MERGE_JOB=<id> (eval-able). Jobs run in the current directory, so relative paths work.
#
# Environment:
#   DIFFEGG       how the jobs run diffegg (default `diffegg`; e.g. "dotnet src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll")
#   AFTER         a job id the array waits for (afterok), e.g. the MERGE_JOB of the previous step, to chain a pipeline
#   SBATCH_ARGS   extra sbatch options for both jobs (split into words), e.g. "--partition=gpu --gres=gpu:1"
#   LOG_DIR       folder of the job logs (default slurm-logs; created)
#   Slurm's own input variables (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT, ...) apply as usual.
# Resume: run the same command again (same N and OUT): images whose part exists are skipped.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 4 && "$3" == "--" ]] || usage
n="$1"; out="$2"; shift 3
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: N must be a positive integer, not '$n'" >&2; exit 2; }

# The command line must write OUT and must not pick its own shard (Slurm's array variables do that).
found_out=0 prev=""
for a in "$@"; do
  [[ "$prev" == "--out" && "$a" == "$out" ]] && found_out=1
  [[ "$a" == "--out=$out" ]] && found_out=1
  case "$a" in --shard-index|--shard-index=*|--shard-count|--shard-count=*)
    echo "submit.sh: leave --shard-index/--shard-count out: each array task reads SLURM_ARRAY_TASK_ID/_MIN/_COUNT" >&2; exit 2;;
  esac
  prev="$a"
done
[[ $found_out -eq 1 ]] || echo "submit.sh: warning: the command line has no '--out $out'; the merge job will merge '$out'" >&2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log_dir="${LOG_DIR:-slurm-logs}"
mkdir -p "$log_dir"
read -r -a extra <<< "${SBATCH_ARGS:-}"
dep=()
[[ -n "${AFTER:-}" ]] && dep=(--dependency="afterok:${AFTER}" --kill-on-invalid-dep=yes)
name="diffegg-$1"

array_job=$(sbatch --parsable "${extra[@]}" "${dep[@]}" --array="0-$((n - 1))" --job-name="$name" \
  --output="$log_dir/%x-%A_%a.out" "$here/diffegg-array.sbatch" "$@")
array_job="${array_job%%;*}"
if ! merge_job=$(sbatch --parsable "${extra[@]}" --dependency="afterok:${array_job}" --kill-on-invalid-dep=yes \
  --job-name="$name-merge" --output="$log_dir/%x-%j.out" "$here/diffegg-merge.sbatch" "$out"); then
  echo "submit.sh: submitting the merge job failed; cancelling array job $array_job" >&2
  scancel "$array_job" || true
  exit 1
fi
merge_job="${merge_job%%;*}"
echo "ARRAY_JOB=$array_job"
echo "MERGE_JOB=$merge_job"

#!/usr/bin/env bash
# Measures `diffegg edges` on one image at several processing sizes: wall time and peak resident memory (GNU time -v), next to
# DiffEgg's own estimate (`--estimate-only`, which reads only the model's config.json files). One row per size, markdown.
#
# usage: tools/measure-edge-memory.sh IMAGE MODEL_DIR SIZE... [-- EXTRA EDGES OPTIONS]
#   e.g. tools/measure-edge-memory.sh /tmp/photo.png models/embedded 64 128 192 256
# The baseline row (size 16) is the process with the model loaded and a negligible image: estimate + baseline ≈ expected peak.
# Set DIFFEGG to the command to run (default: the Release build of this checkout). Runs under `nice -n 10`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
diffegg=${DIFFEGG:-"dotnet $here/src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll"}
image=$1; model=$2; shift 2
sizes=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  sizes+=("$1"); shift
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # size -> "wall_s peak_kb cpu_s"
  /usr/bin/time -v nice -n 10 $diffegg edges --model "$model" --input "$image" --out "$out/e$1" --size "$1" "${extra[@]}" \
    > "$out/log" 2> "$out/time" || { cat "$out/log" "$out/time" >&2; exit 1; }
  local wall peak cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$out/time")
  peak=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$out/time")
  cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$out/time")
  echo "$wall $peak $cpu"
}

read -r base_wall base_kb base_cpu < <(run 16)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| size | processed | estimate (beyond the loaded model) | baseline + estimate | measured peak RSS | CPU time (user+sys) | wall |"
echo "|---|---|---|---|---|---|---|"
echo "| 16 (baseline) | - | - | - | $((base_kb / 1024)) MB | ${base_cpu} s | ${base_wall} s |"
for s in "${sizes[@]}"; do
  est=$($diffegg edges --model "$model" --input "$image" --out "$out/x" --size "$s" --estimate-only "${extra[@]}")
  processed=$(sed -E 's/.*processed at ([0-9]+×[0-9]+).*/\1/' <<< "$est")
  bytes=$(sed -E 's/.*\(([0-9]+) bytes\).*/\1/' <<< "$est")
  read -r wall kb cpu < <(run "$s")
  printf '| %s | %s | %d MB | %d MB | %d MB | %s s | %s s |\n' "$s" "$processed" $((bytes / 1048576)) $(((bytes / 1024 + base_kb) / 1024)) $((kb / 1024)) "$cpu" "$wall"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Issue 14 measurements: the Q/K path (default) against the explicit path, one process per row, same machine, one run.
#   1. DiffEgg.Bench edges-stages: forward without / with Q/K capture, streaming rows + EdgeKL, and the explicit (dense) path,
#      for the embedded model at 64/128/256/512 px and random-weight SD 1.5 UNets (quarter and full width) at 512².
#   2. The whole `diffegg edges` command on one image (tools/measure-edge-memory.sh): this checkout, and with OLD_CLI set, an older
#      build (the "before" column).
# usage: tools/measure-streaming.sh IMAGE [OLD_CLI_DLL]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bench="dotnet $here/bench/DiffEgg.Bench/bin/Release/net10.0/DiffEgg.Bench.dll"
image=$1; old=${2:-}
echo "== $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in 64 128 256; do $bench edges-stages "$here/models/embedded" $s; done
$bench edges-stages "$here/models/embedded" 512 --no-dense
$bench edges-stages quarter 512
$bench edges-stages full 512
echo "== edges command, this checkout"
"$here/tools/measure-edge-memory.sh" "$image" "$here/models/embedded" 64 128 256 512
if [ -n "$old" ]; then
  echo "== edges command, $old"
  DIFFEGG="dotnet $old" "$here/tools/measure-edge-memory.sh" "$image" "$here/models/embedded" 64 128 256
fi
echo "== done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"

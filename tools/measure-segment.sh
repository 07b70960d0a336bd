#!/bin/bash
# Measurements of docs/segment.md: baseline vs segment on held-out scenes (class-agnostic mask AP), and segment's speed and
# memory over a long run (RSS sampled every 100 images).
# Usage (after `dotnet build DiffEgg.sln -c Release`, from the repository root):  tools/measure-segment.sh WORK_DIR [LONG_COUNT]
set -euo pipefail
work=$1; long=${2:-1000}
C="dotnet src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll"
mkdir -p "$work"
# 200 scenes of the stress generator (textures, colours and backgrounds the embedded model and its adapter never trained on)
[ -d "$work/stress200" ] || $C synth --count 200 --size 64 --seed 0 --split test --style stress --out "$work/stress200" > /dev/null
for m in diffcut maskcut; do
  rm -rf "$work/seg-$m"
  /usr/bin/time -f "segment --baseline $m, 200 images: %e s wall, %M kB peak" \
      $C segment --images "$work/stress200/images" --image-info "$work/stress200/instances.json" --out "$work/seg-$m" --baseline $m | tail -1
  for f in baseline results; do
    echo "== $m $f.json (class-agnostic)"
    $C eval instances --gt "$work/stress200/instances.json" --dt "$work/seg-$m/$f.json" --class-agnostic | sed -n '1,3p;9p'
  done
done
# long run: RSS every 100 images (counted by the overlays written)
[ -d "$work/long" ] || $C synth --count "$long" --size 64 --seed 7 --split test --style stress --out "$work/long" > /dev/null
rm -rf "$work/seg-long"
$C segment --images "$work/long/images" --out "$work/seg-long" > "$work/seg-long.log" 2>&1 &
pid=$!
next=100; start=$(date +%s.%N)
while kill -0 $pid 2>/dev/null; do
  n=$(ls "$work/seg-long/overlays" 2>/dev/null | grep -c '\.after\.png$' || true)
  if [ "$n" -ge "$next" ]; then
    rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    # the CLI runs under `dotnet`: the process is the dotnet host itself
    printf "%5d images  %7.1f s  RSS %6d MB\n" "$n" "$(echo "$(date +%s.%N) - $start" | bc)" "$((rss / 1024))"
    next=$((next + 100))
  fi
  sleep 0.5
done
wait $pid
tail -1 "$work/seg-long.log"

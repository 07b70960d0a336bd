#!/bin/bash
# Measurements of docs/finetuning.md ("The shipped adapters"): pseudo-edges (PeakKL + EdgeKL, `edges` defaults) vs one-step
# edges of an adapter on held-out scenes, the time of both `edges` commands, and refinement AP in the demo.
# Usage (after `dotnet build DiffEgg.sln -c Release`, from the repository root):
#   tools/measure-adapter.sh ADAPTER_DIR WORK_DIR
# It writes WORK_DIR/stress200 (`synth --style stress`, a generator the adapter was not trained on) and WORK_DIR/synth200
# (`synth --split test`, the training generator's test split) unless they exist.
set -euo pipefail
adapter=$1; work=$2
C="dotnet src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll"
mkdir -p "$work"
[ -d "$work/stress200" ] || $C synth --count 200 --size 64 --seed 0 --split test --style stress --out "$work/stress200" > /dev/null
[ -d "$work/stress200s1" ] || $C synth --count 200 --size 64 --seed 1 --split test --style stress --out "$work/stress200s1" > /dev/null
[ -d "$work/synth200" ] || $C synth --count 200 --size 64 --seed 0 --split test --out "$work/synth200" > /dev/null
for data in stress200 stress200s1 synth200; do
  for es in 0 64; do
    [ "$es" = 64 ] && [ "$data" != stress200 ] && continue
    echo "== bench-edges $data --edge-size $es"
    $C bench-edges --data "$work/$data" --model models/embedded --adapter "$adapter" --metrics kl --fixed-timesteps none \
        --edge-size $es --json "$work/bench-$data-$es.json" | grep -E '^\||scored at|scenes in'
  done
done
for run in 1 2 3; do
  rm -rf "$work/e-pseudo" "$work/e-onestep"
  /usr/bin/time -f "edges (PeakKL + EdgeKL, defaults), 200 images: %e s wall, %U s user, %S s sys, %M kB" \
      $C edges --input "$work/stress200/images" --out "$work/e-pseudo" > /dev/null
  /usr/bin/time -f "edges --adapter (one-step), 200 images: %e s wall, %U s user, %S s sys, %M kB" \
      $C edges --input "$work/stress200/images" --out "$work/e-onestep" --adapter "$adapter" > /dev/null
done
rm -rf "$work/e-p5"
/usr/bin/time -f "edges --timesteps 200,150,100,50,10 (five UNet passes), 200 images: %e s wall, %U s user, %S s sys, %M kB" \
    $C edges --input "$work/stress200/images" --out "$work/e-p5" --timesteps 200,150,100,50,10 > /dev/null
echo "== demo --count 32 --adapter"
$C demo --count 32 --out "$work/demo32" --adapter "$adapter" | grep -E '│'

#!/bin/bash
# Measurements of docs/own-images.md: edges at several sizes, refine with --uncertain 0 and 0.5 on the Otsu and merged
# inputs of `DiffEgg.Bench photo-reference`, mask AP against its reference, merged pairs split.
# Usage (after `dotnet build DiffEgg.sln -c Release`, from the repository root):
#   tools/measure-own-images.sh PHOTO WORK_DIR [SIZES...]      e.g. tools/measure-own-images.sh coins.png /tmp/coins 64 128 256
set -euo pipefail
photo=$1; work=$2; shift 2
if [ $# -eq 0 ]; then sizes=(64 128 256); else sizes=("$@"); fi
C="dotnet src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll"
B="dotnet bench/DiffEgg.Bench/bin/Release/net10.0/DiffEgg.Bench.dll"
D=$work/ref; R=$work/refined
mkdir -p "$work" "$R"
$B photo-reference "$photo" "$D"
for s in "${sizes[@]}"; do
  /usr/bin/time -v $C edges --input "$D/images" --out "$work/edges-$s" --size "$s" > "$work/edges-$s.log" 2>&1
  echo "edges --size $s: $(grep -E 'Elapsed|Maximum resident|User time|System time' "$work/edges-$s.log" | tr -s ' \t' ' ' | tr '\n' ';')"
done
for s in "${sizes[@]}"; do for u in 0.5 0; do for in in otsu merged; do
  out="$R/$s-$in-u$u.json"
  /usr/bin/time -v $C refine --images "$D/images" --image-info "$D/image-info.json" --edges "$work/edges-$s" \
      --masks "$D/$in.json" --out "$out" --uncertain "$u" > "$work/refine.log" 2>&1
  $C eval instances --gt "$D/reference.json" --dt "$out" --json "$work/eval.json" > /dev/null
  echo "size $s --uncertain $u $in: $(tr -d ' \n' < "$work/eval.json" | grep -oE '"(AP|AP50|AR100)":[0-9.]+' | tr '\n' ' ')" \
       "refine $(grep -E 'Elapsed' "$work/refine.log" | awk '{print $NF}') $(grep -E 'Maximum resident' "$work/refine.log" | awk '{print $NF}') kB"
done; done; done
$B photo-pairs "$D" "$R"/*.json

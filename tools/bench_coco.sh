#!/usr/bin/env bash
# Whole-process speed of `diffegg eval instances` against the official pycocotools, side by side.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tools/bench_coco.sh COCOAPI_DIR [DATA_DIR] [RUNS]

Times, as whole processes and interleaved, RUNS (default 5) runs each of
  python3 -c '<COCO(gt); loadRes(dt); COCOeval(...).evaluate(); accumulate(); summarize()>'   (official pycocotools)
  dotnet src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll eval instances --gt GT --dt DT --iou-type T
for T = segm and bbox, prints the median wall time of each and their ratio, and checks that the 12 stats
are identical to the last bit (exit 1 if not).

This script never downloads anything. COCOAPI_DIR is a copy of the cocoapi sources that you fetch
beforehand, pinned at commit 8c9bcc3 (github.com/cocodataset/cocoapi; the folders PythonAPI/ and common/),
e.g. from a clone:  git -C cocoapi archive 8c9bcc3 PythonAPI common | tar -x -C /tmp/cocoapi
pycocotools is built from it (Cython extension, `setup.py build_ext --inplace`) in a temporary folder
outside the repository; it needs Python 3 with numpy, Cython, setuptools and matplotlib and the Python
headers (Debian: cython3 python3-numpy python3-setuptools python3-matplotlib python3-dev). With numpy >= 1.24,
which removed np.float (used by cocoeval.py at 8c9bcc3), the timed script first sets numpy.float = float,
the builtin that np.float was an alias of, so pycocotools runs unchanged.

DATA_DIR holds gt.json and dt.json; when they are missing they are generated there with
`DiffEgg.Bench coco-eval --generate-only` (2,000 images x (10 gt, 100 RLE detections)). Default: a
temporary folder.

Environment:
  PYTHON        the Python 3 to build and run pycocotools with (default: python3)
  DIFFEGG_DLL   the DiffEgg CLI to time (default: src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll)
  SKIP_BUILD=1  do not run `dotnet build -c Release` for the CLI and the bench first
  IOU_TYPES     the IoU types to time (default: "segm bbox")
EOF
}

if [[ $# -lt 1 || $# -gt 3 || "$1" == "-h" || "$1" == "--help" ]]; then usage; exit 2; fi
COCOAPI=$(cd "$1" && pwd)
RUNS=${3:-5}
PYTHON=${PYTHON:-python3}
IOU_TYPES=${IOU_TYPES:-segm bbox}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DLL=${DIFFEGG_DLL:-$REPO/src/DiffEgg.Cli/bin/Release/net10.0/DiffEgg.Cli.dll}
BENCH_DLL=$REPO/bench/DiffEgg.Bench/bin/Release/net10.0/DiffEgg.Bench.dll

for f in PythonAPI/setup.py PythonAPI/pycocotools/cocoeval.py PythonAPI/pycocotools/_mask.pyx common/maskApi.c; do
    [[ -f "$COCOAPI/$f" ]] || { echo "error: $COCOAPI/$f not found: COCOAPI_DIR must hold cocoapi's PythonAPI/ and common/ (commit 8c9bcc3)" >&2; exit 2; }
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "error: RUNS: '$RUNS' is not a positive integer" >&2; exit 2; }
"$PYTHON" -c 'import numpy, Cython, setuptools, matplotlib' 2>/dev/null || {
    echo "error: $PYTHON cannot import numpy, Cython, setuptools and matplotlib (Debian: apt-get install cython3 python3-numpy python3-setuptools python3-matplotlib python3-dev; or set PYTHON)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench_coco.XXXXXX")
DATA=${2:-$WORK/data}
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)
echo "work folder: $WORK"

# ---- pycocotools, built outside the repository
cp -r "$COCOAPI/PythonAPI" "$COCOAPI/common" "$WORK/"
(cd "$WORK/PythonAPI" && "$PYTHON" setup.py build_ext --inplace > "$WORK/pycocotools-build.log" 2>&1) ||
    { echo "error: building pycocotools failed; see $WORK/pycocotools-build.log" >&2; exit 1; }
echo "pycocotools: built from $COCOAPI $(git -C "$COCOAPI" rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)') with $("$PYTHON" -c 'import sys, numpy, Cython; print("Python", sys.version.split()[0], "numpy", numpy.__version__, "Cython", Cython.__version__)')"

# ---- DiffEgg (the README's path: dotnet build)
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    dotnet build "$REPO/src/DiffEgg.Cli/DiffEgg.Cli.csproj" -c Release -v q -nologo > "$WORK/dotnet-build.log" 2>&1 ||
        { echo "error: dotnet build failed; see $WORK/dotnet-build.log" >&2; exit 1; }
fi
[[ -f "$DLL" ]] || { echo "error: $DLL not found (dotnet build -c Release src/DiffEgg.Cli)" >&2; exit 2; }
if [[ ! -f "$DATA/gt.json" || ! -f "$DATA/dt.json" ]]; then
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        dotnet build "$REPO/bench/DiffEgg.Bench/DiffEgg.Bench.csproj" -c Release -v q -nologo >> "$WORK/dotnet-build.log" 2>&1 ||
            { echo "error: dotnet build failed; see $WORK/dotnet-build.log" >&2; exit 1; }
    fi
    dotnet "$BENCH_DLL" coco-eval --out "$DATA" --generate-only
fi
echo "data: $DATA/gt.json ($(du -h "$DATA/gt.json" | cut -f1)), $DATA/dt.json ($(du -h "$DATA/dt.json" | cut -f1))"
echo "diffegg: $DLL"

# cocoeval.py of 8c9bcc3 uses np.float, an alias of the builtin float that numpy 1.24 removed: restore the alias (same behaviour)
PYCOCO_SCRIPT='
import json, sys
import numpy
if not hasattr(numpy, "float"): numpy.float = float
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt = COCO(sys.argv[1])
dt = gt.loadRes(sys.argv[2])
E = COCOeval(gt, dt, sys.argv[3])
E.evaluate()
E.accumulate()
E.summarize()
json.dump([float(s) for s in E.stats], open(sys.argv[4], "w"))
'

# time_run NAME OUTFILE CMD...: runs CMD with stdout to OUTFILE, appends "wall user+sys" seconds to $WORK/NAME.times
time_run() {
    local name=$1 out=$2; shift 2
    local tf="$WORK/.time"
    TIMEFORMAT='%R %U %S'
    { time "$@" > "$out" 2> "$out.err" ; } 2> "$tf" || { echo "error: $name failed:" >&2; cat "$out.err" >&2; exit 1; }
    read -r wall user sys < "$tf"
    echo "$wall $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')" >> "$WORK/$name.times"
    printf '  %-12s wall %6.2f s  cpu %6.2f s\n' "$name" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
}

status=0
for iou in $IOU_TYPES; do
    echo "== $iou: $RUNS interleaved runs each (order alternates)"
    : > "$WORK/pycocotools-$iou.times"; : > "$WORK/diffegg-$iou.times"
    for ((i = 1; i <= RUNS; i++)); do
        py=(env PYTHONPATH="$WORK/PythonAPI" "$PYTHON" -c "$PYCOCO_SCRIPT" "$DATA/gt.json" "$DATA/dt.json" "$iou" "$WORK/pycocotools-$iou.json")
        de=(dotnet "$DLL" eval instances --gt "$DATA/gt.json" --dt "$DATA/dt.json" --iou-type "$iou" --json "$WORK/diffegg-$iou.json")
        if ((i % 2 == 1)); then
            time_run "pycocotools-$iou" "$WORK/pycocotools-$iou.out" "${py[@]}"
            time_run "diffegg-$iou" "$WORK/diffegg-$iou.out" "${de[@]}"
        else
            time_run "diffegg-$iou" "$WORK/diffegg-$iou.out" "${de[@]}"
            time_run "pycocotools-$iou" "$WORK/pycocotools-$iou.out" "${py[@]}"
        fi
    done
    "$PYTHON" - "$WORK" "$iou" <<'EOF' || status=1
import json, statistics, sys
work, iou = sys.argv[1], sys.argv[2]
names = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']
theirs = json.load(open(f'{work}/pycocotools-{iou}.json'))
ours = json.load(open(f'{work}/diffegg-{iou}.json'))
same = all(float(theirs[i]) == float(ours[n]) for i, n in enumerate(names))
lines = lambda p: [l.rstrip() for l in open(p) if l.startswith(' Average')]
same_lines = lines(f'{work}/pycocotools-{iou}.out') == lines(f'{work}/diffegg-{iou}.out')
def med(name):
    rows = [tuple(map(float, l.split())) for l in open(f'{work}/{name}-{iou}.times') if l.strip()]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
(pw, pc), (dw, dc) = med('pycocotools'), med('diffegg')
print(f'{iou}: median wall pycocotools {pw:.2f} s, diffegg {dw:.2f} s: {pw / dw:.1f}x '
      f'(median cpu {pc:.2f} s vs {dc:.2f} s: {pc / dc:.1f}x); '
      f'12 stats {"bit-identical" if same else "DIFFERENT"} (AP {ours["AP"]!r}), printed lines {"identical" if same_lines else "DIFFERENT"}')
if not same:
    for i, n in enumerate(names):
        print(f'  {n:6s} pycocotools {float(theirs[i])!r:24s} diffegg {float(ours[n])!r}')
sys.exit(0 if same and same_lines else 1)
EOF
done
exit $status

#!/usr/bin/env python3
"""Compare `diffegg eval instances --json` with the official pycocotools on the same files (where pycocotools installs).

Usage: python3 tools/pycocotools_compare.py GT.json RESULTS.json segm|bbox DIFFEGG_OUT.json
Prints both values of each of the 12 stats and exits 1 if any differs in any bit.
"""
import json
import sys
import time

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']

gt_file, dt_file, iou_type, ours_file = sys.argv[1:5]
c0, t0 = time.process_time(), time.time()
gt = COCO(gt_file)
dt = gt.loadRes(dt_file)
E = COCOeval(gt, dt, iou_type)
E.evaluate()
E.accumulate()
E.summarize()
ours = json.load(open(ours_file))
same = True
for i, name in enumerate(NAMES):
    ok = float(E.stats[i]) == ours[name]
    same &= ok
    print(f'{name:6s} pycocotools {float(E.stats[i])!r:22s} diffegg {ours[name]!r:22s} {"==" if ok else "DIFFERENT"}')
print(f'{iou_type}: identical: {same}; pycocotools wall {time.time() - t0:.2f}s cpu {time.process_time() - c0:.2f}s')
sys.exit(0 if same else 1)

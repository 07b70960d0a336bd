#!/usr/bin/env python3
"""Compare `diffegg eval panoptic --json` with the official panopticapi (where it installs).

panopticapi sums per-worker partial IoU sums, so its last digits depend on the number of worker processes; DiffEgg
equals panopticapi run with one worker, which this script forces.
Usage: python3 tools/panopticapi_compare.py GT.json GT_DIR PRED.json PRED_DIR DIFFEGG_OUT.json
"""
import json
import sys
from unittest import mock

from panopticapi import evaluation

gt_json, gt_dir, pred_json, pred_dir, ours_file = sys.argv[1:6]
with mock.patch('multiprocessing.cpu_count', return_value=1):
    res = evaluation.pq_compute(gt_json, pred_json, gt_dir, pred_dir)
ours = json.load(open(ours_file))
same = True
for name in ['All', 'Things', 'Stuff']:
    for k in ['pq', 'sq', 'rq', 'n']:
        ok = float(res[name][k]) == ours[name][k]
        same &= ok
        print(f'{name:7s} {k}: panopticapi {float(res[name][k])!r:22s} diffegg {ours[name][k]!r:22s} {"==" if ok else "DIFFERENT"}')
for cid, v in res['per_class'].items():
    for k in ['pq', 'sq', 'rq']:
        if float(v[k]) != ours['per_class'][str(cid)][k]:
            same = False
            print(f'per_class {cid} {k} DIFFERENT')
print(f'identical (incl. per_class): {same}')
sys.exit(0 if same else 1)

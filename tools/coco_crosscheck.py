#!/usr/bin/env python3
"""Cross-check DiffEgg's COCOeval accumulate/summarize numerics against numpy.

Input: a dump written by `DiffEgg.Bench coco-eval --dump DIR` (DiffEgg's per-image evaluation = pycocotools
evalImgs, plus DiffEgg's accumulated precision/recall and the 12 stats). This script redoes accumulate() and
summarize() with numpy the way pycocotools does (argsort kind='mergesort', cumsum cast to float, np.spacing(1),
searchsorted side='left', np.mean of s[s>-1], np.linspace thresholds) and demands bit-identical arrays and stats.
It checks the numerics DiffEgg reimplements in C# (stable sort, pairwise-summed mean, linspace); it does not
re-derive the per-image matching. Needs only numpy (Debian: apt-get install python3-numpy).

Usage: python3 tools/coco_crosscheck.py DIR/segm.json [DIR/bbox.json ...]
"""
import json
import sys

import numpy as np


def check(path):
    d = json.load(open(path))
    iou_thrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
    rec_thrs = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
    assert list(iou_thrs) == d['iouThrs'], 'iouThrs differ'
    assert list(rec_thrs) == d['recThrs'], 'recThrs differ'
    max_dets = [1, 10, 100]
    area_lbl = ['all', 'small', 'medium', 'large']
    cat_ids = d['catIds']
    T, R, K, A, M = len(iou_thrs), len(rec_thrs), len(cat_ids), 4, 3
    cell = {}
    for e in d['evalImgs']:
        D = len(e['dtScores'])
        e['dtMatched'] = np.array(e['dtMatched'], dtype=bool).reshape((T, D))
        e['dtIgnore'] = np.array(e['dtIgnore'], dtype=bool).reshape((T, D))
        e['dtScores'] = np.array(e['dtScores'], dtype=np.float64)
        cell.setdefault((cat_ids.index(e['category_id']), e['a']), []).append(e)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for (k, a), E in cell.items():
        E.sort(key=lambda e: e['image_id'])
        for m, max_det in enumerate(max_dets):
            scores = np.concatenate([e['dtScores'][0:max_det] for e in E])
            inds = np.argsort(-scores, kind='mergesort')
            dtm = np.concatenate([e['dtMatched'][:, 0:max_det] for e in E], axis=1)[:, inds]
            dtig = np.concatenate([e['dtIgnore'][:, 0:max_det] for e in E], axis=1)[:, inds]
            npig = sum(e['numGtNotIgnored'] for e in E)
            if npig == 0:
                continue
            tps = np.logical_and(dtm, np.logical_not(dtig))
            fps = np.logical_and(np.logical_not(dtm), np.logical_not(dtig))
            tp_sum = np.cumsum(tps, axis=1).astype(dtype=np.float64)
            fp_sum = np.cumsum(fps, axis=1).astype(dtype=np.float64)
            for t, (tp, fp) in enumerate(zip(tp_sum, fp_sum)):
                nd = len(tp)
                rc = tp / npig
                pr = (tp / (fp + tp + np.spacing(1))).tolist()
                recall[t, k, a, m] = rc[-1] if nd else 0
                for i in range(nd - 1, 0, -1):
                    if pr[i] > pr[i - 1]:
                        pr[i - 1] = pr[i]
                q = np.zeros((R,))
                for ri, pi in enumerate(np.searchsorted(rc, rec_thrs, side='left')):
                    if pi >= nd:
                        break
                    q[ri] = pr[pi]
                precision[t, :, k, a, m] = q

    def summarize(ap, iou_thr=None, area='all', md=100):
        aind = [i for i, l in enumerate(area_lbl) if l == area]
        mind = [i for i, x in enumerate(max_dets) if x == md]
        s = precision if ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == iou_thrs)[0]]
        s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
        return -1 if len(s[s > -1]) == 0 else np.mean(s[s > -1])

    stats = [summarize(1), summarize(1, .5), summarize(1, .75), summarize(1, area='small'),
             summarize(1, area='medium'), summarize(1, area='large'), summarize(0, md=1), summarize(0, md=10),
             summarize(0), summarize(0, area='small'), summarize(0, area='medium'), summarize(0, area='large')]
    ours_p = np.array(d['precision']).reshape((T, R, K, A, M))
    ours_r = np.array(d['recall']).reshape((T, K, A, M))
    ok = np.array_equal(ours_p, precision) and np.array_equal(ours_r, recall)
    same = [float(a) == float(b) for a, b in zip(stats, d['stats'])]
    print(f'{path}: precision/recall identical: {ok}; stats identical: {all(same)}')
    for name, a, b in zip(['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'], stats, d['stats']):
        print(f'  {name:6s} numpy {float(a)!r:22s} diffegg {b!r:22s} {"==" if float(a) == b else "DIFFERENT"}')
    return ok and all(same)


if __name__ == '__main__':
    results = [check(p) for p in sys.argv[1:]]
    sys.exit(0 if all(results) else 1)

#!/usr/bin/env python3
"""EdgeKL value distribution of `diffegg edges` outputs, as a Markdown table (docs/method-edges.md, "Why auto is the default").

usage: python3 tools/edge_distribution.py LABEL=DIR [*LABEL=DIR ...]
Reads every DIR/<stem>.edges.safetensors (float32 tensor `edges`); one row per map, or with a leading `*` one row for the
folder (median and min–max over its maps). Columns: mean μ, population σ, μ−σ, min, quantiles, max, skewness of E and
of ln(E + δ) (δ = 1e-6 · max E, as TernaryRule.Log), the fractions edge / interior / uncertain of the paper's μ±σ rule and
of the same rule on ln E, and which of the two `--ternary auto` applies. Standard library only (no numpy).
"""
import array, glob, json, math, os, statistics, struct, sys

def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    e = json.loads(b[8:8 + n])['edges']
    if e['dtype'] != 'F32': raise SystemExit(f"{path}: tensor 'edges' is {e['dtype']}, expected F32")
    s, t = e['data_offsets']
    a = array.array('f'); a.frombytes(b[8 + n + s:8 + n + t])
    if sys.byteorder != 'little': a.byteswap()
    return list(a)

def quantile(sv, p):  # linear interpolation between order statistics (numpy's default)
    i = p * (len(sv) - 1); lo = int(math.floor(i)); hi = min(lo + 1, len(sv) - 1)
    return sv[lo] + (sv[hi] - sv[lo]) * (i - lo)

def moments(v):
    n = len(v); mu = sum(v) / n; sd = math.sqrt(sum((x - mu) ** 2 for x in v) / n)
    sk = sum((x - mu) ** 3 for x in v) / n / sd ** 3 if sd > 0 else 0.0
    return mu, sd, sk

def fractions(v, lo, hi):
    n = len(v); e = sum(x > hi for x in v) / n; i = sum(x < lo for x in v) / n
    return e, i, 1 - e - i

def row(path):
    v = load(path); sv = sorted(v); mu, sd, sk = moments(v)
    d = 1e-6 * sv[-1]; lmu, lsd, lsk = moments([math.log(max(x + d, d)) for x in v])
    return dict(name=os.path.basename(path).split('.')[0], mu=mu, sd=sd, musd=mu - sd, min=sv[0], q05=quantile(sv, .05),
                q50=quantile(sv, .5), q95=quantile(sv, .95), max=sv[-1], sk=sk, lsk=lsk,
                ms=fractions(v, mu - sd, mu + sd), lg=fractions(v, math.exp(lmu - lsd) - d, math.exp(lmu + lsd) - d),
                auto='log' if abs(lsk) < abs(sk) else 'μ±σ')

def g(x): return f"{x:.3g}"
def pct(t): return " / ".join(f"{100 * a:.0f}%" for a in t)

print("| maps | μ | σ | μ−σ | min | q05 | q50 | q95 | max | skew E | skew ln E | μ±σ edge / interior / uncertain | log edge / interior / uncertain | auto |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for arg in sys.argv[1:]:
    label, d = arg.split('=', 1)
    rows = [row(f) for f in sorted(glob.glob(os.path.join(d, '*.edges.safetensors')))]
    if not rows: raise SystemExit(f"{d}: no *.edges.safetensors")
    if label.startswith('*'):
        med = lambda k: statistics.median(r[k] for r in rows)
        rng = lambda k: f"{g(med(k))} ({g(min(r[k] for r in rows))}–{g(max(r[k] for r in rows))})"
        tri = lambda k: " / ".join(f"{100 * statistics.median(r[k][j] for r in rows):.0f}%" for j in range(3))
        print(f"| {label[1:]}: {len(rows)} maps, median (min–max) | {rng('mu')} | {rng('sd')} | {rng('musd')} | {rng('min')} | "
              f"{g(med('q05'))} | {g(med('q50'))} | {g(med('q95'))} | {g(med('max'))} | {rng('sk')} | {rng('lsk')} | "
              f"{tri('ms')} (interior max {100 * max(r['ms'][1] for r in rows):.0f}%) | {tri('lg')} | "
              f"log in {sum(r['auto'] == 'log' for r in rows)}/{len(rows)} |")
    else:
        for r in rows:
            print(f"| {label} {r['name']} | {g(r['mu'])} | {g(r['sd'])} | {g(r['musd'])} | {g(r['min'])} | {g(r['q05'])} | {g(r['q50'])} | "
                  f"{g(r['q95'])} | {g(r['max'])} | {r['sk']:.2f} | {r['lsk']:.2f} | {pct(r['ms'])} | {pct(r['lg'])} | {r['auto']} |")

#!/usr/bin/python3
"""Side-by-side timing of one SD 1.5 UNet forward: diffusers on PyTorch vs DiffEgg (TorchSharp), same weights, same inputs.

Creates a random full-width SD 1.5 UNet2DConditionModel once (seeded), saves it as a diffusers folder
(OUT/unet: config.json + diffusion_pytorch_model.safetensors, float32) and the inputs as OUT/inputs.safetensors,
then runs RUNS interleaved rounds of

  diffusers plain        UNet forward (on torch < 2.0 diffusers uses its explicit AttnProcessor)
  diffusers + hook       forward with a paper-style attention-probability hook on the attn1 layers:
                         probs = softmax(scale * Q K^T) explicitly, head mean summed per resolution, then probs @ V;
                         "accumulate" = Eq 11-12 afterwards (upsample to the top resolution, renormalise rows, average)
  ours off               DiffEgg.Bench unet-file --mode off    (fused attention, no capture)
  ours qk                DiffEgg.Bench unet-file --mode qk     (Q/K capture, the default capture path;
                                                                 "accumulate" = QueryKeyAttention.Rows(0, H))
  ours probs             DiffEgg.Bench unet-file --mode probs  (explicit probabilities into AttentionAccumulator;
                                                                 "accumulate" = AttentionAccumulator.Result())

Each "ours" round is one process (load + warm-up + 1 timed forward); only the forward (and the accumulation, reported
apart) is timed, as on the diffusers side. Checks that the outputs (and the accumulated maps) agree, and prints a
markdown table of medians and ratios.

This script never downloads anything. It needs, fetched beforehand by the developer:
  * Debian's python3-torch (1.13) with libopenblas0-openmp, python3-numpy and the pure-Python dependencies of
    diffusers (python3-packaging, -importlib-metadata, -filelock, -regex, -requests, -pil, -yaml, -tqdm, -fsspec);
  * the pure-Python sources of diffusers 0.27.2 and huggingface_hub 0.21.4 (their git tags v0.27.2 / v0.21.4),
    given with --diffusers-src and --hub-src (a checkout root holding src/, or the src/ folder itself);
  * a Release build of bench/DiffEgg.Bench (dotnet build -c Release bench/DiffEgg.Bench).
The `safetensors` package (a compiled extension, not in Debian 12) is replaced by a small pure-Python reader/writer
when it is not installed.
"""

import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BENCH = os.path.join(REPO, "bench", "DiffEgg.Bench", "bin", "Release", "net10.0", "DiffEgg.Bench.dll")

# Stable Diffusion 1.5's UNet config (the diffusers release of runwayml/stable-diffusion-v1-5, unet/config.json).
SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    attention_head_dim=8,
)


def parse_args():
    p = argparse.ArgumentParser(
        description="Time one SD 1.5 UNet forward: diffusers 0.27.2 on PyTorch (plain and with an attention-probability "
        "hook) against DiffEgg (no capture, Q/K capture, explicit probabilities), interleaved, on the same random "
        "full-width SD 1.5 UNet and inputs; check that the outputs agree; print a markdown table.",
        epilog="Nothing is downloaded: fetch diffusers 0.27.2 and huggingface_hub 0.21.4 sources beforehand (pure "
        "Python; git tags v0.27.2 and v0.21.4) and pass their paths. Set-up: docs/bench-diffusers.md. On CPUs that "
        "OpenBLAS 0.3.21 does not recognise, run with OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2), or "
        "PyTorch runs about 2x slower.",
    )
    p.add_argument("--diffusers-src", required=True, help="diffusers 0.27.2 source (checkout root or its src/)")
    p.add_argument("--hub-src", required=True, help="huggingface_hub 0.21.4 source (checkout root or its src/)")
    p.add_argument("--out", default="/tmp/bench-diffusers", help="working folder for the UNet, inputs and outputs (default %(default)s; about 3.5 GB)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for both sides (default %(default)s)")
    p.add_argument("--runs", type=int, default=3, help="interleaved rounds (default %(default)s)")
    p.add_argument("--latent", type=int, default=64, help="latent side (default %(default)s: a 512x512 image)")
    p.add_argument("--timestep", type=int, default=10, help="UNet timestep (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quarter", action="store_true", help="a 1/4-width UNet (80,160,320,320; 16 norm groups) for a quick check of the set-up")
    p.add_argument("--bench", default=DEFAULT_BENCH, help="DiffEgg.Bench.dll (run with dotnet) or executable (default: the Release build in this repo)")
    return p.parse_args()


def src_dir(path, package):
    for cand in (os.path.join(path, "src"), path):
        if os.path.isdir(os.path.join(cand, package)):
            return os.path.abspath(cand)
    sys.exit(f"{path}: no {package}/ package found there or in its src/")


# ---------------------------------------------------------------- safetensors (pure Python)
ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32",
             "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def st_save(tensors, filename, metadata=None):
    import torch
    names = sorted(tensors)
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    rev = {v: k for k, v in ST_DTYPES.items()}
    for n in names:
        t = tensors[n].detach().to("cpu").contiguous()
        if t.dtype == torch.bfloat16:
            raise ValueError(f"{n}: bfloat16 not supported by this writer")
        a = t.numpy()
        data = a.tobytes()
        header[n] = {"dtype": rev[str(a.dtype)], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = filename + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, filename)


def st_load(filename, device="cpu"):
    import numpy as np
    import torch
    with open(filename, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            b, en = e["data_offsets"]
            f.seek(base + b)
            a = np.frombuffer(f.read(en - b), dtype=ST_DTYPES[e["dtype"]]).reshape(e["shape"])
            out[name] = torch.from_numpy(a.copy()).to(device)
    return out


def install_safetensors_shim():
    try:
        import safetensors.torch  # noqa: F401  (the real package, when installed)
        return False
    except ImportError:
        pass
    import importlib.machinery
    st = types.ModuleType("safetensors")
    stt = types.ModuleType("safetensors.torch")
    st.__spec__ = importlib.machinery.ModuleSpec("safetensors", None, is_package=True)
    stt.__spec__ = importlib.machinery.ModuleSpec("safetensors.torch", None)
    stt.save_file = st_save
    stt.load_file = st_load
    st.torch = stt

    def safe_open(*a, **k):
        raise NotImplementedError("safe_open is not provided by bench_diffusers.py's safetensors shim")
    st.safe_open = safe_open
    sys.modules["safetensors"] = st
    sys.modules["safetensors.torch"] = stt
    return True


# ---------------------------------------------------------------- environment checks
def openblas_core():
    """The kernel set OpenBLAS picks here (OPENBLAS_VERBOSE=2 prints 'Core: X' at load)."""
    env = dict(os.environ, OPENBLAS_VERBOSE="2")
    r = subprocess.run([sys.executable, "-c", "import torch; (torch.ones(8, 8) @ torch.ones(8, 8)).sum()"],
                       env=env, capture_output=True, text=True)
    m = re.search(r"Core:\s*(\S+)", r.stdout + r.stderr)
    return m.group(1) if m else None


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# ---------------------------------------------------------------- the paper-style attention hook
class Levels:
    """Head mean of each attn1 layer's probabilities summed per resolution (Eq 11); aggregate() = Eq 12."""

    def __init__(self):
        self.sums = {}

    def add(self, probs, heads, h, w):
        b = probs.shape[0] // heads
        mean = probs.view(b, heads, h * w, h * w).mean(1)
        if (h, w) in self.sums:
            s = self.sums[(h, w)]
            s[0].add_(mean)
            s[1] += 1
        else:
            self.sums[(h, w)] = [mean, 1]

    def aggregate(self):
        import torch.nn.functional as F
        H, W = max(self.sums, key=lambda k: k[0] * k[1])
        total = None
        for (h, w), (s, c) in sorted(self.sums.items(), key=lambda kv: -kv[0][0] * kv[0][1]):
            m = s / c  # [B, hw, hw]
            if (h, w) != (H, W):
                b = m.shape[0]
                # keys: bilinear on the key grid; queries: the same on the query grid (align_corners=False)
                k = F.interpolate(m.reshape(b * h * w, 1, h, w), size=(H, W), mode="bilinear", align_corners=False)
                k = k.reshape(b, h, w, H * W).permute(0, 3, 1, 2)  # [B, HW(keys), h, w]
                q = F.interpolate(k, size=(H, W), mode="bilinear", align_corners=False)
                m = q.reshape(b, H * W, H * W).transpose(1, 2).contiguous()  # [B, HW(queries), HW(keys)]
            m = m / m.sum(-1, keepdim=True)
            total = m if total is None else total + m
        return total / len(self.sums)


def make_hook_processor(levels):
    import math
    import torch

    class PaperHookAttnProcessor:
        """diffusers' AttnProcessor (explicit attention) that hands the attn1 probabilities to `levels`."""

        def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
            residual = hidden_states
            if attn.spatial_norm is not None:
                hidden_states = attn.spatial_norm(hidden_states, temb)
            input_ndim = hidden_states.ndim
            if input_ndim == 4:
                batch_size, channel, height, width = hidden_states.shape
                hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
            batch_size, sequence_length, _ = (
                hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape)
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            if attn.group_norm is not None:
                hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
            query = attn.to_q(hidden_states)
            if encoder_hidden_states is None:
                encoder_hidden_states = hidden_states
            elif attn.norm_cross:
                encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
            key = attn.to_k(encoder_hidden_states)
            value = attn.to_v(encoder_hidden_states)
            query = attn.head_to_batch_dim(query)
            key = attn.head_to_batch_dim(key)
            value = attn.head_to_batch_dim(value)

            attention_probs = attn.get_attention_scores(query, key, attention_mask)
            n = attention_probs.shape[-1]
            side = math.isqrt(n)  # square latents: the token grid is side x side
            levels.add(attention_probs, attn.heads, side, n // side)

            hidden_states = torch.bmm(attention_probs, value)
            hidden_states = attn.batch_to_head_dim(hidden_states)
            hidden_states = attn.to_out[0](hidden_states)
            hidden_states = attn.to_out[1](hidden_states)
            if input_ndim == 4:
                hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
            if attn.residual_connection:
                hidden_states = hidden_states + residual
            return hidden_states / attn.rescale_output_factor

    return PaperHookAttnProcessor()


# ---------------------------------------------------------------- main
def main():
    a = parse_args()
    sys.path[:0] = [src_dir(a.diffusers_src, "diffusers"), src_dir(a.hub_src, "huggingface_hub")]
    shim = install_safetensors_shim()

    import torch
    if not torch.__version__.startswith("1.13"):
        print(f"note: torch {torch.__version__}; the documented set-up is Debian's python3-torch 1.13", file=sys.stderr)
    torch.set_num_threads(a.threads)
    import diffusers
    import huggingface_hub
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    for mod, want in ((diffusers, "0.27.2"), (huggingface_hub, "0.21.4")):
        if mod.__version__ != want:
            print(f"note: {mod.__name__} {mod.__version__} (pinned: {want})", file=sys.stderr)

    core = openblas_core()
    flags = cpu_flags()
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, huggingface_hub {huggingface_hub.__version__}, "
          f"threads {torch.get_num_threads()}, OpenBLAS core {core}" + (f" (OPENBLAS_CORETYPE={coretype})" if coretype else "")
          + (", safetensors: pure-Python shim" if shim else ""))
    good = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Sapphirerapids"}
    if core is not None and core not in good and "avx2" in flags:
        hint = "SkylakeX" if "avx512f" in flags else "Haswell"
        print(f"WARNING: OpenBLAS runs its {core} kernels on this AVX2 CPU: set OPENBLAS_CORETYPE={hint}, "
              "or PyTorch's timings are about 2x too slow", file=sys.stderr)
    if not os.path.exists(a.bench):
        sys.exit(f"{a.bench}: not found; build it first: dotnet build -c Release bench/DiffEgg.Bench")

    # ---- the model and the inputs, once
    unet_dir = os.path.join(a.out, "unet")
    os.makedirs(unet_dir, exist_ok=True)
    t0 = time.perf_counter()
    torch.manual_seed(a.seed)
    config = dict(SD15_UNET, block_out_channels=(80, 160, 320, 320), norm_num_groups=16) if a.quarter else SD15_UNET
    unet = UNet2DConditionModel(**config).eval()
    unet.save_pretrained(unet_dir, safe_serialization=True)
    nparams = sum(p.numel() for p in unet.parameters())
    print(f"random SD 1.5 UNet ({nparams / 1e6:.0f} M parameters) saved to {unet_dir} in {time.perf_counter() - t0:.0f} s")
    g = torch.Generator().manual_seed(a.seed + 1)
    inputs = {
        "sample": torch.randn(1, 4, a.latent, a.latent, generator=g),
        "timestep": torch.tensor([a.timestep], dtype=torch.int64),
        "encoder_hidden_states": torch.randn(1, 77, SD15_UNET["cross_attention_dim"], generator=g),
    }
    inputs_path = os.path.join(a.out, "inputs.safetensors")
    st_save(inputs, inputs_path)

    plain_procs = {name: AttnProcessor() for name in unet.attn_processors}
    levels_box = [Levels()]

    class Proxy:  # one processor object whose store is swapped per forward
        def add(self, *args):
            levels_box[0].add(*args)
    hook = make_hook_processor(Proxy())
    hook_procs = {name: (hook if ".attn1." in name else AttnProcessor()) for name in unet.attn_processors}

    def diffusers_forward(with_hook):
        unet.set_attn_processor(dict(hook_procs if with_hook else plain_procs))  # it pops the entries
        levels_box[0] = Levels()
        with torch.no_grad():
            s = time.perf_counter()
            out = unet(inputs["sample"], inputs["timestep"], encoder_hidden_states=inputs["encoder_hidden_states"]).sample
            fwd = time.perf_counter() - s
            acc, amap = None, None
            if with_hook:
                s = time.perf_counter()
                amap = levels_box[0].aggregate()[0]
                acc = time.perf_counter() - s
        levels_box[0] = Levels()
        return fwd, acc, out, amap

    def ours(mode):
        out_path = os.path.join(a.out, f"ours-{mode}.safetensors")
        cmd = (["dotnet", a.bench] if a.bench.endswith(".dll") else [a.bench]) + ["unet-file", unet_dir, inputs_path, out_path, "--mode", mode, "--runs", "1", "--threads", str(a.threads)]
        if mode != "off":
            cmd.append("--map")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        m = re.search(r"^run 1: forward ([0-9.]+) s(?:, accumulate ([0-9.]+) s)?", r.stdout, re.M)
        if not m:
            sys.exit(f"unexpected output of {' '.join(cmd)}:\n{r.stdout}")
        return float(m.group(1)), (float(m.group(2)) if m.group(2) else None), out_path

    rows = ["diffusers plain", "diffusers + hook", "ours off", "ours qk", "ours probs"]
    fwd = {k: [] for k in rows}
    acc = {k: [] for k in rows}
    print("warm-up: diffusers plain and with the hook")
    diffusers_forward(False)
    diffusers_forward(True)
    outs = {}
    for rnd in range(1, a.runs + 1):
        f, _, outs["diffusers plain"], _ = diffusers_forward(False)
        fwd["diffusers plain"].append(f)
        f, c, outs["diffusers + hook"], outs["hook map"] = diffusers_forward(True)
        fwd["diffusers + hook"].append(f)
        acc["diffusers + hook"].append(c)
        for mode in ("off", "qk", "probs"):
            f, c, path = ours(mode)
            fwd[f"ours {mode}"].append(f)
            if c is not None:
                acc[f"ours {mode}"].append(c)
            outs[f"ours {mode}"] = path
        print(f"round {rnd}: " + ", ".join(f"{k} {fwd[k][-1]:.2f} s" for k in rows), flush=True)

    # ---- agreement
    def maxdiff(x, y):
        return (x.float() - y.float()).abs().max().item()
    loaded = {k: st_load(outs[k]) for k in ("ours off", "ours qk", "ours probs")}
    ref_plain, ref_hook, ref_map = outs["diffusers plain"], outs["diffusers + hook"], outs["hook map"]
    checks = [
        ("output: diffusers plain vs ours off", maxdiff(ref_plain, loaded["ours off"]["out"]), ref_plain.abs().max().item()),
        ("output: diffusers + hook vs ours qk", maxdiff(ref_hook, loaded["ours qk"]["out"]), ref_hook.abs().max().item()),
        ("output: diffusers + hook vs ours probs", maxdiff(ref_hook, loaded["ours probs"]["out"]), ref_hook.abs().max().item()),
        ("accumulated map: hook vs ours qk", maxdiff(ref_map, loaded["ours qk"]["map"]), ref_map.abs().max().item()),
        ("accumulated map: hook vs ours probs", maxdiff(ref_map, loaded["ours probs"]["map"]), ref_map.abs().max().item()),
    ]

    # ---- table
    med = {k: statistics.median(v) for k, v in fwd.items()}
    medacc = {k: statistics.median(v) for k, v in acc.items() if v}
    print()
    print(f"SD 1.5 UNet (random weights, {'1/4' if a.quarter else 'full'} width), latent {a.latent}x{a.latent}, t={a.timestep}, {a.threads} threads, "
          f"median of {a.runs} interleaved runs (s)")
    print()
    print("| | forward | accumulate | forward + accumulate | ratio to diffusers (same kind) |")
    print("|---|---:|---:|---:|---:|")
    base = {"diffusers plain": None, "diffusers + hook": None, "ours off": "diffusers plain",
            "ours qk": "diffusers + hook", "ours probs": "diffusers + hook"}
    for k in rows:
        ac = medacc.get(k)
        tot = med[k] + (ac or 0.0)
        ratio = ""
        if base[k]:
            b = base[k]
            ratio = f"{med[b] / med[k]:.2f}x"
            if ac is not None and b in medacc:
                ratio += f" (with accumulate {(med[b] + medacc[b]) / tot:.2f}x)"
        print(f"| {k} | {med[k]:.2f} | {'' if ac is None else f'{ac:.2f}'} | {tot:.2f} | {ratio} |")
    print()
    print("runs (s): " + "; ".join(f"{k}: " + ", ".join(f"{x:.2f}" for x in fwd[k]) for k in rows))
    print()
    ok = True
    for name, d, scale in checks:
        tol = 1e-4 * scale
        ok &= d <= tol
        print(f"max |diff| {name}: {d:.2e} (max |value| {scale:.3g}) {'ok' if d <= tol else 'MISMATCH'}")
    plain_ratio = med["diffusers plain"] / med["ours off"]
    cap_ratio = med["diffusers + hook"] / med["ours qk"]
    print()
    print(f"goal plain forward >= 1.5x diffusers: {plain_ratio:.2f}x {'met' if plain_ratio >= 1.5 else 'NOT met'}; "
          f"with capture (Q/K) >= 1.5x diffusers + hook: {cap_ratio:.2f}x {'met' if cap_ratio >= 1.5 else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

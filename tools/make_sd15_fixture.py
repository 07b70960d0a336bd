#!/usr/bin/python3
"""(Re)generate the sd15-tiny parity fixture (shared/fixtures/sd15-tiny): tiny random SD 1.5-structured networks with
their inputs and the outputs that diffusers 0.27.2 / transformers 4.38 compute for them.

Two modes:

  generate (default)   builds the four components from the tiny configs below (the ones in the fixture's config.json
                       files), overwrites every parameter with seeded random values, draws the inputs, runs the
                       reference code and writes a complete fixture folder (configs, weights, io.safetensors,
                       manifest.tsv) to --out.
  --reuse DIR          takes the weights AND the inputs from an existing fixture folder DIR (e.g. the stored one) and
                       recomputes only the reference outputs with the reference code. This checks the stored outputs
                       independently of how the random values were drawn.

--compare DIR compares the folder written to --out with DIR, file by file (identical bytes or not) and tensor by tensor
(max abs diff, integers exactly); with --reuse the exit code is 1 when a tensor differs by more than --atol (default 0).

Procedure (generate mode), all float32 on CPU, torch.set_num_threads(1), torch.use_deterministic_algorithms(True),
diffusers' classic AttnProcessor (PyTorch 1.13 has no SDPA):
  1. torch.manual_seed(SEED) once (default 20240521, the fixture's seed); the components are then made in the order
     scheduler, text encoder, VAE, UNet, each as: construct from its config, then randomize() its parameters in
     named_parameters() order:
       Conv/Linear weights ~ N(0,1)/sqrt(fan_in), Conv/Linear biases ~ 0.2*N(0,1),
       GroupNorm/LayerNorm weights ~ 1 + 0.25*N(0,1), their biases ~ 0.2*N(0,1), embedding tables ~ 0.5*N(0,1);
     then its inputs are drawn (in the order listed in the fixture README's tables).
  2. Inputs: scheduler x0, noise ~ N(0,1) [1,4,8,8]; text-encoder "words" ids = BOS 998, 10 ids uniform in [3, 998),
     EOS 999, then 999 padding (the empty prompt is [998, 999 x 76]; the real SD 1.5 ids [49406, 49407 x 76] are stored
     as input_ids_sd15_empty); VAE image uniform in [-1, 1] [1,3,64,64]; UNet sample [1,4,16,16],
     encoder_hidden_states [1,77,32], the CFG uncond states [1,77,32] and the non-square attn.sample [1,4,16,8], all N(0,1).
  3. Outputs and intermediates as listed in the fixture README (forward hooks; attention probabilities captured by
     wrapping Attention.get_attention_scores of every attn1 inside AttnProcessor).
  4. Files: config.json via save_config / save_pretrained; .safetensors in the standard layout (tensors in name order,
     header padded with spaces to 8 bytes, {"__metadata__": {"format": "pt"}}), written by the pure-Python writer of
     tools/bench_diffusers.py; manifest.tsv in the stored format.

Whether it reproduces the stored fixture: the stored fixture's README records the versions, the seed, the distributions
and the inputs, but not the order in which the random values were drawn, so generate mode does NOT reproduce the stored
weights and inputs bit for bit (it produces a fixture of the same structure and statistics; its configs are
byte-identical). With --reuse on the stored fixture it recomputes the stored outputs, to float32 noise rather than bit for
bit on another CPU (UNet <= 1.8e-5, VAE <= 4.4e-6; the scheduler, the configs and the re-written weights byte-identical);
docs/backbone.md ("Parity with diffusers") records that comparison. The text-encoder path has not been run yet (no
transformers source was available where this was written).

Nothing is downloaded. Needs Debian's python3-torch (1.13) and python3-numpy plus the pure-Python sources of
diffusers 0.27.2, huggingface_hub 0.21.4 and transformers 4.38 (git tags v0.27.2, v0.21.4, v4.38.x), given with
--diffusers-src / --hub-src / --transformers-src (a checkout root holding src/, or the src/ folder itself). Without
--transformers-src the text encoder is skipped (and said so). Example:

  /usr/bin/python3 tools/make_sd15_fixture.py --diffusers-src ../diffusers-0.27.2 --hub-src ../huggingface_hub-0.21.4 \
      --transformers-src ../transformers-4.38.0 --out /tmp/sd15-regen --reuse ../shared/fixtures/sd15-tiny \
      --compare ../shared/fixtures/sd15-tiny --atol 1e-4
"""

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_diffusers import install_safetensors_shim, src_dir, st_load, st_save  # noqa: E402  (pure-Python safetensors)

SEED = 20240521

UNET = dict(
    sample_size=16, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(32, 32, 32, 32), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=8, norm_eps=1e-5, cross_attention_dim=32, attention_head_dim=4,
)
VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(32, 32), layers_per_block=2,
    act_fn="silu", latent_channels=4, norm_num_groups=8, sample_size=64, scaling_factor=0.18215,
)
CLIP = dict(
    vocab_size=1000, hidden_size=32, intermediate_size=37, projection_dim=32, num_hidden_layers=2,
    num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
    bos_token_id=0, pad_token_id=1, eos_token_id=2,
)
SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
    steps_offset=1, prediction_type="epsilon", timestep_spacing="leading",
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Nothing is downloaded; see the docstring (python3 -c 'help(...)') or docs/backbone.md.")
    p.add_argument("--diffusers-src", required=True, help="diffusers 0.27.2 source (checkout root or its src/)")
    p.add_argument("--hub-src", required=True, help="huggingface_hub 0.21.4 source (checkout root or its src/)")
    p.add_argument("--transformers-src", help="transformers 4.38 source (checkout root or its src/); without it the text encoder is skipped")
    p.add_argument("--out", required=True, help="folder to write (created; files in it are replaced)")
    p.add_argument("--seed", type=int, default=SEED, help="generate mode: the one torch.manual_seed (default %(default)s)")
    p.add_argument("--reuse", metavar="DIR", help="take weights and inputs from this fixture folder; recompute the outputs only")
    p.add_argument("--compare", metavar="DIR", help="compare --out with this fixture folder afterwards")
    p.add_argument("--atol", type=float, default=0.0, help="with --reuse --compare: the largest abs diff of a float output that still passes "
                   "(default %(default)s: bitwise; 1e-4 is the C# parity tolerance)")
    return p.parse_args()


# ---------------------------------------------------------------- random weights
def randomize(model):
    import torch
    from torch import nn
    owner = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = (m, pname)
    with torch.no_grad():
        for name, p in model.named_parameters():
            m, pname = owner[name]
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if pname == "weight":
                    p.copy_(torch.randn(p.shape) / (p[0].numel() ** 0.5))
                else:
                    p.copy_(0.2 * torch.randn(p.shape))
            elif isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
                p.copy_(1 + 0.25 * torch.randn(p.shape) if pname == "weight" else 0.2 * torch.randn(p.shape))
            elif isinstance(m, nn.Embedding):
                p.copy_(0.5 * torch.randn(p.shape))
            else:
                raise TypeError(f"{name}: no rule for {type(m).__name__}")


def load_weights(model, path):
    missing, unexpected = model.load_state_dict(st_load(path), strict=False)
    if missing or unexpected:
        sys.exit(f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]}")


# ---------------------------------------------------------------- components
def make_scheduler(out, reuse):
    import torch
    from diffusers import DDPMScheduler
    s = DDPMScheduler(**SCHEDULER)
    s.save_config(out)
    if reuse:
        io_in = st_load(os.path.join(reuse, "scheduler", "io.safetensors"))
        x0, noise = io_in["x0"], io_in["noise"]
    else:
        x0, noise = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    io = {"betas": s.betas.clone(), "alphas_cumprod": s.alphas_cumprod.clone(), "x0": x0, "noise": noise}
    for t in (0, 499, 999):
        io[f"add_noise.t{t}"] = s.add_noise(x0, noise, torch.tensor([t], dtype=torch.long))
    s.set_timesteps(50)
    io["timesteps_50"] = s.timesteps.to(torch.int64).clone()
    st_save(io, os.path.join(out, "io.safetensors"), {"format": "pt"})


def make_text_encoder(out, reuse):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel
    model = CLIPTextModel(CLIPTextConfig(**CLIP)).eval()
    if reuse:
        load_weights(model, os.path.join(reuse, "text_encoder", "model.safetensors"))
        io_in = st_load(os.path.join(reuse, "text_encoder", "io.safetensors"))
        words = io_in["words.input_ids"]
    else:
        randomize(model)
        words = torch.tensor([[998] + torch.randint(3, 998, (10,)).tolist() + [999] * 66], dtype=torch.long)
    model.save_pretrained(out, safe_serialization=False)  # writes config.json (and a .bin that is replaced below)
    for f in os.listdir(out):
        if f.startswith("pytorch_model"):
            os.remove(os.path.join(out, f))
    st_save(dict(model.state_dict()), os.path.join(out, "model.safetensors"), {"format": "pt"})
    io = {"input_ids_sd15_empty": torch.tensor([[49406] + [49407] * 76], dtype=torch.long),
          "empty.input_ids": torch.tensor([[998] + [999] * 76], dtype=torch.long), "words.input_ids": words}
    with torch.no_grad():
        for case in ("empty", "words"):
            r = model(io[f"{case}.input_ids"], output_hidden_states=True)
            io[f"{case}.last_hidden_state"] = r.last_hidden_state
            io[f"{case}.pooler_output"] = r.pooler_output
            for i, h in enumerate(r.hidden_states):
                io[f"{case}.hidden_states.{i}"] = h
    st_save(io, os.path.join(out, "io.safetensors"), {"format": "pt"})


def diffusers_model(cls, config, reuse, sub, out):
    """A diffusers model with the classic AttnProcessor: weights from REUSE/SUB, or randomize()d (drawing from the global
    generator before the caller draws the inputs); its config.json and weights are written to OUT."""
    from diffusers.models.attention_processor import AttnProcessor
    model = cls(**config).eval()
    model.set_attn_processor(AttnProcessor())
    if reuse:
        load_weights(model, os.path.join(reuse, sub, "diffusion_pytorch_model.safetensors"))
    else:
        randomize(model)
    model.save_config(out)
    st_save(dict(model.state_dict()), os.path.join(out, "diffusion_pytorch_model.safetensors"), {"format": "pt"})
    return model


def make_vae(out, reuse):
    import torch
    from diffusers import AutoencoderKL
    vae = diffusers_model(AutoencoderKL, VAE, reuse, "vae", out)
    if reuse:
        image = st_load(os.path.join(reuse, "vae", "io.safetensors"))["image"]
    else:
        image = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        dist = vae.encode(image).latent_dist
        decoded = vae.decode(dist.mean).sample
    io = {"image": image, "posterior_mean": dist.mean, "posterior_logvar": dist.logvar, "posterior_std": dist.std, "decoded": decoded}
    st_save(io, os.path.join(out, "io.safetensors"), {"format": "pt"})


def make_unet(out, reuse):
    import torch
    from diffusers import UNet2DConditionModel
    unet = diffusers_model(UNet2DConditionModel, UNET, reuse, "unet", out)
    if reuse:
        io_in = st_load(os.path.join(reuse, "unet", "io.safetensors"))
        sample, ehs = io_in["sample"], io_in["encoder_hidden_states"]
        uncond, attn_sample = io_in["cfg.encoder_hidden_states"][:1], io_in["attn.sample"]
    else:
        sample, ehs = torch.randn(1, 4, 16, 16), torch.randn(1, 77, 32)
        uncond, attn_sample = torch.randn(1, 77, 32), torch.randn(1, 4, 16, 8)

    io = {"sample": sample, "encoder_hidden_states": ehs}
    captured = {}
    hooked = ["time_proj", "time_embedding", "conv_in", "mid_block", "conv_norm_out"] + \
        [f"down_blocks.{i}" for i in range(4)] + [f"up_blocks.{i}" for i in range(4)]
    modules = dict(unet.named_modules())
    for name in hooked:
        modules[name].register_forward_hook(lambda m, a, o, name=name: captured.__setitem__(name, (o[0] if isinstance(o, tuple) else o).clone()))

    def ts(t):
        return torch.tensor([t], dtype=torch.long)
    with torch.no_grad():
        for t in (500, 10):
            captured.clear()
            io[f"t{t}.timestep"] = ts(t)
            io[f"t{t}.noise_pred"] = unet(sample, ts(t), encoder_hidden_states=ehs).sample
            io[f"t{t}.time_proj"], io[f"t{t}.time_embedding"] = captured["time_proj"], captured["time_embedding"]
            if t == 500:
                for name in hooked[2:]:
                    io[f"t500.{name}"] = captured[name]
        io["cfg.sample"] = torch.cat([sample, sample])
        io["cfg.encoder_hidden_states"] = torch.cat([uncond, ehs])
        io["cfg.timestep"] = ts(500)
        io["cfg.noise_pred"] = unet(io["cfg.sample"], ts(500), encoder_hidden_states=io["cfg.encoder_hidden_states"]).sample

        probs = {}
        for name, m in modules.items():
            if name.endswith(".attn1"):
                def wrap(f, name=name):
                    def get_attention_scores(q, k, mask=None):
                        p = f(q, k, mask)
                        probs[name] = p.clone()
                        return p
                    return get_attention_scores
                m.get_attention_scores = wrap(m.get_attention_scores)
        io["attn.sample"], io["attn.timestep"] = attn_sample, ts(500)
        io["attn.noise_pred"] = unet(attn_sample, ts(500), encoder_hidden_states=ehs).sample
    io.update(probs)
    st_save(io, os.path.join(out, "io.safetensors"), {"format": "pt"})


# ---------------------------------------------------------------- manifest and comparison
def header(path):
    import struct
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def write_manifest(out):
    rows = ["# file\ttensor\tdtype\tshape\tbyte_offset_in_data_section"]
    for comp in sorted(os.listdir(out)):
        d = os.path.join(out, comp)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(".safetensors"):
                for name, e in header(os.path.join(d, f)).items():
                    if name != "__metadata__":
                        rows.append(f"{comp}/{f}\t{name}\t{e['dtype']}\t[{','.join(map(str, e['shape']))}]\t{e['data_offsets'][0]}")
    with open(os.path.join(out, "manifest.tsv"), "w", newline="\n") as f:
        f.write("\n".join(rows) + "\n")


def compare(out, ref, atol):
    """Prints, per file, identical or not, and per differing .safetensors the max abs diff of each differing tensor. Returns True when
    every tensor is within atol (integer tensors: equal) and every other file is identical (manifest.tsv aside: it differs whenever a
    component was skipped)."""
    ok = True
    for root, _, files in sorted(os.walk(out)):
        for f in sorted(files):
            p = os.path.join(root, f)
            rel = os.path.relpath(p, out)
            q = os.path.join(ref, rel)
            if not os.path.exists(q):
                print(f"{rel}: not in {ref}")
                ok = False
                continue
            a, b = open(p, "rb").read(), open(q, "rb").read()
            if a == b:
                print(f"{rel}: identical (sha256 {hashlib.sha256(a).hexdigest()[:16]}…)")
                continue
            if not f.endswith(".safetensors"):
                print(f"{rel}: differs")
                ok = ok and rel == "manifest.tsv"
                continue
            ta, tb = st_load(p), st_load(q)
            worst, diffs = 0.0, []
            for name in sorted(set(ta) | set(tb)):
                if name not in ta or name not in tb or ta[name].shape != tb[name].shape or ta[name].dtype != tb[name].dtype:
                    diffs.append(f"{name} (missing, or other shape or dtype)")
                    ok = False
                    continue
                d = (ta[name].double() - tb[name].double()).abs().max().item() if ta[name].numel() else 0.0
                if d:
                    diffs.append(f"{name} {d:.3g}")
                    worst = max(worst, d)
                    ok = ok and ta[name].is_floating_point() and d <= atol
            print(f"{rel}: differs, {len(diffs)} of {len(tb)} tensors, max abs diff {worst:.3g}" + (": " + ", ".join(diffs[:200]) + (" …" if len(diffs) > 200 else "") if diffs else " (bytes only)"))
    return ok


def main():
    a = parse_args()
    paths = [src_dir(a.diffusers_src, "diffusers"), src_dir(a.hub_src, "huggingface_hub")]
    if a.transformers_src:
        paths.append(src_dir(a.transformers_src, "transformers"))
    sys.path[:0] = paths
    install_safetensors_shim()
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    import diffusers
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    if a.transformers_src:
        import transformers
        versions["transformers"] = transformers.__version__
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    torch.manual_seed(a.seed)
    steps = [("scheduler", make_scheduler), ("text_encoder", make_text_encoder), ("vae", make_vae), ("unet", make_unet)]
    for comp, make in steps:
        if comp == "text_encoder" and not a.transformers_src:
            print("text_encoder: skipped (no --transformers-src)", file=sys.stderr)
            continue
        d = os.path.join(a.out, comp)
        os.makedirs(d, exist_ok=True)
        make(d, a.reuse)
        print(f"{comp}: written to {d}")
    write_manifest(a.out)
    if a.compare:
        ok = compare(a.out, a.compare, a.atol)
        return 0 if ok or not a.reuse else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Writes a weight-less folder holding Stable Diffusion 1.5's UNet and VAE config.json (the values of the diffusers
# release of SD 1.5), enough for `diffegg edges --estimate-only --model DIR` to estimate SD 1.5's memory without the
# 4 GB of weights. Nothing else can run on this folder.
# usage: tools/sd15-config-folder.sh DIR
set -euo pipefail
dir=${1:?usage: tools/sd15-config-folder.sh DIR}
mkdir -p "$dir/unet" "$dir/vae"
cat > "$dir/unet/config.json" <<'JSON'
{
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "attention_head_dim": 8,
  "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false,
  "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "out_channels": 4,
  "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
}
JSON
cat > "$dir/vae/config.json" <<'JSON'
{
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3,
  "latent_channels": 4,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 512,
  "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
}
JSON
echo "$dir: SD 1.5 unet/config.json and vae/config.json (no weights)"

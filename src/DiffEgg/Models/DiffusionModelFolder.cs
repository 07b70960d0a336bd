using DiffEgg.Common;
using DiffEgg.Models.Clip;
using DiffEgg.Models.Config;
using DiffEgg.Models.Schedulers;
using DiffEgg.Models.UNet;
using DiffEgg.Models.Vae;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Models;

/// <summary>
/// A diffusers model folder: <c>unet/</c> (required), <c>vae/</c> (absent = pixel-space model), <c>text_encoder/</c>, <c>tokenizer/</c>,
/// <c>scheduler/</c> (absent = SD 1.5's schedule). Each component folder holds its <c>config.json</c> and safetensors weights.
/// </summary>
public sealed class DiffusionModelFolder : IDisposable
{
    public string Path { get; }
    public UNet2DConditionModel Unet { get; }
    /// <summary>Null for a pixel-space model (no <c>vae/</c>).</summary>
    public AutoencoderKL? Vae { get; }
    public CLIPTextModel? TextEncoder { get; }
    public DDPMScheduler Scheduler { get; }
    /// <summary>Empty-prompt token ids: from <c>tokenizer/</c> when present, else from the text encoder's vocab size. Null without a text encoder.</summary>
    public ClipPromptIds? PromptIds { get; }
    public Device Device { get; private set; } = CPU;
    /// <summary>Stored conditioning of a pixel-space folder (<c>null_embedding.safetensors</c>, [1, L, D]); null for text-encoder folders.</summary>
    public Tensor? NullEmbedding { get; private set; }
    /// <summary>True for a pixel-space model (no <c>vae/</c>): the UNet works on RGB scaled to [-1, 1].</summary>
    public bool IsPixelSpace => Vae is null;

    DiffusionModelFolder(string path, UNet2DConditionModel unet, AutoencoderKL? vae, CLIPTextModel? te, DDPMScheduler s, ClipPromptIds? ids)
    {
        Path = path; Unet = unet; Vae = vae; TextEncoder = te; Scheduler = s; PromptIds = ids;
    }

    /// <summary>Loads every component present in <paramref name="path"/> (float32, eval mode) and moves it to <paramref name="device"/>.</summary>
    public static DiffusionModelFolder Load(string path, Device? device = null)
    {
        TorchRuntime.EnsureLoaded();
        if (!Directory.Exists(path)) throw new DiffEggException($"{path}: model folder not found");
        string unetDir = System.IO.Path.Combine(path, "unet");
        if (!Directory.Exists(unetDir)) throw new DiffEggException($"{path}: not a diffusers model folder (no unet/ subfolder)");
        var disposables = new List<IDisposable>();
        try
        {
            var unet = UNet2DConditionModel.FromFolder(unetDir); disposables.Add(unet);
            string vaeDir = System.IO.Path.Combine(path, "vae");
            AutoencoderKL? vae = Directory.Exists(vaeDir) ? AutoencoderKL.FromFolder(vaeDir) : null;
            if (vae is not null)
            {
                disposables.Add(vae);
                if (vae.Config.LatentChannels != unet.Config.InChannels)
                    throw new DiffEggException($"{System.IO.Path.Combine(vaeDir, "config.json")}: key 'latent_channels' = {vae.Config.LatentChannels} does not match the UNet's in_channels {unet.Config.InChannels}");
            }
            string teDir = System.IO.Path.Combine(path, "text_encoder");
            CLIPTextModel? te = Directory.Exists(teDir) ? CLIPTextModel.FromFolder(teDir) : null;
            ClipPromptIds? ids = null;
            if (te is not null)
            {
                disposables.Add(te);
                if (te.Config.HiddenSize != unet.Config.CrossAttentionDim)
                    throw new DiffEggException($"{System.IO.Path.Combine(teDir, "config.json")}: key 'hidden_size' = {te.Config.HiddenSize} does not match the UNet's cross_attention_dim {unet.Config.CrossAttentionDim}");
                string tokDir = System.IO.Path.Combine(path, "tokenizer");
                ids = File.Exists(System.IO.Path.Combine(tokDir, "vocab.json"))
                    ? ClipPromptIds.FromTokenizerFolder(tokDir, te.Config.MaxPositionEmbeddings)
                    : ClipPromptIds.FromVocabSize(te.Config.VocabSize, te.Config.MaxPositionEmbeddings);
                if (ids.Bos >= te.Config.VocabSize || ids.Eos >= te.Config.VocabSize || ids.Pad >= te.Config.VocabSize)
                    throw new DiffEggException($"{tokDir}: special token ids ({ids.Bos}, {ids.Eos}, {ids.Pad}) exceed the text encoder's vocab_size {te.Config.VocabSize}");
            }
            string schedPath = System.IO.Path.Combine(path, "scheduler", "scheduler_config.json");
            var sched = File.Exists(schedPath) ? DDPMScheduler.FromJson(JsonConfig.Load(schedPath)) : DDPMScheduler.StableDiffusion15();
            var nullEmb = vae is null ? PixelModelFolder.LoadNullEmbedding(path, unet.Config, te is not null) : null;
            if (nullEmb is not null) disposables.Add(nullEmb);
            var folder = new DiffusionModelFolder(path, unet, vae, te, sched, ids) { NullEmbedding = nullEmb };
            if (device is not null) folder.To(device);
            return folder;
        }
        catch
        {
            foreach (var d in disposables) d.Dispose();
            throw;
        }
    }

    /// <summary>Moves the networks to <paramref name="device"/>.</summary>
    public void To(Device device)
    {
        Unet.to(device);
        Vae?.to(device);
        TextEncoder?.to(device);
        if (NullEmbedding is not null)
        {
            Tensor moved;
            using (var scope = torch.NewDisposeScope()) moved = NullEmbedding.to(device).clone().MoveToOuterDisposeScope();
            NullEmbedding.Dispose();
            NullEmbedding = moved;
        }
        Device = device;
    }

    /// <summary>Null-text conditioning (DiffEGG conditions on ∅): the text encoder's last_hidden_state for the empty prompt, [1, 77, D];
    /// for a pixel-space folder without text encoder, a copy of the stored null embedding [1, L, D].</summary>
    public Tensor EncodeEmptyPrompt()
    {
        if (TextEncoder is null && NullEmbedding is not null) return NullEmbedding.clone();
        if (TextEncoder is null || PromptIds is null)
            throw new DiffEggException($"{Path}: no text_encoder/ folder; the empty-prompt conditioning cannot be computed");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var ids = PromptIds.EmptyPrompt().to(Device);
        using var o = TextEncoder.Encode(ids);
        return o.LastHiddenState.clone().MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Unet.Dispose();
        Vae?.Dispose();
        TextEncoder?.Dispose();
        NullEmbedding?.Dispose();
        Scheduler.Dispose();
    }
}

using DiffEgg.Common;
using DiffEgg.Models;
using DiffEgg.Models.Clip;
using DiffEgg.Models.Config;
using DiffEgg.Formats.SafeTensors;
using DiffEgg.Models.Schedulers;
using DiffEgg.Models.Vae;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffEgg.Tests;

public class VaeParityTests
{
    readonly ITestOutputHelper _out;
    public VaeParityTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    [Fact]
    public void PosteriorAndDecodedMatchDiffusers()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var vae = AutoencoderKL.FromFolder(TestPaths.Fixture("vae"));
        using var io = SafeTensorsFile.Open(TestPaths.Fixture("vae", "io.safetensors"));
        Assert.Equal(0.18215, vae.ScalingFactor);
        Assert.Equal(2, vae.DownFactor);
        using var post = vae.Encode(io.Read("image"));
        ParityAssert.Close(_out, "vae posterior_mean", io.Read("posterior_mean"), post.Mean);
        ParityAssert.Close(_out, "vae posterior_logvar", io.Read("posterior_logvar"), post.LogVar);
        ParityAssert.Close(_out, "vae posterior_std", io.Read("posterior_std"), post.Std);
        var decoded = vae.Decode(io.Read("posterior_mean"));
        ParityAssert.Close(_out, "vae decoded", io.Read("decoded"), decoded);
    }

    [Fact]
    public void DeprecatedAttentionNamesAreMappedOnLoad()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var dir = new TempDir("diffegg-vae-");
        try
        {
            File.Copy(TestPaths.Fixture("vae", "config.json"), Path.Combine(dir, "config.json"));
            var renamed = new Dictionary<string, Tensor>();
            using (var f = SafeTensorsFile.Open(TestPaths.Fixture("vae", "diffusion_pytorch_model.safetensors")))
                foreach (var k in f.Keys)
                {
                    string nk = k.Replace(".attentions.0.to_q.", ".attentions.0.query.").Replace(".attentions.0.to_k.", ".attentions.0.key.")
                        .Replace(".attentions.0.to_v.", ".attentions.0.value.").Replace(".attentions.0.to_out.0.", ".attentions.0.proj_attn.");
                    var t = f.Read(k);
                    // the oldest exports stored the projections as 1×1 convs
                    if (nk.EndsWith("query.weight")) t = t.reshape(t.shape[0], t.shape[1], 1, 1);
                    renamed[nk] = t;
                }
            Assert.Contains(renamed.Keys, k => k.EndsWith("encoder.mid_block.attentions.0.proj_attn.weight"));
            SafeTensorsWriter.Save(Path.Combine(dir, "diffusion_pytorch_model.safetensors"), renamed);
            using var vae = AutoencoderKL.FromFolder(dir);
            using var io = SafeTensorsFile.Open(TestPaths.Fixture("vae", "io.safetensors"));
            using var post = vae.Encode(io.Read("image"));
            ParityAssert.Close(_out, "vae posterior_mean (deprecated names)", io.Read("posterior_mean"), post.Mean);
        }
        finally { Directory.Delete(dir, true); }
    }
}

public class ClipParityTests
{
    readonly ITestOutputHelper _out;
    public ClipParityTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    [Theory]
    [InlineData("empty")]
    [InlineData("words")]
    public void TextEncoderOutputsMatchTransformers(string prompt)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        using var te = CLIPTextModel.FromFolder(TestPaths.Fixture("text_encoder"));
        using var io = SafeTensorsFile.Open(TestPaths.Fixture("text_encoder", "io.safetensors"));
        using var o = te.Encode(io.Read(prompt + ".input_ids"));
        ParityAssert.Close(_out, $"clip {prompt}.last_hidden_state", io.Read(prompt + ".last_hidden_state"), o.LastHiddenState);
        ParityAssert.Close(_out, $"clip {prompt}.pooler_output", io.Read(prompt + ".pooler_output"), o.PoolerOutput);
        Assert.Equal(3, o.HiddenStates.Count);
        for (int i = 0; i < 3; i++)
            ParityAssert.Close(_out, $"clip {prompt}.hidden_states.{i}", io.Read($"{prompt}.hidden_states.{i}"), o.HiddenStates[i]);
    }

    [Fact]
    public void EmptyPromptIds_FallbackFromVocabSize()
    {
        using var scope = torch.NewDisposeScope();
        using var io = SafeTensorsFile.Open(TestPaths.Fixture("text_encoder", "io.safetensors"));
        var cfg = CLIPTextConfig.FromJson(JsonConfig.Load(TestPaths.Fixture("text_encoder", "config.json")));
        var tiny = ClipPromptIds.FromVocabSize(cfg.VocabSize, cfg.MaxPositionEmbeddings);
        Assert.Equal((998L, 999L, 999L), (tiny.Bos, tiny.Eos, tiny.Pad));
        ParityAssert.Exact(_out, "tokenizer fallback empty.input_ids (vocab 1000)", io.Read("empty.input_ids"), tiny.EmptyPrompt());
        var sd15 = ClipPromptIds.FromVocabSize(49408, 77);
        ParityAssert.Exact(_out, "tokenizer fallback input_ids_sd15_empty (vocab 49408)", io.Read("input_ids_sd15_empty"), sd15.EmptyPrompt());
    }

    [Fact]
    public void EmptyPromptIds_FromTokenizerFiles()
    {
        using var scope = torch.NewDisposeScope();
        using var dir = new TempDir("diffegg-tok-");
        try
        {
            File.WriteAllText(Path.Combine(dir, "vocab.json"), "{\"!\": 0, \"a</w>\": 1, \"<|startoftext|>\": 49406, \"<|endoftext|>\": 49407}");
            var ids = ClipPromptIds.FromTokenizerFolder(dir, 77);
            Assert.Equal((49406L, 49407L, 49407L), (ids.Bos, ids.Eos, ids.Pad));
            using var io = SafeTensorsFile.Open(TestPaths.Fixture("text_encoder", "io.safetensors"));
            ParityAssert.Exact(_out, "tokenizer files input_ids_sd15_empty", io.Read("input_ids_sd15_empty"), ids.EmptyPrompt());
            // SD 2.x style: pad with "!" (id 0) given as an AddedToken object
            File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), "{\"pad_token\": {\"content\": \"!\", \"lstrip\": false}}");
            var sd2 = ClipPromptIds.FromTokenizerFolder(dir, 77);
            Assert.Equal(0L, sd2.Pad);
            var t = sd2.EmptyPrompt().data<long>().ToArray();
            Assert.Equal(new long[] { 49406, 49407, 0 }, t[..3]);
        }
        finally { Directory.Delete(dir, true); }
    }
}

public class SchedulerParityTests
{
    readonly ITestOutputHelper _out;
    public SchedulerParityTests(ITestOutputHelper output) { _out = output; TorchRuntime.EnsureLoaded(); }

    [Fact]
    public void BetasAlphasCumprodAddNoiseAndTimestepsMatchDiffusers()
    {
        using var scope = torch.NewDisposeScope();
        using var s = DDPMScheduler.FromJson(JsonConfig.Load(TestPaths.Fixture("scheduler", "scheduler_config.json")));
        using var io = SafeTensorsFile.Open(TestPaths.Fixture("scheduler", "io.safetensors"));
        ParityAssert.Close(_out, "scheduler betas", io.Read("betas"), s.Betas, 1e-7, 0);
        ParityAssert.Close(_out, "scheduler alphas_cumprod", io.Read("alphas_cumprod"), s.AlphasCumprod, 1e-7, 0);
        var x0 = io.Read("x0");
        var noise = io.Read("noise");
        foreach (int t in new[] { 0, 499, 999 })
            ParityAssert.Close(_out, $"scheduler add_noise.t{t}", io.Read($"add_noise.t{t}"), s.AddNoise(x0, noise, t));
        ParityAssert.Exact(_out, "scheduler timesteps_50", io.Read("timesteps_50"), torch.tensor(s.InferenceTimesteps(50)));
    }

    [Fact]
    public void LinearScheduleMatchesClosedForm()
    {
        using var scope = torch.NewDisposeScope();
        using var s = new DDPMScheduler(1000, 0.0001, 0.02, "linear");
        var b = s.Betas.data<float>().ToArray();
        Assert.Equal(0.0001f, b[0]);
        Assert.Equal(0.02f, b[999], 6);
        Assert.Equal(0.0001 + 500 * (0.02 - 0.0001) / 999, b[500], 6);
    }
}

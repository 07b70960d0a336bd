using DiffEgg.Common;
using DiffEgg.Models.Config;
using DiffEgg.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using LayerNorm = DiffEgg.Models.Layers.LayerNorm;

namespace DiffEgg.Models.Clip;

/// <summary>The subset of transformers' <c>CLIPTextConfig</c> DiffEgg implements.</summary>
public sealed record CLIPTextConfig
{
    public int VocabSize { get; init; } = 49408;
    public int HiddenSize { get; init; } = 768;
    public int IntermediateSize { get; init; } = 3072;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int MaxPositionEmbeddings { get; init; } = 77;
    public string HiddenAct { get; init; } = "quick_gelu";
    public double LayerNormEps { get; init; } = 1e-5;
    public int EosTokenId { get; init; } = 2;

    /// <summary>Reads <c>text_encoder/config.json</c>; unsupported values throw naming the file and key.</summary>
    /// <summary>Keys of transformers' config that do not change this inference (not warned about as unknown).</summary>
    public static readonly string[] IgnoredKeys =
    {
        "architectures", "model_type", "torch_dtype", "transformers_version", "dropout", "attention_dropout", "initializer_factor", "initializer_range",
        "projection_dim" /* CLIPTextModelWithProjection only */, "bos_token_id", "pad_token_id" /* the prompt ids come from tokenizer/ (ClipPromptIds) */,
    };

    public static CLIPTextConfig FromJson(JsonConfig c)
    {
        var act = c.String("hidden_act", "quick_gelu")!;
        if (act is not ("quick_gelu" or "gelu")) throw c.Unsupported("hidden_act", act, "quick_gelu, gelu");
        c.RequireNullOr("model_type", "clip_text_model");
        int hidden = c.Int("hidden_size", 512), heads = c.Int("num_attention_heads", 8);
        if (hidden % heads != 0) throw c.Error("num_attention_heads", $"{heads} heads do not divide hidden_size {hidden}");
        return new CLIPTextConfig
        {
            VocabSize = c.Int("vocab_size", 49408),
            HiddenSize = hidden,
            IntermediateSize = c.Int("intermediate_size", 2048),
            NumHiddenLayers = c.Int("num_hidden_layers", 12),
            NumAttentionHeads = heads,
            MaxPositionEmbeddings = c.Int("max_position_embeddings", 77),
            HiddenAct = act,
            LayerNormEps = c.Double("layer_norm_eps", 1e-5),
            EosTokenId = c.Int("eos_token_id", 2),
        };
    }
}

/// <summary>Outputs of <see cref="CLIPTextModel.Encode"/>: last_hidden_state (after final_layer_norm), pooler_output and every hidden state (embeddings, then each layer before the final norm).</summary>
public sealed class CLIPTextOutput : IDisposable
{
    public required Tensor LastHiddenState { get; init; }
    public required Tensor PoolerOutput { get; init; }
    public required IReadOnlyList<Tensor> HiddenStates { get; init; }

    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
        foreach (var h in HiddenStates) h.Dispose();
    }
}

/// <summary>transformers' <c>CLIPEmbeddings</c> (text): token_embedding(ids) + position_embedding(0..L−1).</summary>
public sealed class CLIPTextEmbeddings : nn.Module<Tensor, Tensor>
{
    readonly Embedding token_embedding;
    readonly Embedding position_embedding;

    public CLIPTextEmbeddings(CLIPTextConfig c) : base(nameof(CLIPTextEmbeddings))
    {
        token_embedding = nn.Embedding(c.VocabSize, c.HiddenSize);
        position_embedding = nn.Embedding(c.MaxPositionEmbeddings, c.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        var pos = torch.arange(ids.shape[1], dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
        return (token_embedding.forward(ids) + position_embedding.forward(pos)).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPAttention</c> with the causal mask: q scaled by d^−½ before QKᵀ, all projections with bias.</summary>
public sealed class CLIPAttention : nn.Module<Tensor, Tensor>
{
    readonly Linear k_proj;
    readonly Linear v_proj;
    readonly Linear q_proj;
    readonly Linear out_proj;
    readonly int _heads, _headDim;

    public CLIPAttention(CLIPTextConfig c) : base(nameof(CLIPAttention))
    {
        _heads = c.NumAttentionHeads;
        _headDim = c.HiddenSize / c.NumAttentionHeads;
        k_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        v_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        q_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        out_proj = nn.Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], l = x.shape[1];
        Tensor Split(Tensor t) => t.view(b, l, _heads, _headDim).transpose(1, 2).reshape(b * _heads, l, _headDim);
        var q = Split(q_proj.forward(x) * Math.Pow(_headDim, -0.5));
        var k = Split(k_proj.forward(x));
        var v = Split(v_proj.forward(x));
        var w = q.bmm(k.transpose(1, 2));
        var mask = torch.ones(l, l, dtype: ScalarType.Bool, device: x.device).triu(1);
        w = w.masked_fill(mask.unsqueeze(0), float.NegativeInfinity).softmax(-1);
        var o = w.bmm(v).view(b, _heads, l, _headDim).transpose(1, 2).reshape(b, l, _heads * _headDim);
        return out_proj.forward(o).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPMLP</c>: fc1 → quick_gelu (x·σ(1.702x)) or gelu → fc2.</summary>
public sealed class CLIPMLP : nn.Module<Tensor, Tensor>
{
    readonly Linear fc1;
    readonly Linear fc2;
    readonly bool _quick;

    public CLIPMLP(CLIPTextConfig c) : base(nameof(CLIPMLP))
    {
        fc1 = nn.Linear(c.HiddenSize, c.IntermediateSize);
        fc2 = nn.Linear(c.IntermediateSize, c.HiddenSize);
        _quick = c.HiddenAct == "quick_gelu";
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = fc1.forward(x);
        h = _quick ? h * torch.sigmoid(h * 1.702) : nn.functional.gelu(h);
        return fc2.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPEncoderLayer</c> (pre-norm): x + attn(LN1(x)), then x + mlp(LN2(x)).</summary>
public sealed class CLIPEncoderLayer : nn.Module<Tensor, Tensor>
{
    readonly CLIPAttention self_attn;
    readonly LayerNorm layer_norm1;
    readonly CLIPMLP mlp;
    readonly LayerNorm layer_norm2;

    public CLIPEncoderLayer(CLIPTextConfig c) : base(nameof(CLIPEncoderLayer))
    {
        self_attn = new CLIPAttention(c);
        layer_norm1 = new LayerNorm(c.HiddenSize, c.LayerNormEps);
        mlp = new CLIPMLP(c);
        layer_norm2 = new LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        x = x + self_attn.forward(layer_norm1.forward(x));
        x = x + mlp.forward(layer_norm2.forward(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>transformers' <c>CLIPEncoder</c>: a list of <c>layers</c>.</summary>
public sealed class CLIPEncoder : nn.Module
{
    internal readonly ModuleList<CLIPEncoderLayer> layers;

    public CLIPEncoder(CLIPTextConfig c) : base(nameof(CLIPEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new CLIPEncoderLayer(c)).ToArray());
        RegisterComponents();
    }
}

/// <summary>transformers' <c>CLIPTextTransformer</c>: embeddings, encoder, final_layer_norm.</summary>
public sealed class CLIPTextTransformer : nn.Module
{
    internal readonly CLIPTextEmbeddings embeddings;
    internal readonly CLIPEncoder encoder;
    internal readonly LayerNorm final_layer_norm;

    public CLIPTextTransformer(CLIPTextConfig c) : base(nameof(CLIPTextTransformer))
    {
        embeddings = new CLIPTextEmbeddings(c);
        encoder = new CLIPEncoder(c);
        final_layer_norm = new LayerNorm(c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }
}

/// <summary>transformers' <c>CLIPTextModel</c> (SD's text encoder). <see cref="forward"/> returns last_hidden_state, what SD feeds the UNet.</summary>
public sealed class CLIPTextModel : nn.Module<Tensor, Tensor>
{
    readonly CLIPTextTransformer text_model;

    public CLIPTextConfig Config { get; }

    public CLIPTextModel(CLIPTextConfig config) : base(nameof(CLIPTextModel))
    {
        Config = config;
        text_model = new CLIPTextTransformer(config);
        RegisterComponents();
    }

    /// <summary>Loads <c>config.json</c> and <c>model.safetensors</c> of a transformers <c>text_encoder/</c> folder (an extra <c>position_ids</c> buffer is ignored).</summary>
    public static CLIPTextModel FromFolder(string folder)
    {
        var json = JsonConfig.Load(System.IO.Path.Combine(folder, "config.json"));
        var cfg = CLIPTextConfig.FromJson(json);
        json.WarnUnknownKeys(CLIPTextConfig.IgnoredKeys);
        var model = new CLIPTextModel(cfg);
        try { StateDictLoader.Load(model, ModelFiles.Weights(folder, "model"), nameof(CLIPTextModel)); }
        catch { model.Dispose(); throw; }
        model.eval();
        return model;
    }

    public override Tensor forward(Tensor inputIds)
    {
        using var o = Encode(inputIds);
        return o.LastHiddenState.clone();
    }

    /// <summary>Runs the text encoder on token ids [B, L] (no padding mask, causal mask only, as SD does).</summary>
    public CLIPTextOutput Encode(Tensor inputIds)
    {
        if (inputIds.dim() != 2 || inputIds.shape[1] > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"input_ids must be [B, ≤{Config.MaxPositionEmbeddings}], got [{string.Join(",", inputIds.shape)}]");
        using var scope = torch.NewDisposeScope();
        var ids = inputIds.to_type(ScalarType.Int64);
        long max = ids.max().item<long>(), min = ids.min().item<long>();
        if (min < 0 || max >= Config.VocabSize)
            throw new ArgumentException($"token ids must lie in [0, {Config.VocabSize}), got [{min}, {max}]");
        var states = new List<Tensor>();
        var h = text_model.embeddings.forward(ids);
        states.Add(h);
        foreach (var layer in text_model.encoder.layers) { h = layer.forward(h); states.Add(h); }
        var last = text_model.final_layer_norm.forward(h);
        // Legacy pooling (eos_token_id == 2): the first position of the highest id; otherwise the first eos_token_id.
        var eosPos = Config.EosTokenId == 2 ? ids.argmax(-1) : ids.eq(Config.EosTokenId).to_type(ScalarType.Int32).argmax(-1);
        var pooled = last[torch.arange(ids.shape[0], device: ids.device), eosPos];
        return new CLIPTextOutput
        {
            LastHiddenState = last.MoveToOuterDisposeScope(),
            PoolerOutput = pooled.MoveToOuterDisposeScope(),
            HiddenStates = states.Select(s => s.MoveToOuterDisposeScope()).ToList(),
        };
    }
}

using DiffEgg.Common;
using System.Globalization;
using DiffEgg.Models.Layers;
using DiffEgg.Models.UNet;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DiffEgg.FineTuning.Lora;

/// <summary>Which projections of the UNet's transformer blocks get LoRA (attention always; the others behind an option).</summary>
[Flags]
public enum LoraTargets
{
    /// <summary><c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c> of attn1 and attn2.</summary>
    Attention = 1,
    /// <summary><c>proj_in</c>, <c>proj_out</c> of each Transformer2DModel.</summary>
    Projections = 2,
    /// <summary><c>ff.net.0.proj</c>, <c>ff.net.2</c> of each transformer block.</summary>
    FeedForward = 4,
}

/// <summary>LoRA hyper-parameters: rank (null = the default rule), alpha (null = the rank, i.e. scale 1), dropout, targets.</summary>
public sealed record LoraOptions
{
    /// <summary>Rank of every layer; null = <see cref="UNetLora.DefaultRank"/> per layer.</summary>
    public int? Rank { get; init; }
    /// <summary>α of every layer; null = α = r per layer (scale α/r = 1, diffusers' assumption for files without metadata).</summary>
    public double? Alpha { get; init; }
    public double Dropout { get; init; }
    public LoraTargets Targets { get; init; } = LoraTargets.Attention;
    /// <summary>Seed of the A initialisation.</summary>
    public long Seed { get; init; }

    /// <summary>Parses <c>attn</c>, <c>attn,proj</c>, <c>attn,proj,ff</c> (any order; <c>attn</c> is always included).</summary>
    public static LoraTargets ParseTargets(string s)
    {
        var t = LoraTargets.Attention;
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            t |= part.ToLowerInvariant() switch
            {
                "attn" or "attention" => LoraTargets.Attention,
                "proj" => LoraTargets.Projections,
                "ff" => LoraTargets.FeedForward,
                _ => throw new InvalidOptionException(nameof(LoraOptions.Targets), $"'{s}': unknown target '{part}' (use attn, proj, ff)"),
            };
        return t;
    }

    /// <summary>Inverse of <see cref="ParseTargets"/>.</summary>
    public static string TargetsName(LoraTargets t) =>
        string.Join(",", new[] { (LoraTargets.Attention, "attn"), (LoraTargets.Projections, "proj"), (LoraTargets.FeedForward, "ff") }
            .Where(x => t.HasFlag(x.Item1)).Select(x => x.Item2));
}

/// <summary>
/// LoRA on a <see cref="UNet2DConditionModel"/>: one <see cref="LoraLayer"/> per adapted projection, attached through the
/// <see cref="IAdaptableBlock"/> slots (the UNet's own parameters and names are unchanged). Base weights are frozen by
/// <see cref="FreezeBase"/>; <see cref="Merge"/>/<see cref="Unmerge"/> fold the layers in and out; <see cref="Detach"/> removes them.
/// File format: <see cref="LoraFile"/>.
/// </summary>
public sealed class UNetLora : IDisposable
{
    readonly UNet2DConditionModel _unet;
    readonly List<(LoraLayer Layer, IAdaptableBlock Host, string Local)> _layers = new();

    /// <summary>The adapted layers in UNet module order.</summary>
    public IReadOnlyList<LoraLayer> Layers => _layers.Select(l => l.Layer).ToList();
    public LoraTargets Targets { get; }
    public double Dropout { get; }

    UNetLora(UNet2DConditionModel unet, LoraTargets targets, double dropout) { _unet = unet; Targets = targets; Dropout = dropout; }

    /// <summary>
    /// Default rank of a layer: r = min(64, min(in, out) / 2), at least 1. SD 1.5's attention layers (320–1280 wide, 768 context) get 64;
    /// the embedded model's 64-wide attention gets 32 and its 32-wide context projections (attn2.to_k/to_v) 16.
    /// </summary>
    public static int DefaultRank(long inFeatures, long outFeatures) => (int)Math.Max(1, Math.Min(64, Math.Min(inFeatures, outFeatures) / 2));

    /// <summary>The adaptable projections of <paramref name="unet"/> selected by <paramref name="targets"/>: full module path, host, local name, module.</summary>
    public static List<(string Path, IAdaptableBlock Host, string Local, nn.Module Projection)> Sites(UNet2DConditionModel unet, LoraTargets targets)
    {
        var sites = new List<(string, IAdaptableBlock, string, nn.Module)>();
        foreach (var (name, module) in unet.named_modules())
        {
            if (module is not IAdaptableBlock host) continue;
            bool take = module switch
            {
                Models.Layers.Attention => targets.HasFlag(LoraTargets.Attention) && (name.EndsWith(".attn1", StringComparison.Ordinal) || name.EndsWith(".attn2", StringComparison.Ordinal)),
                Transformer2DModel => targets.HasFlag(LoraTargets.Projections),
                GEGLU or FeedForward => targets.HasFlag(LoraTargets.FeedForward),
                _ => false,
            };
            if (!take) continue;
            foreach (var (local, proj) in host.Projections) sites.Add((name + "." + local, host, local, proj));
        }
        return sites;
    }

    /// <summary>
    /// Attaches fresh LoRA layers (B = 0: the UNet's outputs are unchanged) to the projections chosen by <paramref name="o"/>. An explicit rank
    /// larger than a layer allows is an <see cref="InvalidOptionException"/> (option <c>Rank</c>) naming the layer.
    /// </summary>
    public static UNetLora Attach(UNet2DConditionModel unet, LoraOptions o)
    {
        var sites = Sites(unet, o.Targets);
        if (sites.Count == 0) throw new InvalidOptionException(nameof(o.Targets), $"'{LoraOptions.TargetsName(o.Targets)}': the UNet has no projections of these kinds");
        foreach (var s in sites)
        {
            var (w, _) = LoraLayer.BaseWeightOf(s.Path, s.Projection);
            long maxRank = Math.Min(w.shape[0], w.shape[1]);
            if (o.Rank is int r && r > maxRank)
                throw new InvalidOptionException(nameof(o.Rank), $"{r} is too large for layer '{s.Path}' ({w.shape[1]} → {w.shape[0]}; at most min(in, out) = {maxRank}); use a smaller rank or the default (min(64, min(in, out)/2) per layer)");
        }
        var lora = new UNetLora(unet, o.Targets, o.Dropout);
        using var gen = new Generator((ulong)o.Seed);
        try
        {
            foreach (var s in sites)
            {
                var (w, _) = LoraLayer.BaseWeightOf(s.Path, s.Projection);
                int rank = o.Rank ?? DefaultRank(w.shape[1], w.shape[0]);
                var layer = new LoraLayer(s.Path, s.Projection, rank, o.Alpha ?? rank, o.Dropout, gen);
                lora.Add(layer, s.Host, s.Local);
            }
        }
        catch { lora.Dispose(); throw; }
        return lora;
    }

    /// <summary>Attaches given layers (from a file): ranks/alphas as stored, weights copied in.</summary>
    internal static UNetLora AttachLoaded(UNet2DConditionModel unet, LoraTargets targets, IReadOnlyList<(string Path, int Rank, double Alpha, Tensor A, Tensor B)> layers)
    {
        var sites = Sites(unet, LoraTargets.Attention | LoraTargets.Projections | LoraTargets.FeedForward).ToDictionary(s => s.Path);
        var lora = new UNetLora(unet, targets, 0);
        try
        {
            foreach (var (path, rank, alpha, a, b) in layers)
            {
                var s = sites[path];
                var layer = new LoraLayer(path, s.Projection, rank, alpha, 0, null);
                using (torch.no_grad())
                {
                    layer.A.copy_(a.reshape(layer.A.shape));
                    layer.B.copy_(b.reshape(layer.B.shape));
                }
                lora.Add(layer, s.Host, s.Local);
            }
        }
        catch { lora.Dispose(); throw; }
        return lora;
    }

    void Add(LoraLayer layer, IAdaptableBlock host, string local)
    {
        host.SetDelta(local, layer);
        _layers.Add((layer, host, local));
    }

    /// <summary>Sets requires_grad = false on every UNet parameter (the LoRA factors stay trainable).</summary>
    public void FreezeBase()
    {
        foreach (var p in _unet.parameters()) p.requires_grad = false;
    }

    /// <summary>Trainable tensors in a fixed order: A then B of each layer, in UNet module order.</summary>
    public IEnumerable<Parameter> Parameters() => _layers.SelectMany(l => new[] { l.Layer.A, l.Layer.B });

    /// <summary>Turns LoRA dropout on (training) or off.</summary>
    public void Train(bool training)
    {
        foreach (var l in _layers) l.Layer.Training = training;
    }

    /// <summary>Turns the side paths on or off without merging.</summary>
    public bool Enabled
    {
        set { foreach (var l in _layers) l.Layer.Enabled = value; }
    }

    /// <summary>Folds every layer into the UNet weights (faster inference; the side paths then add nothing).</summary>
    public void Merge() { foreach (var l in _layers) l.Layer.Merge(); }

    /// <summary>Takes every merged layer back out of the UNet weights.</summary>
    public void Unmerge() { foreach (var l in _layers) l.Layer.Unmerge(); }

    /// <summary>Removes the side paths from the UNet (unmerging first) and releases them.</summary>
    public void Detach()
    {
        foreach (var (layer, host, local) in _layers)
        {
            layer.Unmerge();
            host.SetDelta(local, null);
            layer.Dispose();
        }
        _layers.Clear();
    }

    /// <summary>Number of trainable LoRA parameters.</summary>
    public long ParameterCount => _layers.Sum(l => l.Layer.A.numel() + l.Layer.B.numel());

    /// <summary>A one-line summary: layers, ranks, parameters.</summary>
    public string Describe()
    {
        var ranks = _layers.GroupBy(l => l.Layer.Rank).OrderByDescending(g => g.Key).Select(g => $"r={g.Key}: {g.Count()}");
        return string.Create(CultureInfo.InvariantCulture, $"LoRA on {_layers.Count} projections ({LoraOptions.TargetsName(Targets)}; {string.Join(", ", ranks)}), {ParameterCount:N0} parameters");
    }

    /// <summary>Detaches the layers (see <see cref="Detach"/>).</summary>
    public void Dispose() => Detach();
}

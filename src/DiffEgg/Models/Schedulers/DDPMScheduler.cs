using DiffEgg.Common;
using DiffEgg.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffEgg.Models.Schedulers;

/// <summary>
/// diffusers' <c>DDPMScheduler</c> noise schedule (float32 torch ops, bitwise like diffusers): betas ("linear" / "scaled_linear"),
/// ᾱ_t = cumprod(1 − β), forward noising x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (DDPM Eq. 4, used by DiffEGG to noise the latent) and inference timesteps.
/// </summary>
public sealed class DDPMScheduler : IDisposable
{
    public int NumTrainTimesteps { get; }
    public string BetaSchedule { get; }
    public double BetaStart { get; }
    public double BetaEnd { get; }
    public int StepsOffset { get; }
    public string TimestepSpacing { get; }
    public string PredictionType { get; }

    /// <summary>β_t, float32 [T].</summary>
    public Tensor Betas { get; }
    /// <summary>ᾱ_t, float32 [T].</summary>
    public Tensor AlphasCumprod { get; }

    /// <summary>Computes β (linear or scaled_linear, float32 torch ops as diffusers) and ᾱ = cumprod(1 − β).</summary>
    public DDPMScheduler(int numTrainTimesteps = 1000, double betaStart = 0.00085, double betaEnd = 0.012, string betaSchedule = "scaled_linear",
        int stepsOffset = 1, string timestepSpacing = "leading", string predictionType = "epsilon")
    {
        TorchRuntime.EnsureLoaded();
        NumTrainTimesteps = numTrainTimesteps;
        BetaStart = betaStart; BetaEnd = betaEnd; BetaSchedule = betaSchedule;
        StepsOffset = stepsOffset; TimestepSpacing = timestepSpacing; PredictionType = predictionType;
        using var scope = torch.NewDisposeScope();
        var betas = betaSchedule switch
        {
            "linear" => torch.linspace(betaStart, betaEnd, numTrainTimesteps, dtype: ScalarType.Float32),
            "scaled_linear" => torch.linspace(Math.Pow(betaStart, 0.5), Math.Pow(betaEnd, 0.5), numTrainTimesteps, dtype: ScalarType.Float32).pow(2),
            _ => throw new ArgumentException($"beta_schedule '{betaSchedule}' is not supported (linear, scaled_linear)"),
        };
        var alphas = 1.0 - betas;
        Betas = betas.MoveToOuterDisposeScope();
        AlphasCumprod = torch.cumprod(alphas, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Reads <c>scheduler/scheduler_config.json</c> (any diffusers scheduler class: only its β schedule is used); unsupported values name file and key.</summary>
    public static DDPMScheduler FromJson(JsonConfig c)
    {
        var schedule = c.String("beta_schedule", "linear")!;
        if (schedule is not ("linear" or "scaled_linear")) throw c.Unsupported("beta_schedule", schedule, "linear, scaled_linear");
        c.RequireNullOr("trained_betas");
        c.RequireNullOr("rescale_betas_zero_snr", false);
        var spacing = c.String("timestep_spacing", "leading")!;
        if (spacing is not ("leading" or "trailing" or "linspace")) throw c.Unsupported("timestep_spacing", spacing, "leading, trailing, linspace");
        var pred = c.String("prediction_type", "epsilon")!;
        if (pred is not ("epsilon" or "v_prediction" or "sample")) throw c.Unsupported("prediction_type", pred, "epsilon, v_prediction, sample");
        int n = c.Int("num_train_timesteps", 1000);
        if (n < 2) throw c.Error("num_train_timesteps", $"must be at least 2, got {n}");
        return new DDPMScheduler(n, c.Double("beta_start", 0.0001), c.Double("beta_end", 0.02), schedule,
            c.Int("steps_offset", 0), spacing, pred);
    }

    /// <summary>SD 1.5's schedule: scaled_linear 0.00085→0.012, 1000 steps, steps_offset 1, leading spacing.</summary>
    public static DDPMScheduler StableDiffusion15() => new();

    /// <summary>Forward diffusion q(x_t|x_0): √ᾱ_t·x0 + √(1−ᾱ_t)·ε, t broadcast over the batch (DDPM Eq. 4).</summary>
    public Tensor AddNoise(Tensor original, Tensor noise, Tensor timesteps)
    {
        using var scope = torch.NewDisposeScope();
        var ac = AlphasCumprod.to(original.device).to_type(original.dtype);
        var t = timesteps.to(original.device).to_type(ScalarType.Int64).reshape(-1);
        long tmin = t.min().item<long>(), tmax = t.max().item<long>();
        if (tmin < 0 || tmax >= NumTrainTimesteps) throw new ArgumentException($"timesteps must lie in [0, {NumTrainTimesteps}), got [{tmin}, {tmax}]");
        var a = ac.index_select(0, t);
        using var half = 0.5.ToScalar();   // explicit Scalars (an implicit one may be finalised during the native call)
        using var one = 1.0.ToScalar();
        var sqrtA = a.pow(half).flatten();
        var sqrtOneMinus = a.neg().add(one).pow(half).flatten();
        while (sqrtA.dim() < original.dim()) { sqrtA = sqrtA.unsqueeze(-1); sqrtOneMinus = sqrtOneMinus.unsqueeze(-1); }
        return (sqrtA * original + sqrtOneMinus * noise).MoveToOuterDisposeScope();
    }

    /// <summary>Forward diffusion at a single integer timestep.</summary>
    public Tensor AddNoise(Tensor original, Tensor noise, int timestep)
    {
        using var t = torch.tensor(new long[] { timestep });
        return AddNoise(original, noise, t);
    }

    /// <summary>Inference timesteps of <c>set_timesteps(n)</c> (descending), with diffusers' leading / trailing / linspace spacing and steps_offset.</summary>
    public long[] InferenceTimesteps(int numInferenceSteps)
    {
        if (numInferenceSteps < 1 || numInferenceSteps > NumTrainTimesteps)
            throw new ArgumentException($"num_inference_steps must be in [1, {NumTrainTimesteps}], got {numInferenceSteps}");
        int n = NumTrainTimesteps;
        long[] ts;
        switch (TimestepSpacing)
        {
            case "leading":
            {
                int ratio = n / numInferenceSteps;
                ts = Enumerable.Range(0, numInferenceSteps).Select(i => (long)i * ratio).Reverse().Select(t => t + StepsOffset).ToArray();
                break;
            }
            case "trailing":
            {
                double ratio = (double)n / numInferenceSteps;
                var list = new List<long>();
                for (double v = n; v > 0; v -= ratio) list.Add((long)Math.Round(v, MidpointRounding.ToEven) - 1);
                ts = list.ToArray();
                break;
            }
            default:
            {
                ts = Enumerable.Range(0, numInferenceSteps)
                    .Select(i => (long)Math.Round(numInferenceSteps == 1 ? 0 : i * (double)(n - 1) / (numInferenceSteps - 1), MidpointRounding.ToEven))
                    .Reverse().ToArray();
                break;
            }
        }
        return ts;
    }

    public void Dispose() { Betas.Dispose(); AlphasCumprod.Dispose(); }
}

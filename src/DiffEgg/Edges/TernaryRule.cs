using System.Globalization;

namespace DiffEgg.Edges;

/// <summary>How <see cref="TernaryRule"/> derives its two thresholds from an edge map.</summary>
public enum TernaryRuleKind
{
    /// <summary>DiffEGG Alg 2 as written: μ ± σ of E (population σ).</summary>
    MuSigma,
    /// <summary>Alg 2's μ ± σ on ln(E + δ), δ = 10⁻⁶ · max E, mapped back to E.</summary>
    LogMuSigma,
    /// <summary>Edge test of the paper (E &gt; μ + σ of E), interior test on ln E (ln(E + δ) &lt; μ_ln − σ_ln).</summary>
    LogInterior,
    /// <summary>
    /// <see cref="MuSigma"/> or <see cref="LogMuSigma"/>, whichever is applied to the more symmetric values: μ ± σ of ln(E + δ) if its
    /// skewness is smaller in magnitude than that of E, else μ ± σ of E.
    /// </summary>
    Auto,
    /// <summary>Quantiles of E: interior below the <see cref="TernaryRule.LowQuantile"/>, edge above the <see cref="TernaryRule.HighQuantile"/>.</summary>
    Quantile,
}

/// <summary>
/// The thresholding rule of the ternary map (DiffEGG Alg 2): two thresholds lo ≤ hi of an edge map E, computed per map; a pixel is an
/// edge where E &gt; hi, interior where E &lt; lo and uncertain otherwise, and the soft ternary value is clamp((E − lo)/(hi − lo), 0, 1).
/// <c>musigma</c> is the paper's μ ± σ; <c>log</c> the same on ln(E + δ) (EdgeKL maps are right-skewed, so μ − σ falls below min E and
/// the paper's rule has no interior); <c>quantile[:LO,HI]</c> uses quantiles of E. Every rule is invariant to scaling E by a constant.
/// </summary>
public sealed record TernaryRule
{
    /// <summary>Relative offset δ/max E of the <c>log</c> rule (keeps ln finite where E = 0).</summary>
    public const double LogOffset = 1e-6;

    public TernaryRuleKind Kind { get; }
    /// <summary>Quantile of the interior threshold (only <see cref="TernaryRuleKind.Quantile"/>).</summary>
    public double LowQuantile { get; }
    /// <summary>Quantile of the edge threshold (only <see cref="TernaryRuleKind.Quantile"/>).</summary>
    public double HighQuantile { get; }

    TernaryRule(TernaryRuleKind kind, double low = 0, double high = 0) { Kind = kind; LowQuantile = low; HighQuantile = high; }

    /// <summary>Alg 2 as in the paper: interior E &lt; μ − σ, edge E &gt; μ + σ.</summary>
    public static TernaryRule MuSigma { get; } = new(TernaryRuleKind.MuSigma);
    /// <summary>Alg 2 on ln(E + δ): interior ln(E+δ) &lt; μ_ln − σ_ln, edge ln(E+δ) &gt; μ_ln + σ_ln.</summary>
    public static TernaryRule Log { get; } = new(TernaryRuleKind.LogMuSigma);

    /// <summary>Alg 2's edge test as in the paper (E &gt; μ + σ) with its interior test on ln E (E &lt; exp(μ_ln − σ_ln) − δ).</summary>
    public static TernaryRule LogInterior { get; } = new(TernaryRuleKind.LogInterior);

    /// <summary>Per map, <see cref="MuSigma"/> or <see cref="Log"/>: the one whose values (E or ln(E + δ)) have the smaller |skewness| (see <see cref="Resolve"/>).</summary>
    public static TernaryRule Auto { get; } = new(TernaryRuleKind.Auto);

    /// <summary>Quantile rule: interior E &lt; q(<paramref name="low"/>), edge E &gt; q(<paramref name="high"/>), 0 ≤ low ≤ high ≤ 1 (linear interpolation between order statistics).</summary>
    public static TernaryRule Quantile(double low = 0.5, double high = 0.85)
    {
        if (!(low >= 0 && low <= high && high <= 1)) throw new ArgumentException($"quantiles {low}, {high}: need 0 <= low <= high <= 1");
        return new(TernaryRuleKind.Quantile, low, high);
    }

    /// <summary>
    /// The default of <c>edges</c>, <c>demo</c>, <c>bench-edges</c> and the soft scaling of <c>refine</c>: <see cref="LogInterior"/>, chosen by
    /// measurement (docs/method-edges.md, "Why log-interior is the default"): the paper's edge class unchanged (edge F1 0.964 on the 200 benchmark
    /// scenes, the demo's refinement AP unchanged) plus an interior class where the paper's has none (26 % of the true interior at 97 % precision).
    /// </summary>
    public static TernaryRule Default => LogInterior;

    /// <summary>The name of <see cref="Default"/> (a constant, for option defaults).</summary>
    public const string DefaultName = "log-interior";

    /// <summary>Names accepted by <see cref="Parse"/>.</summary>
    public const string Names = "auto, log, log-interior, musigma, quantile or quantile:LO,HI";

    /// <summary>Command-line / JSON name: <c>musigma</c>, <c>log</c> or <c>quantile:LO,HI</c>.</summary>
    public string Name => Kind switch
    {
        TernaryRuleKind.MuSigma => "musigma",
        TernaryRuleKind.LogMuSigma => "log",
        TernaryRuleKind.Auto => "auto",
        TernaryRuleKind.LogInterior => "log-interior",
        _ => string.Create(CultureInfo.InvariantCulture, $"quantile:{LowQuantile:R},{HighQuantile:R}"),
    };

    public override string ToString() => Name;

    /// <summary>Parses <c>musigma</c>, <c>log</c>, <c>quantile</c> (0.5, 0.85) or <c>quantile:LO,HI</c>; null if not a rule.</summary>
    public static TernaryRule? TryParse(string? s)
    {
        if (s is null) return null;
        s = s.Trim().ToLowerInvariant();
        switch (s)
        {
            case "musigma": return MuSigma;
            case "log": return Log;
            case "auto": return Auto;
            case "log-interior": return LogInterior;
            case "quantile": return Quantile();
        }
        if (!s.StartsWith("quantile:", StringComparison.Ordinal)) return null;
        var parts = s["quantile:".Length..].Split(',');
        if (parts.Length != 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double lo)
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double hi)
            || !(lo >= 0 && lo <= hi && hi <= 1)) return null;
        return Quantile(lo, hi);
    }

    /// <summary>
    /// Parses a comma-separated list of rules, e.g. <c>musigma,log,quantile:0.5,0.85</c> (a number after <c>quantile:LO</c> is its HI);
    /// null if an item is not a rule, the list is empty or names a rule twice.
    /// </summary>
    public static TernaryRule[]? TryParseList(string? s)
    {
        if (s is null) return null;
        var tokens = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var items = new List<string>();
        foreach (var t in tokens)
        {
            if (items.Count > 0 && items[^1].StartsWith("quantile:", StringComparison.OrdinalIgnoreCase) && !items[^1].Contains(',')
                && double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                items[^1] += "," + t;
            else items.Add(t);
        }
        var rules = new List<TernaryRule>();
        foreach (var item in items)
        {
            if (TryParse(item) is not { } r || rules.Contains(r)) return null;
            rules.Add(r);
        }
        return rules.Count == 0 ? null : rules.ToArray();
    }

    /// <summary>Parses a rule (see <see cref="TryParse"/>) or throws <see cref="ArgumentException"/> naming the accepted names.</summary>
    public static TernaryRule Parse(string s) =>
        TryParse(s) ?? throw new ArgumentException($"ternary rule '{s}': use {Names}");

    /// <summary>
    /// Thresholds (lo, hi) of this rule for the finite values of an edge map, in the map's units: interior E &lt; lo, edge E &gt; hi.
    /// Computed in float64. An empty map gives (0, 0), a constant map c gives (c, c) (every pixel uncertain).
    /// </summary>
    public (double Low, double High) Thresholds(ReadOnlySpan<float> values)
    {
        int n = values.Length;
        if (n == 0) return (0, 0);
        float min = values[0], max = values[0];
        foreach (float v in values) { if (v < min) min = v; if (v > max) max = v; }
        if (min == max) return (min, min);   // a constant map is all uncertain under every rule (no exp/log round-off)
        switch (Resolve(values).Kind)
        {
            case TernaryRuleKind.MuSigma:
            {
                var (mu, sigma) = MeanStd(values, x => x);
                return (mu - sigma, mu + sigma);
            }
            case TernaryRuleKind.LogMuSigma:
                return LogThresholds(values, max);
            case TernaryRuleKind.LogInterior:
            {
                // exp(μ_ln − σ_ln) − δ ≤ geometric mean − δ ≤ mean < μ + σ, so lo < hi
                var (mu, sigma) = MeanStd(values, x => x);
                return (LogThresholds(values, max).Low, mu + sigma);
            }
            default:
            {
                var sorted = values.ToArray();
                Array.Sort(sorted);
                return (QuantileOf(sorted, LowQuantile), QuantileOf(sorted, HighQuantile));
            }
        }
    }

    /// <summary>Thresholds of a float array (see <see cref="Thresholds(ReadOnlySpan{float})"/>).</summary>
    public (double Low, double High) Thresholds(float[] values) => Thresholds(values.AsSpan());

    /// <summary>
    /// The rule applied to these values: for <see cref="Auto"/>, <see cref="Log"/> if the population skewness of ln(E + δ) is smaller in
    /// magnitude than that of E (ties and maps without a positive value: <see cref="MuSigma"/>); every other rule is itself.
    /// </summary>
    public TernaryRule Resolve(ReadOnlySpan<float> values)
    {
        if (Kind != TernaryRuleKind.Auto) return this;
        double max = double.NegativeInfinity;
        foreach (float v in values) if (v > max) max = v;
        if (values.Length == 0 || !(max > 0)) return MuSigma;
        double delta = LogOffset * max;
        double skewE = Skewness(values, x => x), skewLog = Skewness(values, x => Math.Log(Math.Max(x + delta, delta)));
        return Math.Abs(skewLog) < Math.Abs(skewE) ? Log : MuSigma;
    }

    // μ ± σ of ln(E + δ) mapped back to E; δ relative to the largest value keeps the rule scale-invariant; a map without a positive
    // value has no contrast in log space.
    static (double Low, double High) LogThresholds(ReadOnlySpan<float> values, double max)
    {
        if (!(max > 0)) return (0, 0);
        double delta = LogOffset * max;
        var (mu, sigma) = MeanStd(values, x => Math.Log(Math.Max(x + delta, delta)));
        return (Math.Exp(mu - sigma) - delta, Math.Exp(mu + sigma) - delta);
    }

    /// <summary>The rule applied to a float array (see <see cref="Resolve(ReadOnlySpan{float})"/>).</summary>
    public TernaryRule Resolve(float[] values) => Resolve(values.AsSpan());

    // Population skewness m3 / m2^1.5 of f(values); 0 for constant values.
    static double Skewness(ReadOnlySpan<float> values, Func<double, double> f)
    {
        var (mean, std) = MeanStd(values, f);
        if (!(std > 0)) return 0;
        double m3 = 0;
        foreach (float v in values) { double d = f(v) - mean; m3 += d * d * d; }
        return m3 / values.Length / (std * std * std);
    }

    static (double Mean, double Std) MeanStd(ReadOnlySpan<float> values, Func<double, double> f)
    {
        double sum = 0;
        foreach (float v in values) sum += f(v);
        double mean = sum / values.Length, ss = 0;
        foreach (float v in values) { double d = f(v) - mean; ss += d * d; }
        return (mean, Math.Sqrt(ss / values.Length));
    }

    // Linear interpolation between order statistics (numpy's default "linear" method).
    static double QuantileOf(float[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int i = (int)Math.Floor(pos);
        if (i >= sorted.Length - 1) return sorted[^1];
        return sorted[i] + (pos - i) * ((double)sorted[i + 1] - sorted[i]);
    }
}

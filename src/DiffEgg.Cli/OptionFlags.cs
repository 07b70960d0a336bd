using System.Text.RegularExpressions;
using DiffEgg.Common;

namespace DiffEgg.Cli;

/// <summary>Names a command's own flag for a library <see cref="InvalidOptionException"/>: <c>--steps: must be ≥ 1, got 0</c>.</summary>
public static class OptionFlags
{
    /// <summary>Runs <paramref name="work"/>; an <see cref="InvalidOptionException"/> becomes a <see cref="DiffEggException"/> naming the flag.</summary>
    public static void Check(Action work, IReadOnlyDictionary<string, string>? flags = null) => Check(() => { work(); return 0; }, flags);

    /// <inheritdoc cref="Check(Action, IReadOnlyDictionary{string, string}?)"/>
    public static T Check<T>(Func<T> work, IReadOnlyDictionary<string, string>? flags = null)
    {
        try { return work(); }
        catch (InvalidOptionException e) { throw new DiffEggException(Message(e, flags), e); }
    }

    /// <summary><c>--flag: problem</c>; the flag is <paramref name="flags"/>[option] or the option's name in kebab case (<c>LowTBias</c> → <c>--low-t-bias</c>).</summary>
    public static string Message(InvalidOptionException e, IReadOnlyDictionary<string, string>? flags = null) =>
        $"{(flags != null && flags.TryGetValue(e.Option, out var f) ? f : "--" + Regex.Replace(e.Option, "(?<!^)([A-Z])", "-$1").ToLowerInvariant())}: {e.Problem}";

    /// <summary>The training commands' flags whose names differ from the options' (<c>finetune</c>, <c>train-base</c>).</summary>
    public static readonly IReadOnlyDictionary<string, string> Training = new Dictionary<string, string>
    {
        ["LearningRate"] = "--lr", ["WarmupSteps"] = "--warmup", ["ClipGradNorm"] = "--clip", ["Targets"] = "--lora-targets",
    };
}

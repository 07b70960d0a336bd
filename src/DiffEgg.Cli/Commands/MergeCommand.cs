using System.ComponentModel;
using DiffEgg.Sharding;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary><c>diffegg merge X</c>: assembles X from the parts of a sharded run (<see cref="ShardMerge"/>).</summary>
public sealed class MergeCommand : Command<MergeCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandArgument(0, "<OUT>")] [InputOutput]
        [Description("The --out of the sharded runs: a refine or baseline results JSON, a panoptic or segment folder, or an edges folder; its parts are in OUT.parts/.")]
        public string Out { get; init; } = "";

        [CommandOption("--allow-missing")]
        [Description("Merge the parts that exist even when shards or images are missing (they are listed); exit 0.")]
        public bool AllowMissing { get; init; }

        public override ValidationResult Validate() =>
            string.IsNullOrWhiteSpace(Out) ? ValidationResult.Error("OUT: must not be empty") : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        var r = ShardMerge.Merge(s.Out, s.AllowMissing);
        Console.WriteLine(r.Message);
        if (r.MissingShards.Count > 0)
            CliOutput.Note(s.Out, $"{r.MissingShards.Count} of {r.ShardCount} shard manifest(s) missing: {string.Join(", ", r.MissingShards.Select(i => ShardManifest.FileName(i, r.ShardCount)))}");
        foreach (var (item, why) in r.MissingItems) CliOutput.Note(s.Out, $"left out {item}: {why}");
        return 0;
    }
}

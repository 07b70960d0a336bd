using System.ComponentModel;
using System.Reflection;
using DiffEgg.Cli;
using DiffEgg.Demo;
using DiffEgg.Edges;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Tests.Cli;

/// <summary>Strict command line (issue 11, item 2) and the one message format (item 7) at the parsing level.</summary>
[Collection("Cli")]
public class StrictCliTests
{
    [Theory]
    [InlineData("edges")]
    [InlineData("refine")]
    [InlineData("eval instances")]
    public void UnknownOption_IsAUsageErrorNamingIt(string command)
    {
        var r = CliRun.Fails(2, command.Split(' ').Concat(new[] { "--bogus", "1" }).ToArray(), new[] { "--bogus" });
        var line = Assert.Single(r.ErrLines);
        Assert.StartsWith("error: --bogus: unknown option", line);
        Assert.Contains($"'diffegg {command}'", line);
        Assert.DoesNotContain("did you mean", line); // nothing is close to "bogus"
        Assert.Equal("", r.Out);
    }

    [Fact]
    public void TypoInAnOption_SuggestsTheClosestDeclaredOption()
    {
        var r = CliRun.Fails(2, "--fixed-timestpe", "edges", "--input", "x.png", "--out", "o", "--fixed-timestpe", "50");
        Assert.Equal("error: --fixed-timestpe: unknown option of 'diffegg edges'; did you mean --fixed-timestep? ('diffegg edges --help' lists them)",
            Assert.Single(r.ErrLines));
        // options inherited from the shared refinement settings are candidates too
        r = CliRun.Fails(2, "--imagse", "panoptic", "--imagse", "a");
        Assert.Contains("did you mean --images?", r.Err);
    }

    [Fact]
    public void StrayArgumentsAndUnknownCommands_AreErrorsWithSuggestions()
    {
        var r = CliRun.Fails(2, "b.png", "edges", "--input", "a.png", "b.png", "--out", "o");
        Assert.StartsWith("error: b.png: unexpected argument; 'diffegg edges' takes only --options", Assert.Single(r.ErrLines));

        r = CliRun.Fails(2, "edgse", "edgse", "--input", "a.png");
        Assert.StartsWith("error: edgse: unknown command; did you mean 'edges'?", Assert.Single(r.ErrLines));

        r = CliRun.Fails(2, "instanc", "eval", "instanc");
        Assert.StartsWith("error: instanc: unknown command; did you mean 'instances'?", Assert.Single(r.ErrLines));
    }

    [Fact]
    public void MissingValues_RepeatedOptions_RequiredOptions_AndBadNumbers_NameTheOption()
    {
        var r = CliRun.Fails(2, "--input", "edges", "--out", "o", "--input");
        Assert.Equal("error: --input: needs a value (PATH)", Assert.Single(r.ErrLines));

        r = CliRun.Fails(2, "--input", "edges", "--input", "a", "--out", "o", "--input", "b");
        Assert.Equal("error: --input: given twice ('a' and 'b')", Assert.Single(r.ErrLines));

        r = CliRun.Fails(2, "--out", "edges", "--input", "a");
        Assert.StartsWith("error: --out: required by 'diffegg edges'", Assert.Single(r.ErrLines));

        r = CliRun.Fails(2, "--size", "edges", "--input", "a", "--out", "o", "--size", "abc");
        Assert.Equal("error: --size: 'abc' is not a whole number", Assert.Single(r.ErrLines));

        r = CliRun.Fails(2, "--beta", "refine", "--images", "i", "--edges", "e", "--image-info", "x", "--masks", "m", "--out", "o", "--beta=ten");
        Assert.Equal("error: --beta: 'ten' is not a number (e.g. 0.5)", Assert.Single(r.ErrLines));
    }

    [Fact]
    public void EditDistanceAndSuggestions()
    {
        Assert.Equal(1, DiffEggApp.EditDistance("fixed-timestpe", "fixed-timestep")); // one transposition
        Assert.Equal(3, DiffEggApp.EditDistance("kitten", "sitting"));
        Assert.Equal("size", DiffEggApp.Suggest("szie", new[] { "seed", "size", "out" }));
        Assert.Null(DiffEggApp.Suggest("bogus", new[] { "seed", "size", "out" }));
    }

    static IEnumerable<(CliCommand Command, CliOption Option)> AllOptions() =>
        DiffEggApp.Commands.SelectMany(c => c.Options.Select(o => (c, o)));

    [Fact]
    public void EveryOptionWithADefault_DeclaresIt_AndTheDeclaredDefaultIsTheRealOne()
    {
        var problems = new List<string>();
        foreach (var (command, option) in AllOptions())
        {
            var settings = Activator.CreateInstance(command.SettingsType)!;
            object? initial = option.Property.GetValue(settings);
            var declared = option.Property.GetCustomAttribute<DefaultValueAttribute>();
            string where = $"{command.Path} {option.Display}";
            bool hasDefault = initial switch { null => false, string s => s.Length > 0, bool => false, _ => true };
            if (option.Attribute.IsRequired)
            {
                if (declared is not null) problems.Add($"{where}: required and with a default");
                continue;
            }
            if (hasDefault && declared is null) problems.Add($"{where}: default {initial} not declared with [DefaultValue]");
            if (declared is not null && !Equals(declared.Value, initial)) problems.Add($"{where}: [DefaultValue({declared.Value})] but the property starts as {initial}");
        }
        Assert.Empty(problems);
    }

    [Fact]
    public void TimestepDefaultsInHelp_AreTheLibraryDefaults()
    {
        static int[] Parse(string list) => list.Split(',').Select(int.Parse).ToArray();
        Assert.Equal(EdgePipelineOptions.DefaultTimesteps, Parse(new DiffEgg.Cli.Commands.EdgesCommand.Settings().Timesteps));
        Assert.Equal(DemoOptions.DefaultTimesteps, Parse(new DiffEgg.Cli.Commands.DemoCommand.Settings().Timesteps));
        Assert.Equal(EdgePipelineOptions.DefaultTimesteps, Parse(new DiffEgg.Cli.Commands.BenchEdgesCommand.Settings().Timesteps));
        var coarse = new CoarseSimulationOptions();
        Assert.Equal((coarse.MergeRate, coarse.FragmentRate), (new DiffEgg.Cli.Commands.DemoCommand.Settings().MergeRate, new DiffEgg.Cli.Commands.DemoCommand.Settings().FragmentRate));
    }

    [Theory]
    [InlineData("edges", "--timesteps <LIST>", "10")]
    [InlineData("demo", "--count <N>", "8")]
    [InlineData("synth", "--hard-prob <P>", "0.6")]
    [InlineData("train-base", "--lr <LR>", "0.0003")]
    [InlineData("bench-edges", "--match <MODE>", "downsample-gt")]
    [InlineData("refine", "--tolerance <EPS>", "0.0001")]
    public void Help_ShowsDefaults_RequiredOptions_AndGroupsInputsAndOutputs(string command, string option, string shownDefault)
    {
        var r = CliRun.Capture(command.Split(' ').Append("--help").ToArray());
        Assert.Equal(0, r.Code);
        var lines = r.Out.Split('\n');
        var row = Assert.Single(lines, l => l.TrimStart().StartsWith(option + " ", StringComparison.Ordinal));
        Assert.Matches($@"^\s+{System.Text.RegularExpressions.Regex.Escape(option)}\s+{System.Text.RegularExpressions.Regex.Escape(shownDefault)}\s{{2,}}\S", row);
        int io = Array.FindIndex(lines, l => l == "INPUTS AND OUTPUTS:");
        int tuning = Array.FindIndex(lines, l => l == "OPTIONS:");
        Assert.True(io >= 0 && tuning > io, r.Out);
        // every option marked [InputOutput] is listed above OPTIONS:, every other one below it
        var cmd = DiffEggApp.Commands.Single(c => c.Path == command);
        foreach (var o in cmd.Options)
        {
            int at = Array.FindIndex(lines, l => l.TrimStart().StartsWith(o.Display + " ", StringComparison.Ordinal) || l.Trim() == o.Display);
            Assert.True(at >= 0, $"{o.Display} missing from help");
            Assert.True(o.IsInputOutput ? at > io && at < tuning : at > tuning, $"{o.Display} in the wrong group");
            if (o.Attribute.IsRequired) Assert.Contains("(required)", lines[at]);
        }
        Assert.DoesNotContain(lines, l => l.EndsWith(' '));
    }

    [Fact]
    public void EveryCommandWithOptionsHasAnInputOrOutputGroup_AndRequiredOptionsAreMarked()
    {
        // a command whose input is a positional argument (merge OUT) names it there instead
        static bool PositionalInputOutput(CliCommand c) => c.SettingsType.GetProperties().Any(p =>
            p.GetCustomAttributes(typeof(Spectre.Console.Cli.CommandArgumentAttribute), true).Length > 0 && p.GetCustomAttributes(typeof(InputOutputAttribute), true).Length > 0);
        foreach (var c in DiffEggApp.Commands.Where(c => c.Options.Count > 0))
            Assert.True(c.Options.Any(o => o.IsInputOutput) || PositionalInputOutput(c), $"{c.Path}: no option is marked [InputOutput]");
        string[] required = { "edges --input", "edges --out", "refine --images", "refine --edges", "refine --image-info", "refine --masks", "refine --out",
            "panoptic --semantic", "panoptic --categories", "panoptic --out", "synth --out", "bench-edges --data", "train-base --data", "train-base --out",
            "eval instances --gt", "eval instances --dt", "eval panoptic --gt-json", "eval panoptic --pred-dir" };
        var marked = AllOptions().Where(x => x.Option.Attribute.IsRequired).Select(x => $"{x.Command.Path} {x.Option.Display}").ToHashSet();
        Assert.All(required, r => Assert.Contains(r, marked));
    }

    [Fact]
    public void CudaOnTheCpuBuildIsOneLineNamingTheBuildSwitch()
    {
        Assert.Equal("cpu", DiffEgg.Common.TorchRuntime.Backend);   // the build CI runs (Directory.Build.props: TorchBackend=cpu)
        using var dir = new TempDir("diffegg-cuda");
        DiffEgg.Data.ImageIO.WriteRgbPng(Path.Combine(dir, "a.png"), new DiffEgg.Data.RgbImage(8, 8));
        var r = CliRun.Fails(1, new[] { "edges", "--input", Path.Combine(dir, "a.png"), "--out", Path.Combine(dir, "o"), "--device", "cuda" }, new[] { "--device" }, new[] { Path.Combine(dir, "o") });
        var line = Assert.Single(r.ErrLines);
        Assert.Contains("--device cuda: this DiffEgg build is CPU-only", line);
        Assert.Contains("-p:TorchBackend=cuda", line);
        Assert.False(Directory.Exists(Path.Combine(dir, "o")));
    }

    [Fact]
    public void RedirectedOutput_IsNotWrapped()
    {
        var old = Console.Out;
        var sw = new StringWriter();
        try
        {
            Console.SetOut(sw);
            var console = DiffEggApp.CreateConsole(redirected: true);
            string longLine = string.Join(" ", Enumerable.Range(0, 60).Select(i => $"word{i}"));
            console.MarkupLine(Markup.Escape(longLine));
            var table = new Table().AddColumns("a", "b");
            table.AddRow("x", longLine);
            console.Write(table);
            console.Profile.Out.Writer.Flush();
            Assert.Contains(longLine + "\n", sw.ToString().Replace("\r\n", "\n"));
            Assert.Contains(sw.ToString().Split('\n'), l => l.Contains(longLine) && l.Contains('x'));
            Assert.DoesNotContain(sw.ToString().Split('\n'), l => l.EndsWith(' '));
        }
        finally { Console.SetOut(old); }
    }

    [Theory]
    [InlineData("bad/trunc.png", "bad/trunc.png: image is truncated", null, "bad/trunc.png: image is truncated")]
    [InlineData("bad/trunc.png", "image is truncated", null, "bad/trunc.png: image is truncated")]
    [InlineData("images/a.png", "edges/a.ternary.png: not a readable image", "image id 1", "edges/a.ternary.png: not a readable image (images/a.png, image id 1)")]
    [InlineData("images/a.png", "images/a.png: image file not found", "image id 1", "images/a.png: image file not found (image id 1)")]
    [InlineData("images/a.png", "--edges e: no edge map for a", null, "--edges e: no edge map for a (images/a.png)")]
    [InlineData("scene_3", "result [0]: image_id: missing", null, "scene_3: result [0]: image_id: missing")]
    public void FailureLines_NeverRepeatAPath(string item, string message, string? context, string expected)
    {
        Assert.Equal(expected, CliOutput.Join(item, message, context));
    }
}

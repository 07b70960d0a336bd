using DiffEgg.Cli;
using DiffEgg.Common;

namespace DiffEgg.Tests.Cli;

/// <summary>User errors vs bugs: a library option check is one line naming the command's flag; the evaluators rethrow a defect as it is.</summary>
[Collection("Cli")]
public class ErrorClassTests
{
    [Theory]
    [InlineData("train-base", "--steps", "0", "error: --steps: must be ≥ 1, got 0")]
    [InlineData("train-base", "--lr", "-1", "error: --lr: must be > 0, got -1")]
    [InlineData("train-base", "--low-t-bias", "2", "error: --low-t-bias: must lie in [0, 1], got 2")]
    [InlineData("finetune", "--warmup", "-3", "error: --warmup: must be ≥ 0, got -3")]
    public void TrainingOptionOutOfRange_IsOneLineNamingTheFlag(string command, string flag, string value, string expected)
    {
        using var dir = new TempDir();
        var args = new List<string> { command, "--data", dir.Path, "--out", dir.File("out"), flag, value };
        if (command == "finetune") args.AddRange(new[] { "--edges", dir.Path });
        var r = CliRun.Capture(args.ToArray());
        Assert.Equal(1, r.Code);
        Assert.Equal(expected, Assert.Single(r.ErrLines));
        Assert.False(Directory.Exists(dir.File("out")));
    }

    [Fact]
    public void OptionFlags_KebabCaseUnlessRenamed()
    {
        Assert.Equal("--checkpoint-every: must be ≥ 1, got 0", OptionFlags.Message(new InvalidOptionException("CheckpointEvery", "must be ≥ 1, got 0")));
        Assert.Equal("--clip: must be ≥ 0, got -1", OptionFlags.Message(new InvalidOptionException("ClipGradNorm", "must be ≥ 0, got -1"), OptionFlags.Training));
        Assert.IsAssignableFrom<DiffEggException>(new InvalidOptionException("Steps", "must be ≥ 1, got 0"));
    }

    [Fact]
    public void UnknownConfigKeys_AreAWarningNamingThem_AndKnownOnesAreNot()
    {
        using var dir = new TempDir();
        string model = Path.Combine(dir.Path, "model");
        foreach (var sub in new[] { "unet", "vae", "text_encoder", "tokenizer", "scheduler" })
        {
            string from = Path.Combine(TestPaths.Sd15Tiny, sub);
            if (!Directory.Exists(from)) continue;
            Directory.CreateDirectory(Path.Combine(model, sub));
            foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(model, sub, Path.GetFileName(f)));
        }
        string cfg = Path.Combine(model, "unet", "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).TrimEnd().TrimEnd('}') + ", \"mystery_option\": 3}");
        DiffEgg.Data.ImageIO.WriteRgbPng(dir.File("a.png"), new DiffEgg.Data.RgbImage(16, 16));
        var r = CliRun.Capture("edges", "--model", model, "--input", dir.File("a.png"), "--out", dir.File("out"), "--size", "32");
        Assert.Equal(0, r.Code);
        var warning = Assert.Single(r.ErrLines, l => l.StartsWith("warning: "));
        Assert.Equal($"warning: {cfg}: unknown key 'mystery_option' (ignored)", warning);
    }
}

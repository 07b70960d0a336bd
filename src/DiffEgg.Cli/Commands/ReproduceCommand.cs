using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffEgg.Common;
using DiffEgg.Evaluation;
using SkiaSharp;
using Spectre.Console;
using Spectre.Console.Cli;

namespace DiffEgg.Cli.Commands;

/// <summary><c>diffegg reproduce</c>: the paper's Tables 1, E and F in miniature on synthetic scenes (<see cref="Reproduction"/>).</summary>
public sealed class ReproduceCommand : Command<ReproduceCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--out <DIR>", isRequired: true)] [InputOutput] [Description("Output folder: results.md, results.json, ap.png and the scenes (data/).")]
        public string Out { get; init; } = "";
        [CommandOption("--count <N>")] [DefaultValue(100)] [Description("Synthetic test scenes (synth --split test).")]
        public int Count { get; init; } = 100;
        [CommandOption("--quick")] [Description("3 scenes: checks that everything runs (numbers meaningless).")]
        public bool Quick { get; init; }
        [CommandOption("--seed <S>")] [DefaultValue(0L)] [Description("Seed of the scenes, the simulated masks and the noise.")]
        public long Seed { get; init; }
        [CommandOption("--model <DIR>")] [InputOutput] [Description("Model folder. Default: the embedded model.")]
        public string? Model { get; init; }
        [CommandOption("--adapter <DIR>")] [InputOutput] [Description("Adapter for the one-step rows. Default: the embedded model's shipped adapter (with the embedded model).")]
        public string? Adapter { get; init; }
        [CommandOption("--no-adapter")] [Description("Leave out the one-step rows.")]
        public bool NoAdapter { get; init; }

        public override ValidationResult Validate()
        {
            if (string.IsNullOrWhiteSpace(Out)) return ValidationResult.Error("--out: must not be empty");
            if (Count < 1) return ValidationResult.Error($"--count {Count}: must be at least 1");
            if (!string.IsNullOrWhiteSpace(Adapter) && NoAdapter) return ValidationResult.Error("--no-adapter: cannot be combined with --adapter");
            return ValidationResult.Success();
        }
    }

    public override int Execute(CommandContext context, Settings s, CancellationToken cancellationToken)
    {
        OutputTarget.CheckFolder(s.Out, "--out");
        string? adapter = s.NoAdapter ? null : s.Adapter ?? DemoCommand.ShippedAdapter(s.Model);
        var o = new ReproduceOptions { OutDir = s.Out, Count = s.Quick ? 3 : s.Count, Seed = s.Seed, Model = s.Model, Adapter = adapter };
        ReproReport? report = null;
        AnsiConsole.Progress().Start(ctx =>
        {
            ProgressTask? task = null;
            string? current = null;
            report = Reproduction.Run(o, (stage, done, total) =>
            {
                if (stage != current) { task?.StopTask(); task = ctx.AddTask(stage, maxValue: total); current = stage; }
                task!.Value = done;
            });
        });
        var r = report!;
        string command = $"diffegg reproduce --out {s.Out}" + (s.Quick ? " --quick" : $" --count {o.Count}") + (s.Seed != 0 ? $" --seed {s.Seed}" : "")
                         + (s.Model is null ? "" : $" --model {s.Model}") + (s.Adapter is null ? "" : $" --adapter {s.Adapter}") + (s.NoAdapter ? " --no-adapter" : "");
        AtomicFile.WriteAllText(Path.Combine(s.Out, "results.md"), Markdown(r, command));
        WriteJson(Path.Combine(s.Out, "results.json"), r);
        WritePlot(Path.Combine(s.Out, "ap.png"), r);
        Console.WriteLine(Markdown(r, command));
        Console.WriteLine($"reproduce: {r.Scenes} scenes in {r.Seconds:F0} s → {Path.Combine(s.Out, "results.md")}, results.json, ap.png");
        return 0;
    }

    static string F(double v) => v < 0 ? "–" : v.ToString("F3", CultureInfo.InvariantCulture);

    static string Markdown(ReproReport r, string command)
    {
        var b = new StringBuilder();
        b.AppendLine($"# DiffEgg reproduction: {r.Scenes} synthetic test scenes");
        b.AppendLine();
        b.AppendLine($"Command: `{command}` — model `{r.ModelName}`{(r.AdapterName is null ? ", no adapter" : $", adapter `{r.AdapterName}`")}; {r.Seconds:F0} s on {Environment.ProcessorCount} CPU core(s).");
        b.AppendLine("All AP/AR are mask AP, class-agnostic (pycocotools' useCats = 0), computed by DiffEgg's pycocotools-exact evaluator.");
        b.AppendLine();
        b.AppendLine("## Table 1 shape: coarse masks before and after DiffEgg");
        b.AppendLine();
        b.AppendLine("| masks | AP | AP50 | AP75 | AR100 |");
        b.AppendLine("|---|---|---|---|---|");
        foreach (var x in r.Table1) b.AppendLine($"| {x.Label} | {F(x.AP)} | {F(x.AP50)} | {F(x.AP75)} | {F(x.AR100)} |");
        b.AppendLine();
        b.AppendLine("## Table E shape: stage by stage (simulated coarse masks)");
        b.AppendLine();
        b.AppendLine("| stage | AP | AP50 | AR100 | merged objects fixed | fragmented objects fixed |");
        b.AppendLine("|---|---|---|---|---|---|");
        foreach (var x in r.TableE)
            b.AppendLine($"| {x.Label} | {F(x.AP)} | {F(x.AP50)} | {F(x.AR100)} | {x.Merged?.Fixed}/{x.Merged?.Total} | {x.Fragmented?.Fixed}/{x.Fragmented?.Total} |");
        b.AppendLine();
        b.AppendLine("An object counts as fixed when a mask of the row matches it at IoU ≥ 0.5 (the coarse row: the simulation's intact masks are ");
        b.AppendLine("never merged or fragmented, so its counts show how many the simulation broke and the noise left matchable).");
        b.AppendLine();
        b.AppendLine("## Table F shape: EdgeKL's divergence");
        b.AppendLine();
        b.AppendLine("| divergence | boundary F1 (32×32, 1 px) | AP after refinement | AP50 | AR100 |");
        b.AppendLine("|---|---|---|---|---|");
        foreach (var x in r.TableF) b.AppendLine($"| {x.Label} | {F(x.BoundaryF1 ?? -1)} | {F(x.AP)} | {F(x.AP50)} | {F(x.AR100)} |");
        b.AppendLine();
        b.AppendLine("## Time per image on this machine");
        b.AppendLine();
        b.AppendLine("| stage | ms per image |");
        b.AppendLine("|---|---|");
        foreach (var (stage, ms) in r.StageTimes) b.AppendLine($"| {stage} | {ms.ToString("F1", CultureInfo.InvariantCulture)} |");
        return b.ToString();
    }

    static void WriteJson(string path, ReproReport r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("scenes", r.Scenes);
            w.WriteNumber("seconds", Math.Round(r.Seconds, 1));
            w.WriteString("model", r.ModelName);
            if (r.AdapterName is null) w.WriteNull("adapter"); else w.WriteString("adapter", r.AdapterName);
            void Rows(string name, IReadOnlyList<ReproRow> rows)
            {
                w.WriteStartArray(name);
                foreach (var x in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("label", x.Label);
                    w.WriteNumber("AP", x.AP); w.WriteNumber("AP50", x.AP50); w.WriteNumber("AP75", x.AP75); w.WriteNumber("AR100", x.AR100);
                    if (x.Merged is { } m) { w.WriteNumber("merged_fixed", m.Fixed); w.WriteNumber("merged_total", m.Total); }
                    if (x.Fragmented is { } f) { w.WriteNumber("fragmented_fixed", f.Fixed); w.WriteNumber("fragmented_total", f.Total); }
                    if (x.BoundaryF1 is { } b) w.WriteNumber("boundary_f1", b);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            Rows("table1", r.Table1);
            Rows("tableE", r.TableE);
            Rows("tableF", r.TableF);
            w.WriteStartObject("ms_per_image");
            foreach (var (stage, t) in r.StageTimes) w.WriteNumber(stage, Math.Round(t, 2));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <summary>A horizontal bar chart of every table row's AP.</summary>
    static void WritePlot(string path, ReproReport r)
    {
        var rows = r.Table1.Select(x => ("T1 " + x.Label, x.AP)).Concat(r.TableE.Select(x => ("E " + x.Label, x.AP))).Concat(r.TableF.Select(x => ("F " + x.Label, x.AP))).ToList();
        const int W = 1100, RowH = 22, Left = 560, Top = 30;
        int h = Top + RowH * rows.Count + 30;
        using var surface = SKSurface.Create(new SKImageInfo(W, h, SKColorType.Rgba8888, SKAlphaType.Premul));
        var c = surface.Canvas;
        c.Clear(SKColors.White);
        using var font = new SKFont(SKTypeface.Default, 13);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var bar = new SKPaint { Color = new SKColor(70, 110, 180), IsAntialias = true };
        double max = Math.Max(0.05, rows.Max(x => x.Item2));
        c.DrawText($"mask AP (class-agnostic), {r.Scenes} synthetic scenes", 10, 18, font, text);
        for (int i = 0; i < rows.Count; i++)
        {
            float y = Top + i * RowH;
            string label = rows[i].Item1.Length > 80 ? rows[i].Item1[..77] + "…" : rows[i].Item1;
            c.DrawText(label, 10, y + 15, font, text);
            float len = (float)(Math.Max(0, rows[i].Item2) / max * (W - Left - 70));
            c.DrawRect(Left, y + 3, len, RowH - 6, bar);
            c.DrawText(F(rows[i].Item2), Left + len + 5, y + 15, font, text);
        }
        using var img = surface.Snapshot();
        using var data = img.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, data.Span);
    }
}

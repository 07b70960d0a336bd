using System.Reflection;
using System.Text.RegularExpressions;
using DiffEgg.Cli.Commands;
using DiffEgg.Common;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectre.Console.Cli.Unsafe;

namespace DiffEgg.Cli;

/// <summary>Builds the `diffegg` command tree from <see cref="Commands"/> (each command lives in Commands/) and runs it.</summary>
public static class DiffEggApp
{
    public static string Version =>
        typeof(DiffEggApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Every command, by the path it is typed with; the one list that builds the tree, the help groups and the suggestions.</summary>
    public static readonly IReadOnlyList<CliCommand> Commands = new CliCommand[]
    {
        new("info", typeof(InfoCommand), "Show DiffEgg's version, the tensor engine and the devices it can use."),
        new("edges", typeof(EdgesCommand), "DiffEGG edges for an image or a folder: training-free (PeakKL, EdgeKL, ternary), or one-step with --adapter (LoRA + edge generator from finetune)."),
        new("synth", typeof(SynthCommand), "Write synthetic touching-objects scenes with COCO instances/panoptic ground truth and hard pairs."),
        new("bench-edges", typeof(BenchEdgesCommand), "Score edge methods on a synth folder (DiffEGG EdgeKL variants with --model, Sobel baselines): boundary P/R/F1 and AUC, all and hard-pair boundaries."),
        new("baseline", typeof(BaselineCommand), "Coarse instance masks for plain images: MaskCut or DiffCut (normalized cuts) on the UNet's self-attention features; COCO results for refine."),
        new("segment", typeof(SegmentCommand), "From plain images to instance masks: coarse masks (baseline or yours) → edges (one-step with the shipped adapter) → refinement; COCO results + an HTML page."),
        new("refine", typeof(RefineCommand), "Refine COCO instance masks with edge maps (Alg 4: CCL split, RIP, IoU merge)."),
        new("overlay", typeof(OverlayCommand), "Draw COCO instance masks over their images (one PNG per image, masks tinted and outlined) to look at them without ground truth."),
        new("panoptic", typeof(PanopticCommand), "Turn semantic masks + edge maps into COCO panoptic pseudo-labels (things split by RIP, stuff whole)."),
        new("merge", typeof(MergeCommand), "Assemble the output of a sharded (or --resume) run from OUT.parts/ (refine, baseline, panoptic, segment; edges are only checked): byte-identical to one run; names missing shards and images."),
        new("train-base", typeof(TrainBaseCommand), "Train a pixel-space base diffusion model from scratch on a folder of images (DDPM ε-prediction, EMA, checkpoints)."),
        new("finetune", typeof(FinetuneCommand), "Self-supervised fine-tuning (Alg 3): LoRA + edge generator on the model's own pseudo-edges; writes an adapter folder for `edges --adapter`."),
        new("reproduce", typeof(ReproduceCommand), "The paper's tables in miniature on synthetic scenes: coarse masks vs + DiffEgg (Table 1), stage by stage (Table E), KL vs JSD/L2/cosine and time per stage (Table F)."),
        new("demo", typeof(DemoCommand), "The whole method out of the box: synthetic scenes, embedded-model edges, refinement of simulated masks, panoptic pseudo-labels, metrics and an HTML report."),
        new("eval instances", typeof(EvalInstancesCommand), "COCO AP/AR of a results JSON against instances ground truth (segm or bbox)."),
        new("eval panoptic", typeof(EvalPanopticCommand), "PQ/SQ/RQ of panoptic PNG+JSON predictions against ground truth."),
    };

    /// <summary>Descriptions of the branches (command groups) of <see cref="Commands"/>.</summary>
    static readonly Dictionary<string, string> Branches = new()
    {
        ["eval"] = "COCO evaluation: instance AP/AR (pycocotools) and panoptic PQ (panopticapi).",
    };

    /// <summary>Builds the app: strict parsing (unknown options and stray arguments are errors), grouped help with defaults, output on <paramref name="console"/>.</summary>
    public static CommandApp Build(IAnsiConsole? console = null)
    {
        var app = new CommandApp();
        app.Configure(config =>
        {
            config.SetApplicationName("diffegg");
            config.SetApplicationVersion(Version);
            config.PropagateExceptions();
            config.UseStrictParsing();
            if (console is not null) config.ConfigureConsole(console);
            config.SetHelpProvider(new GroupedHelpProvider(config.Settings));
            var unsafeConfig = config.SafetyOff();
            foreach (var c in Commands.Where(c => !c.Path.Contains(' ')))
                unsafeConfig.AddCommand(c.Path, c.Type).WithDescription(c.Description);
            foreach (var (branch, description) in Branches)
                unsafeConfig.AddBranch(branch, typeof(CommandSettings), b =>
                {
                    b.SetDescription(description);
                    foreach (var c in Commands.Where(c => c.Path.StartsWith(branch + " ", StringComparison.Ordinal)))
                        b.AddCommand(c.Path[(branch.Length + 1)..], c.Type).WithDescription(c.Description);
                });
        });
        return app;
    }

    /// <summary>
    /// A console on the current <see cref="Console.Out"/>: a terminal gets Spectre's detection; redirected output gets plain text, no live
    /// display and no wrapping (lines as long as they are).
    /// </summary>
    public static IAnsiConsole CreateConsole(bool? redirected = null)
    {
        bool plain = redirected ?? Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(plain ? new TrimEndWriter(Console.Out) : Console.Out),
            Ansi = plain ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = plain ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = plain ? InteractionSupport.No : InteractionSupport.Detect,
        });
        if (plain) console.Profile.Width = NoWrapWidth;
        return console;
    }

    /// <summary>Writes lines through to <paramref name="inner"/> without trailing spaces (Spectre pads table and grid cells to the console width).</summary>
    sealed class TrimEndWriter(TextWriter inner) : TextWriter
    {
        readonly System.Text.StringBuilder _line = new();

        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                int n = _line.Length;
                while (n > 0 && (_line[n - 1] == ' ' || _line[n - 1] == '\r')) n--;
                inner.Write(_line.ToString(0, n));
                inner.Write('\n');
                _line.Clear();
            }
            else _line.Append(value);
        }

        public override void Write(string? value) { if (value is not null) foreach (char c in value) Write(c); }

        public override void Flush() { inner.Write(_line.ToString()); _line.Clear(); inner.Flush(); }
    }

    /// <summary>Console width used when output is not a terminal: wide enough that no line of ours is wrapped.</summary>
    public const int NoWrapWidth = 10_000;

    /// <summary>Runs the CLI; every error is one line on stderr (<c>error: &lt;path or option&gt;: &lt;what&gt;</c>), exit code 2 for usage errors and 1 for the rest.</summary>
    public static int Run(string[] args)
    {
        var console = CreateConsole();
        AnsiConsole.Console = console; // commands and progress displays write through AnsiConsole
        if (Interlocked.Exchange(ref _warningsShown, 1) == 0) DiffEggWarnings.Raised += m => Console.Error.WriteLine("warning: " + m);
        try
        {
            if (ValueCheck(args) is { } problem)
            {
                CliOutput.Error(problem);
                return 2;
            }
            return Build(console).Run(args);
        }
        catch (CommandParseException e)
        {
            CliOutput.Error(UsageMessage(args, e.Message));
            return 2;
        }
        catch (CommandRuntimeException e)
        {
            CliOutput.Error(UsageMessage(args, e.Message));
            return 2;
        }
        catch (Exception e) when (Unwrap(e) is DiffEggException or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            CliOutput.Error(Unwrap(e).Message);
            return 1;
        }
        catch (Exception e)   // the one catch-all: anything else is a defect of DiffEgg, shown with its stack trace
        {
            Console.Error.WriteLine("error: this is a bug in DiffEgg, please report it with the command line and the lines below");
            Console.Error.WriteLine(Unwrap(e));
            return 70;   // EX_SOFTWARE
        }
        finally
        {
            console.Profile.Out.Writer.Flush();
        }
    }

    static int _warningsShown;

    static Exception Unwrap(Exception e) => e is TargetInvocationException or AggregateException && e.InnerException != null ? Unwrap(e.InnerException) : e;

    // ------------------------------------------------------------------ usage errors

    /// <summary>The command that <paramref name="args"/> name (the longest matching path of leading words), or null.</summary>
    public static CliCommand? FindCommand(IReadOnlyList<string> args)
    {
        var words = args.TakeWhile(a => !a.StartsWith('-')).ToList();
        for (int n = words.Count; n >= 1; n--)
        {
            string path = string.Join(' ', words.Take(n));
            if (Commands.FirstOrDefault(c => c.Path == path) is { } c) return c;
        }
        return null;
    }

    /// <summary>
    /// What Spectre lets through: an option that takes a value given as the last argument or right before another option (Spectre then
    /// binds a placeholder), and an option given twice (Spectre keeps the last). Null when neither happens.
    /// </summary>
    public static string? ValueCheck(IReadOnlyList<string> args)
    {
        var command = FindCommand(args);
        if (command is null || args.Contains("--help") || args.Contains("-h")) return null;
        var seen = new Dictionary<string, string>();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a == "--") continue;
            string name = a[2..].Split('=', 2)[0];
            var opt = command.Options.FirstOrDefault(o => o.LongNames.Contains(name));
            if (opt is null) continue; // unknown options are Spectre's (strict parsing)
            bool flag = opt.Property.PropertyType == typeof(bool);
            string? value = a.Contains('=') ? a.Split('=', 2)[1] : flag ? "true" : i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[i + 1] : null;
            if (value is null) return $"{a}: needs a value ({opt.Attribute.ValueName ?? "VALUE"})";
            if (seen.TryGetValue(name, out var first)) return $"--{name}: given twice ('{first}' and '{value}')";
            seen[name] = value;
        }
        return null;
    }

    /// <summary>Turns a Spectre parse/validation message into <c>&lt;option or argument&gt;: &lt;what&gt;</c>, with the closest known option or command.</summary>
    public static string UsageMessage(IReadOnlyList<string> args, string message)
    {
        var command = FindCommand(args);
        string where = command is null ? "diffegg" : $"diffegg {command.Path}";
        Match m;
        if ((m = Regex.Match(message, @"^Unknown option '(.+)'\.$")).Success)
        {
            string raw = RawOption(args, m.Groups[1].Value);
            string hint = command is null ? "" : Suggest(m.Groups[1].Value, command.Options.SelectMany(o => o.LongNames)) is { } s ? $"; did you mean --{s}?" : "";
            return $"{raw}: unknown option of '{where}'{hint} ('{where} --help' lists them)";
        }
        if ((m = Regex.Match(message, @"^Unknown command '(.+)'\.$")).Success)
        {
            string word = m.Groups[1].Value;
            if (command is not null)
                return $"{word}: unexpected argument; '{where}' takes only --options (a value without its option name, or a path with spaces that needs quotes?)";
            string prefix = BranchPrefix(args);
            var names = Commands.Where(c => c.Path.StartsWith(prefix, StringComparison.Ordinal)).Select(c => c.Path[prefix.Length..].Split(' ')[0]).Distinct();
            string hint = Suggest(word, names) is { } s ? $"; did you mean '{s}'?" : "";
            return $"{word}: unknown command{hint} ('diffegg {prefix}--help' lists them)";
        }
        if ((m = Regex.Match(message, @"^Could not match '(.+)' with an argument\.$")).Success)
            return $"{m.Groups[1].Value}: unexpected argument; '{where}' takes only --options";
        if ((m = Regex.Match(message, @"^Unexpected option '(.+)'\.$")).Success)
            return $"{RawOption(args, m.Groups[1].Value)}: an option needs a command before it ('diffegg --help' lists the commands)";
        if ((m = Regex.Match(message, @"^Option '(.+)' is defined but no value has been provided\.$")).Success)
            return $"{RawOption(args, m.Groups[1].Value)}: needs a value";
        if ((m = Regex.Match(message, @"is missing required (?:argument|option) '(.+)'\.$")).Success || (m = Regex.Match(message, @"^Missing required option '(.+)'\.$")).Success)
        {
            var opt = command?.Options.FirstOrDefault(o => o.LongNames.Contains(m.Groups[1].Value) || o.ShortNames.Contains(m.Groups[1].Value));
            string name = opt?.Display ?? "--" + m.Groups[1].Value;
            return $"{name}: required by '{where}' ('{where} --help' lists the options)";
        }
        if ((m = Regex.Match(message, @"^Failed to convert '(.*)' to [^.]*\.")).Success)
        {
            string value = m.Groups[1].Value;
            var (raw, opt) = OptionWithValue(args, command, value);
            return $"{raw ?? "a value"}: '{value}' is not {Expected(opt?.Property.PropertyType)}";
        }
        return message;
    }

    /// <summary>The option token as the user typed it (e.g. "--fixed-timestpe", "-x") for Spectre's bare name.</summary>
    static string RawOption(IReadOnlyList<string> args, string name)
    {
        foreach (var a in args)
            if (a.StartsWith('-') && a.TrimStart('-').Split('=', ':')[0] == name) return a.Split('=', ':')[0];
        return (name.Length == 1 ? "-" : "--") + name;
    }

    static string BranchPrefix(IReadOnlyList<string> args) =>
        args.Count > 0 && Branches.ContainsKey(args[0]) ? args[0] + " " : "";

    /// <summary>The option whose value is <paramref name="value"/> (as "--opt value" or "--opt=value").</summary>
    static (string? Raw, CliOption? Option) OptionWithValue(IReadOnlyList<string> args, CliCommand? command, string value)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!a.StartsWith('-')) continue;
            string[] parts = a.Split('=', 2);
            bool match = (parts.Length == 2 && parts[1] == value) || (parts.Length == 1 && i + 1 < args.Count && args[i + 1] == value);
            if (!match) continue;
            string name = parts[0].TrimStart('-');
            var opt = command?.Options.FirstOrDefault(o => o.LongNames.Contains(name) || o.ShortNames.Contains(name));
            return (parts[0], opt);
        }
        return (null, null);
    }

    static string Expected(Type? t)
    {
        t = t is null ? null : Nullable.GetUnderlyingType(t) ?? t;
        if (t == typeof(int) || t == typeof(long)) return "a whole number";
        if (t == typeof(double) || t == typeof(float)) return "a number (e.g. 0.5)";
        if (t == typeof(bool)) return "true or false";
        return "a valid value";
    }

    /// <summary>The candidate closest to <paramref name="word"/> by edit distance, when close enough to be a typo (distance ≤ max(2, length/3)); else null.</summary>
    public static string? Suggest(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestD = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = EditDistance(word.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestD || (d == bestD && string.CompareOrdinal(c, best) < 0)) { best = c; bestD = d; }
        }
        return best is not null && bestD <= Math.Max(2, word.Length / 3) ? best : null;
    }

    /// <summary>Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions of neighbours each cost 1.</summary>
    public static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}

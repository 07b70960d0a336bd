using System.Text.RegularExpressions;
using DiffEgg.Cli;

namespace DiffEgg.Tests.Cli;

/// <summary>Runs <see cref="DiffEggApp.Run"/> in-process with stdout and stderr captured (tests in the "Cli" collection, or another collection that never runs in parallel: Console is process-wide).</summary>
public static class CliRun
{
    public sealed record Result(int Code, string Out, string Err)
    {
        /// <summary>The non-empty stderr lines, trimmed.</summary>
        public IReadOnlyList<string> ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        /// <summary>The <c>error: </c> lines of stderr.</summary>
        public IReadOnlyList<string> ErrorLines => ErrLines.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();

        /// <summary>The one error line (asserted to be the only one).</summary>
        public string Line => Assert.Single(ErrorLines);
    }

    public static Result Capture(params string[] args)
    {
        var out_ = new StringWriter();
        var err = new StringWriter();
        var oldOut = Console.Out;
        var oldErr = Console.Error;
        int code;
        try
        {
            Console.SetOut(out_);
            Console.SetError(err);
            code = DiffEggApp.Run(args);
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        return new Result(code, out_.ToString(), err.ToString());
    }

    /// <summary>
    /// Runs a command that must fail and checks the CLI's error contract: exit code <paramref name="code"/> (2 usage, 1 the rest); stderr holds
    /// exactly <paramref name="errors"/> <c>error: &lt;path or option&gt;: &lt;what&gt;</c> lines and nothing else but <c>note: </c> lines;
    /// no stack trace or exception type name anywhere in stderr or stdout; the error line(s) name each of <paramref name="naming"/>
    /// (paths, options, fields); each of <paramref name="unchanged"/> (output files the command must not touch) is byte-identical
    /// afterwards, or still absent when it was absent.
    /// </summary>
    public static Result Fails(int code, string[] args, string[]? naming = null, string[]? unchanged = null, int errors = 1)
    {
        var before = (unchanged ?? Array.Empty<string>()).Select(p => (Path: p, Bytes: File.Exists(p) ? File.ReadAllBytes(p) : null, Dir: Directory.Exists(p))).ToList();
        var r = Capture(args);
        string all = $"exit code {r.Code}; stderr:\n{r.Err}\nstdout:\n{r.Out}";
        Assert.True(r.Code == code, $"expected exit code {code}, got {all}");
        Assert.True(r.ErrorLines.Count == errors, $"expected {errors} error line(s), got {all}");
        Assert.All(r.ErrLines, l => Assert.True(l.StartsWith("error: ", StringComparison.Ordinal) || l.StartsWith("note: ", StringComparison.Ordinal), $"stray stderr line '{l}' in {all}"));
        AssertNoStackTrace(r.Err);
        AssertNoStackTrace(r.Out);
        foreach (var name in naming ?? Array.Empty<string>())
            Assert.True(r.ErrorLines.Any(l => l.Contains(name, StringComparison.Ordinal)), $"no error line names '{name}': {all}");
        foreach (var (path, bytes, dir) in before)
        {
            if (bytes is not null) Assert.True(File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes), $"{path} was changed by a failed run: {all}");
            else if (!dir) Assert.False(File.Exists(path) || Directory.Exists(path), $"{path} was created by a failed run: {all}");
        }
        return r;
    }

    /// <summary><see cref="Fails(int, string[], string[], string[], int)"/> with the arguments last (the usual case: one line naming <paramref name="naming"/>).</summary>
    public static Result Fails(int code, string naming, params string[] args) => Fails(code, args, new[] { naming });

    static readonly Regex StackFrame = new(@"(^|\n)\s+at \S+|\b[A-Z]\w*Exception\b|\bSystem\.[A-Z]|--- End of", RegexOptions.Compiled);

    public static void AssertNoStackTrace(string text) =>
        Assert.False(StackFrame.IsMatch(text), $"stack trace or exception type in the output:\n{text}");
}

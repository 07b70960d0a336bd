using DiffEgg.Cli;

namespace DiffEgg.Tests.Cli;

/// <summary>Runs <see cref="DiffEggApp.Run"/> in-process with stdout and stderr captured (tests in the "Cli" collection only: Console is process-wide).</summary>
public static class CliRun
{
    public sealed record Result(int Code, string Out, string Err)
    {
        /// <summary>The non-empty stderr lines, trimmed.</summary>
        public IReadOnlyList<string> ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
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
}

using Spectre.Console;

namespace DiffEgg.Cli.Commands;

/// <summary>Per-item failure reporting and the progress bar shared by the refinement commands.</summary>
internal static class BatchRunner
{
    /// <summary>
    /// Runs <paramref name="work"/> on every item under a progress bar; a user-facing error fails that item only and is reported on stderr
    /// (<c>error: &lt;item&gt;: &lt;what&gt;</c>) after the run. Returns the failures (name, message).
    /// </summary>
    public static List<(string Item, string Message)> Run<T>(string title, IReadOnlyList<T> items, Func<T, string> name, Action<T> work, Func<T, string?>? context = null)
    {
        var contexts = new List<string?>();
        var failures = new List<(string, string)>();
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask(title, maxValue: Math.Max(1, items.Count));
            foreach (var item in items)
            {
                try { work(item); }
                catch (Exception e) when (e is Common.DiffEggException or IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    failures.Add((name(item), e.Message));
                    contexts.Add(context?.Invoke(item));
                }
                task.Increment(1);
            }
            if (items.Count == 0) task.Value = 1;
        });
        for (int i = 0; i < failures.Count; i++) CliOutput.Failure(failures[i].Item1, failures[i].Item2, contexts[i]);
        return failures;
    }
}

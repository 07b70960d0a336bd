namespace DiffEgg.Cli;

/// <summary>
/// The one message format of the CLI: <c>error: &lt;path or option&gt;: &lt;what&gt;</c> (and <c>note: …</c>) on stderr, one line each,
/// never a path twice.
/// </summary>
public static class CliOutput
{
    /// <summary>Writes <c>error: &lt;message&gt;</c>; the message already starts with the path or option at fault.</summary>
    public static void Error(string message) => Console.Error.WriteLine("error: " + OneLine(message));

    /// <summary>Writes the failure of one item (an image, a scene): <c>error: &lt;item&gt;: &lt;what&gt;</c>, see <see cref="Join"/>.</summary>
    public static void Failure(string item, string message, string? context = null) => Console.Error.WriteLine("error: " + Join(item, OneLine(message), context));

    /// <summary>Writes <c>note: &lt;subject&gt;: &lt;what&gt;</c>.</summary>
    public static void Note(string subject, string what) => Console.Error.WriteLine("note: " + Join(subject, OneLine(what)));

    /// <summary>
    /// <c>item: message</c>, except that a message that already names a path or option first (<c>bad/x.png: image is truncated</c>,
    /// <c>--edges d: …</c>) is not prefixed again: it is kept as it is, followed by the item in parentheses when it names another path.
    /// <paramref name="context"/> (e.g. "image id 3") is added in parentheses.
    /// </summary>
    public static string Join(string item, string message, string? context = null)
    {
        string Ctx(string? other) => other is null && context is null ? "" : $" ({string.Join(", ", new[] { other, context }.Where(x => x is not null))})";
        if (message.StartsWith(item + ":", StringComparison.Ordinal)) return message + Ctx(null);
        int colon = message.IndexOf(": ", StringComparison.Ordinal);
        if (colon > 0 && LooksLikeSubject(message[..colon])) return message + Ctx(item);
        return $"{item}: {message}{Ctx(null)}";
    }

    /// <summary>A path (has a slash, or a file extension) or an option (starts with '-').</summary>
    static bool LooksLikeSubject(string s) =>
        s.StartsWith('-') || s.Contains('/') || s.Contains('\\') || (!s.Contains(' ') && System.IO.Path.HasExtension(s));

    static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

namespace DiffEgg.Common;

/// <summary>A user-facing error: the message names the file, key, field or shape at fault. The CLI prints it on one line and exits non-zero.</summary>
public class DiffEggException : Exception
{
    public DiffEggException(string message) : base(message) { }
    public DiffEggException(string message, Exception inner) : base(message, inner) { }
}

namespace DiffEgg.Common;

/// <summary>
/// A library option holds a value the call does not accept: bad input, like every <see cref="DiffEggException"/>. <see cref="Option"/> is the
/// option's property name (e.g. <c>Steps</c>), <see cref="Problem"/> what is wrong with its value; front ends name their own flag for it.
/// </summary>
public sealed class InvalidOptionException : DiffEggException
{
    public string Option { get; }
    public string Problem { get; }

    public InvalidOptionException(string option, string problem) : base($"{option} {problem}")
    {
        Option = option;
        Problem = problem;
    }
}

using System.Reflection;
using Spectre.Console.Cli;

namespace DiffEgg.Cli;

/// <summary>Marks a settings property as an input or output location: <c>--help</c> lists it under "INPUTS AND OUTPUTS", apart from the tuning options.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class InputOutputAttribute : Attribute { }

/// <summary>One command of the tree: its path as typed ("edges", "eval instances"), its type and its one-line description.</summary>
public sealed record CliCommand(string Path, Type Type, string Description)
{
    /// <summary>The command's settings type (the T of <see cref="Command{T}"/>).</summary>
    public Type SettingsType
    {
        get
        {
            for (var t = Type; t is not null; t = t.BaseType)
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Command<>)) return t.GetGenericArguments()[0];
            throw new InvalidOperationException($"{Type.Name} is not a Command<TSettings>");
        }
    }

    /// <summary>The options this command declares (its settings' [CommandOption] properties, inherited ones included).</summary>
    public IReadOnlyList<CliOption> Options => CliOption.Of(SettingsType);
}

/// <summary>A declared option: its names (from the [CommandOption] template), property and whether --help groups it with the inputs and outputs.</summary>
public sealed record CliOption(IReadOnlyList<string> LongNames, IReadOnlyList<string> ShortNames, PropertyInfo Property, CommandOptionAttribute Attribute)
{
    /// <summary>"--name" (or "-n" when the option has no long name).</summary>
    public string Display => LongNames.Count > 0 ? "--" + LongNames[0] : "-" + ShortNames[0];

    public bool IsInputOutput => Property.GetCustomAttribute<InputOutputAttribute>() is not null;

    /// <summary>Reflects the [CommandOption] properties of <paramref name="settingsType"/> (public, instance, inherited included).</summary>
    public static IReadOnlyList<CliOption> Of(Type settingsType) =>
        settingsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Select(p => (p, a: p.GetCustomAttribute<CommandOptionAttribute>(inherit: true)))
            .Where(x => x.a is not null)
            .Select(x => new CliOption(x.a!.LongNames.ToList(), x.a.ShortNames.ToList(), x.p, x.a))
            .ToList();
}

using System.Globalization;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectre.Console.Cli.Help;
using Spectre.Console.Rendering;

namespace DiffEgg.Cli;

/// <summary>
/// Spectre's help with the options in two groups: "INPUTS AND OUTPUTS" (properties marked <see cref="InputOutputAttribute"/>) and
/// "OPTIONS" (tuning). Each group shows a DEFAULT column from the [DefaultValue] attributes, with "(required)" for required options.
/// </summary>
public sealed class GroupedHelpProvider(ICommandAppSettings settings) : HelpProvider(settings)
{
    public override IEnumerable<IRenderable> GetOptions(ICommandModel model, ICommandInfo? command)
    {
        if (command is null) return base.GetOptions(model, command);
        var names = new List<string>();
        for (var c = command; c is not null; c = c.Parent) names.Insert(0, c.Name);
        string path = string.Join(' ', names);
        var declared = DiffEggApp.Commands.FirstOrDefault(c => c.Path == path)?.Options;
        var options = command.Parameters.OfType<ICommandOption>().Where(o => !o.IsHidden).ToList();
        bool IsIo(ICommandOption o) => declared is not null && o is ICommandParameterInfo p
            && declared.Any(d => d.Property.Name == p.PropertyName && d.IsInputOutput);

        var result = new List<IRenderable>();
        var io = options.Where(IsIo).ToList();
        if (io.Count > 0) result.AddRange(Section("INPUTS AND OUTPUTS", io, withHelp: false));
        result.AddRange(Section("OPTIONS", options.Where(o => !IsIo(o)).ToList(), withHelp: true));
        return result;
    }

    IEnumerable<IRenderable> Section(string title, IReadOnlyList<ICommandOption> options, bool withHelp)
    {
        var rows = new List<(string Names, string Default, string Description)>();
        if (withHelp) rows.Add(("-h, --help", "", "Prints help information"));
        foreach (var o in options)
        {
            string names = (o.ShortNames.Count > 0 ? "-" + o.ShortNames[0] + (o.LongNames.Count > 0 ? ", " : "") : "    ")
                + (o.LongNames.Count > 0 ? "--" + o.LongNames[0] : "")
                + (o.ValueName is null ? "" : $" <{o.ValueName}>");
            string description = o.Description ?? "";
            string def = o.IsRequired ? "(required)" : o.IsFlag ? "" : FormatDefault(o.DefaultValue?.Value);
            rows.Add((names, def, description));
        }
        if (rows.Count == 0) yield break;

        yield return new Markup($"\n[yellow]{title}:[/]\n");
        bool withDefaults = rows.Any(r => r.Default.Length > 0);
        var grid = new Grid();
        grid.AddColumn(new GridColumn { Padding = new Padding(4, 0, 4, 0), NoWrap = true });
        if (withDefaults) grid.AddColumn(new GridColumn { Padding = new Padding(0, 0, 4, 0), NoWrap = true });
        grid.AddColumn(new GridColumn { Padding = new Padding(0, 0) });
        if (withDefaults) grid.AddRow(new Text(" "), new Markup("[lime]DEFAULT[/]"), new Text(" "));
        foreach (var (names, def, description) in rows)
        {
            var cells = new List<IRenderable> { new Text(names) };
            if (withDefaults) cells.Add(new Markup($"[bold]{Markup.Escape(def)}[/]"));
            cells.Add(new Text(description));
            grid.AddRow(cells.ToArray());
        }
        yield return grid;
    }

    /// <summary>A default as the command line would spell it (invariant culture, lower-case booleans).</summary>
    public static string FormatDefault(object? value) => value switch
    {
        null => "",
        bool b => b ? "true" : "false",
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}

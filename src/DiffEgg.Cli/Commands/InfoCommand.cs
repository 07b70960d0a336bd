using DiffEgg.Common;
using Spectre.Console.Cli;
using TorchSharp;

namespace DiffEgg.Cli.Commands;

public sealed class InfoCommand : Command<InfoCommand.Settings>
{
    public sealed class Settings : CommandSettings { }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        TorchRuntime.EnsureLoaded();
        Console.WriteLine($"diffegg {DiffEggApp.Version}");
        Console.WriteLine($"TorchSharp {typeof(torch).Assembly.GetName().Version} ({TorchRuntime.Backend} build), threads {torch.get_num_threads()}");
        Console.WriteLine($"CUDA available: {torch.cuda.is_available()}");
        return 0;
    }
}

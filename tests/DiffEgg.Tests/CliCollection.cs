namespace DiffEgg.Tests;

/// <summary>
/// Tests that run CLI commands with a Spectre.Console progress display: Spectre allows one live display per process
/// ("Trying to run one or more interactive functions concurrently"), so these classes never run in parallel with each other or other collections.
/// </summary>
[CollectionDefinition("Cli", DisableParallelization = true)]
public sealed class CliCollection { }

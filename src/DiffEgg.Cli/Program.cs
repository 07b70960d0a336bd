using DiffEgg.Cli;

return DiffEggApp.Run(args);

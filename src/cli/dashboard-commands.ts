import { type Command, Option } from 'commander';
import { runDashboard } from './commands/dashboard.js';
import { runForecast } from './commands/forecast.js';

/**
 * Adds `dashboard` and `forecast` to the program (kept apart from main.ts so the dashboard's commands
 * live with the dashboard). `globals` gives the shared options of a command.
 */
export function addDashboardCommands(program: Command, globals: (cmd: Command) => { dataDir: string }): void {
  program
    .command('dashboard')
    .description(
      'print a one-time login URL for the live dashboard of the running control plane (the token stays out of the URL)',
    )
    .option('--open', 'also open it in a browser (xdg-open)')
    .action(async (opts: { open?: boolean }, cmd: Command) => {
      process.exitCode = await runDashboard({ ...globals(cmd), open: !!opts.open });
    });

  program
    .command('forecast')
    .description(
      'forecast against actual for a scaled service: MASE against the last-value forecast and interval coverage, last hour and day',
    )
    .argument('<service>', 'service name')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (service: string, opts: { output: 'table' | 'json' }, cmd: Command) => {
      process.exitCode = await runForecast({ ...globals(cmd), service, output: opts.output });
    });
}

import type { Command } from 'commander';
import { Argument, InvalidArgumentError, Option } from 'commander';
import { runCompletion, runNames } from './completion.js';
import { runConfigValidate, runHistory, runMaintenance, runRestart } from './operator.js';

/** Options every command shares, resolved (see main.ts). */
type Globals = (cmd: Command) => { dataDir: string };

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number.');
  return n;
}

/**
 * Registers the operator verbs patronictl and kubectl users expect: `pause`, `resume`, `history`,
 * `restart`, `config validate`, `completion` (and the hidden `__names` the completion scripts call).
 * `failover --to` and `status -w` are options of the commands in main.ts.
 */
export function registerOperatorCommands(program: Command, globals: Globals): void {
  for (const verb of ['pause', 'resume'] as const) {
    program
      .command(verb)
      .description(
        verb === 'pause'
          ? 'maintenance mode: no automatic failover or scaling of a service (recorded as skipped) until resume; survives a restart'
          : 'end maintenance mode: automatic failover and scaling again (a failover skipped while paused happens now if still due)',
      )
      .argument('<service>', 'service name')
      .option('--reason <text>', 'recorded in the decision', `${verb}d from the CLI`)
      .action(async (service: string, opts: { reason: string }, cmd: Command) => {
        process.exitCode = await runMaintenance({ ...globals(cmd), verb, service, reason: opts.reason });
      });
  }

  program
    .command('history')
    .description(
      'failovers and switchovers of a service: epochs, from/to instances, times, durations, reasons',
    )
    .argument('<service>', 'service name')
    .option('-n, --limit <n>', 'last n entries', positiveInt, 100)
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (service: string, opts: { limit: number; output: 'table' | 'json' }, cmd: Command) => {
      process.exitCode = await runHistory({
        ...globals(cmd),
        service,
        limit: opts.limit,
        output: opts.output,
      });
    });

  program
    .command('restart')
    .description(
      'graceful restart of one instance through the control plane; a primary that serves alone only with --force (switch over first)',
    )
    .argument('<instance>', 'instance id, e.g. kv-2')
    .option('--force', 'restart a primary that serves alone in place (its clients see the downtime)')
    .option('--reason <text>', 'recorded in the decision', 'requested from the CLI')
    .action(async (instance: string, opts: { force?: boolean; reason: string }, cmd: Command) => {
      process.exitCode = await runRestart({
        ...globals(cmd),
        instance,
        reason: opts.reason,
        force: !!opts.force,
      });
    });

  const config = program.command('config').description('spec file tools');
  config
    .command('validate')
    .description(
      "check a spec file as 'up' does, with the same errors; exit 0 when valid, 2 otherwise; writes nothing",
    )
    .argument('[file]', 'spec file', 'understudy.yaml')
    .action((file: string) => {
      process.exitCode = runConfigValidate({ file });
    });

  program
    .command('completion')
    .description('print a shell completion script: source <(understudy completion bash)')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      process.exitCode = runCompletion(program, shell);
    });

  program
    .command('__names', { hidden: true })
    .argument('<kind>', 'services or instances')
    .action(async (kind: string, _opts: unknown, cmd: Command) => {
      process.exitCode = await runNames(globals(cmd).dataDir, kind);
    });
}

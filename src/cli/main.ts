import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runControl } from './commands/control.js';
import { runAgent } from './commands/agent.js';
import { runDemo } from './commands/demo.js';
import { runDown } from './commands/down.js';
import { runEvents } from './commands/events.js';
import { runLogs } from './commands/logs.js';
import { runPromote } from './commands/promote.js';
import { runRouter } from './commands/router.js';
import { runSim } from './commands/sim.js';
import { runVerify } from './commands/verify.js';
import { runStatus } from './commands/status.js';
import { runHosts } from './commands/hosts.js';
import { runUp } from './commands/up.js';
import { registerOperatorCommands } from './commands/register-operator.js';
import { LOG_LEVELS, type LogFormat } from './logger.js';
import { parseDuration } from '../config/index.js';
import { ExitCode, reportError } from './exit-codes.js';
import { addDashboardCommands } from './dashboard-commands.js';
import { addProfileCommand } from './commands/profile.js';

/** Options every command shares. */
export interface GlobalOptions {
  dataDir: string;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number.');
  return n;
}

/** Parses a duration flag such as `30s`, `2m` or `500ms` into ms. */
export function durationFlag(value: string): number {
  // A bare number on the command line means seconds (in a spec file, milliseconds).
  const text = /^\s*\d+(?:\.\d+)?\s*$/.test(value) ? `${value.trim()}s` : value;
  const ms = parseDuration(text);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 30s, 2m or 500ms.');
  return ms;
}

/** Builds the `understudy` command. */
export function buildProgram(): Command {
  const program = new Command('understudy')
    .description(
      'Keeps an understudy (echo) for every service instance: sub-second failover, predictive scaling and migration.',
    )
    .version(version(), '-V, --version')
    .addOption(
      new Option('-d, --data-dir <dir>', 'data directory (store, logs, state, API token)')
        .env('UNDERSTUDY_DATA_DIR')
        .default('.understudy'),
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });

  const globals = (cmd: Command): GlobalOptions => {
    const o = cmd.optsWithGlobals<{ dataDir: string }>();
    return { dataDir: resolve(o.dataDir) };
  };

  program
    .command('up')
    .description(
      'run the services of a spec file in the foreground; Ctrl-C stops every instance cleanly, SIGHUP reloads the spec file',
    )
    .argument('[file]', 'spec file', 'understudy.yaml')
    .option('--api <host:port>', "API listen address (overrides the spec's api.listen)")
    .addOption(
      new Option(
        '--log-format <format>',
        'json lines, or text (default: text on a terminal, json when piped)',
      )
        .choices(['json', 'text'])
        .env('UNDERSTUDY_LOG_FORMAT'),
    )
    .addOption(
      new Option('--log-level <level>', 'drop log records below this level')
        .choices([...LOG_LEVELS])
        .env('UNDERSTUDY_LOG_LEVEL')
        .default('info'),
    )
    .option(
      '--store <url>',
      'etcd://host:port[,host:port...][/prefix/]: keep the state in etcd and campaign for leadership (default: embedded SQLite in the data directory)',
    )
    .action(
      async (
        file: string,
        opts: { api?: string; store?: string; logFormat?: LogFormat; logLevel: (typeof LOG_LEVELS)[number] },
        cmd: Command,
      ) => {
        if (opts.store) {
          process.exitCode = await runControl({
            ...globals(cmd),
            file,
            store: opts.store,
            ...(opts.api ? { api: opts.api } : {}),
          });
          return;
        }
        process.exitCode = await runUp({
          ...globals(cmd),
          file,
          ...(opts.api ? { api: opts.api } : {}),
          ...(opts.logFormat ? { logFormat: opts.logFormat } : {}),
          logLevel: opts.logLevel,
        });
      },
    );

  program
    .command('router')
    .description(
      'route one service from its own process, following the store: it keeps serving while every control process is down',
    )
    .requiredOption('-s, --service <name>', 'the service to route')
    .option(
      '--store <dir|etcd://host:port>',
      'the store to follow: a data directory or etcd://host:port[,host:port...][/prefix/] (default: --data-dir)',
    )
    .option('--listen <host:port>', "public address (overrides the spec's routing.listen)")
    .addOption(
      new Option(
        '--max-pause <duration>',
        'longest a promotion may hold mutating requests before the router serves the current primary again',
      )
        .argParser(durationFlag)
        .default(10_000, '10s'),
    )
    .action(
      async (opts: { service: string; store?: string; listen?: string; maxPause: number }, cmd: Command) => {
        process.exitCode = await runRouter({
          store: opts.store ?? globals(cmd).dataDir,
          service: opts.service,
          maxPauseMs: opts.maxPause,
          ...(opts.listen ? { listen: opts.listen } : {}),
        });
      },
    );

  program
    .command('control')
    .description(
      'a control-plane replica on etcd: any number may run; the leader (by etcd lease) runs the control loop, the others take over when it is gone',
    )
    .argument('[file]', 'spec file', 'understudy.yaml')
    .requiredOption('--store <url>', 'etcd://host:port[,host:port...][/prefix/]')
    .option('--name <name>', 'replica name, unique among the replicas (default: <hostname>-<pid>)')
    .option('--api <host:port>', "API listen address while leading (overrides the spec's api.listen)")
    .option('--lease-ttl <duration>', 'leader lease TTL (whole seconds on etcd)', durationFlag, 3000)
    .option(
      '--cluster-key <file>',
      'run the instances on the `understudy agent`s found in the store (this replica runs none itself)',
    )
    .option(
      '--place-on <host>',
      "with --cluster-key: the host new primaries go to (default: placed by policy; echoes always off their primary's host)",
    )
    .option(
      '--replace-lost-after <duration>',
      'with --cluster-key: how long the instances of a host whose lease lapsed wait for it before they are re-created on another host',
      durationFlag,
    )
    .option(
      '--no-tls',
      'with --cluster-key: reach the agents over plain HTTP (default: HTTPS under the cluster CA, cluster-ca.pem beside the cluster key)',
    )
    .action(
      async (
        file: string,
        opts: {
          store: string;
          name?: string;
          api?: string;
          leaseTtl: number;
          clusterKey?: string;
          placeOn?: string;
          replaceLostAfter?: number;
          tls: boolean;
        },
        cmd: Command,
      ) => {
        process.exitCode = await runControl({
          ...globals(cmd),
          file,
          store: opts.store,
          ttlMs: opts.leaseTtl,
          ...(opts.clusterKey ? { clusterKey: opts.clusterKey } : {}),
          ...(opts.placeOn ? { placeOn: opts.placeOn } : {}),
          ...(opts.replaceLostAfter !== undefined ? { replaceLostAfterMs: opts.replaceLostAfter } : {}),
          ...(opts.tls ? {} : { tls: false }),
          ...(opts.name ? { name: opts.name } : {}),
          ...(opts.api ? { api: opts.api } : {}),
        });
      },
    );

  program
    .command('agent')
    .description(
      "run the instances placed on one host (distributed mode): serves the agent API, registers the host in the store under a lease, adopts this host's running instances",
    )
    .requiredOption('--store <dir|etcd://…>', 'the store: a SQLite data directory or etcd://host:port')
    .requiredOption('--host <name>', "this host's name (instances placed on it carry it)")
    .option('--listen <host:port>', 'agent API listen address', '127.0.0.1:0')
    .option('--zone <zone>', 'zone of this host')
    .option('--address <addr>', "address this host's instances are reached at (default: the listen host)")
    .option('--cluster-key <file>', 'cluster key file (default: cluster.key in the SQLite data directory)')
    .option(
      '--lease-ttl <duration>',
      'TTL of the host lease, renewed every third of it (default: 10s)',
      durationFlag,
    )
    .option(
      '--fence-after <duration>',
      'self-fencing: cut off from the store and every other host this long, fence the primaries (default: 600ms, or 2/3 of the lease TTL when shorter; 0: off)',
      durationFlag,
    )
    .option(
      '--leave-running',
      'on SIGTERM/SIGINT leave the instances running (a restarted agent adopts them): a planned restart',
    )
    .option(
      '--restart-grace <duration>',
      'with --leave-running: how long control waits for the restarted agent before taking the host as lost (default: 30s; 0: no hand-over)',
      durationFlag,
    )
    .option(
      '--tls',
      'serve the agent API over HTTPS under the cluster CA (cluster-ca.pem beside the cluster key; default with an etcd store)',
    )
    .option(
      '--no-tls',
      'serve the agent API over plain HTTP (default with a SQLite store; warned about with etcd)',
    )
    .option(
      '--no-ingress',
      "with TLS: routers reach this host's instances in plain TCP (default: through the TLS ingress on the agent's port)",
    )
    .action(
      async (opts: {
        store: string;
        host: string;
        listen: string;
        zone?: string;
        address?: string;
        clusterKey?: string;
        leaseTtl?: number;
        fenceAfter?: number;
        leaveRunning?: boolean;
        restartGrace?: number;
        tls?: boolean;
        ingress: boolean;
      }) => {
        process.exitCode = await runAgent({
          store: opts.store,
          host: opts.host,
          listen: opts.listen,
          ...(opts.zone ? { zone: opts.zone } : {}),
          ...(opts.address ? { address: opts.address } : {}),
          ...(opts.clusterKey ? { clusterKey: opts.clusterKey } : {}),
          ...(opts.leaseTtl ? { leaseTtlMs: opts.leaseTtl } : {}),
          ...(opts.fenceAfter !== undefined ? { fenceAfterMs: opts.fenceAfter } : {}),
          leaveRunning: !!opts.leaveRunning,
          ...(opts.restartGrace !== undefined ? { restartGraceMs: opts.restartGrace } : {}),
          ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
          ...(opts.ingress ? {} : { ingress: false }),
        });
      },
    );

  program
    .command('hosts')
    .description('the hosts in the store (zone, address, capacity, lease) and the instances on each')
    .option(
      '--store <dir|etcd://…>',
      'the store: a SQLite data directory or etcd://host:port (default: the data directory)',
    )
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (opts: { store?: string; output: 'table' | 'json' }, cmd: Command) => {
      process.exitCode = await runHosts({ store: opts.store ?? globals(cmd).dataDir, output: opts.output });
    });

  program
    .command('status')
    .description('services, instances, roles, PIDs, ports and health of the running control plane')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option('-w, --watch', 'redraw every second when something changed; Ctrl-C exits')
    .action(async (opts: { output: 'table' | 'json'; watch?: boolean }, cmd: Command) => {
      process.exitCode = await runStatus({ ...globals(cmd), output: opts.output, watch: !!opts.watch });
    });

  program
    .command('down')
    .description('stop the running control plane and every instance it runs')
    .option('--timeout <duration>', 'how long to wait for everything to stop', durationFlag, 30_000)
    .action(async (opts: { timeout: number }, cmd: Command) => {
      process.exitCode = await runDown({ ...globals(cmd), timeoutMs: opts.timeout });
    });

  program
    .command('logs')
    .description("print an instance's output")
    .argument('<instance>', 'instance id, e.g. kv-1')
    .option('-f, --follow', 'keep printing new output')
    .option('--stderr', 'print standard error instead of standard output')
    .option('-n, --lines <n>', 'last n lines', positiveNumber, 100)
    .action(
      async (instance: string, opts: { follow?: boolean; stderr?: boolean; lines: number }, cmd: Command) => {
        process.exitCode = await runLogs({
          ...globals(cmd),
          instance,
          follow: !!opts.follow,
          stderr: !!opts.stderr,
          lines: opts.lines,
        });
      },
    );

  program
    .command('events')
    .description('the decisions of the control loop: what, why, inputs, outcome')
    .option('-f, --follow', 'keep printing new decisions')
    .option('-s, --service <name>', 'only this service')
    .option('-n, --limit <n>', 'last n decisions', positiveNumber, 50)
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(
      async (
        opts: { follow?: boolean; service?: string; limit: number; output: 'table' | 'json' },
        cmd: Command,
      ) => {
        process.exitCode = await runEvents({
          ...globals(cmd),
          follow: !!opts.follow,
          limit: opts.limit,
          output: opts.output,
          ...(opts.service ? { service: opts.service } : {}),
        });
      },
    );

  program
    .command('failover')
    .description('forced failover: promote the best echo of a service (or --to one) and fence its primary')
    .argument('<service>', 'service name')
    .option('--to <instance>', 'the echo to promote: a running, healthy echo of the service')
    .option('--reason <text>', 'recorded in the decision', 'forced from the CLI')
    .action(async (service: string, opts: { reason: string; to?: string }, cmd: Command) => {
      process.exitCode = await runPromote({
        ...globals(cmd),
        service,
        kind: 'failover',
        reason: opts.reason,
        ...(opts.to ? { to: opts.to } : {}),
      });
    });

  program
    .command('switchover')
    .description(
      'planned switchover: pause writes, wait for the echo to catch up, switch, resume (no failed request)',
    )
    .argument('<service>', 'service name')
    .option('--to <instance>', 'the echo to promote (default: the best one)')
    .action(async (service: string, opts: { to?: string }, cmd: Command) => {
      process.exitCode = await runPromote({
        ...globals(cmd),
        service,
        kind: 'switchover',
        ...(opts.to ? { to: opts.to } : {}),
      });
    });

  program
    .command('verify')
    .description(
      "compare the primary's state directory with each echo's by content hash; exit 1 if anything differs",
    )
    .argument('<service>', 'service name')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (service: string, opts: { output: 'table' | 'json' }, cmd: Command) => {
      process.exitCode = await runVerify({ ...globals(cmd), service, output: opts.output });
    });

  program
    .command('sim')
    .description(
      'replay a load trace through the simulator with a scaling policy (or all five) and print elasticity metrics',
    )
    .requiredOption('--trace <file>', 'CSV of timestamp,value (Unix seconds or ISO 8601; header optional)')
    .addOption(
      new Option('--policy <name>', 'scaling policy')
        .choices(['predictive', 'reactive-pool', 'hpa', 'static', 'oracle', 'all'])
        .default('predictive'),
    )
    .option('--plot <svg>', 'write load, capacity and forecast band over time as an SVG')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .option(
      '--scale <n>',
      "requests/s per unit of the trace's value (default: scale the mean to --mean-instances)",
      positiveNumber,
    )
    .option('--mean-instances <n>', 'instances the mean load needs', positiveNumber)
    .option('--capacity <req/s>', 'requests/s one instance serves', positiveNumber)
    .option('--target-utilization <0..1>', 'target utilisation of a serving instance', positiveNumber)
    .option('--cold-start <duration>', 'start latency of a new instance', durationFlag)
    .option('--warm-start <duration>', 'promotion latency of a warm echo', durationFlag)
    .option('--tick <duration>', 'simulation step', durationFlag)
    .option('--failure-rate <n>', 'instance failures per instance-hour', Number)
    .option('--seed <n>', 'random seed', Number)
    .option('--decisions <n>', 'print the first n decisions of each policy', positiveNumber)
    .action(async (opts: Record<string, unknown>) => {
      const pick = <T>(k: string): Record<string, T> => (opts[k] === undefined ? {} : { [k]: opts[k] as T });
      process.exitCode = await runSim({
        trace: opts.trace as string,
        policy: opts.policy as 'predictive',
        output: opts.output as 'table' | 'json',
        ...pick<string>('plot'),
        ...pick<number>('scale'),
        ...pick<number>('meanInstances'),
        ...pick<number>('capacity'),
        ...pick<number>('targetUtilization'),
        ...(opts.coldStart === undefined ? {} : { coldStartMs: opts.coldStart as number }),
        ...(opts.warmStart === undefined ? {} : { warmStartMs: opts.warmStart as number }),
        ...(opts.tick === undefined ? {} : { tickMs: opts.tick as number }),
        ...(opts.failureRate === undefined ? {} : { failureRatePerHour: opts.failureRate as number }),
        ...pick<number>('seed'),
        ...pick<number>('decisions'),
      });
    });

  program
    .command('demo')
    .description(
      'failover (the example key-value service, its primary killed under load) then predictive scaling (examples/api under a day of replayed taxi traffic, after three days of history) on the embedded default',
    )
    .option(
      '--duration <duration>',
      'length of the failover part (Ctrl-C stops sooner)',
      durationFlag,
      20_000,
    )
    .option('--rate <n>', 'requests per second of the failover part', positiveNumber, 50)
    .option(
      '--cut <duration>',
      "how long the primary's host stays cut off in the hosts part (default 10s)",
      durationFlag,
    )
    .addOption(
      new Option(
        '--part <part>',
        'which part to run (all: failover then scaling; hosts: three hosts in network namespaces, needs root)',
      )
        .choices(['all', 'failover', 'scaling', 'hosts'])
        .default('all'),
    )
    .action(
      async (
        opts: {
          duration: number;
          rate: number;
          cut?: number;
          part: 'all' | 'failover' | 'scaling' | 'hosts';
        },
        cmd: Command,
      ) => {
        const o = cmd.optsWithGlobals<{ dataDir: string }>();
        const dataDir =
          (cmd.parent ?? cmd).getOptionValueSource('dataDir') === 'default'
            ? resolve('.understudy/demo')
            : resolve(o.dataDir);
        process.exitCode = await runDemo({
          dataDir,
          durationMs: opts.duration,
          rate: opts.rate,
          part: opts.part,
          ...(opts.cut !== undefined ? { cutMs: opts.cut } : {}),
        });
      },
    );

  registerOperatorCommands(program, globals);
  addDashboardCommands(program, globals);
  addProfileCommand(program, globals);

  return program;
}

/** Runs the CLI; resolves to the exit code. Never throws: errors become one clear paragraph on stderr. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return ExitCode.Ok;
      return ExitCode.Usage;
    }
    return reportError(err);
  }
}

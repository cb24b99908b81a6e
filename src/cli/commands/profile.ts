import { type Command, Option } from 'commander';
import { stringify } from 'yaml';
import { ApiClient } from '../../api/index.js';
import type { ProfileView } from '../../control/index.js';
import type { ResourcePercentiles } from '../../telemetry/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatBytes, table } from '../output.js';

/** Options of `understudy profile`. */
export interface ProfileCommandOptions {
  dataDir: string;
  service: string;
  /** @default 'table' */
  output: 'table' | 'json' | 'yaml';
}

const cores = (v: number): string => v.toFixed(v < 0.1 ? 3 : 2);
const rate = (v: number): string => `${formatBytes(Math.round(v))}/s`;

function cell(p: ResourcePercentiles | undefined, fmt: (v: number) => string): string {
  return p ? `${fmt(p.p50)} / ${fmt(p.p95)} / ${fmt(p.max)}` : '-';
}

const ms = (p: ResourcePercentiles): string =>
  `${p.p50.toFixed(0)} / ${p.p95.toFixed(0)} / ${p.max.toFixed(0)} ms`;
const list = (xs: readonly (string | number)[], limit = 12): string =>
  xs.length === 0
    ? '-'
    : xs.slice(0, limit).join(', ') + (xs.length > limit ? `, … (${xs.length} in all)` : '');

/** The `profile` command's text: one row per hour of day, then the dependencies and the sizing now. */
export function formatProfile(p: ProfileView): string {
  const rows = p.hours.map((h) => [
    String(h.hour).padStart(2, '0'),
    String(h.samples) + (h.enough ? '' : ' (few)'),
    cell(h.resources.cpu, cores),
    cell(h.resources.memory, (v) => formatBytes(Math.round(v))),
    cell(h.resources.diskRead, rate),
    cell(h.resources.diskWrite, rate),
    cell(h.resources.network, rate),
  ]);
  const d = p.dependencies;
  return (
    `profile of ${p.service}, version ${p.version}; per serving instance, p50 / p95 / max by hour of day (UTC)\n` +
    (rows.length > 0
      ? table(['HOUR', 'SAMPLES', 'CPU (cores)', 'MEMORY', 'DISK READ', 'DISK WRITE', 'NETWORK'], rows)
      : 'no samples yet\n') +
    `listening:  ${list(d.listening)}\n` +
    `connected:  ${list(d.connected)}\n` +
    `libraries:  ${list(d.libraries, 6)}\n` +
    `open files: ${list(d.files, 8)}\n` +
    `start-up:   ${p.startup.cold ? `cold ${ms(p.startup.cold)}` : 'cold -'}; ${p.startup.promotion ? `promotion ${ms(p.startup.promotion)}` : 'promotion -'} (p50 / p95 / max)\n` +
    `now (hour ${p.now.hour}): echoes sized by ${p.now.echo.source} (${p.now.echo.detail}); shadows by ${p.now.shadow.source}\n`
  );
}

/** `understudy profile <service>`: the service's profile from the running control plane. */
export async function runProfile(options: ProfileCommandOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const p = await client.request<ProfileView>(
      'GET',
      `/v1/services/${encodeURIComponent(options.service)}/profile`,
    );
    const out =
      options.output === 'json'
        ? JSON.stringify(p, null, 2) + '\n'
        : options.output === 'yaml'
          ? stringify(p)
          : formatProfile(p);
    process.stdout.write(out);
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}

/** Adds `profile <service>` to the program; `globals` gives the shared options of a command. */
export function addProfileCommand(program: Command, globals: (cmd: Command) => { dataDir: string }): void {
  program
    .command('profile')
    .description(
      "a service's profile: expected CPU, memory, disk and network use per hour of day (p50/p95/max), its observed ports, libraries and files, and how new echoes and shadows are sized",
    )
    .argument('<service>', 'service name')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json', 'yaml'])
        .default('table'),
    )
    .action(async (service: string, opts: { output: 'table' | 'json' | 'yaml' }, cmd: Command) => {
      process.exitCode = await runProfile({ ...globals(cmd), service, output: opts.output });
    });
}

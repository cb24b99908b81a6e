import { ApiClient } from '../../api/index.js';
import { loadSpecFile } from '../../config/index.js';
import type { FailoverHistoryEntry } from '../../control/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatDecision, formatOutcome } from '../format-decision.js';
import { table } from '../output.js';

/** `understudy pause <service>` / `understudy resume <service>`. */
export async function runMaintenance(options: {
  dataDir: string;
  verb: 'pause' | 'resume';
  service: string;
  reason: string;
}): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const decision = await client.maintenance(options.verb, options.service, options.reason);
    process.stdout.write(formatDecision(decision) + '\n');
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}

/** `understudy restart <instance> [--force]`. */
export async function runRestart(options: {
  dataDir: string;
  instance: string;
  reason: string;
  force: boolean;
}): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const decision = await client.restart(options.instance, options.reason, options.force);
    process.stdout.write(formatDecision(decision) + '\n');
    return decision.outcome.status === 'ok' || decision.outcome.status === 'pending'
      ? ExitCode.Ok
      : ExitCode.Failure;
  } catch (err) {
    return reportError(err);
  }
}

/** A duration in ms as `412 ms` or `3.2 s`; `-` when unknown. */
function ms(v: number | undefined): string {
  if (v === undefined) return '-';
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
}

/** The history as a table: time, kind, epoch, from → to, detection, promotion, outcome, reason. */
export function formatHistory(entries: readonly FailoverHistoryEntry[]): string {
  if (entries.length === 0) return 'no failover or switchover recorded\n';
  return table(
    ['TIME', 'KIND', 'EPOCH', 'FROM', 'TO', 'DETECTED', 'SERVING AFTER', 'OUTCOME', 'REASON'],
    entries.map((e) => [
      new Date(e.at).toISOString().replace('T', ' ').slice(0, 23),
      e.kind,
      e.epoch === undefined ? '-' : String(e.epoch),
      e.from || '-',
      e.to || '-',
      ms(e.detectionMs),
      ms(e.promotionMs),
      e.outcome.status,
      e.outcome.status === 'ok' ? e.reason : `${e.reason} (${formatOutcome(e.outcome)})`,
    ]),
  );
}

/** `understudy history <service>`: failovers and switchovers, oldest first. */
export async function runHistory(options: {
  dataDir: string;
  service: string;
  limit: number;
  output: 'table' | 'json';
}): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const history = await client.history(options.service, options.limit);
    process.stdout.write(
      options.output === 'json' ? JSON.stringify({ history }, null, 2) + '\n' : formatHistory(history),
    );
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}

/**
 * `understudy config validate [file]`: the checks `up` makes of the spec file before anything starts
 * (syntax, schema, commands that exist), with the same errors; exit 0 or 2. Nothing is written: no data
 * directory, no lock.
 */
export function runConfigValidate(options: { file: string }): number {
  try {
    const loaded = loadSpecFile(options.file);
    const names = loaded.spec.services.map((s) => s.name);
    process.stdout.write(
      `${loaded.file}: valid (${names.length} service${names.length === 1 ? '' : 's'}: ${names.join(', ')})\n`,
    );
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}

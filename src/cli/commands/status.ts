import { ApiClient } from '../../api/index.js';
import type { ServiceView } from '../../control/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatDuration, table } from '../output.js';

export interface StatusOptions {
  dataDir: string;
  output: 'table' | 'json';
}

/** `understudy status`: a table (or JSON) of services and their instances. */
export async function runStatus(options: StatusOptions): Promise<number> {
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const services = await client.services();
    if (options.output === 'json') {
      const status = await client.status();
      process.stdout.write(JSON.stringify({ controlPlane: status, services }, null, 2) + '\n');
    } else {
      printStatusTable(services);
    }
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}

/** Prints services and instances as a table. */
export function printStatusTable(services: ServiceView[]): void {
  const rows: string[][] = [];
  const now = Date.now();
  for (const svc of services) {
    for (const i of svc.instances) {
      rows.push([
        svc.name,
        i.id,
        i.role,
        i.phase,
        i.pid ? String(i.pid) : '-',
        Object.entries(i.ports).map(([n, p]) => `${n}=${p}`).join(',') || '-',
        i.health ? (i.health.healthy ? 'ok' : `failing (${i.health.detail})`) : '-',
        i.startedAt && (i.phase === 'running' || i.phase === 'starting' || i.phase === 'unhealthy') ? formatDuration(now - i.startedAt) : '-',
        String(i.restarts.length),
        String(svc.epoch),
        i.stateDir,
      ]);
    }
  }
  process.stdout.write(table(['SERVICE', 'INSTANCE', 'ROLE', 'PHASE', 'PID', 'PORTS', 'HEALTH', 'UPTIME', 'RESTARTS', 'EPOCH', 'STATE DIR'], rows));
}

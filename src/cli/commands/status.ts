import { ApiClient } from '../../api/index.js';
import type { ServiceView } from '../../control/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatDuration, table } from '../output.js';

export interface StatusOptions {
  dataDir: string;
  output: 'table' | 'json';
  /** Redraw every second until Ctrl-C (`-w`). @default false */
  watch?: boolean;
  /** Poll interval of the watch, ms. @default 1000 */
  intervalMs?: number;
}

/** `understudy status`: a table (or JSON) of services and their instances. */
export async function runStatus(options: StatusOptions): Promise<number> {
  if (options.watch) return watchStatus(options);
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    const services = await client.services();
    if (options.output === 'json') {
      const status = await client.status();
      process.stdout.write(JSON.stringify({ controlPlane: status, services }, null, 2) + '\n');
    } else {
      printStatusTable(services);
      const status = await client.status();
      const limits = status.limits as { supported: boolean; mechanism?: string; reason?: string } | undefined;
      if (limits)
        process.stdout.write(
          limits.supported
            ? `resource limits: ${limits.mechanism}\n`
            : `resource limits unsupported: ${limits.reason}\n`,
        );
      for (const line of leadershipLines(status.control)) process.stdout.write(line + '\n');
    }
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err);
  }
}

/**
 * `understudy status -w`: polls the API each second and redraws when the view changed (on a terminal
 * the screen is cleared first; piped, each new view follows the last). Ctrl-C exits 0; losing the
 * control plane exits 1 with the error.
 */
async function watchStatus(options: StatusOptions): Promise<number> {
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (stop = r));
  const onInt = (): void => stop();
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onInt);
  try {
    const client = ApiClient.fromDataDir(options.dataDir);
    let last = '';
    for (;;) {
      const services = await client.services();
      const view = options.output === 'json' ? JSON.stringify({ services }) + '\n' : statusTable(services);
      if (view !== last) {
        const clear = process.stdout.isTTY && options.output === 'table' ? '\x1b[H\x1b[2J' : '';
        const stamp =
          options.output === 'table' ? `every 1s: understudy status    ${new Date().toISOString()}\n\n` : '';
        process.stdout.write(clear + stamp + view);
        last = view;
      }
      const tick = new Promise<'tick'>((r) => setTimeout(() => r('tick'), options.intervalMs ?? 1000));
      if ((await Promise.race([tick, stopped.then(() => 'stop' as const)])) === 'stop') return ExitCode.Ok;
    }
  } catch (err) {
    return reportError(err);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onInt);
  }
}

/** Prints services and instances as a table. */
export function printStatusTable(services: ServiceView[]): void {
  process.stdout.write(statusTable(services));
}

/** Services and instances as a table, then a line per service (data plane, lag, last failover, PAUSED). */
export function statusTable(services: ServiceView[]): string {
  let out = '';
  const rows: string[][] = [];
  const now = Date.now();
  for (const svc of services) {
    for (const i of svc.instances) {
      rows.push([
        svc.paused ? `${svc.name} PAUSED` : svc.name,
        i.id,
        i.role,
        i.phase,
        i.pid ? String(i.pid) : '-',
        Object.entries(i.ports)
          .map(([n, p]) => `${n}=${p}`)
          .join(',') || '-',
        i.health ? (i.health.healthy ? 'ok' : `failing (${i.health.detail})`) : '-',
        i.startedAt && (i.phase === 'running' || i.phase === 'starting' || i.phase === 'unhealthy')
          ? formatDuration(now - i.startedAt)
          : '-',
        String(i.restarts.length),
        String(svc.epoch),
        i.stateDir,
      ]);
    }
  }
  out += table(
    [
      'SERVICE',
      'INSTANCE',
      'ROLE',
      'PHASE',
      'PID',
      'PORTS',
      'HEALTH',
      'UPTIME',
      'RESTARTS',
      'EPOCH',
      'STATE DIR',
    ],
    rows,
  );
  for (const svc of services) {
    const parts: string[] = [];
    if (svc.paused)
      parts.push(
        `PAUSED since ${new Date(svc.paused.at).toISOString()} (${svc.paused.reason}): no automatic failover or scaling until 'understudy resume ${svc.name}'`,
      );
    if (svc.dataPlane)
      parts.push(`address ${svc.dataPlane.address} → ${svc.dataPlane.serving.join(', ') || '(no primary)'}`);
    for (const e of svc.dataPlane?.replication?.echoes ?? []) {
      parts.push(
        `echo ${e.instanceId} ${e.inSync ? 'in sync' : 'LAGGING'}: ${e.pending} mutation(s) behind, ${e.lagMs} ms`,
      );
    }
    for (const f of svc.fileSync ?? []) {
      const initial = f.initialSync
        ? `, initial copy ${Math.round((100 * f.initialSync.doneBytes) / Math.max(1, f.initialSync.totalBytes))} %`
        : '';
      parts.push(
        `files → ${f.echo}: lag ${f.lagSeconds.toFixed(2)} s / ${f.lagBytes} B, ${Math.round(f.changeRateBytesPerSec)} B/s changing, ${f.wireBytes} B on the wire${initial}`,
      );
    }
    for (const e of svc.externalEchoes ?? []) {
      const lag = e.error === undefined && e.lagBytes !== undefined ? `${e.lagBytes} B` : '?';
      parts.push(
        `echo ${e.instance} (external): lag ${lag}${e.lagSeconds !== undefined && e.error === undefined ? ` / ${e.lagSeconds} s` : ''}${e.error ? ` — ${e.error}` : ''}`,
      );
    }
    const last = svc.lastFailover;
    if (last) {
      parts.push(
        `last ${last.kind} ${last.from} → ${last.to} (epoch ${last.epoch}, ${last.cause}): detected in ${last.detectionMs ?? '?'} ms, serving after ${last.promotionMs} ms${last.atRisk.length ? `, ${last.atRisk.length} at risk` : ''}; ${last.restoredAt ? `redundant again after ${last.restoredAt - last.at} ms` : 'DEGRADED: no echo in sync yet'}`,
      );
    }
    if (parts.length) out += `${svc.name}: ${parts.join('\n  ')}\n`;
  }
  return out;
}

/** Lines for the control replicas of a control plane on etcd (`status.control`); none in embedded mode. */
export function leadershipLines(control: unknown): string[] {
  if (!control || typeof control !== 'object') return [];
  const c = control as {
    store?: string;
    leader?: { id: string; term: number; since: number };
    replicas?: { name: string; address: string; leaseId?: string; leader: boolean }[];
  };
  const lines = [
    c.leader
      ? `control leader: ${c.leader.id} (term ${c.leader.term}, since ${new Date(c.leader.since).toISOString()}) on ${c.store ?? '?'}`
      : `control leader: none on ${c.store ?? '?'}`,
  ];
  for (const r of c.replicas ?? []) {
    const lease = r.leaseId ? `lease ${r.leaseId} live` : 'no lease';
    lines.push(
      `  replica ${r.name}: ${r.leader ? 'leader' : 'standby'}, ${lease}${r.address ? `, ${r.address}` : ''}`,
    );
  }
  return lines;
}

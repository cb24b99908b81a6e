import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { InstanceRecord } from '../../control/index.js';
import { ErrorCode, UnderstudyError } from '../../errors/index.js';
import { startEmbedded, type Embedded } from '../embedded.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { formatDecision } from '../format-decision.js';
import { printStatusTable } from './status.js';
import { runScalingDemo } from './demo-scaling.js';
import { hostsDemoUnavailable, hostsPart } from './demo-hosts.js';

export interface DemoOptions {
  dataDir: string;
  /** Length of the failover part. */
  durationMs: number;
  /** Requests per second of the failover part. */
  rate: number;
  /**
   * Which parts to run: `all` is failover then scaling on the embedded default; `hosts` (three hosts
   * in network namespaces, needs root) runs only when asked for. @default 'all'
   */
  part?: 'all' | 'failover' | 'scaling' | 'hosts';
  /** How long the primary's host stays cut off in the hosts part, ms. @default 10000 */
  cutMs?: number;
}

/** The example spec shipped with the package. */
export function exampleSpecPath(name: string): string {
  return fileURLToPath(new URL(`../../../examples/${name}/understudy.yaml`, import.meta.url));
}

const DEMO_MARKER = '.understudy-demo';

/**
 * A demo starts from a clean slate every time, but never wipes a directory it did not make:
 * a data directory without the demo's marker file is refused.
 */
function prepareDemoDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    if (!existsSync(join(dir, DEMO_MARKER))) {
      throw new UnderstudyError(
        ErrorCode.Usage,
        `${dir} exists and is not a demo data directory; the demo wipes its data directory, so give it an empty or new one with -d`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, DEMO_MARKER), 'made by understudy demo; wiped at the next demo\n');
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function waitForPrimary(
  embedded: Embedded,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<InstanceRecord | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal.aborted) {
    const primary = embedded.control.instances().find((i) => i.role === 'primary' && i.phase === 'running');
    if (primary) return primary;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

/**
 * `understudy demo`: two parts on the embedded default, each stopping cleanly on Ctrl-C.
 * Failover: the example key-value service (1 primary + 1 hot echo) under load (80 % reads, 20 %
 * writes), its primary killed part-way, every acknowledged write checked at the end.
 * Scaling: four days of real traffic replayed against examples/api with predictive scaling.
 * Hosts (`part: 'hosts'` only): three hosts in network namespaces, the primary's host cut off under writes.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const part = options.part ?? 'all';
    if (part === 'hosts') {
      // Checked before the data directory is touched: without network namespaces nothing is done.
      const unavailable = hostsDemoUnavailable();
      if (unavailable) {
        process.stderr.write(`${unavailable}\n`);
        return ExitCode.Failure;
      }
      prepareDemoDir(options.dataDir);
      return await hostsPart(
        {
          dataDir: options.dataDir,
          ...(options.cutMs !== undefined ? { partitionMs: options.cutMs } : {}),
        },
        stop.signal,
      );
    }
    prepareDemoDir(options.dataDir);
    let code: number = ExitCode.Ok;
    if (part !== 'scaling') code = await failoverPart(options, stop.signal);
    if (part !== 'failover' && !stop.signal.aborted && code === ExitCode.Ok)
      code = await scalingPart(options, stop.signal);
    return code;
  } catch (err) {
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function scalingPart(options: DemoOptions, signal: AbortSignal): Promise<number> {
  let embedded: Embedded | undefined;
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    say(
      '\ndemo (scaling): examples/api — 1 to 6 serving instances, a warm echo pool, a shadow on 10 % of traffic',
    );
    embedded = await startEmbedded({
      specFile: exampleSpecPath('api'),
      dataDir: join(options.dataDir, 'scaling'),
      onDecision: (d) => {
        if (SCALING_KINDS.has(d.kind) && d.outcome.status !== 'pending') say(`  event ${formatDecision(d)}`);
      },
    });
    say(
      `demo (scaling): watch the load, the forecast band and the scale-outs live — in another terminal run: npx understudy dashboard -d ${embedded.dataDir}`,
    );
    const primary = await waitForPrimary(embedded, 20_000, signal);
    if (!primary) {
      if (signal.aborted) return ExitCode.Ok;
      process.stderr.write(
        'demo: the api service did not become healthy within 20 s; see the events above\n',
      );
      return ExitCode.Failure;
    }
    const r = await runScalingDemo(embedded, { historyDays: 3, peakRps: 120, workMs: 2 }, signal, say);
    const leads = r.leadsS.filter((x) => Number.isFinite(x)).map((x) => `${x.toFixed(1)} s`);
    say(
      `demo (scaling): ${r.scaleOuts} scale-outs, ${r.predictiveScaleOuts} asked for by the forecast before the load needed them${leads.length ? ` (landing ${leads.join(', ')} ahead)` : ''}; ${r.promotions} warm-echo promotions, ${r.coldStarts} cold starts`,
    );
    say(
      `demo (scaling): ${r.requests} requests, ${r.errors} failed; load above the ready capacity in ${r.overloadSteps} of ${r.steps} half-hours; picture: ${r.plotPath}`,
    );
    return ExitCode.Ok;
  } finally {
    if (embedded) {
      say('demo (scaling): stopping every instance');
      await embedded.close();
      say('demo (scaling): stopped cleanly');
    }
  }
}

const SCALING_KINDS = new Set([
  'scale-out',
  'scale-in',
  'promote-echo',
  'demote',
  'serving',
  'pool-resize',
  'shadow-warning',
  'shadow-clear',
  'shadow-create',
  'shadow-retire',
  'capacity',
]);

async function failoverPart(options: DemoOptions, signal: AbortSignal): Promise<number> {
  const stop = { signal };
  let embedded: Embedded | undefined;
  try {
    embedded = await startEmbedded({
      specFile: exampleSpecPath('kv'),
      dataDir: options.dataDir,
      onDecision: (d) => {
        if (d.outcome.status !== 'pending') process.stdout.write(`  event ${formatDecision(d)}\n`);
      },
    });
    const e = embedded;
    process.stdout.write(`demo: data directory ${e.dataDir}\n`);
    process.stdout.write(
      `demo: API ${e.api.endpoint.url} (bearer token in ${e.dataDir}/token; try: npx understudy status -d ${e.dataDir})\n`,
    );
    process.stdout.write(
      `demo: the live dashboard: npx understudy dashboard -d ${e.dataDir} (prints a one-time login link)\n`,
    );
    const primary = await waitForPrimary(e, 15_000, stop.signal);
    if (!primary) {
      if (stop.signal.aborted) return ExitCode.Ok;
      process.stderr.write('demo: the primary did not become healthy within 15 s; see the events above\n');
      return ExitCode.Failure;
    }
    printStatusTable(await e.control.services());
    const kv = (await e.control.services()).find((svc) => svc.name === 'kv');
    const base = `http://${kv?.dataPlane?.address ?? `127.0.0.1:${Object.values(primary.ports)[0]}`}`;
    process.stdout.write(
      `demo: driving ${options.rate} req/s (80 % GET, 20 % PUT) through the router ${base} for ${Math.round(options.durationMs / 1000)} s; every write is acknowledged only once primary and echo applied it\n`,
    );
    const killAt = options.durationMs >= 6000 ? Math.round(options.durationMs * 0.4) : undefined;
    if (killAt !== undefined)
      process.stdout.write(
        `demo: at t=${(killAt / 1000).toFixed(1)}s the primary will be killed with SIGKILL, to show the echo taking over\n`,
      );
    const totals = await driveLoad(base, options, stop.signal, e, killAt);
    const missing = await verifyAcked(base, totals.acked);
    const last = (await e.control.services()).find((svc) => svc.name === 'kv')?.lastFailover;
    if (last) {
      process.stdout.write(
        `demo: failover ${last.from} → ${last.to} at epoch ${last.epoch}: detected in ${last.detectionMs ?? '?'} ms, serving again ${last.promotionMs} ms later; acknowledged writes at risk: ${last.atRisk.length}\n`,
      );
    }
    process.stdout.write(
      `demo: ${totals.ok} requests answered, ${totals.errors} failed; ${totals.acked.size} acknowledged writes, ${missing.length} missing on the final primary\n`,
    );
    return missing.length === 0 ? ExitCode.Ok : ExitCode.Failure;
  } finally {
    if (embedded) {
      process.stdout.write('demo: stopping every instance\n');
      await embedded.close();
      process.stdout.write('demo: stopped cleanly\n');
    }
  }
}

/** Every acknowledged write must be readable through the router at the end. Returns the keys that are not. */
async function verifyAcked(base: string, acked: Map<string, string>): Promise<string[]> {
  const dispatcher = new Agent({ connections: 8 });
  const missing: string[] = [];
  for (const [key, value] of acked) {
    const res = await request(`${base}/kv/${key}`, { dispatcher }).catch(() => undefined);
    const text = res ? await res.body.text() : '';
    if (res?.statusCode !== 200 || text !== value) missing.push(key);
  }
  await dispatcher.close();
  return missing;
}

interface LoadTotals {
  ok: number;
  errors: number;
  acked: Map<string, string>;
}

async function driveLoad(
  base: string,
  options: DemoOptions,
  signal: AbortSignal,
  e: Embedded,
  killAt: number | undefined,
): Promise<LoadTotals> {
  const dispatcher = new Agent({ connections: 16, keepAliveTimeout: 10_000 });
  const started = Date.now();
  const totals: LoadTotals = { ok: 0, errors: 0, acked: new Map() };
  const written: string[] = [];
  const window: number[] = [];
  let windowErrors = 0;
  let n = 0;
  let killed = killAt === undefined;
  const inFlight = new Set<Promise<void>>();
  const one = async (i: number): Promise<void> => {
    const write = i % 5 === 0 || written.length === 0;
    const key = write ? `w${i}` : (written[i % written.length] ?? 'w0');
    const t0 = performance.now();
    try {
      const res = await request(`${base}/kv/${key}`, {
        method: write ? 'PUT' : 'GET',
        dispatcher,
        ...(write ? { body: `value-${i}`, headers: { 'x-request-id': `demo-${i}` } } : {}),
      });
      await res.body.dump();
      if (res.statusCode >= 500) throw new Error(`HTTP ${res.statusCode}`);
      totals.ok++;
      if (write && res.statusCode === 200) {
        totals.acked.set(key, `value-${i}`);
        written.push(key);
      }
      window.push(performance.now() - t0);
    } catch {
      totals.errors++;
      windowErrors++;
    }
  };
  let nextReport = started + 1000;
  while (!signal.aborted && Date.now() - started < options.durationMs) {
    const due = Math.floor(((Date.now() - started) / 1000) * options.rate);
    while (n < due) {
      const p = one(n++);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    if (!killed && killAt !== undefined && Date.now() - started >= killAt) {
      killed = true;
      const primary = e.control
        .instances()
        .find((i) => i.service === 'kv' && i.role === 'primary' && i.phase === 'running');
      if (primary?.pid) {
        process.stdout.write(`demo: killing the primary ${primary.id} (pid ${primary.pid}) with SIGKILL\n`);
        process.kill(primary.pid, 'SIGKILL');
      }
    }
    if (Date.now() >= nextReport) {
      const sorted = window.splice(0).sort((a, b) => a - b);
      const svc = (await e.control.services()).find((s) => s.name === 'kv');
      const primary = svc?.instances.find((i) => i.role === 'primary');
      const echo = svc?.dataPlane?.replication?.echoes[0];
      process.stdout.write(
        `  t=${String(Math.round((Date.now() - started) / 1000)).padStart(3)}s  ok=${String(sorted.length).padStart(4)}  errors=${windowErrors}  p50=${percentile(sorted, 50).toFixed(1)}ms  p99=${percentile(sorted, 99).toFixed(1)}ms  primary=${primary?.id ?? '-'} epoch=${svc?.epoch ?? '?'}  echo=${echo ? `${echo.instanceId} lag=${echo.pending} writes/${echo.lagMs}ms` : '(none)'}${svc?.degraded ? '  DEGRADED' : ''}\n`,
      );
      windowErrors = 0;
      nextReport += 1000;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.allSettled(inFlight);
  await dispatcher.close();
  return totals;
}

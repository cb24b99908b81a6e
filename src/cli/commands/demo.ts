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

export interface DemoOptions {
  dataDir: string;
  durationMs: number;
  /** Requests per second. */
  rate: number;
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
      throw new UnderstudyError(ErrorCode.Usage, `${dir} exists and is not a demo data directory; the demo wipes its data directory, so give it an empty or new one with -d`);
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

async function waitForPrimary(embedded: Embedded, timeoutMs: number, signal: AbortSignal): Promise<InstanceRecord | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal.aborted) {
    const primary = embedded.control.instances().find((i) => i.role === 'primary' && i.phase === 'running');
    if (primary) return primary;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

/**
 * `understudy demo`: the example key-value service (1 primary + 1 echo) on the embedded default,
 * with a little load (80 % reads, 20 % writes), a line of figures per second, and a clean stop on
 * Ctrl-C or after `--duration`.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let embedded: Embedded | undefined;
  try {
    prepareDemoDir(options.dataDir);
    embedded = await startEmbedded({
      specFile: exampleSpecPath('kv'),
      dataDir: options.dataDir,
      onDecision: (d) => {
        if (d.outcome !== 'pending') process.stdout.write(`  event ${formatDecision(d)}\n`);
      },
    });
    const e = embedded;
    process.stdout.write(`demo: data directory ${e.dataDir}\n`);
    process.stdout.write(`demo: API ${e.api.endpoint.url} (bearer token in ${e.dataDir}/token; try: npx understudy status -d ${e.dataDir})\n`);
    const primary = await waitForPrimary(e, 15_000, stop.signal);
    if (!primary) {
      if (stop.signal.aborted) return ExitCode.Ok;
      process.stderr.write('demo: the primary did not become healthy within 15 s; see the events above\n');
      return ExitCode.Failure;
    }
    printStatusTable(await e.control.services());
    const base = `http://127.0.0.1:${Object.values(primary.ports)[0]}`;
    process.stdout.write(`demo: driving ${options.rate} req/s (80 % GET, 20 % PUT) at the primary ${primary.id} ${base} for ${Math.round(options.durationMs / 1000)} s\n`);
    const totals = await driveLoad(base, options, stop.signal);
    process.stdout.write(`demo: ${totals.ok} requests answered, ${totals.errors} errors, ${totals.writes} acknowledged writes\n`);
    return totals.errors === 0 ? ExitCode.Ok : ExitCode.Failure;
  } catch (err) {
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (embedded) {
      process.stdout.write('demo: stopping every instance\n');
      await embedded.close();
      process.stdout.write('demo: stopped cleanly\n');
    }
  }
}

async function driveLoad(base: string, options: DemoOptions, signal: AbortSignal): Promise<{ ok: number; errors: number; writes: number }> {
  const dispatcher = new Agent({ connections: 16, keepAliveTimeout: 10_000 });
  const started = Date.now();
  const totals = { ok: 0, errors: 0, writes: 0 };
  const window: number[] = [];
  let windowErrors = 0;
  let n = 0;
  const inFlight = new Set<Promise<void>>();
  const one = async (i: number): Promise<void> => {
    const key = `k${i % 200}`;
    const write = i % 5 === 0;
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
      if (write) totals.writes++;
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
    if (Date.now() >= nextReport) {
      const sorted = window.splice(0).sort((a, b) => a - b);
      const stats = await request(`${base}/stats`, { dispatcher })
        .then((r) => r.body.json() as Promise<{ keys: number; seq: number }>)
        .catch(() => undefined);
      process.stdout.write(
        `  t=${String(Math.round((Date.now() - started) / 1000)).padStart(3)}s  ok=${String(sorted.length).padStart(4)}  errors=${windowErrors}  p50=${percentile(sorted, 50).toFixed(1)}ms  p99=${percentile(sorted, 99).toFixed(1)}ms  primary keys=${stats?.keys ?? '?'} seq=${stats?.seq ?? '?'}\n`,
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

// `npm run bench -- failover [--quick] [--runs N] [--modes a,b]`: kill the primary of the kv example under load
// (~500 req/s, 80 % reads / 20 % writes with unique ids, through the built-in router) and measure, per
// echo mode and fault: detection, kill-to-first-success, client-visible errors, acknowledged writes
// lost, duplicates. Anchors: Patroni ttl 30 s, Redis Sentinel down-after 30 s, keepalived ≈ 3.6 s,
// QEMU live-migration downtime target 300 ms.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiClient } from '../src/api/index.js';
import type { ServiceView } from '../src/control/index.js';
import { countLost, percentile, runLoad } from './lib/failover-load.js';
import { startKvUp } from './lib/kv-up.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsArg = args.indexOf('--runs');
const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : quick ? 3 : 20;
const rate = quick ? 300 : 500;
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write('failover bench: --runs takes a positive whole number\n');
  process.exit(2);
}

const MODES = [
  { name: 'hot-write-through', echo: '{ count: 1, mode: hot, consistency: write-through }', running: 2 },
  {
    name: 'hot-wt-pipelined',
    echo: '{ count: 1, mode: hot, consistency: write-through, mutations: { order: pipelined } }',
    running: 2,
  },
  { name: 'hot-async', echo: '{ count: 1, mode: hot, consistency: async }', running: 2 },
  // examples/kv's default: pipelined and batched to the echo (async batches linger up to 20 ms).
  {
    name: 'hot-wt-batch',
    echo: '{ count: 1, mode: hot, consistency: write-through, mutations: { order: pipelined, batch: { path: /_understudy/batch } } }',
    running: 2,
  },
  {
    name: 'hot-async-batch',
    echo: '{ count: 1, mode: hot, consistency: async, mutations: { order: pipelined, batch: { path: /_understudy/batch } } }',
    running: 2,
  },
  { name: 'warm', echo: '{ count: 1, mode: warm, promote: { http: /admin/reload } }', running: 2 },
  { name: 'cold', echo: '{ count: 1, mode: cold }', running: 1 },
] as const;
const FAULTS = ['SIGKILL', 'SIGSTOP'] as const;
const modesArg = args.indexOf('--modes');
const onlyModes = modesArg >= 0 ? (args[modesArg + 1] ?? '').split(',') : undefined;
const unknownMode = onlyModes?.find((m) => !MODES.some((x) => x.name === m));
if (unknownMode !== undefined) {
  process.stderr.write(
    `failover bench: unknown mode '${unknownMode}' in --modes; known: ${MODES.map((m) => m.name).join(', ')}\n`,
  );
  process.exit(2);
}

interface RunResult {
  detectionMs: number;
  killToFirstSuccessMs: number;
  errors: number;
  lostAcked: number;
  duplicates: number;
  acked: number;
}

function ensureBuilt(): void {
  if (existsSync(join(root, 'dist/cli/main.js'))) return;
  process.stdout.write('failover bench: building dist/ first\n');
  const r = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(1);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function kv(api: ApiClient): Promise<ServiceView> {
  const s = (await api.services()).find((x) => x.name === 'kv');
  if (!s) throw new Error('no kv service');
  return s;
}

function duplicatesIn(stateDir: string, prefix: string): number {
  const seen = new Set<string>();
  let dups = 0;
  let text = '';
  try {
    text = readFileSync(join(stateDir, 'kv.log'), 'utf8');
  } catch {
    return 0;
  }
  for (const m of text.matchAll(/"id":"([^"]+)"/g)) {
    const id = m[1] ?? '';
    if (!id.startsWith(prefix)) continue;
    if (seen.has(id)) dups++;
    seen.add(id);
  }
  return dups;
}

async function redundant(api: ApiClient, running: number): Promise<boolean> {
  const s = await kv(api);
  const primary = s.instances.find((i) => i.role === 'primary' && i.phase === 'running');
  const ready = s.instances.filter((i) => i.phase === 'running').length === running;
  const standby = running === 1 ? s.instances.some((i) => i.phase === 'standby') : true;
  const filesOk = (s.fileSync ?? []).every((f) => f.connected && f.lagBytes === 0 && f.initialSync === null);
  return !!primary && ready && standby && !s.degraded && filesOk;
}

async function benchMode(mode: (typeof MODES)[number]): Promise<Map<string, RunResult[]>> {
  const up = await startKvUp(`failover-${mode.name}`, mode.echo);
  const api = up.api;
  const results = new Map<string, RunResult[]>();
  try {
    await until(() => redundant(api, mode.running), 30_000, `${mode.name} to be redundant`);
    const base = `http://${(await kv(api)).dataPlane?.address}`;
    for (const fault of FAULTS) {
      const list: RunResult[] = [];
      results.set(fault, list);
      for (let run = 0; run < runs; run++) {
        await until(() => redundant(api, mode.running), 60_000, `${mode.name} to be redundant again`);
        const prefix = `${mode.name}-${fault}-${run}-${Date.now()}`;
        const stop = new AbortController();
        const load = runLoad(base, { rate, writeShare: 0.2, prefix, signal: stop.signal });
        await sleep(300 + Math.random() * 500);
        const before = (await kv(api)).instances.find((i) => i.role === 'primary');
        if (!before?.pid) throw new Error('no primary to kill');
        const killedAt = performance.now();
        const killedWall = Date.now();
        process.kill(before.pid, fault);
        await until(
          async () => (await kv(api)).instances.find((i) => i.role === 'primary')?.id !== before.id,
          20_000,
          'the promotion',
        );
        await sleep(700);
        stop.abort();
        const record = await load;
        if (fault === 'SIGSTOP') {
          try {
            process.kill(before.pid, 'SIGCONT');
          } catch {
            // fenced: already killed
          }
        }
        const events = await api.events({ service: 'kv', limit: 50 });
        const failover = events.filter((e) => e.kind === 'failover' && e.at >= killedWall - 5).at(0);
        const after = (await kv(api)).instances.find((i) => i.role === 'primary');
        const firstSuccess = Math.min(
          ...record.samples.filter((s) => s.sentAt >= killedAt && s.ok).map((s) => s.doneAt),
        );
        list.push({
          detectionMs: failover ? failover.at - killedWall : NaN,
          killToFirstSuccessMs: firstSuccess - killedAt,
          errors: record.samples.filter((s) => !s.ok).length,
          lostAcked: await countLost(base, record.acked),
          duplicates: after ? duplicatesIn(after.stateDir, prefix) : 0,
          acked: record.acked.size,
        });
        const r = list.at(-1);
        process.stdout.write(
          `  ${mode.name.padEnd(18)} ${fault.padEnd(8)} run ${String(run + 1).padStart(2)}: detect ${r?.detectionMs.toFixed(0).padStart(5)} ms  first success ${r?.killToFirstSuccessMs.toFixed(0).padStart(5)} ms  errors ${r?.errors}  lost ${r?.lostAcked}/${r?.acked}  dup ${r?.duplicates}\n`,
        );
      }
    }
  } finally {
    await up.stop();
  }
  return results;
}

async function main(): Promise<void> {
  ensureBuilt();
  process.stdout.write(
    `failover bench: ${runs} run(s) per mode and fault, ${rate} req/s (80 % GET / 20 % PUT) through the router${quick ? ' (quick)' : ''}\n`,
  );
  const rows: Record<string, unknown>[] = [];
  for (const mode of MODES.filter((m) => !onlyModes || onlyModes.includes(m.name))) {
    const byFault = await benchMode(mode);
    for (const [fault, list] of byFault) {
      const first = list.map((r) => r.killToFirstSuccessMs);
      const detect = list.map((r) => r.detectionMs).filter(Number.isFinite);
      rows.push({
        mode: mode.name,
        fault,
        runs: list.length,
        detectionP50Ms: round(percentile(detect, 50)),
        p50Ms: round(percentile(first, 50)),
        p99Ms: round(percentile(first, 99)),
        errors: list.reduce((a, r) => a + r.errors, 0),
        lostAcked: list.reduce((a, r) => a + r.lostAcked, 0),
        acked: list.reduce((a, r) => a + r.acked, 0),
        duplicates: list.reduce((a, r) => a + r.duplicates, 0),
      });
    }
  }
  process.stdout.write(
    '\nmode               fault     runs  detect p50  first-success p50  p99     errors  lost/acked    dup\n',
  );
  for (const r of rows) {
    process.stdout.write(
      `${String(r.mode).padEnd(18)} ${String(r.fault).padEnd(9)} ${String(r.runs).padStart(4)}  ${String(r.detectionP50Ms).padStart(8)} ms  ${String(r.p50Ms).padStart(12)} ms  ${String(r.p99Ms).padStart(6)} ms  ${String(r.errors).padStart(6)}  ${`${r.lostAcked}/${r.acked}`.padStart(10)}  ${String(r.duplicates).padStart(4)}\n`,
    );
  }
  process.stdout.write(
    'anchors (defaults): Patroni 30 s ttl; Redis Sentinel 30 s down-after; keepalived ≈ 3.6 s; QEMU downtime target 0.3 s\n',
  );
  process.stdout.write(JSON.stringify({ bench: 'failover', rate, results: rows }) + '\n');
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 10) / 10 : x;
}

main().catch((err: unknown) => {
  process.stderr.write(`failover bench: ${(err as Error).message}\n`);
  process.exit(1);
});

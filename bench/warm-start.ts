// `npm run bench -- warm-start [--quick]`: time from a scale-out decision to serving capacity, for a warm
// echo of examples/api (already running: promotion is a router change) versus a cold start (spawn the
// process, wait until it is ready, then route to it). Same router, same service, same run.
// Then, with examples/api's cache (GET /item/KEY, a miss costs CPU): the p99 of the first window of
// traffic on a new serving instance — cold start, warm echo, warm echo with state transfer, warm echo
// warmed by mirrored reads, and a long-running instance (the limit), directly and through the router —
// and the p99 of a scale-out with and without the slow-start ramp (see lib/warm-start-cache.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { Router } from '../src/router/index.js';
import { allocatePort } from '../src/runtime/index.js';
import { cacheRows } from './lib/warm-start-cache.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const quick = process.argv.includes('--quick');
const rounds = quick ? 3 : 10;
const warmupMs = 1500; // the example's own start-up work (see examples/api/server.mjs)

const dispatcher = new Agent({ connections: 4 });

async function startApi(): Promise<{ child: ChildProcess; port: number }> {
  const port = await allocatePort();
  const child = spawn(
    process.execPath,
    [`${root}examples/api/server.mjs`, '--port', String(port), '--warmup', String(warmupMs)],
    {
      stdio: 'ignore',
      env: { ...process.env, UNDERSTUDY_INSTANCE: `api-${port}` },
    },
  );
  return { child, port };
}

/** Polls until `GET url` answers 200; resolves the time it took. */
async function until200(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await request(url, { dispatcher })
      .then(async (r) => {
        await r.body.dump();
        return r.statusCode === 200;
      })
      .catch(() => false);
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Through the router until the new backend itself answers a request. */
async function untilServedBy(router: Router, instance: string): Promise<void> {
  for (;;) {
    const res = await request(`${router.url}/work?ms=1`, { dispatcher });
    const body = (await res.body.json()) as { instance?: string };
    if (body.instance === instance) return;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const base = await startApi();
  await until200(`http://127.0.0.1:${base.port}/healthz`);
  const router = await Router.create({
    service: 'api',
    backends: [{ id: 'api-base', host: '127.0.0.1', port: base.port }],
  });
  const cold: number[] = [];
  const warm: number[] = [];
  const children: ChildProcess[] = [base.child];
  try {
    for (let i = 0; i < rounds; i++) {
      // Cold: the decision is taken now; the instance must be started, become ready, then be routed to.
      let t0 = performance.now();
      const c = await startApi();
      children.push(c.child);
      await until200(`http://127.0.0.1:${c.port}/healthz`);
      router.setBackends([
        { id: 'api-base', host: '127.0.0.1', port: base.port },
        { id: `api-${c.port}`, host: '127.0.0.1', port: c.port },
      ]);
      await untilServedBy(router, `api-${c.port}`);
      cold.push(performance.now() - t0);
      router.setBackends([{ id: 'api-base', host: '127.0.0.1', port: base.port }]);

      // Warm: an echo already running and ready (pre-provisioned); the decision promotes it into the set.
      const w = await startApi();
      children.push(w.child);
      await until200(`http://127.0.0.1:${w.port}/healthz`);
      t0 = performance.now();
      router.setBackends([
        { id: 'api-base', host: '127.0.0.1', port: base.port },
        { id: `api-${w.port}`, host: '127.0.0.1', port: w.port },
      ]);
      await untilServedBy(router, `api-${w.port}`);
      warm.push(performance.now() - t0);
      router.setBackends([{ id: 'api-base', host: '127.0.0.1', port: base.port }]);
      c.child.kill('SIGTERM');
      w.child.kill('SIGTERM');
      process.stdout.write(
        `  round ${i + 1}: cold ${cold.at(-1)?.toFixed(1)} ms, warm echo ${warm.at(-1)?.toFixed(2)} ms\n`,
      );
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await router.close();
    await dispatcher.close();
  }
  const coldMs = median(cold);
  const warmMs = median(warm);
  process.stdout.write(
    `\nscale-out to serving capacity (median of ${rounds}): cold start ${coldMs.toFixed(1)} ms (of which the example's own warm-up ${warmupMs} ms), warm echo ${warmMs.toFixed(2)} ms\n`,
  );
  process.stdout.write(
    JSON.stringify({
      bench: 'warm-start',
      rounds,
      coldMs: Math.round(coldMs * 10) / 10,
      warmMs: Math.round(warmMs * 100) / 100,
      ratio: Math.round((coldMs / warmMs) * 10) / 10,
      appWarmupMs: warmupMs,
    }) + '\n',
  );
  await cacheRows({ quick, root });
}

main().catch((err: unknown) => {
  process.stderr.write(`warm-start bench: ${(err as Error).message}\n`);
  process.exit(1);
});

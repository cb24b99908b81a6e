// The cache rows of `npm run bench -- warm-start`: examples/api with its cache (GET /item/KEY; a miss
// burns MISS_MS of CPU, a hit none). Each row is the p99 of the first window of traffic on a new serving
// instance, measured on that instance; the scale-out rows go through the router.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'undici';
import { transferState } from '../../src/replication/index.js';
import { Router } from '../../src/router/index.js';
import { allocatePort } from '../../src/runtime/index.js';

const KEYS = 400;
const MISS_MS = 20;
const CONCURRENCY = 4;
const TOKEN = 'bench-state-token';

interface Api {
  child: ChildProcess;
  port: number;
  url: string;
}

async function startApi(root: string, dispatcher: Agent): Promise<Api> {
  const port = await allocatePort();
  const child = spawn(
    process.execPath,
    [`${root}examples/api/server.mjs`, '--port', String(port), '--warmup', '0', '--miss-ms', String(MISS_MS)],
    { stdio: 'ignore', env: { ...process.env, UNDERSTUDY_STATE_TOKEN: TOKEN } },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await request(`${url}/healthz`, { dispatcher })
      .then(async (r) => (await r.body.dump(), r.statusCode === 200))
      .catch(() => false);
    if (ok) break;
    if (i > 4000) throw new Error(`examples/api on ${port} not ready`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { child, port, url };
}

/** Closed-loop load of random keys for `ms`; returns the latencies, ms. */
async function load(base: string, ms: number, dispatcher: Agent, seed: number): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + ms;
  let x = seed;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % KEYS;
  };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const r = await request(`${base}/item/k${next()}`, { dispatcher });
        await r.body.dump();
        lat.push(performance.now() - t0);
      }
    }),
  );
  return lat;
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? NaN) * 100) / 100;
}

/** Runs the cache rows and prints them (a line each, then one JSON line). */
export async function cacheRows(o: { quick: boolean; root: string }): Promise<void> {
  const windowMs = o.quick ? 2000 : 10_000;
  const dispatcher = new Agent({ connections: CONCURRENCY * 2 });
  const apis: Api[] = [];
  const start = async (): Promise<Api> => {
    const a = await startApi(o.root, dispatcher);
    apis.push(a);
    return a;
  };
  const rows: Record<string, number> = {};
  const out = (name: string, v: number, note = ''): void => {
    rows[name] = v;
    process.stdout.write(`  ${name.padEnd(28)} p99 ${v.toFixed(2)} ms${note}\n`);
  };
  let transfer = { bytes: 0, ms: 0 };
  try {
    process.stdout.write(
      `\nfirst ${windowMs / 1000} s of traffic on a new serving instance (examples/api cache, ${KEYS} keys, miss ${MISS_MS} ms, ${CONCURRENCY} clients):\n`,
    );
    // The long-running instance: its cache holds every key.
    const base = await start();
    for (let k = 0; k < KEYS; k++)
      await (await request(`${base.url}/item/k${k}`, { dispatcher })).body.dump();

    // Cold start: a process started at the decision, ready, empty cache.
    const cold = await start();
    out('cold start', p99(await load(cold.url, windowMs, dispatcher, 1)));

    // Warm echo: already running, but its cache is empty.
    const warm = await start();
    out('warm echo', p99(await load(warm.url, windowMs, dispatcher, 2)));

    // Warm echo with state transfer from the long-running instance.
    const moved = await start();
    const end = { host: '127.0.0.1', token: TOKEN };
    const t = await transferState({
      from: { ...end, port: base.port },
      to: { ...end, port: moved.port },
      exportPath: '/state/export',
      importPath: '/state/import',
    });
    transfer = { bytes: t.bytes, ms: t.ms };
    out(
      'warm echo + state transfer',
      p99(await load(moved.url, windowMs, dispatcher, 3)),
      ` (transfer ${t.bytes} bytes in ${t.ms} ms)`,
    );

    // Warm echo warmed by mirrored reads: a window of live traffic through the router, 20 % copied to it.
    const mirrored = await start();
    const router = await Router.create({
      service: 'api',
      backends: [{ id: 'base', host: '127.0.0.1', port: base.port }],
    });
    try {
      router.setWarmReads([{ id: 'echo', host: '127.0.0.1', port: mirrored.port }], 0.2);
      await load(router.url, windowMs, dispatcher, 4);
      const cost = router.stats().warmReads;
      out(
        'warm echo + mirrored reads',
        p99(await load(mirrored.url, windowMs, dispatcher, 5)),
        ` (warming cost ${cost.sent} copies)`,
      );
    } finally {
      await router.close();
    }

    // The limit: the long-running instance itself.
    out('long-running instance', p99(await load(base.url, windowMs, dispatcher, 6)));

    // Scale-out through the router, the joining instance cold-cached: with and without the ramp.
    process.stdout.write(
      `\nscale-out p99 through the router over ${windowMs / 1000} s (a cold-cache instance joins):\n`,
    );
    for (const [name, slowStartMs] of [
      ['scale-out, no ramp', 0],
      ['scale-out, slow start', windowMs],
    ] as const) {
      const joining = await start();
      const r = await Router.create({
        service: 'api',
        backends: [{ id: 'base', host: '127.0.0.1', port: base.port }],
      });
      try {
        r.setBackends([
          { id: 'base', host: '127.0.0.1', port: base.port },
          { id: 'new', host: '127.0.0.1', port: joining.port, slowStartMs },
        ]);
        out(name, p99(await load(r.url, windowMs, dispatcher, 7)));
      } finally {
        await r.close();
      }
    }
  } finally {
    for (const a of apis) a.child.kill('SIGKILL');
    await dispatcher.close();
  }
  process.stdout.write(
    JSON.stringify({
      bench: 'warm-start-cache',
      windowMs,
      p99Ms: rows,
      transferBytes: transfer.bytes,
      transferMs: transfer.ms,
    }) + '\n',
  );
}

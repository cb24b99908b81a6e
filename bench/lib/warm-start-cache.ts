// The cache rows of `npm run bench -- warm-start`: examples/api with its cache (GET /item/KEY; a miss
// burns MISS_MS of CPU, a hit none). Each row is the p99 of the first window of traffic on a new serving
// instance, measured on that instance; the scale-out rows go through the router.
//
// Every row gets the same open-loop load: RATE requests a second on a fixed schedule for the window,
// so the same number of requests, each timed from when it was due (a slow instance's queue counts, as
// a client would see it — a closed loop would send fewer requests to a slow instance and hide it).
// Each row also prints the cache hit rate in its window (examples/api's /stats) and the p50 of the
// first and last tenth of its requests: a process that has never served is slower at first even with
// every answer in its cache (V8 has not optimised its request path yet), which the hit rate alone
// does not show.
//
// Keys are uniform over the KEYS (mulberry32, see keyStream). The warm-up row replays the router's
// sample of recent reads (Router.warmUp), the router having served HISTORY_READS before; the mirrored
// row's echo has received 20 % of MIRROR_HISTORY_READS reads before it is measured (a stay in the warm
// pool, compressed): rows that claim a warm instance measure one.
import { loadavg } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'undici';
import { transferState } from '../../src/replication/index.js';
import { Router } from '../../src/router/index.js';
import { allocatePort } from '../../src/runtime/index.js';

const KEYS = 400;
const MISS_MS = 20;
const RATE = 400;
/** Requests a row may have outstanding before new ones wait in the client (a bound, not a pace). */
const MAX_OUTSTANDING = 256;
const TOKEN = 'bench-state-token';
/** Reads a warm-up after the import asks for (stateTransfer.warmUpReads' default). */
const WARM_UP_READS = 2000;
/** Reads the router has served before a promotion (its sample of recent reads holds up to 1024). */
const HISTORY_READS = 2000;
/** Reads through the router while a warm-pool echo gets 20 % of them (its stay in the pool, compressed). */
const MIRROR_HISTORY_READS = 15_000;

interface Api {
  child: ChildProcess;
  port: number;
  url: string;
}

interface CacheCounters {
  hits: number;
  misses: number;
  size: number;
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

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
}

async function cacheOf(a: Api, dispatcher: Agent): Promise<CacheCounters> {
  const s = (await (await request(`${a.url}/stats`, { dispatcher })).body.json()) as { cache: CacheCounters };
  return { hits: s.cache.hits, misses: s.cache.misses, size: s.cache.size };
}

/**
 * Uniform keys in 0..KEYS-1 from a seed (mulberry32). Until this, an LCG in doubles lost its low bits
 * (x · 1103515245 passes 2^53) and drew only ~45–65 distinct keys of the 400, whatever the seed.
 */
function keyStream(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % KEYS) as number;
  };
}

/**
 * Open-loop load of random keys: `RATE` a second for `ms`, each request timed from when it was due.
 * `stop` ends it early (a warm-up's live traffic). Returns the latencies, ms, in the order sent.
 */
async function load(
  base: string,
  ms: number,
  dispatcher: Agent,
  seed: number,
  stop?: { done: boolean },
): Promise<number[]> {
  const n = Math.round((RATE * ms) / 1000);
  const lat = new Array<number>(n);
  const key = keyStream(seed);
  const t0 = performance.now();
  const running = new Set<Promise<void>>();
  let sent = 0;
  for (; sent < n && !(stop?.done ?? false); sent++) {
    const due = t0 + (sent * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (running.size >= MAX_OUTSTANDING) await Promise.race(running);
    const i = sent;
    // Timed from when it was due, or from when it was sent if a timer fired a little early.
    const from = Math.min(due, performance.now());
    const p: Promise<void> = request(`${base}/item/k${key()}`, { dispatcher })
      .then((r) => r.body.dump())
      .then(() => {
        lat[i] = performance.now() - from;
        running.delete(p);
      });
    running.add(p);
  }
  await Promise.all(running);
  return lat.slice(0, sent);
}

/** `n` reads of random keys as fast as `clients` closed-loop clients get them answered (history, not measured). */
async function burst(
  base: string,
  n: number,
  clients: number,
  dispatcher: Agent,
  seed: number,
): Promise<void> {
  const key = keyStream(seed);
  let left = n;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (left-- > 0) await (await request(`${base}/item/k${key()}`, { dispatcher })).body.dump();
    }),
  );
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return round2(s[Math.min(s.length - 1, Math.floor(s.length * q))] ?? NaN);
}

interface Row {
  p99: number;
  requests: number;
  /** Cache hits / requests of the instance measured, in the window. */
  hitRate: number;
  /** p50 of the first and of the last tenth of the window's requests, ms. */
  p50First: number;
  p50Last: number;
}

function row(lat: readonly number[], before: CacheCounters, after: CacheCounters): Row {
  const tenth = Math.max(1, Math.floor(lat.length / 10));
  const hits = after.hits - before.hits;
  const total = hits + after.misses - before.misses;
  return {
    p99: quantile(lat, 0.99),
    requests: lat.length,
    hitRate: total > 0 ? Math.round((hits / total) * 1000) / 1000 : NaN,
    p50First: quantile(lat.slice(0, tenth), 0.5),
    p50Last: quantile(lat.slice(-tenth), 0.5),
  };
}

/** Runs the cache rows and prints them (a line each, then one JSON line). */
export async function cacheRows(o: { quick: boolean; root: string }): Promise<void> {
  const windowMs = o.quick ? 2000 : 10_000;
  const dispatcher = new Agent({ connections: 64 });
  const apis: Api[] = [];
  const start = async (): Promise<Api> => {
    const a = await startApi(o.root, dispatcher);
    apis.push(a);
    return a;
  };
  const rows: Record<string, Row> = {};
  const out = (name: string, r: Row, note = ''): void => {
    rows[name] = r;
    process.stdout.write(
      `  ${name.padEnd(36)} p99 ${r.p99.toFixed(2).padStart(8)} ms  hit rate ${(r.hitRate * 100).toFixed(1).padStart(5)} %  p50 first/last tenth ${r.p50First.toFixed(2)}/${r.p50Last.toFixed(2)} ms${note}\n`,
    );
  };
  /** Loads `a` directly for the window; its row. */
  const measure = async (a: Api, seed: number): Promise<Row> => {
    const before = await cacheOf(a, dispatcher);
    const lat = await load(a.url, windowMs, dispatcher, seed);
    return row(lat, before, await cacheOf(a, dispatcher));
  };
  let transfer = { bytes: 0, ms: 0 };
  let warmUp = { completed: 0, ms: 0, source: '' };
  const loadAvg = round2(loadavg()[0] ?? NaN);
  try {
    process.stdout.write(
      `\nfirst ${windowMs / 1000} s of traffic on a new serving instance (examples/api cache, ${KEYS} keys, miss ${MISS_MS} ms; ${RATE} requests/s open loop, ${(RATE * windowMs) / 1000} requests a row; load average ${loadAvg}):\n`,
    );
    // The long-running instance: its cache holds every key (measured last, after it has served).
    const base = await start();
    for (let k = 0; k < KEYS; k++)
      await (await request(`${base.url}/item/k${k}`, { dispatcher })).body.dump();

    // Cold start: a process started at the decision, ready, empty cache.
    out('cold start', await measure(await start(), 1));

    // Warm echo: already running, but its cache is empty.
    out('warm echo', await measure(await start(), 2));

    // Warm echo with state transfer from the long-running instance, nothing else.
    const moved = await start();
    const end = { host: '127.0.0.1', token: TOKEN };
    const t = await transferState({
      from: { ...end, port: base.port },
      to: { ...end, port: moved.port },
      exportPath: '/state/export',
      importPath: '/state/import',
    });
    transfer = { bytes: t.bytes, ms: t.ms };
    out('warm echo + state transfer', await measure(moved, 3), ` (transfer ${t.bytes} bytes in ${t.ms} ms)`);

    // What Understudy does on promotion with stateTransfer: the transfer, then a warm-up
    // (stateTransfer.warmUpReads) that replays the router's sample of recent live reads to the echo at
    // full speed, while the serving instance goes on taking the live traffic. The router has served
    // before (a short history fills its sample); it does not wait for live reads.
    const warmed = await start();
    const t2 = await transferState({
      from: { ...end, port: base.port },
      to: { ...end, port: warmed.port },
      exportPath: '/state/export',
      importPath: '/state/import',
    });
    const front = await Router.create({
      service: 'api',
      backends: [{ id: 'base', host: '127.0.0.1', port: base.port }],
    });
    try {
      await burst(front.url, HISTORY_READS, 4, dispatcher, 9);
      const stop = { done: false };
      const live = load(front.url, 30_000, dispatcher, 8, stop);
      const w = await front.warmUp({ id: 'echo', host: '127.0.0.1', port: warmed.port }, WARM_UP_READS, 2000);
      stop.done = true;
      await live;
      warmUp = { completed: w.completed, ms: w.ms, source: w.source };
      out(
        'warm echo + transfer + warm-up',
        await measure(warmed, 3),
        ` (transfer ${t2.bytes} bytes in ${t2.ms} ms; warm-up ${w.completed} reads in ${w.ms} ms from ${w.source === 'replay' ? `a replay of ${w.sampled} sampled reads` : 'live reads'})`,
      );
    } finally {
      await front.close();
    }

    // Warm echo warmed by mirrored reads (echo.warmReads 0.2): a warm-pool echo that has been receiving
    // 20 % of the live reads for a while. Its time in the pool is compressed into MIRROR_HISTORY_READS
    // reads through the router as fast as the echo takes its copies: the copies it got then cover the keys (as a long
    // stay in the pool would), which one window at 20 % does not — the misses left were this row's p99.
    const mirrored = await start();
    const router = await Router.create({
      service: 'api',
      backends: [{ id: 'base', host: '127.0.0.1', port: base.port }],
    });
    try {
      router.setWarmReads([{ id: 'echo', host: '127.0.0.1', port: mirrored.port }], 0.2);
      // In chunks whose copies (a fifth of 250) stay under maxMirrorInFlight (64): a burst's copies to
      // an echo still missing would be dropped, which live traffic at 400 requests/s never causes.
      for (let done = 0; done < MIRROR_HISTORY_READS; done += 250) {
        await burst(router.url, 250, 4, dispatcher, 4 + done);
        await until(() => router.stats().warmReads.inFlight === 0);
      }
      const cost = router.stats().warmReads;
      const seen = await cacheOf(mirrored, dispatcher);
      out(
        'warm echo + mirrored reads',
        await measure(mirrored, 5),
        ` (warming: ${cost.completed} copies of ${MIRROR_HISTORY_READS} reads, ${cost.dropped} dropped; its cache ${seen.size} of ${KEYS} keys)`,
      );
    } finally {
      await router.close();
    }

    // The limit: the long-running instance itself, the same load.
    out('long-running instance', await measure(base, 6));

    // The same two through the router, as clients see them: the promoted echo (transfer, warm-up on the
    // replayed sample, then the router switches to it — its connections to it are opened by the first
    // requests) against the long-running instance behind a router that has served it (connections
    // open). The difference between these two and the direct rows is the router's part.
    const promoted = await start();
    await transferState({
      from: { ...end, port: base.port },
      to: { ...end, port: promoted.port },
      exportPath: '/state/export',
      importPath: '/state/import',
    });
    for (const [name, target, seed] of [
      ['via the router: promoted echo', promoted, 10],
      ['via the router: long-running', base, 11],
    ] as const) {
      const via = await Router.create({
        service: 'api',
        backends: [{ id: 'base', host: '127.0.0.1', port: base.port }],
      });
      try {
        await burst(via.url, HISTORY_READS, 4, dispatcher, seed);
        let note = '';
        if (target === promoted) {
          const w = await via.warmUp(
            { id: 'echo', host: '127.0.0.1', port: promoted.port },
            WARM_UP_READS,
            2000,
          );
          via.switchTo({ id: 'echo', host: '127.0.0.1', port: promoted.port });
          note = ` (warm-up ${w.completed} reads in ${w.ms} ms, ${w.source})`;
        }
        const before = await cacheOf(target, dispatcher);
        const lat = await load(via.url, windowMs, dispatcher, seed);
        out(name, row(lat, before, await cacheOf(target, dispatcher)), note);
      } finally {
        await via.close();
      }
    }

    // Scale-out through the router: a cold instance (empty cache, never served) joins the long-running
    // one under the same load, with and without the ramp. Most requests find both backends idle (the
    // ties least-outstanding-requests leaves to the weights): without a ramp the cold one takes half
    // of them at once, with it a tenth rising to half over the window.
    process.stdout.write(
      `\nscale-out through the router over ${windowMs / 1000} s (a cold instance joins a long-running one, ${RATE} requests/s):\n`,
    );
    for (const [name, slowStartMs, seed] of [
      ['scale-out, no ramp', 0, 7],
      ['scale-out, slow start', windowMs, 7],
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
        const before = await cacheOf(joining, dispatcher);
        const lat = await load(r.url, windowMs, dispatcher, seed);
        const after = await cacheOf(joining, dispatcher);
        const toNew = r.stats().backends.find((b) => b.id === 'new')?.requests ?? 0;
        const res = row(
          lat,
          { hits: 0, misses: 0, size: 0 },
          {
            hits: lat.length - (after.misses - before.misses),
            misses: after.misses - before.misses,
            size: 0,
          },
        );
        out(
          name,
          res,
          ` (${toNew} of ${lat.length} requests to the new instance, ${after.misses - before.misses} of them misses)`,
        );
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
      rate: RATE,
      loadAvg,
      p99Ms: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, v.p99])),
      hitRate: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, v.hitRate])),
      p50FirstLastMs: Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, [v.p50First, v.p50Last]])),
      requestsPerRow: (RATE * windowMs) / 1000,
      transferBytes: transfer.bytes,
      transferMs: transfer.ms,
      warmUpReads: warmUp.completed,
      warmUpMs: warmUp.ms,
      warmUpSource: warmUp.source,
    }) + '\n',
  );
}

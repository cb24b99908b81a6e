import { Agent, request } from 'undici';
import type { ApiClient } from '../../../src/api/index.js';
import type { ServiceView } from '../../../src/control/index.js';

/** The kv service as the control API shows it. */
export async function kvService(api: ApiClient): Promise<ServiceView> {
  const svc = (await api.services()).find((s) => s.name === 'kv');
  if (!svc) throw new Error('no kv service');
  return svc;
}

/** Counts of a load run against the kv example. */
export interface LoadResult {
  /** Keys whose PUT was acknowledged (200), with the value written. */
  acked: Map<string, string>;
  writes: number;
  reads: number;
  /** Requests answered with a 5xx or that failed at the connection. */
  errors: number;
  errorSamples: string[];
}

/**
 * Drives the kv example through `base`: ~`rate` requests/s, `writeShare` of them PUTs of unique keys
 * (each with its own x-request-id), the rest GETs of keys written before. Stops when `signal` aborts.
 */
export async function kvLoad(
  base: string,
  options: { rate: number; writeShare: number; signal: AbortSignal; prefix?: string },
): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: 32, keepAliveTimeout: 5000 });
  const result: LoadResult = { acked: new Map(), writes: 0, reads: 0, errors: 0, errorSamples: [] };
  const prefix = options.prefix ?? 'w';
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  let n = 0;
  const one = async (i: number): Promise<void> => {
    const write = i % Math.round(1 / options.writeShare) === 0 || result.acked.size === 0;
    const key = write ? `${prefix}-${i}` : ([...result.acked.keys()][i % result.acked.size] ?? `${prefix}-0`);
    try {
      const res = await request(`${base}/kv/${key}`, {
        method: write ? 'PUT' : 'GET',
        dispatcher,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
        ...(write ? { body: `v-${i}`, headers: { 'x-request-id': `${prefix}-req-${i}` } } : {}),
      });
      const text = await res.body.text();
      if (res.statusCode >= 500) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
      if (write) {
        result.writes++;
        if (res.statusCode === 200) result.acked.set(key, `v-${i}`);
      } else result.reads++;
    } catch (err) {
      result.errors++;
      if (result.errorSamples.length < 5) result.errorSamples.push((err as Error).message);
    }
  };
  while (!options.signal.aborted) {
    const due = Math.floor(((Date.now() - started) / 1000) * options.rate);
    while (n < due) {
      const p = one(n++);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.allSettled([...inFlight]);
  await dispatcher.close();
  return result;
}

/** Keys among `acked` that `base` does not return with the acknowledged value. */
export async function missingAcked(base: string, acked: Map<string, string>): Promise<string[]> {
  const missing: string[] = [];
  for (const [key, value] of acked) {
    const res = await fetch(`${base}/kv/${key}`);
    const text = await res.text();
    if (res.status !== 200 || text !== value) missing.push(`${key} (${res.status} ${text.slice(0, 40)})`);
  }
  return missing;
}

/**
 * `workers` closed loops through `base` until stopped, alternating a PUT of a new key and a GET of it;
 * counts the 2xx answers and describes every other answer or error.
 */
export function kvLoop(
  base: string,
  workers: number,
): { stop: () => Promise<{ ok: number; failed: string[] }> } {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; running; i++) {
      const write = i % 2 === 0;
      const url = `${base}/kv/w${w}-${i >> 1}`;
      try {
        const res = await fetch(url, write ? { method: 'PUT', body: `v${i}` } : {});
        await res.text();
        if (res.status >= 200 && res.status < 300) ok++;
        else failed.push(`${write ? 'PUT' : 'GET'} ${url}: ${res.status}`);
      } catch (err) {
        failed.push(`${write ? 'PUT' : 'GET'} ${url}: ${(err as Error).message}`);
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

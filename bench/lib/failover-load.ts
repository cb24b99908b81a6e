import { Agent, request } from 'undici';

/** One request of the load, with its timing and outcome. */
export interface Sample {
  sentAt: number;
  doneAt: number;
  ok: boolean;
  write: boolean;
}

/** A load run's record: every sample and every acknowledged write. */
export interface LoadRecord {
  samples: Sample[];
  acked: Map<string, string>;
}

/**
 * Drives the kv example at `rate` requests/s (`writeShare` PUTs of unique keys with their own
 * x-request-id, the rest GETs of keys written before) until `signal` aborts. Time is `performance.now()`.
 */
export async function runLoad(
  base: string,
  opts: { rate: number; writeShare: number; prefix: string; signal: AbortSignal },
): Promise<LoadRecord> {
  const dispatcher = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  const rec: LoadRecord = { samples: [], acked: new Map() };
  const keys: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  let n = 0;
  const every = Math.max(1, Math.round(1 / opts.writeShare));
  const one = async (i: number): Promise<void> => {
    const write = i % every === 0 || keys.length === 0;
    const key = write ? `${opts.prefix}-${i}` : (keys[i % keys.length] ?? '');
    const sentAt = performance.now();
    let ok = false;
    try {
      const res = await request(`${base}/kv/${key}`, {
        method: write ? 'PUT' : 'GET',
        dispatcher,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
        ...(write ? { body: `v${i}`, headers: { 'x-request-id': `${opts.prefix}-r${i}` } } : {}),
      });
      await res.body.dump();
      ok = res.statusCode < 500;
      if (write && res.statusCode === 200) {
        rec.acked.set(key, `v${i}`);
        keys.push(key);
      }
    } catch {
      ok = false;
    }
    rec.samples.push({ sentAt, doneAt: performance.now(), ok, write });
  };
  while (!opts.signal.aborted) {
    const due = Math.floor(((performance.now() - started) / 1000) * opts.rate);
    while (n < due) {
      const p = one(n++);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.allSettled([...inFlight]);
  await dispatcher.close();
  return rec;
}

/** Acknowledged writes the service no longer returns with the acknowledged value. */
export async function countLost(base: string, acked: Map<string, string>): Promise<number> {
  const dispatcher = new Agent({ connections: 16 });
  let lost = 0;
  const entries = [...acked];
  for (let i = 0; i < entries.length; i += 32) {
    await Promise.all(
      entries.slice(i, i + 32).map(async ([key, value]) => {
        const res = await request(`${base}/kv/${key}`, { dispatcher }).catch(() => undefined);
        const text = res ? await res.body.text() : '';
        if (res?.statusCode !== 200 || text !== value) lost++;
      }),
    );
  }
  await dispatcher.close();
  return lost;
}

/** p-th percentile of a list (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

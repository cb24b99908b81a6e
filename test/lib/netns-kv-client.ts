// A client of the kv example inside a namespace of the lab (the routers and etcd are reachable only
// from namespaces of the lab), driven over IPC by a test or benchmark in the machine's own namespace.
//   netns-kv-client <routerBases> <etcdEndpoints> <prefix>
// routerBases: comma-separated router URLs, one per namespace that may run the leading control replica
// (the router runs in the leader's process): each request goes to the last one that answered, and a
// connection that fails (refused: a standby there; timed out: a namespace cut off) moves it to the next.
// etcdEndpoints: comma-separated `host:port`.
// Requests {id, type, ...} are answered {id, ...}:
//   load {rate, writeShare, prefix}  → {} (unique writes until stop-load)
//   stop-load                        → {acked: [key, value][], acks: [key, instance, epoch][], writes,
//                                      errors, errorSamples} (acks: who acknowledged each acknowledged write,
//                                      from the kv example's x-kv-instance / x-kv-epoch answer headers)
//   missing {acked}                  → {missing: string[]} (acked keys the router does not return)
//   list {prefix}                    → {records: {key, value}[]} (from etcd)
//   probe                            → {status} (one PUT of a unique key through the router, 0 on error)
//   first-ok {timeoutMs}             → {at, sentAt, trace} (a PUT every 25 ms, each waited for up to 5 s:
//                                      when the first one was acknowledged, ms since the epoch, null: none;
//                                      when that one was sent; trace: every one sent before it was
//                                      acknowledged, [sent, done, status (0: no answer), error])
//   stop-load {trace?}               → as above, and with trace: every request of the load as
//                                      [sent, done, status (0: no answer), write (1/0), error]
import { Agent, request } from 'undici';
import { EtcdStateStore } from '../../src/store/index.js';

const [basesArg, endpointsArg, prefix] = process.argv.slice(2) as [string, string, string];
const bases = basesArg.split(',');
const store = await EtcdStateStore.create({
  endpoints: endpointsArg.split(','),
  ...(prefix ? { prefix } : {}),
});
const send = (m: unknown): void => void process.send?.(m);
const dispatcher = new Agent({ connections: 32, keepAliveTimeout: 5000, connect: { timeout: 1000 } });
let current = 0;
let probes = 0;

/** One request through the routers; a connection failure moves to the next router and is thrown. */
async function call(
  method: 'GET' | 'PUT',
  key: string,
  options: { body?: string; requestId?: string; timeoutMs?: number } = {},
): Promise<{ status: number; text: string; instance: string; epoch: number }> {
  const at = current;
  try {
    const res = await request(`${bases[at]}/kv/${key}`, {
      method,
      dispatcher,
      headersTimeout: options.timeoutMs ?? 5000,
      bodyTimeout: options.timeoutMs ?? 5000,
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.requestId ? { headers: { 'x-request-id': options.requestId } } : {}),
    });
    const text = await res.body.text();
    const header = (n: string): string => {
      const v = res.headers[n];
      return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
    };
    return {
      status: res.statusCode,
      text,
      instance: header('x-kv-instance'),
      epoch: Number(header('x-kv-epoch')),
    };
  } catch (err) {
    if (current === at) current = (at + 1) % bases.length;
    throw err;
  }
}

/** One request as the client saw it: sent and done (ms since the epoch), status (0: no answer), error. */
type Traced = [number, number, number, string];

interface Load {
  abort: AbortController;
  /** Every request of the load: sent, done, status (0: no answer), write (1) or read (0), error. */
  trace: [number, number, number, number, string][];
  done: Promise<void>;
  acked: Map<string, string>;
  acks: [string, string, number][];
  writes: number;
  errors: number;
  errorSamples: string[];
}
let load: Load | undefined;

function startLoad(rate: number, writeShare: number, keyPrefix: string): Load {
  const l: Load = {
    abort: new AbortController(),
    done: Promise.resolve(),
    acked: new Map(),
    acks: [],
    trace: [],
    writes: 0,
    errors: 0,
    errorSamples: [],
  };
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  const one = async (i: number): Promise<void> => {
    const write = i % Math.round(1 / writeShare) === 0 || l.acked.size === 0;
    const key = write ? `${keyPrefix}-${i}` : ([...l.acked.keys()][i % l.acked.size] ?? `${keyPrefix}-0`);
    const sent = Date.now();
    let status = 0;
    let error = '';
    try {
      const r = await call(
        write ? 'PUT' : 'GET',
        key,
        write ? { body: `v-${i}`, requestId: `${keyPrefix}-req-${i}` } : {},
      );
      status = r.status;
      if (r.status >= 500) throw new Error(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
      if (write) {
        l.writes++;
        if (r.status === 200) {
          l.acked.set(key, `v-${i}`);
          l.acks.push([key, r.instance, r.epoch]);
        }
      }
    } catch (err) {
      if (write) l.writes++;
      l.errors++;
      error = (err as Error).message;
      if (l.errorSamples.length < 5) l.errorSamples.push(error);
    }
    l.trace.push([sent, Date.now(), status, write ? 1 : 0, error.slice(0, 160)]);
  };
  l.done = (async () => {
    let n = 0;
    while (!l.abort.signal.aborted) {
      const due = Math.floor(((Date.now() - started) / 1000) * rate);
      while (n < due) {
        const p = one(n++);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.allSettled([...inFlight]);
  })();
  return l;
}

/**
 * GET through the routers; a connection failure moves to the next router and tries again, for up to
 * 30 s (while a new control leader starts, no router may be listening for a moment).
 */
async function get(key: string): Promise<{ status: number; text: string }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await call('GET', key, { timeoutMs: 10_000 });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function handle(m: {
  id: number;
  type: string;
  [k: string]: unknown;
}): Promise<Record<string, unknown>> {
  switch (m.type) {
    case 'load':
      // A load a failed scenario left running stops first: two would write at once, the first unseen.
      load?.abort.abort();
      load = startLoad(Number(m.rate ?? 100), Number(m.writeShare ?? 0.5), String(m.prefix ?? 'w'));
      return {};
    case 'stop-load': {
      if (!load) throw new Error('no load running');
      load.abort.abort();
      await load.done;
      const l = load;
      load = undefined;
      return {
        acked: [...l.acked],
        acks: l.acks,
        writes: l.writes,
        errors: l.errors,
        errorSamples: l.errorSamples,
        ...(m.trace ? { trace: l.trace } : {}),
      };
    }
    case 'missing': {
      const missing: string[] = [];
      for (const [key, value] of m.acked as [string, string][]) {
        const r = await get(key).catch((e: Error) => ({ status: 0, text: e.message }));
        if (r.status !== 200 || r.text !== value) missing.push(`${key} (${r.status} ${r.text.slice(0, 40)})`);
      }
      return { missing };
    }
    case 'list': {
      const records = await store.list(String(m.prefix));
      return { records: records.map((r) => ({ key: r.key, value: r.value })) };
    }
    case 'probe': {
      const status = await call('PUT', `probe-${process.pid}-${++probes}`, {
        body: 'p',
        timeoutMs: Number(m.timeoutMs ?? 1000),
      })
        .then((r) => r.status)
        .catch(() => 0);
      return { status };
    }
    case 'first-ok': {
      const until = Date.now() + Number(m.timeoutMs ?? 30_000);
      let at: number | null = null;
      let sentAt: number | null = null;
      const trace: Traced[] = [];
      const inFlight = new Set<Promise<void>>();
      while (at === null && Date.now() < until) {
        const sent = Date.now();
        const p = call('PUT', `first-ok-${process.pid}-${++probes}`, { body: 'p' })
          .then((r) => {
            if (r.status === 200 && at === null) {
              at = Date.now();
              sentAt = sent;
            }
            trace.push([sent, Date.now(), r.status, r.status >= 500 ? r.text.slice(0, 160) : '']);
          })
          .catch(
            (err: unknown) => void trace.push([sent, Date.now(), 0, (err as Error).message.slice(0, 160)]),
          );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        await new Promise((r) => setTimeout(r, 25));
      }
      await Promise.allSettled([...inFlight]);
      const before = at ?? Infinity;
      return { at, sentAt, trace: trace.filter(([sent]) => sent <= before).slice(0, 400) };
    }
    case 'exit':
      await dispatcher.close();
      await store.close();
      process.exit(0);
  }
  throw new Error(`unknown request '${m.type}'`);
}

process.on('message', (m: { id: number; type: string; [k: string]: unknown }) => {
  handle(m).then(
    (r) => send({ id: m.id, ...r }),
    (err: unknown) => send({ id: m.id, error: (err as Error).message }),
  );
});
// The test going away closes the IPC channel: nothing to serve any more.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });

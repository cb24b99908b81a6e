// The hosts demo's client (`understudy demo --part hosts`): runs inside the lab's `store` namespace,
// where the router and etcd are reachable, driven over IPC by the demo in the machine's namespace.
//   node demo-hosts-client.js <routerBase> <etcdEndpoint>
// Requests {id, type, ...} are answered {id, ...}:
//   load {rate, prefix}       → {} (unique PUTs through the router until stop-load)
//   first-ack-after {at}      → {ackAt} (when the first write sent after `at` was acknowledged; null: none yet)
//   stop-load                 → {acked: [key, value][], writes, errors}
//   missing {acked}           → {missing: string[]} (acknowledged keys the router does not return)
//   list {prefix}             → {values: string[]} (etcd records under the prefix)
//   probe                     → {status} (one PUT of a unique key, 0 on no answer)
//   exit                      → the process exits
import { Agent, request } from 'undici';
import { EtcdStateStore } from '../../store/index.js';

interface Msg {
  id: number;
  type: string;
  [k: string]: unknown;
}

const [base, endpoint] = process.argv.slice(2) as [string, string];
const store = await EtcdStateStore.create({ endpoints: [endpoint] });
const send = (m: unknown): void => void process.send?.(m);
const dispatcher = new Agent({ connections: 32, keepAliveTimeout: 5000 });

interface Load {
  stop: AbortController;
  done: Promise<void>;
  acked: Map<string, string>;
  /** When each acknowledged write was sent and acknowledged, in the order of acknowledgement. */
  ackTimes: { sentAt: number; ackAt: number }[];
  writes: number;
  errors: number;
}
let load: Load | undefined;
let probes = 0;

async function put(key: string, value: string, timeoutMs: number): Promise<number> {
  const res = await request(`${base}/kv/${key}`, {
    method: 'PUT',
    body: value,
    dispatcher,
    headers: { 'x-request-id': `req-${key}` },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  await res.body.dump();
  return res.statusCode;
}

function startLoad(rate: number, prefix: string): Load {
  const l: Load = {
    stop: new AbortController(),
    done: Promise.resolve(),
    acked: new Map(),
    ackTimes: [],
    writes: 0,
    errors: 0,
  };
  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  const one = async (i: number): Promise<void> => {
    const key = `${prefix}-${i}`;
    const sentAt = Date.now();
    l.writes++;
    try {
      const status = await put(key, `v-${i}`, 10_000);
      if (status === 200) {
        l.acked.set(key, `v-${i}`);
        l.ackTimes.push({ sentAt, ackAt: Date.now() });
      } else l.errors++;
    } catch {
      l.errors++;
    }
  };
  l.done = (async () => {
    let n = 0;
    while (!l.stop.signal.aborted) {
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

async function handle(m: Msg): Promise<Record<string, unknown>> {
  switch (m.type) {
    case 'load':
      load = startLoad(Number(m.rate ?? 50), String(m.prefix ?? 'w'));
      return {};
    case 'first-ack-after': {
      const at = Number(m.at);
      return { ackAt: load?.ackTimes.find((t) => t.sentAt > at)?.ackAt ?? null };
    }
    case 'stop-load': {
      if (!load) throw new Error('no load running');
      load.stop.abort();
      await load.done;
      const l = load;
      load = undefined;
      return { acked: [...l.acked], writes: l.writes, errors: l.errors };
    }
    case 'missing': {
      const missing: string[] = [];
      for (const [key, value] of m.acked as [string, string][]) {
        const res = await request(`${base}/kv/${key}`, { dispatcher, headersTimeout: 10_000 }).catch(
          () => undefined,
        );
        const text = res ? await res.body.text() : '';
        if (res?.statusCode !== 200 || text !== value) missing.push(key);
      }
      return { missing };
    }
    case 'list':
      return { values: (await store.list(String(m.prefix))).map((r) => r.value) };
    case 'probe':
      return { status: await put(`probe-${++probes}`, 'p', 1000).catch(() => 0) };
    case 'exit':
      await dispatcher.close();
      await store.close();
      process.exit(0);
  }
  throw new Error(`unknown request '${m.type}'`);
}

process.on('message', (m: Msg) => {
  handle(m).then(
    (r) => send({ id: m.id, ...r }),
    (err: unknown) => send({ id: m.id, error: (err as Error).message }),
  );
});
// The demo going away (Ctrl-C, a crash) closes the IPC channel: nothing to serve any more.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });

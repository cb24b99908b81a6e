// A client of the kv example inside a host's namespace (the router and etcd are reachable only from
// namespaces of the lab), driven over IPC by a test or benchmark in the machine's own namespace.
//   netns-kv-client <routerBase> <etcdEndpoint> <prefix>
// Requests {id, type, ...} are answered {id, ...}:
//   load {rate, writeShare, prefix}  → {} (unique writes until stop-load)
//   stop-load                        → {acked: [key, value][], writes, errors, errorSamples}
//   missing {acked}                  → {missing: string[]} (acked keys the router does not return)
//   list {prefix}                    → {records: {key, value}[]} (from etcd)
//   probe                            → {status} (one PUT of a unique key through the router, 0 on error)
//   first-ok {timeoutMs}             → {at} (a PUT every 25 ms, each waited for up to 5 s: when the
//                                      first one was acknowledged, ms since the epoch; null: none)
import { EtcdStateStore } from '../../src/store/index.js';
import { kvLoad, missingAcked, type LoadResult } from '../e2e/lib/kv-load.js';

const [base, endpoint, prefix] = process.argv.slice(2) as [string, string, string];
const store = await EtcdStateStore.create({ endpoints: [endpoint], ...(prefix ? { prefix } : {}) });
const send = (m: unknown): void => void process.send?.(m);
let load: { abort: AbortController; done: Promise<LoadResult> } | undefined;
let probes = 0;

process.on('message', (m: { id: number; type: string; [k: string]: unknown }) => {
  void (async () => {
    try {
      switch (m.type) {
        case 'load': {
          const abort = new AbortController();
          const done = kvLoad(base, {
            rate: Number(m.rate ?? 100),
            writeShare: Number(m.writeShare ?? 0.5),
            signal: abort.signal,
            prefix: String(m.prefix ?? 'w'),
          });
          load = { abort, done };
          return send({ id: m.id });
        }
        case 'stop-load': {
          if (!load) return send({ id: m.id, error: 'no load running' });
          load.abort.abort();
          const r = await load.done;
          load = undefined;
          return send({
            id: m.id,
            acked: [...r.acked],
            writes: r.writes,
            errors: r.errors,
            errorSamples: r.errorSamples,
          });
        }
        case 'missing': {
          const acked = new Map(m.acked as [string, string][]);
          return send({ id: m.id, missing: await missingAcked(base, acked) });
        }
        case 'list': {
          const records = await store.list(String(m.prefix));
          return send({ id: m.id, records: records.map((r) => ({ key: r.key, value: r.value })) });
        }
        case 'probe': {
          const key = `probe-${process.pid}-${++probes}`;
          const status = await fetch(`${base}/kv/${key}`, {
            method: 'PUT',
            body: 'p',
            signal: AbortSignal.timeout(Number(m.timeoutMs ?? 1000)),
          })
            .then(async (r) => (await r.text(), r.status))
            .catch(() => 0);
          return send({ id: m.id, status });
        }
        case 'first-ok': {
          const until = Date.now() + Number(m.timeoutMs ?? 30_000);
          let at: number | null = null;
          const inFlight = new Set<Promise<void>>();
          while (at === null && Date.now() < until) {
            const key = `first-ok-${process.pid}-${++probes}`;
            const p = fetch(`${base}/kv/${key}`, {
              method: 'PUT',
              body: 'p',
              signal: AbortSignal.timeout(5000),
            })
              .then(async (r) => {
                await r.text();
                if (r.status === 200 && at === null) at = Date.now();
              })
              .catch(() => undefined);
            inFlight.add(p);
            void p.finally(() => inFlight.delete(p));
            await new Promise((r) => setTimeout(r, 25));
          }
          await Promise.allSettled([...inFlight]);
          return send({ id: m.id, at });
        }
        case 'exit':
          await store.close();
          process.exit(0);
      }
      send({ id: m.id, error: `unknown request '${m.type}'` });
    } catch (err) {
      send({ id: m.id, error: (err as Error).message });
    }
  })();
});
send({ type: 'ready' });

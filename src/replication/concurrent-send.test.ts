import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import {
  SeqGate,
  applyBatch,
  decodeBatch,
  readSequence,
  type Sequenced,
} from '../../examples/lib/seq-gate.mjs';
import type { InterceptDecision, RouterRequest } from '../router/index.js';
import { replicationHooks } from './router-glue.js';
import { ServiceReplication } from './service-replication.js';

// Concurrent send (docs/failover.md, "Concurrent send"): in pipelined order a write goes to the echoes
// as it arrives, beside the primary; the primary's answer is the outcome and an echo that consumed it
// otherwise is dropped as diverged.

interface Instance {
  id: string;
  port: number;
  gate: SeqGate;
  /** Values applied, in order. */
  history: string[];
  /** Bodies this instance rejects with 422 (a service that is not deterministic, for the test). */
  rejects: Set<string>;
  /** While true, every request is answered 503 without being consumed (the instance is unavailable). */
  unavailable: boolean;
}

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const BATCH_PATH = '/_understudy/batch';

async function startInstance(id: string): Promise<Instance> {
  const inst: Instance = {
    id,
    port: 0,
    gate: new SeqGate(),
    history: [],
    rejects: new Set(),
    unavailable: false,
  };
  const applyOne = async (s: Sequenced, body: string): Promise<[number, string | undefined]> => {
    const t = await inst.gate.enter(s);
    if (t.turn === 'duplicate') return [s.skip ? 200 : Number(t.outcome) || 409, String(t.outcome)];
    if (t.turn === 'stale') return [409, '409'];
    if (s.skip) {
      inst.gate.complete(s.seq, 'skip');
      return [200, 'skip'];
    }
    if (inst.rejects.has(body)) {
      inst.gate.complete(s.seq, 422);
      return [422, undefined];
    }
    inst.history.push(body);
    inst.gate.complete(s.seq, 200);
    return [200, undefined];
  };
  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readRaw(req);
      if (inst.unavailable) return void res.writeHead(503).end();
      if (req.url === BATCH_PATH) {
        const answer = await applyBatch(decodeBatch(raw), async (e) => {
          const s = readSequence(e.headers);
          return s ? (await applyOne(s, e.body.toString('utf8')))[0] : 400;
        });
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      }
      const s = readSequence(req.headers);
      if (!s) return void res.writeHead(400).end();
      const [status, outcome] = await applyOne(s, raw.toString('utf8'));
      res.writeHead(status, outcome === undefined ? {} : { 'x-understudy-outcome': outcome }).end();
    })();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  inst.port = (server.address() as AddressInfo).port;
  return inst;
}

const target = (i: Instance): { instanceId: string; host: string; port: number } => ({
  instanceId: i.id,
  host: '127.0.0.1',
  port: i.port,
});

async function until(what: () => boolean): Promise<void> {
  for (let t = 0; t < 500 && !what(); t++) await new Promise((r) => setTimeout(r, 10));
}

let run = 0;

/** A primary, one echo, the router's hooks over them; `write` runs one write as the router does. */
async function rig(options: { concurrentEchoes?: boolean; batch?: boolean } = {}): Promise<{
  repl: ServiceReplication;
  primary: Instance;
  echo: Instance;
  diverged: string[];
  /** Numbers the write (it is sent to the echo), then `forward` decides what reaches the primary. */
  begin: (value: string) => Promise<{ req: RouterRequest; d: InterceptDecision; seq: number }>;
  /** Forwards a begun write to the primary and completes it as the router does: whether acknowledged. */
  finish: (w: { req: RouterRequest; d: InterceptDecision }) => Promise<boolean>;
  /** The router got no answer from the primary for a begun write (it was never forwarded). */
  abandon: (w: { req: RouterRequest }) => void;
  close: () => Promise<void>;
}> {
  run++;
  const primary = await startInstance(`p${run}`);
  const echo = await startInstance(`e${run}`);
  const diverged: string[] = [];
  const repl = new ServiceReplication({
    service: 'kv',
    rules: {
      methods: ['PUT'],
      paths: ['/kv'],
      timeoutMs: 2000,
      strict: false,
      order: 'pipelined',
      ...(options.batch ? { batch: { path: BATCH_PATH, max: 64, inflight: 2 } } : {}),
    },
    consistency: 'write-through',
    epoch: () => 1,
    stream: `concurrent-${run}`,
    ...(options.concurrentEchoes === undefined ? {} : { concurrentEchoes: options.concurrentEchoes }),
    onEchoDiverged: (id, reason) => diverged.push(`${id}: ${reason}`),
  });
  repl.setPrimary(target(primary));
  repl.addEcho(target(echo), 0);
  const hooks = replicationHooks(repl, () => 1);
  const pool = new Pool(`http://127.0.0.1:${primary.port}`);
  let id = 0;
  return {
    repl,
    primary,
    echo,
    diverged,
    begin: async (value) => {
      const req: RouterRequest = {
        id: ++id,
        service: 'kv',
        method: 'PUT',
        path: '/kv/k',
        headers: { 'content-type': 'text/plain' },
        body: Buffer.from(value),
        remoteAddress: '127.0.0.1',
        receivedAt: 0,
      };
      const d = (await hooks.interceptor(req)) as InterceptDecision;
      return { req, d, seq: Number(d.headers?.['x-understudy-seq']) };
    },
    finish: async ({ req, d }) => {
      const res = await pool.request({
        method: 'PUT',
        path: req.path,
        headers: { ...d.headers },
        body: req.body ?? '',
      });
      await res.body.dump();
      const outcome = await d.holdResponse!({ statusCode: res.statusCode, backendId: primary.id, epoch: 1 });
      const info = { statusCode: res.statusCode, backendStatus: res.statusCode, backendId: primary.id };
      hooks.afterResponse(req, { ...info, epoch: 1, error: undefined, durationMs: 0 });
      return outcome.release && res.statusCode < 300;
    },
    abandon: ({ req }) => {
      const info = { statusCode: 503, backendStatus: 0, backendId: undefined, epoch: undefined };
      hooks.afterResponse(req, { ...info, error: 'connect', durationMs: 0 });
    },
    close: async () => {
      await pool.close();
      await repl.close();
    },
  };
}

describe('concurrent send to the echoes (pipelined order)', () => {
  for (const batch of [false, true])
    it(`sends a write to the echo before the primary answered it, and acknowledges it once both applied it${batch ? ' (batched)' : ''}`, async () => {
      const r = await rig({ batch });
      try {
        const w = await r.begin('1');
        // Not forwarded to the primary yet: the echo applies it on its own.
        await until(() => r.echo.history.length === 1);
        expect(r.echo.history).toEqual(['1']);
        expect(r.primary.history).toEqual([]);
        expect(await r.finish(w)).toBe(true);
        expect(r.primary.history).toEqual(['1']);
        expect(r.repl.echoes()[0]).toMatchObject({ inSync: true, appliedSeq: w.seq, pending: 0 });
        expect(r.diverged).toEqual([]);
      } finally {
        await r.close();
      }
    });

  it('with concurrentEchoes: false, the echo gets a write only once the primary answered it', async () => {
    const r = await rig({ concurrentEchoes: false });
    try {
      const w = await r.begin('1');
      await new Promise((res) => setTimeout(res, 100));
      expect(r.echo.history).toEqual([]);
      expect(await r.finish(w)).toBe(true);
      expect(r.echo.history).toEqual(['1']);
    } finally {
      await r.close();
    }
  });

  it('applies a write the primary rejected nowhere: the echo, sent it at once, rejects it too', async () => {
    const r = await rig();
    try {
      r.primary.rejects.add('bad');
      r.echo.rejects.add('bad');
      expect(await r.finish(await r.begin('bad'))).toBe(false);
      expect(await r.finish(await r.begin('2'))).toBe(true);
      expect(await r.repl.waitCaughtUp(r.echo.id, 5000)).toBe(true);
      expect((r.repl.log.recent(0) ?? []).map((m) => m.kind)).toEqual(['skip', 'apply']);
      expect(r.echo.history).toEqual(['2']);
      expect(r.diverged).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('sends again an early write the echo could not take (5xx) as the log entry: a skip once the primary rejected it', async () => {
    const r = await rig();
    try {
      r.primary.rejects.add('odd'); // the echo would apply it: only the skip keeps it from diverging
      r.echo.unavailable = true;
      const w = await r.begin('odd');
      expect(await r.finish(w)).toBe(false);
      expect((r.repl.log.recent(0) ?? []).map((m) => m.kind)).toEqual(['skip']);
      r.echo.unavailable = false;
      expect(await r.repl.waitCaughtUp(r.echo.id, 5000)).toBe(true);
      expect(r.echo.gate.appliedSeq).toBe(w.seq);
      expect(r.echo.history).toEqual([]);
      expect(r.diverged).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('runs on the primary a write whose answer was lost while the echo had not answered it yet (it may still apply it)', async () => {
    const r = await rig();
    try {
      r.echo.unavailable = true;
      const w = await r.begin('slow');
      r.abandon(w);
      // After mutations.timeout without the echo's answer, the primary is asked to run it, not skip it.
      await until(() => r.repl.log.lastSeq === w.seq);
      expect(r.primary.history).toEqual(['slow']);
      expect((r.repl.log.recent(0) ?? []).map((m) => m.kind)).toEqual(['apply']);
      r.echo.unavailable = false;
      expect(await r.repl.waitCaughtUp(r.echo.id, 5000)).toBe(true);
      expect(r.echo.history).toEqual(['slow']);
      expect(r.diverged).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('drops an echo that rejected a write the primary applied, as diverged: it is not counted as having applied it', async () => {
    const r = await rig();
    try {
      r.echo.rejects.add('odd');
      const w = await r.begin('odd');
      await until(() => r.echo.gate.appliedSeq === w.seq);
      expect(await r.finish(w)).toBe(true); // not strict: acknowledged on the primary alone
      expect(r.diverged).toEqual([
        `${r.echo.id}: it rejected (HTTP 422) mutation ${w.seq}, which the primary applied, when it was sent to both at once: its state is no longer the primary's (it needs a full copy)`,
      ]);
      expect(r.repl.echoes()).toEqual([]);
      expect(r.repl.atRisk(r.echo.id)).toEqual([w.seq]);
      // Not resumable by replay after an exit either: its state is not the primary's.
      expect(r.repl.wasEcho(r.echo.id)).toBe(false);
    } finally {
      await r.close();
    }
  });

  it('runs on the primary a write whose answer was lost when the echo had applied it, instead of skipping it', async () => {
    const r = await rig();
    try {
      const w = await r.begin('lost');
      await until(() => r.echo.history.length === 1);
      // The forward to the primary never happened (connect error): the router resolves the seq.
      r.abandon(w);
      await until(() => r.repl.log.lastSeq === w.seq);
      expect(r.primary.history).toEqual(['lost']);
      expect((r.repl.log.recent(0) ?? []).map((m) => m.kind)).toEqual(['apply']);
      expect(await r.repl.waitCaughtUp(r.echo.id, 5000)).toBe(true);
      expect(r.diverged).toEqual([]);
      expect(await r.finish(await r.begin('next'))).toBe(true);
      expect(r.echo.history).toEqual(r.primary.history);
    } finally {
      await r.close();
    }
  });
});

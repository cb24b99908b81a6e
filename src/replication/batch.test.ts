import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { SeqGate, applyBatch, decodeBatch, readSequence } from '../../examples/lib/seq-gate.mjs';
import { EchoReplicator } from './echo-replicator.js';
import type { Mutation } from './mutation.js';
import { DEFAULT_BATCH_LINGER_MS } from './batch.js';
import { ServiceReplication } from './service-replication.js';

const BATCH_PATH = '/_understudy/batch';

/** An in-process echo keeping the batch contract with the seq-gate helper. */
interface BatchEcho {
  id: string;
  port: number;
  gate: SeqGate;
  /** Applied writes in the order applied. */
  history: Array<{ seq: number; key: string; value: string }>;
  /** Entries per batch request received, and single requests received. */
  batches: number[];
  singles: number;
  /** Seqs to fail (500, not applied) the first time they are offered. */
  failOnce: Set<number>;
  hold: () => void;
  resume: () => void;
}

const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function startEcho(id: string): Promise<BatchEcho> {
  const gate = new SeqGate();
  const echo: BatchEcho = {
    id,
    port: 0,
    gate,
    history: [],
    batches: [],
    singles: 0,
    failOnce: new Set(),
    hold: () => {
      held = new Promise((r) => (release = r));
    },
    resume: () => {
      held = undefined;
      release();
    },
  };
  let held: Promise<void> | undefined;
  let release = (): void => undefined;
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      if (held) await held;
      if (req.url !== BATCH_PATH) {
        echo.singles++;
        return void res.writeHead(404).end();
      }
      const batch = decodeBatch(body);
      echo.batches.push(batch.entries.length);
      const answer = await applyBatch(batch, async (e) => {
        if (echo.failOnce.delete(e.seq)) return 503;
        const s = readSequence(e.headers);
        if (!s) return 400;
        const t = await gate.enter(s);
        if (t.turn === 'duplicate') return typeof t.outcome === 'number' ? t.outcome : 200;
        if (t.turn === 'stale') return 409;
        if (s.skip) {
          gate.complete(s.seq, 'skip');
          return 200;
        }
        echo.history.push({ seq: s.seq, key: e.path.slice(4), value: e.body.toString('utf8') });
        gate.complete(s.seq, 200);
        await new Promise((r) => setImmediate(r));
        return 200;
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    })();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  echo.port = (server.address() as AddressInfo).port;
  return echo;
}

const mutation = (seq: number, kind: Mutation['kind'] = 'apply'): Mutation => ({
  seq,
  kind,
  epoch: 1,
  partition: '',
  method: 'PUT',
  path: `/kv/k${seq % 5}`,
  headers: { 'content-type': 'text/plain' },
  body: kind === 'apply' ? Buffer.from(`v${seq}\u00e9\n`) : Buffer.alloc(0),
  at: Date.now(),
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('batched replication to an echo', () => {
  it('sends the mutations ready together as batches of at most max, applied once each in seq order', async () => {
    const echo = await startEcho('e-order');
    const r = new EchoReplicator({
      target: { instanceId: echo.id, host: '127.0.0.1', port: echo.port },
      timeoutMs: 5000,
      pipelined: { stream: 'order', window: 128 },
      batch: { path: BATCH_PATH, max: 16, inflight: 2 },
    });
    try {
      for (let s = 1; s <= 200; s++) r.enqueue(mutation(s));
      expect(await r.waitApplied(200)).toBe(true);
      await until(() => r.unappliedSeqs().length === 0);
      expect(echo.history.map((h) => h.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(echo.history[0]?.value).toBe('v1\u00e9\n');
      expect(echo.singles).toBe(0);
      expect(Math.max(...echo.batches)).toBeLessThanOrEqual(16);
      // Many mutations per request: far fewer requests than mutations.
      expect(echo.batches.length).toBeLessThan(200 / 4);
      expect(r.stats().appliedSeq).toBe(200);
    } finally {
      await r.close();
    }
  });

  it('sends the mutations that become ready in the same turn of the event loop as one batch', async () => {
    const echo = await startEcho('e-coalesce');
    const r = new EchoReplicator({
      target: { instanceId: echo.id, host: '127.0.0.1', port: echo.port },
      timeoutMs: 5000,
      pipelined: { stream: 'coalesce', window: 128 },
      batch: { path: BATCH_PATH, max: 64, inflight: 2 },
    });
    try {
      for (let s = 1; s <= 10; s++) r.enqueue(mutation(s));
      expect(await r.waitApplied(10)).toBe(true);
      expect(echo.batches).toEqual([10]);
      // The echo's stats count batch requests: applied / batches is the mean batch size.
      expect(r.stats()).toMatchObject({ applied: 10, batches: 1 });
    } finally {
      await r.close();
    }
  });

  it('with coalesceMs (async services), mutations enqueued in separate turns within it leave in one batch; without it, each turn sends its own', async () => {
    for (const coalesceMs of [300, 0]) {
      const echo = await startEcho(`e-wait-${coalesceMs}`);
      const r = new EchoReplicator({
        target: { instanceId: echo.id, host: '127.0.0.1', port: echo.port },
        timeoutMs: 5000,
        pipelined: { stream: `wait-${coalesceMs}`, window: 128 },
        batch: { path: BATCH_PATH, max: 64, inflight: 2 },
        coalesceMs,
      });
      try {
        for (let s = 1; s <= 5; s++) {
          r.enqueue(mutation(s));
          await new Promise((resolve) => setTimeout(resolve, 20)); // a turn of its own
        }
        expect(await r.waitApplied(5)).toBe(true);
        expect(echo.history.map((h) => h.seq)).toEqual([1, 2, 3, 4, 5]);
        if (coalesceMs > 0) expect(echo.batches).toEqual([5]);
        else expect(echo.batches.length).toBeGreaterThan(1);
      } finally {
        await r.close();
      }
    }
  });

  it('after a batch that partially fails, counts the applied prefix and sends the rest again, each applied once', async () => {
    const echo = await startEcho('e-partial');
    echo.failOnce.add(7);
    const r = new EchoReplicator({
      target: { instanceId: echo.id, host: '127.0.0.1', port: echo.port },
      timeoutMs: 5000,
      pipelined: { stream: 'partial', window: 128 },
      batch: { path: BATCH_PATH, max: 64, inflight: 2 },
    });
    try {
      for (let s = 1; s <= 20; s++) r.enqueue(s === 12 ? mutation(s, 'skip') : mutation(s));
      expect(await r.waitApplied(20)).toBe(true);
      echo.failOnce.add(30);
      for (let s = 21; s <= 40; s++) r.enqueue(mutation(s));
      expect(await r.waitApplied(40)).toBe(true);
      await until(() => r.unappliedSeqs().length === 0);
      const applied = Array.from({ length: 40 }, (_, i) => i + 1).filter((s) => s !== 12);
      expect(echo.history.map((h) => h.seq)).toEqual(applied);
      expect(echo.gate.appliedSeq).toBe(40);
      expect(r.stats().failures).toBeGreaterThanOrEqual(2);
      expect(r.stats().lastError).toMatch(/did not apply seq (7|30) of a batch/);
    } finally {
      await r.close();
    }
  });

  it('says so when the instance does not take batches at the configured path', async () => {
    const echo = await startEcho('e-nopath');
    const r = new EchoReplicator({
      target: { instanceId: echo.id, host: '127.0.0.1', port: echo.port },
      timeoutMs: 5000,
      pipelined: { stream: 'nopath', window: 8 },
      batch: { path: '/elsewhere', max: 8, inflight: 1 },
    });
    try {
      r.enqueue(mutation(1));
      await until(() => r.stats().failures > 0);
      expect(r.stats().lastError).toMatch(
        /HTTP 404 to a batch of seq 1\.\.1: it does not take batches there/,
      );
      expect(r.hasApplied(1)).toBe(false);
    } finally {
      await r.close();
    }
  });
});

describe('batched write-through (ServiceReplication)', () => {
  const rules = {
    methods: ['PUT'],
    paths: ['/kv'],
    timeoutMs: 300,
    order: 'pipelined' as const,
    batch: { path: BATCH_PATH, max: 32, inflight: 2 },
  };
  const put = (key: string, value: string) => ({
    method: 'PUT',
    path: `/kv/${key}`,
    headers: {},
    body: Buffer.from(value),
    epoch: 1,
  });

  it('acknowledges a write only once the echo applied it, with concurrent writes sharing batches', async () => {
    const echo = await startEcho('e-wt');
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { ...rules, strict: true },
      consistency: 'write-through',
      epoch: () => 1,
      stream: 'wt',
    });
    repl.addEcho({ instanceId: echo.id, host: '127.0.0.1', port: echo.port }, 0);
    try {
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const seq = repl.sequence();
          repl.resolve(seq, put(`k${i}`, `v${i}`), i === 9 ? 'skip' : 'apply', 'primary');
          const o = await repl.awaitEchoes(seq);
          // At the ack, the echo has applied this very write (or consumed the skip).
          if (o.acknowledge && i !== 9) expect(echo.history.some((h) => h.seq === seq)).toBe(true);
          return o;
        }),
      );
      expect(outcomes.every((o) => o.acknowledge && o.appliedBy.includes(echo.id))).toBe(true);
      expect(echo.history).toHaveLength(49);
      expect(echo.batches.length).toBeLessThan(50);
      expect(echo.singles).toBe(0);
    } finally {
      await repl.close();
    }
  });

  it('async service: writes resolved in separate turns within the coalescing time reach the echo in one batch, in seq order; write-through sends each turn at once', async () => {
    for (const consistency of ['async', 'write-through'] as const) {
      const echo = await startEcho(`e-${consistency}-fill`);
      const repl = new ServiceReplication({
        service: 'kv',
        // linger is ignored by write-through.
        rules: { ...rules, strict: false, batch: { ...rules.batch, linger: 300 } },
        consistency,
        epoch: () => 1,
        stream: `${consistency}-fill`,
      });
      repl.addEcho({ instanceId: echo.id, host: '127.0.0.1', port: echo.port }, 0);
      try {
        const seqs: number[] = [];
        // Three writes, each answered by the primary in a turn of its own, well within the 300 ms.
        for (let i = 0; i < 3; i++) {
          const seq = repl.sequence();
          seqs.push(seq);
          repl.resolve(seq, put(`f${i}`, `v${i}`), 'apply', 'primary');
          await new Promise((r) => setTimeout(r, 20));
        }
        await until(() => echo.history.length === 3);
        expect(echo.history.map((h) => h.seq)).toEqual(seqs);
        if (consistency === 'async') expect(echo.batches).toEqual([3]);
        else expect(echo.batches.length).toBeGreaterThan(1);
      } finally {
        await repl.close();
      }
    }
    // The default an async service gets (the spec's default: config/load.test.ts).
    expect(DEFAULT_BATCH_LINGER_MS).toBe(20);
  });

  it('async service: a full batch leaves without waiting for the linger, and a catch-up wait (failover) sends what lingers at once', async () => {
    const echo = await startEcho('e-linger');
    const repl = new ServiceReplication({
      service: 'kv',
      // An hour's linger: only a full batch or a catch-up wait can send anything.
      rules: { ...rules, strict: false, batch: { ...rules.batch, max: 4, linger: 3_600_000 } },
      consistency: 'async',
      epoch: () => 1,
      stream: 'linger',
    });
    repl.addEcho({ instanceId: echo.id, host: '127.0.0.1', port: echo.port }, 0);
    try {
      for (let i = 0; i < 6; i++) repl.resolve(repl.sequence(), put(`l${i}`, `v${i}`), 'apply', 'primary');
      // The first four fill a batch: they leave at once; the other two linger.
      await until(() => echo.history.length === 4);
      expect(echo.batches).toEqual([4]);
      expect(await repl.waitCaughtUp(echo.id, 5000)).toBe(true);
      expect(echo.history.map((h) => h.key)).toEqual(['l0', 'l1', 'l2', 'l3', 'l4', 'l5']);
      expect(echo.batches).toEqual([4, 2]);
    } finally {
      await repl.close();
    }
  });

  it('takes a lagging echo out of the synchronous set (strict: refused), then back once its batches are applied', async () => {
    const echo = await startEcho('e-lag');
    const changes: Array<[boolean, string]> = [];
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { ...rules, strict: true },
      consistency: 'write-through',
      epoch: () => 1,
      stream: 'lag',
      onEchoSyncChange: (_id, inSync, reason) => changes.push([inSync, reason]),
    });
    repl.addEcho({ instanceId: echo.id, host: '127.0.0.1', port: echo.port }, 0);
    try {
      echo.hold();
      const seqs = [repl.sequence(), repl.sequence(), repl.sequence()];
      seqs.forEach((s, i) => repl.resolve(s, put(`lag${i}`, `v${i}`), 'apply', 'primary'));
      const first = await repl.awaitEchoes(seqs[0] ?? 0);
      expect(first).toMatchObject({ acknowledge: false, appliedBy: [], missedBy: [echo.id] });
      expect(changes[0]?.[0]).toBe(false);
      expect(echo.history).toHaveLength(0);
      echo.resume();
      await until(() => changes.some(([inSync]) => inSync));
      expect(echo.history.map((h) => h.seq)).toEqual(seqs);
      expect(repl.atRisk(echo.id)).toEqual([]);
      // Back in the set: the next write waits for it again.
      const s4 = repl.sequence();
      repl.resolve(s4, put('after', 'x'), 'apply', 'primary');
      expect(await repl.awaitEchoes(s4)).toMatchObject({ acknowledge: true, appliedBy: [echo.id] });
    } finally {
      echo.resume();
      await repl.close();
    }
  });
});

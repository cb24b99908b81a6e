import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Pool } from 'undici';
import {
  SeqGate,
  applyBatch,
  decodeBatch,
  readSequence,
  type Sequenced,
} from '../../examples/lib/seq-gate.mjs';
import type { HoldOutcome, InterceptDecision, RouterRequest } from '../router/index.js';
import { EchoReplicator } from './echo-replicator.js';
import { replicationHooks } from './router-glue.js';
import { ServiceReplication } from './service-replication.js';

/**
 * An in-process instance keeping the pipelined contract with the seq-gate helper: a key-value map, PUT
 * /kv/:key applies the body (a body `bad` is rejected 422, deterministically), skips consume the seq.
 */
interface Instance {
  id: string;
  server: Server;
  port: number;
  gate: SeqGate;
  /** Applied writes in the order applied. */
  history: Array<{ seq: number; key: string; value: string }>;
  /** Drops every connection (the replicator reconnects). */
  cut: () => void;
  /** Holds every request until {@link resume} (a hung instance). */
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

async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const BATCH_PATH = '/_understudy/batch';

async function startInstance(id: string): Promise<Instance> {
  const gate = new SeqGate();
  const history: Instance['history'] = [];
  let held: Promise<void> | undefined;
  let release = (): void => undefined;
  /** One sequenced write (a single request, or an entry of a batch): the status and outcome header. */
  const applyOne = async (s: Sequenced, url: string, body: string): Promise<[number, string | undefined]> => {
    const t = await gate.enter(s);
    if (t.turn === 'duplicate') return [200, String(t.outcome)];
    if (t.turn === 'stale') return [409, '409'];
    if (s.skip) {
      gate.complete(s.seq, 'skip');
      return [204, 'skip'];
    }
    if (body === 'bad') {
      gate.complete(s.seq, 422);
      return [422, undefined];
    }
    history.push({ seq: s.seq, key: url.slice(4), value: body });
    gate.complete(s.seq, 200);
    // Answer a little later so later seqs overlap with this one.
    await new Promise((r) => setImmediate(r));
    return [200, undefined];
  };
  const server = createServer((req, res) => {
    void (async () => {
      const raw = await readRaw(req);
      if (held) await held;
      if (req.url === BATCH_PATH) {
        const answer = await applyBatch(decodeBatch(raw), async (e) => {
          const s = readSequence(e.headers);
          return s ? (await applyOne(s, e.path, e.body.toString('utf8')))[0] : 400;
        });
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      }
      const s = readSequence(req.headers);
      if (!s) return void res.writeHead(400).end();
      const [status, outcome] = await applyOne(s, req.url ?? '', raw.toString('utf8'));
      res.writeHead(status, outcome === undefined ? {} : { 'x-understudy-outcome': outcome }).end();
    })();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    id,
    server,
    port,
    gate,
    history,
    cut: () => server.closeAllConnections(),
    hold: () => {
      held = new Promise((r) => (release = r));
    },
    resume: () => {
      held = undefined;
      release();
    },
  };
}

/** What the simulated router does with one write. */
interface Write {
  key: string;
  bad: boolean;
  /** The primary's answer never reaches the router (it applied the write, or not). */
  answer: 'delivered' | 'lost' | 'never-sent';
  /** The router sends it to the primary twice (a retry). */
  duplicate: boolean;
  /** Cut one echo's connections when this write is sent. */
  cutEcho: boolean;
}

const write: fc.Arbitrary<Write> = fc.record({
  key: fc.constantFrom('a', 'b', 'c'),
  bad: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
  answer: fc.constantFrom<Write['answer']>('delivered', 'delivered', 'delivered', 'lost', 'never-sent'),
  duplicate: fc.boolean(),
  cutEcho: fc.boolean(),
});

describe('pipelined order (property)', () => {
  it('leaves the primary and every echo with the same applied sequence, and every acknowledged write applied', async () => {
    const primary = await startInstance('p');
    const echoes = [await startInstance('e1'), await startInstance('e2')];
    const pool = new Pool(`http://127.0.0.1:${primary.port}`, { connections: 64 });
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(write, { minLength: 1, maxLength: 25 }),
          fc.integer({ min: 1, max: 8 }),
          // 0: one request per mutation to the echoes; else batches of at most this many.
          fc.constantFrom(0, 1, 3, 64),
          async (writes, concurrency, batchMax) => {
            run++;
            // Every run is a new stream (a new router): the instances start counting again at its seq 1.
            primary.history.length = 0;
            for (const e of echoes) e.history.length = 0;
            const repl = new ServiceReplication({
              service: 'kv',
              rules: {
                methods: ['PUT'],
                paths: ['/kv'],
                timeoutMs: 5000,
                strict: false,
                order: 'pipelined',
                ...(batchMax > 0
                  ? { batch: { path: BATCH_PATH, max: batchMax, inflight: 1 + (batchMax % 3) } }
                  : {}),
              },
              consistency: 'write-through',
              epoch: () => 1,
              stream: `run-${run}`,
              window: 8,
            });
            const hooks = replicationHooks(repl, () => 1);
            repl.setPrimary({ instanceId: primary.id, host: '127.0.0.1', port: primary.port });
            for (const e of echoes) repl.addEcho({ instanceId: e.id, host: '127.0.0.1', port: e.port }, 0);
            const acked: Array<{ key: string; value: string }> = [];
            let next = 0;
            const one = async (w: Write, i: number): Promise<void> => {
              const value = w.bad ? 'bad' : `v${run}-${i}`;
              const req: RouterRequest = {
                id: i + 1,
                service: 'kv',
                method: 'PUT',
                path: `/kv/${w.key}`,
                headers: { 'content-type': 'text/plain' },
                body: Buffer.from(value),
                remoteAddress: '127.0.0.1',
                receivedAt: 0,
              };
              const d = (await hooks.interceptor(req)) as InterceptDecision;
              if (w.cutEcho) echoes[i % 2]?.cut();
              if (w.answer === 'never-sent') {
                hooks.afterResponse(req, {
                  statusCode: 503,
                  backendStatus: 0,
                  backendId: undefined,
                  epoch: undefined,
                  error: 'connect',
                  durationMs: 0,
                });
                return;
              }
              const send = async (): Promise<number> => {
                const res = await pool.request({
                  method: 'PUT',
                  path: req.path,
                  headers: { ...d.headers },
                  body: req.body ?? '',
                });
                await res.body.dump();
                return res.statusCode;
              };
              const status = await send();
              if (w.duplicate) await send();
              if (w.answer === 'lost') {
                hooks.afterResponse(req, {
                  statusCode: 502,
                  backendStatus: 0,
                  backendId: undefined,
                  epoch: undefined,
                  error: 'reset',
                  durationMs: 0,
                });
                return;
              }
              const outcome: HoldOutcome = await d.holdResponse!({
                statusCode: status,
                backendId: primary.id,
                epoch: 1,
              });
              if (outcome.release && status >= 200 && status < 300) acked.push({ key: w.key, value });
              hooks.afterResponse(req, {
                statusCode: status,
                backendStatus: status,
                backendId: primary.id,
                epoch: 1,
                error: undefined,
                durationMs: 0,
              });
            };
            await Promise.all(
              Array.from({ length: concurrency }, async () => {
                for (let i = next++; i < writes.length; i = next++) await one(writes[i] as Write, i);
              }),
            );
            // Every seq resolved and replayed.
            for (let t = 0; repl.log.lastSeq < writes.length && t < 500; t++)
              await new Promise((r) => setTimeout(r, 10));
            expect(repl.log.lastSeq).toBe(writes.length);
            for (const e of echoes) expect(await repl.waitCaughtUp(e.id, 10_000)).toBe(true);
            for (const inst of [primary, ...echoes]) expect(inst.gate.appliedSeq).toBe(writes.length);
            for (const e of echoes) expect(e.history).toEqual(primary.history);
            const applied = primary.history.map((h) => `${h.key}=${h.value}`);
            for (const a of acked) expect(applied).toContain(`${a.key}=${a.value}`);
            // A rejected write is applied nowhere, and nothing is applied twice.
            expect(primary.history.some((h) => h.value === 'bad')).toBe(false);
            expect(new Set(primary.history.map((h) => h.seq)).size).toBe(primary.history.length);
            await repl.close();
          },
        ),
        { numRuns: 25 },
      );
    } finally {
      await pool.close();
    }
  });
});

describe('the synchronous set (pipelined order)', () => {
  let run = 0;
  async function rig(strict: boolean): Promise<{
    repl: ServiceReplication;
    echo: Instance;
    changes: string[];
    write: (value: string) => Promise<{ acknowledge: boolean; appliedBy: string[]; seq: number }>;
  }> {
    run++;
    const primary = await startInstance(`p${run}`);
    const echo = await startInstance(`e${run}`);
    const changes: string[] = [];
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { methods: ['PUT'], paths: ['/kv'], timeoutMs: 300, strict, order: 'pipelined' },
      consistency: 'write-through',
      epoch: () => 1,
      onEchoSyncChange: (id, inSync, reason) => changes.push(`${id}:${inSync}:${reason}`),
    });
    repl.setPrimary({ instanceId: primary.id, host: '127.0.0.1', port: primary.port });
    repl.addEcho({ instanceId: echo.id, host: '127.0.0.1', port: echo.port }, 0);
    const pool = new Pool(`http://127.0.0.1:${primary.port}`);
    const write = async (
      value: string,
    ): Promise<{ acknowledge: boolean; appliedBy: string[]; seq: number }> => {
      const seq = repl.sequence();
      const headers = { 'x-understudy-seq': String(seq), 'x-understudy-stream': repl.stream };
      const res = await pool.request({ method: 'PUT', path: '/kv/k', headers, body: value });
      await res.body.dump();
      const request = { method: 'PUT', path: '/kv/k', headers: {}, body: Buffer.from(value), epoch: 1 };
      repl.resolve(seq, request, 'apply', primary.id);
      return { ...(await repl.awaitEchoes(seq)), seq };
    };
    return { repl, echo, changes, write };
  }

  it('without strict: a hung echo leaves the set (a decision), writes are acknowledged on the primary and counted at risk, and it rejoins once caught up', async () => {
    const { repl, echo, changes, write } = await rig(false);
    expect((await write('1')).appliedBy).toEqual([echo.id]);
    echo.hold();
    const missed = await write('2');
    expect(missed).toMatchObject({ acknowledge: true, appliedBy: [] });
    expect(changes).toEqual([`${echo.id}:false:mutation ${missed.seq} not applied within 300 ms`]);
    // Out of the set, it is not waited for: the next write is acknowledged without it too.
    const next = await write('3');
    expect(next).toMatchObject({ acknowledge: true, appliedBy: [] });
    expect(repl.atRisk(echo.id)).toEqual([missed.seq, next.seq]);
    echo.resume();
    expect(await repl.waitCaughtUp(echo.id, 5000)).toBe(true);
    expect(changes[1]).toBe(`${echo.id}:true:caught up: every mutation applied`);
    expect(repl.atRisk(echo.id)).toEqual([]);
    expect((await write('4')).appliedBy).toEqual([echo.id]);
    expect(echo.history.map((h) => h.value)).toEqual(['1', '2', '3', '4']);
    await repl.close();
  });

  it('with strict: a write no echo applied is refused (and counted), also while no echo is attached', async () => {
    const { repl, echo, changes, write } = await rig(true);
    expect((await write('1')).acknowledge).toBe(true);
    echo.hold();
    expect(await write('2')).toMatchObject({ acknowledge: false, appliedBy: [] });
    expect(changes).toHaveLength(1);
    echo.resume();
    expect(await repl.waitCaughtUp(echo.id, 5000)).toBe(true);
    expect((await write('3')).acknowledge).toBe(true);
    await repl.removeEcho(echo.id);
    expect((await write('4')).acknowledge).toBe(false);
    expect(repl.stats().strictRefusals).toBe(2);
    await repl.close();
  });
});

describe('a promotion in pipelined order', () => {
  it('brings the promoted echo, the demoted primary and a second echo to one sequence, with a seq left unanswered across the switch', async () => {
    const a = await startInstance('pa');
    const b = await startInstance('pb');
    const c = await startInstance('pc');
    let epoch = 1;
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { methods: ['PUT'], paths: ['/kv'], timeoutMs: 2000, strict: false, order: 'pipelined' },
      consistency: 'write-through',
      epoch: () => epoch,
    });
    const target = (i: Instance): { instanceId: string; host: string; port: number } => ({
      instanceId: i.id,
      host: '127.0.0.1',
      port: i.port,
    });
    repl.setPrimary(target(a));
    repl.addEcho(target(b), 0);
    repl.addEcho(target(c), 0);
    const pools = new Map([a, b].map((i) => [i.id, new Pool(`http://127.0.0.1:${i.port}`)]));
    const request = (value: string) => ({
      method: 'PUT',
      path: '/kv/k',
      headers: {},
      body: Buffer.from(value),
      epoch,
    });
    /** Sends a write to `to` and resolves it from its answer. */
    const write = async (to: Instance, value: string): Promise<number> => {
      const seq = repl.sequence();
      const res = await pools.get(to.id)!.request({
        method: 'PUT',
        path: '/kv/k',
        headers: {
          'x-understudy-seq': String(seq),
          'x-understudy-stream': repl.stream,
          'x-understudy-epoch': String(epoch),
        },
        body: value,
      });
      await res.body.dump();
      repl.resolve(seq, request(value), res.statusCode < 300 ? 'apply' : 'skip', to.id);
      await repl.awaitEchoes(seq);
      return seq;
    };
    try {
      await write(a, '1');
      await write(a, '2');
      // A write the old primary applies but whose answer is resolved only after the switch...
      const late = repl.sequence();
      const res = await pools.get(a.id)!.request({
        method: 'PUT',
        path: '/kv/k',
        headers: {
          'x-understudy-seq': String(late),
          'x-understudy-stream': repl.stream,
          'x-understudy-epoch': '1',
        },
        body: 'late',
      });
      await res.body.dump();
      // ...and one numbered but never forwarded: nobody has seen it.
      const lost = repl.sequence();
      const lostRequest = request('lost');
      // The switch: the echo b has applied the log, is removed and becomes the primary.
      expect(await repl.waitCaughtUp(b.id, 5000)).toBe(true);
      await repl.removeEcho(b.id);
      epoch = 2;
      repl.setPrimary(target(b));
      // The late answer arrives: b never saw that write, so the log feeds it to b.
      repl.resolve(late, request('late'), 'apply', a.id);
      // The unanswered seq is resolved by asking the new primary: it skips it.
      await repl.resolveUnanswered(lost, lostRequest);
      // The demoted primary rejoins as an echo "from the end of the log": it is replayed from the last
      // seq it consumed instead, so it gets the skip it never saw.
      repl.addEcho(target(a), repl.log.lastSeq);
      await write(b, '5');
      await write(b, '6');
      for (const e of [a, c]) expect(await repl.waitCaughtUp(e.id, 5000)).toBe(true);
      expect((repl.log.recent(0) ?? []).map((m) => m.kind)).toEqual([
        'apply',
        'apply',
        'apply',
        'skip',
        'apply',
        'apply',
      ]);
      for (const i of [a, b, c]) {
        expect(i.gate.appliedSeq).toBe(6);
        expect(i.history.map((h) => h.value)).toEqual(['1', '2', 'late', '5', '6']);
      }
    } finally {
      for (const p of pools.values()) await p.close();
      await repl.close();
    }
  });
});

describe('asking an instance how it consumed a seq', () => {
  it('fails with a message naming the contract when the instance answers a skip without x-understudy-outcome', async () => {
    const server = createServer((_req, res) => res.writeHead(200).end('ok'));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const echo = new EchoReplicator({
      target: { instanceId: 'plain', host: '127.0.0.1', port },
      timeoutMs: 1000,
      pipelined: { stream: 's', window: 4 },
    });
    const m = {
      seq: 1,
      kind: 'skip' as const,
      epoch: 1,
      partition: '',
      method: 'PUT',
      path: '/kv/a',
      headers: {},
      body: Buffer.alloc(0),
      at: 0,
    };
    await expect(echo.ask(m)).rejects.toThrow(
      /instance plain answered HTTP 200 to a skip of seq 1 without a valid x-understudy-outcome header: it does not keep the pipelined contract/,
    );
    await echo.close();
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyedQueue } from './keyed-queue.js';
import { MutationLog } from './mutation-log.js';
import { nodeMutationLogIo, type MutationLogIo } from './mutation-log-durable.js';
import {
  ASYNC_LOG_FLUSH_INTERVAL_MS,
  WRITE_THROUGH_LOG_BUSY_BATCH,
  WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS,
  ServiceReplication,
  type MutationRules,
} from './service-replication.js';
import { allocatePort } from '../runtime/index.js';

const kvServer = fileURLToPath(new URL('../../examples/kv/server.mjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'understudy-repl-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

async function startKv(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [kvServer, '--port', String(port), '--state', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  await new Promise((resolve) => child.stdout?.once('data', resolve));
  return child;
}

const rules: MutationRules = { methods: ['PUT', 'DELETE'], paths: ['/kv/'], timeoutMs: 300, strict: false };

async function put(repl: ServiceReplication, key: string, value: string, id: string): Promise<number> {
  const path = `/kv/${key}`;
  const ticket = await repl.begin(repl.partitionOf(path, {}));
  return repl.commit(ticket, {
    method: 'PUT',
    path,
    headers: { 'x-request-id': id, 'content-type': 'text/plain' },
    body: Buffer.from(value),
  }).seq;
}

describe('ServiceReplication', () => {
  it('classifies mutations and partitions them by path segment or header', () => {
    const r = new ServiceReplication({
      service: 's',
      rules: { ...rules, partitionBy: { pathSegment: 1 } },
      consistency: 'async',
      epoch: () => 1,
    });
    expect(r.isMutation('put', '/kv/a')).toBe(true);
    expect(r.isMutation('GET', '/kv/a')).toBe(false);
    expect(r.isMutation('PUT', '/other')).toBe(false);
    expect(r.partitionOf('/kv/a?x=1', {})).toBe('a');
    const h = new ServiceReplication({
      service: 's',
      rules: { ...rules, partitionBy: { header: 'X-Tenant' } },
      consistency: 'async',
      epoch: () => 1,
    });
    expect(h.partitionOf('/kv/a', { 'x-tenant': 't1' })).toBe('t1');
  });

  it('counts as a mutation every spelling a backend may read as a write under the rules', () => {
    const r = new ServiceReplication({ service: 's', rules, consistency: 'async', epoch: () => 1 });
    expect(r.isMutation('PUT', '/KV/a')).toBe(true);
    expect(r.isMutation('PUT', '/kv;v=1/a')).toBe(true);
    expect(r.isMutation('PUT', '/kv%2Fa')).toBe(true);
    expect(r.isMutation('POST', '/kv/a', { 'x-http-method-override': 'put' })).toBe(true);
    expect(r.isMutation('GET', '/kv/a', { 'x-method-override': 'DELETE' })).toBe(true);
    expect(r.isMutation('POST', '/kv/a', { 'x-http-method-override': 'GET' })).toBe(false);
    expect(r.isMutation('GET', '/kv/a')).toBe(false);
    expect(r.isMutation('PUT', '/other?to=/kv/a')).toBe(false);
  });

  it('replays mutations on a real echo in the primary order, and write-through waits for it', async () => {
    const port = await allocatePort();
    await startKv(port, join(work, 'echo-a'));
    const repl = new ServiceReplication({
      service: 'kv',
      rules,
      consistency: 'write-through',
      epoch: () => 3,
    });
    repl.addEcho({ instanceId: 'kv-2', host: '127.0.0.1', port }, 0);
    for (let i = 0; i < 50; i++) {
      const seq = await put(repl, 'k', `v${i}`, `id-${i}`);
      const outcome = await repl.awaitEchoes(seq);
      expect(outcome).toEqual({ acknowledge: true, appliedBy: ['kv-2'], missedBy: [] });
    }
    const value = await (await fetch(`http://127.0.0.1:${port}/kv/k`)).text();
    expect(value).toBe('v49');
    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as {
      writes: number;
      duplicates: number;
    };
    expect(stats.writes).toBe(50);
    expect(repl.atRisk('kv-2')).toEqual([]);
    await repl.close();
  });

  it('drops a dead echo from the synchronous set, reports what is at risk, refuses in strict mode, and catches up when it returns', async () => {
    const port = await allocatePort();
    const dir = join(work, 'echo-b');
    const echo = await startKv(port, dir);
    const changes: string[] = [];
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { ...rules, strict: true },
      consistency: 'write-through',
      epoch: () => 1,
      onEchoSyncChange: (id, inSync) => changes.push(`${id}:${inSync}`),
    });
    repl.addEcho({ instanceId: 'kv-2', host: '127.0.0.1', port }, 0);
    expect((await repl.awaitEchoes(await put(repl, 'a', '1', 'r1'))).acknowledge).toBe(true);
    echo.kill('SIGKILL');
    await new Promise((r) => echo.once('exit', r));
    const seq = await put(repl, 'a', '2', 'r2');
    const outcome = await repl.awaitEchoes(seq);
    expect(outcome).toEqual({ acknowledge: false, appliedBy: [], missedBy: ['kv-2'] });
    expect(changes).toEqual(['kv-2:false']);
    // Not acknowledged (strict), so nothing acknowledged is at risk yet.
    expect(repl.atRisk('kv-2')).toEqual([]);
    await startKv(port, dir);
    expect(await repl.waitCaughtUp('kv-2', 5000)).toBe(true);
    expect(changes).toEqual(['kv-2:false', 'kv-2:true']);
    expect(await (await fetch(`http://127.0.0.1:${port}/kv/a`)).text()).toBe('2');
    await repl.close();
  });

  it('replays to a new echo only what came after its state position', async () => {
    const port = await allocatePort();
    await startKv(port, join(work, 'echo-c'));
    const repl = new ServiceReplication({ service: 'kv', rules, consistency: 'async', epoch: () => 1 });
    for (let i = 1; i <= 5; i++) await put(repl, `k${i}`, String(i), `c${i}`);
    repl.addEcho({ instanceId: 'kv-3', host: '127.0.0.1', port }, 3);
    expect(await repl.waitCaughtUp('kv-3', 5000)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/kv/k3`)).status).toBe(404);
    expect(await (await fetch(`http://127.0.0.1:${port}/kv/k5`)).text()).toBe('5');
    await repl.close();
  });
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('ServiceReplication over the durable log', () => {
  it('brings a new echo up to date from the log on disk while writes go on, then streams live to it', async () => {
    const port = await allocatePort();
    await startKv(port, join(work, 'echo-d'));
    const changes: string[] = [];
    const repl = await ServiceReplication.open({
      service: 'kv',
      rules,
      consistency: 'write-through',
      epoch: () => 1,
      // Memory holds almost nothing: the catch-up must read the segments.
      logMaxBytes: 1,
      log: { dir: join(work, 'log-d'), segmentBytes: 4096 },
      onEchoSyncChange: (id, inSync) => changes.push(`${id}:${inSync}`),
    });
    for (let i = 1; i <= 200; i++) await repl.awaitEchoes(await put(repl, `k${i % 20}`, `v${i}`, `d${i}`));
    expect(repl.log.recent(0)).toBeUndefined();
    repl.addEcho({ instanceId: 'kv-4', host: '127.0.0.1', port }, 0);
    // The catching-up echo is outside the synchronous set: writes meanwhile do not wait for it.
    const during = await repl.awaitEchoes(await put(repl, 'k1', 'during', 'd-during'));
    expect(during.appliedBy).toEqual([]);
    for (let i = 201; i <= 230; i++) await put(repl, `k${i % 20}`, `v${i}`, `d${i}`);
    expect(await repl.waitCaughtUp('kv-4', 10_000)).toBe(true);
    expect(changes).toEqual(['kv-4:false', 'kv-4:true']);
    for (let k = 0; k < 20; k++) {
      const last = [...Array.from({ length: 230 }, (_, i) => i + 1)].filter((i) => i % 20 === k).at(-1);
      expect(await (await fetch(`http://127.0.0.1:${port}/kv/k${k}`)).text()).toBe(`v${last}`);
    }
    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { writes: number };
    expect(stats.writes).toBe(231);
    expect(repl.atRisk('kv-4')).toEqual([]);
    await repl.close();
  });

  it('writes the durable log of an async service in batches at most every ASYNC_LOG_FLUSH_INTERVAL_MS, and of a write-through one at once unless the previous batch was large (then after WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS)', async () => {
    for (const consistency of ['async', 'write-through'] as const) {
      const repl = await ServiceReplication.open({
        service: 'kv',
        rules,
        consistency,
        epoch: () => 1,
        log: { dir: join(work, `log-interval-${consistency}`) },
      });
      expect(repl.log.flushIntervalMs).toBe(
        consistency === 'async' ? ASYNC_LOG_FLUSH_INTERVAL_MS : WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS,
      );
      expect(repl.log.flushIntervalMinBatch).toBe(consistency === 'async' ? 1 : WRITE_THROUGH_LOG_BUSY_BATCH);
      await repl.close();
    }
    expect(ASYNC_LOG_FLUSH_INTERVAL_MS).toBeGreaterThan(0);
  });

  it('drops an echo whose catch-up from the log fails (a segment is gone) instead of streaming to it after a hole', async () => {
    const dir = join(work, 'log-gone');
    const changes: string[] = [];
    const repl = await ServiceReplication.open({
      service: 'kv',
      rules,
      consistency: 'async',
      epoch: () => 1,
      logMaxBytes: 1,
      log: { dir },
      onEchoSyncChange: (id, inSync, reason) => changes.push(`${id}:${inSync}:${reason}`),
    });
    for (let i = 1; i <= 5; i++) await put(repl, `k${i}`, String(i), `gone-${i}`);
    await repl.log.close();
    for (const f of readdirSync(dir)) if (f.endsWith('.seg')) rmSync(join(dir, f));
    repl.addEcho({ instanceId: 'kv-9', host: '127.0.0.1', port: await allocatePort() }, 0);
    await waitUntil(() => changes.length === 2);
    expect(changes[1]).toMatch(
      /^kv-9:false:catching up from the log failed, no longer replicated to .*unreadable/,
    );
    expect(repl.echoes().map((e) => e.instanceId)).toEqual([]);
    await repl.close();
  });

  it('strict write-through refuses a write the log could not keep (disk full); non-strict acknowledges it with the error', async () => {
    let diskFull = false;
    const full: MutationLogIo = {
      write: (fd, buf) =>
        diskFull
          ? Promise.reject(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }))
          : nodeMutationLogIo.write(fd, buf),
      sync: nodeMutationLogIo.sync,
    };
    for (const strict of [true, false]) {
      diskFull = false;
      const repl = await ServiceReplication.open({
        service: 'kv',
        rules: { ...rules, strict },
        consistency: 'write-through',
        epoch: () => 1,
        log: { dir: join(work, `log-full-${strict}`), io: full },
      });
      diskFull = true;
      const outcome = await repl.awaitEchoes(await put(repl, 'a', '1', `full-${strict}`));
      expect(outcome.acknowledge).toBe(!strict);
      expect(outcome.logError).toMatch(/^UNDERSTUDY_ERR_MUTATION_LOG_WRITE: .*disk is full/);
      expect(repl.stats().log).toMatchObject({ durable: true, writeFailures: 1, refusals: strict ? 1 : 0 });
      await repl.close();
    }
  });
});

describe('ServiceReplication after a crash of the process that held the log', () => {
  it('never gives a new mutation a seq the crashed process handed to an echo without making it durable: the echo resumed by replay gets every write acknowledged since', async () => {
    const port = await allocatePort();
    await startKv(port, join(work, 'echo-crash'));
    const dir = join(work, 'log-crash');
    const echo = { instanceId: 'kv-7', host: '127.0.0.1', port };
    // The first process: its log stops writing (it is about to die) after three durable mutations.
    let dying = false;
    const stalls: MutationLogIo = {
      write: (fd, buf) => (dying ? new Promise<void>(() => undefined) : nodeMutationLogIo.write(fd, buf)),
      sync: nodeMutationLogIo.sync,
    };
    const first = await ServiceReplication.open({
      service: 'kv',
      rules,
      consistency: 'write-through',
      epoch: () => 1,
      log: { dir, io: stalls },
    });
    first.addEcho(echo, 0);
    for (let i = 1; i <= 3; i++) await first.awaitEchoes(await put(first, `a${i}`, `old${i}`, `crash-a${i}`));
    dying = true;
    // Replayed to the echo, never durable, never acknowledged: the echo reports the last of them.
    const lost = [await put(first, 'a4', 'old4', 'crash-a4'), await put(first, 'a5', 'old5', 'crash-a5')];
    expect(await first.waitCaughtUp(echo.instanceId, 10_000)).toBe(true);
    await first.removeEcho(echo.instanceId);
    const applied = (
      (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { understudySeq: number }
    ).understudySeq;
    expect(applied).toBe(lost[1]);
    // The restarted process takes writes (acknowledged: no echo is attached yet) before it asks the echo.
    const second = await ServiceReplication.open({
      service: 'kv',
      rules,
      consistency: 'write-through',
      epoch: () => 1,
      log: { dir },
    });
    const seqs: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const seq = await put(second, `b${i}`, `new${i}`, `crash-b${i}`);
      expect((await second.awaitEchoes(seq)).acknowledge).toBe(true);
      seqs.push(seq);
    }
    expect(seqs.some((s) => lost.includes(s))).toBe(false);
    const verdict = await second.replayVerdict(applied);
    expect(verdict.replay).toBe(true);
    second.addEcho(echo, verdict.fromSeq);
    expect(await second.waitCaughtUp(echo.instanceId, 10_000)).toBe(true);
    for (let i = 1; i <= 3; i++)
      expect(await (await fetch(`http://127.0.0.1:${port}/kv/b${i}`)).text()).toBe(`new${i}`);
    await second.close();
  });
});

describe('ServiceReplication in pipelined order over a reopened durable log', () => {
  it('hands out no seq until the primary said its position; the seqs it consumed beyond the log become skip entries, so the log stays gapless and older positions still replay', async () => {
    const dir = join(work, 'log-pipe-skip');
    // The primary: it consumed seqs up to 6 (4..6 were lost with the log's unwritten tail).
    let asked = 0;
    const primary = createServer((req, res) => {
      asked++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ understudySeq: 6 }));
    });
    await new Promise<void>((r) => primary.listen(0, '127.0.0.1', r));
    const port = (primary.address() as AddressInfo).port;
    const options = {
      service: 'kv',
      rules: { ...rules, order: 'pipelined' as const },
      consistency: 'write-through' as const,
      epoch: () => 2,
      log: { dir },
      appliedSeq: { path: '/stats', field: 'understudySeq' },
    };
    try {
      const first = await ServiceReplication.open(options);
      // A fresh log: nothing to wait for.
      expect(first.sequencingReady()).toBeUndefined();
      for (let i = 1; i <= 3; i++) {
        const seq = first.sequence();
        first.resolve(
          seq,
          { method: 'PUT', path: `/kv/p${i}`, headers: {}, body: Buffer.from(`v${i}`) },
          'apply',
          'p',
        );
      }
      await first.close();
      const second = await ServiceReplication.open(options);
      expect(second.log.lastSeq).toBe(3);
      const ready = second.sequencingReady();
      expect(ready).toBeDefined();
      let released = false;
      void ready?.then(() => (released = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(released).toBe(false);
      second.setPrimary({ instanceId: 'kv-1', host: '127.0.0.1', port });
      await ready;
      expect(asked).toBe(1);
      expect(second.sequencingReady()).toBeUndefined();
      expect(second.log.canReplayFrom(1)).toBe(true);
      const replayed: Array<[number, string, string]> = [];
      for await (const m of second.log.since(1)) replayed.push([m.seq, m.kind, m.path]);
      expect(replayed).toEqual([
        [2, 'apply', '/kv/p2'],
        [3, 'apply', '/kv/p3'],
        [4, 'skip', '/kv/'],
        [5, 'skip', '/kv/'],
        [6, 'skip', '/kv/'],
      ]);
      expect(second.sequence()).toBe(7);
      await second.close();
      const third = await ServiceReplication.open(options);
      expect(third.log.recovery).toMatchObject({ droppedBeforeGap: 0, lastSeq: 6, firstKeptSeq: 1 });
      await third.close();
    } finally {
      primary.closeAllConnections();
      await new Promise((r) => primary.close(r));
    }
  });
});

describe('ServiceReplication in pipelined order with the kv example', () => {
  it('leaves the primary and its echo with byte-identical logs, rejections and duplicates included', async () => {
    const [pPort, ePort] = [await allocatePort(), await allocatePort()];
    const [pDir, eDir] = [join(work, 'pipe-p'), join(work, 'pipe-e')];
    await startKv(pPort, pDir);
    await startKv(ePort, eDir);
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { ...rules, order: 'pipelined' },
      consistency: 'write-through',
      epoch: () => 2,
    });
    repl.setPrimary({ instanceId: 'kv-1', host: '127.0.0.1', port: pPort });
    repl.addEcho({ instanceId: 'kv-2', host: '127.0.0.1', port: ePort }, 0);
    // Concurrent writes: puts, a delete of a missing key (404), a repeated x-request-id (a duplicate).
    const writes = Array.from({ length: 40 }, (_, i) =>
      i % 10 === 3
        ? { method: 'DELETE', key: `gone-${i}`, id: `d-${i}` }
        : { method: 'PUT', key: `k${i % 7}`, id: i % 10 === 5 ? 'same-id' : `p-${i}` },
    );
    await Promise.all(
      writes.map(async (w, i) => {
        const seq = repl.sequence();
        const headers = {
          'x-understudy-seq': String(seq),
          'x-understudy-stream': repl.stream,
          'x-understudy-epoch': '2',
          'x-request-id': w.id,
        };
        const res = await fetch(`http://127.0.0.1:${pPort}/kv/${w.key}`, {
          method: w.method,
          headers,
          ...(w.method === 'PUT' ? { body: `v${i}` } : {}),
        });
        await res.text();
        const request = {
          method: w.method,
          path: `/kv/${w.key}`,
          headers,
          body: Buffer.from(w.method === 'PUT' ? `v${i}` : ''),
          epoch: 2,
        };
        repl.resolve(seq, request, res.ok ? 'apply' : 'skip', 'kv-1');
        expect((await repl.awaitEchoes(seq)).acknowledge).toBe(true);
      }),
    );
    expect(await repl.waitCaughtUp('kv-2', 5000)).toBe(true);
    const log = (dir: string): string => readFileSync(join(dir, 'kv.log'), 'utf8');
    expect(log(pDir).split('\n')).toHaveLength(41);
    expect(log(eDir)).toBe(log(pDir));
    expect((repl.log.recent(0) ?? []).filter((m) => m.kind === 'skip')).toHaveLength(4);
    await repl.close();
  });
});

describe('KeyedQueue', () => {
  it('serialises holders of one key in arrival order and lets other keys through', async () => {
    const q = new KeyedQueue();
    const order: string[] = [];
    const a1 = await q.acquire('a');
    const a2 = q.acquire('a').then((release) => {
      order.push('a2');
      release();
    });
    const b1 = await q.acquire('b');
    order.push('b1');
    b1();
    order.push('a1');
    a1();
    await a2;
    expect(order).toEqual(['b1', 'a1', 'a2']);
    expect(q.activeKeys).toBe(0);
  });
});

describe('MutationLog', () => {
  it('refuses an entry whose seq is not the next one (the log stays gapless)', () => {
    const log = new MutationLog();
    const entry = {
      kind: 'apply' as const,
      epoch: 1,
      partition: '',
      method: 'PUT',
      path: '/x',
      headers: {},
      body: Buffer.alloc(0),
      at: 0,
    };
    log.append({ ...entry, seq: 1 });
    expect(() => log.append({ ...entry, seq: 3 })).toThrow(/expected seq 2, got 3/);
    expect(() => log.append({ ...entry, seq: 1 })).toThrow(/expected seq 2/);
    expect(log.lastSeq).toBe(1);
  });

  it('keeps a gapless, bounded suffix of sequence numbers', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 300 }), (sizes) => {
        const log = new MutationLog({ maxBytes: 20_000 });
        for (const n of sizes)
          log.append({
            seq: log.lastSeq + 1,
            kind: 'apply',
            epoch: 1,
            partition: '',
            method: 'PUT',
            path: '/x',
            headers: {},
            body: Buffer.alloc(n),
            at: 0,
          });
        const kept = log.since(0).map((m) => m.seq);
        const contiguous = kept.every((s, i) => i === 0 || s === (kept[i - 1] ?? 0) + 1);
        return (
          contiguous &&
          kept.at(-1) === sizes.length &&
          log.firstKeptSeq === kept[0] &&
          log.canReplayFrom(log.firstKeptSeq - 1) &&
          !log.canReplayFrom(log.firstKeptSeq - 2)
        );
      }),
    );
  });
});

// The kv example says who acknowledged a write and under which epoch (x-kv-instance, x-kv-epoch), so a
// chaos test's client can count the instances acknowledging writes per epoch (test/e2e/hosts-chaos.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/lib/etcd-server.js';
import { encodeBatch } from '../lib/seq-gate.mjs';

const server = fileURLToPath(new URL('./server.mjs', import.meta.url));
const running: { child: ChildProcess; dir: string }[] = [];

afterEach(async () => {
  for (const { child, dir } of running.splice(0)) {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

async function start(
  env: Record<string, string> = {},
  dir = mkdtempSync(join(tmpdir(), 'us-kv-example-')),
): Promise<{ base: string; dir: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [server, '--port', String(port), '--state', join(dir, 'kv-9')], {
    env: { ...process.env, UNDERSTUDY_INSTANCE: '', ...env },
    stdio: 'ignore',
  });
  running.push({ child, dir });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { base, dir, child };
    if (i > 100) throw new Error('the kv example did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const put = (base: string, key: string, epoch?: number): Promise<Response> =>
  fetch(`${base}/kv/${key}`, {
    method: 'PUT',
    body: 'v',
    headers: epoch === undefined ? {} : { 'x-understudy-epoch': String(epoch) },
  });

describe('the kv example', () => {
  it('answers an acknowledged write with its instance id and the epoch it was applied under, and a refused one without', async () => {
    const { base } = await start({ UNDERSTUDY_INSTANCE: 'kv-7' });
    const ok = await put(base, 'a', 3);
    expect(ok.status).toBe(200);
    expect([ok.headers.get('x-kv-instance'), ok.headers.get('x-kv-epoch')]).toEqual(['kv-7', '3']);
    const stale = await put(base, 'b', 2);
    expect(stale.status).toBe(409);
    expect(stale.headers.get('x-kv-instance')).toBeNull();
  });

  it('answers a duplicate (an x-request-id already applied) under the newest epoch it has seen, not the one the duplicate carries', async () => {
    const { base } = await start({ UNDERSTUDY_INSTANCE: 'kv-7' });
    const write = (epoch?: number): Promise<Response> =>
      fetch(`${base}/kv/a`, {
        method: 'PUT',
        body: 'v',
        headers: {
          'x-request-id': 'r1',
          ...(epoch === undefined ? {} : { 'x-understudy-epoch': String(epoch) }),
        },
      });
    expect((await write(2)).headers.get('x-kv-epoch')).toBe('2');
    expect((await put(base, 'b', 4)).headers.get('x-kv-epoch')).toBe('4');
    const dup = await write();
    expect(dup.status).toBe(200);
    expect(((await dup.json()) as { duplicate?: boolean }).duplicate).toBe(true);
    expect([dup.headers.get('x-kv-instance'), dup.headers.get('x-kv-epoch')]).toEqual(['kv-7', '4']);
  });

  it('names itself after its state directory without UNDERSTUDY_INSTANCE, and says epoch 0 for an untagged write', async () => {
    const { base } = await start();
    const ok = await put(base, 'a');
    expect([ok.headers.get('x-kv-instance'), ok.headers.get('x-kv-epoch')]).toEqual(['kv-9', '0']);
  });
});

/** A write in pipelined order (as the router sends it to the primary). */
const seqPut = (
  base: string,
  key: string,
  seq: number,
  extra: Record<string, string> = {},
): Promise<Response> =>
  fetch(`${base}/kv/${key}`, {
    method: 'PUT',
    body: `v${seq}`,
    headers: {
      'x-understudy-seq': String(seq),
      'x-understudy-stream': 'st',
      'x-understudy-epoch': '1',
      ...extra,
    },
    // A seq that is never consumed holds every later one: fail rather than hang (after longer than the
    // held group commits below take).
    signal: AbortSignal.timeout(15_000),
  });

const stats = async (base: string): Promise<Record<string, unknown>> =>
  (await (await fetch(`${base}/stats`)).json()) as Record<string, unknown>;

/**
 * How long the tests that need a group commit under way have kv hold each one before writing it
 * (`KV_TEST_HOLD_COMMIT_MS`): long enough for a few requests to come meanwhile on a busy machine. Each
 * of those tests waits for two held commits (the second write's one comes after the first's).
 */
const HOLD_MS = '1500';

/** Polls kv's `/stats` until `ready` holds (what a held group commit keeps in place). */
async function until(
  base: string,
  ready: (s: Record<string, unknown>) => boolean,
  what: string,
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (ready(await stats(base))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`kv never showed ${what}`);
}

/**
 * With kv holding its group commits: seq 1 (k=v1) in the group commit being written, seq 2 (k=v2) queued
 * behind it. Returns their answers to come.
 */
async function commitUnderWay(base: string): Promise<[Promise<Response>, Promise<Response>]> {
  const w1 = seqPut(base, 'k', 1);
  await until(base, (s) => s.committing === 1, 'the first write being written');
  const w2 = seqPut(base, 'k', 2);
  await until(base, (s) => s.committing === 1 && s.queued === 1, 'the second write queued behind it');
  return [w1, w2];
}

/** The kv sequence numbers of the records in a state directory's log, in the order they are in it. */
const logSeqs = (dir: string): number[] =>
  readFileSync(join(dir, 'kv-9', 'kv.log'), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line.slice(9)) as { seq: number }).seq);

/** Stops kv with SIGTERM (a clean shutdown) and gives its exit code. */
async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

describe('the kv example in pipelined order', () => {
  it('writes its log through an O_DSYNC descriptor and makes a batch durable with one write, answering every entry in order', async () => {
    const { base, child, dir } = await start();
    const logFlags = readdirSync(`/proc/${child.pid}/fd`).flatMap((fd) => {
      let target = '';
      try {
        target = readlinkSync(`/proc/${child.pid}/fd/${fd}`);
      } catch {
        return [];
      }
      if (target !== join(dir, 'kv-9', 'kv.log')) return [];
      const m = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/${child.pid}/fdinfo/${fd}`, 'utf8'));
      return m?.[1] ? [parseInt(m[1], 8)] : [];
    });
    expect(logFlags.map((f) => (f & constants.O_DSYNC) === constants.O_DSYNC)).toEqual([true]);

    const before = await stats(base);
    const body = encodeBatch(
      'st',
      Array.from({ length: 10 }, (_, i) => ({
        seq: i + 1,
        epoch: 1,
        method: 'PUT',
        path: `/kv/k${i + 1}`,
        headers: { 'x-request-id': `r${i + 1}` },
        body: Buffer.from(`v${i + 1}`),
      })),
    );
    const res = await fetch(`${base}/_understudy/batch`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-understudy-batch' },
    });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as {
      appliedSeq: number;
      results: Array<{ seq: number; status: number }>;
    };
    expect(answer.appliedSeq).toBe(10);
    expect(answer.results).toEqual(Array.from({ length: 10 }, (_, i) => ({ seq: i + 1, status: 200 })));
    const after = await stats(base);
    expect(Number(after.fsyncs) - Number(before.fsyncs)).toBe(1); // one group commit for the batch
    // Nothing else was being written: the batch's commit was written on the event loop.
    expect(Number(after.inlineCommits) - Number(before.inlineCommits)).toBe(1);
    expect([after.appliedSeq, after.writes, after.keys]).toEqual([10, 10, 10]);
    expect(await (await fetch(`${base}/kv/k7`)).text()).toBe('v7');
  });

  it('keeps its log in write order when a reload comes while a group commit is being written', async () => {
    const first = await start({ KV_TEST_HOLD_COMMIT_MS: HOLD_MS });
    const [w1, w2] = await commitUnderWay(first.base);
    expect((await fetch(`${first.base}/admin/reload`, { method: 'POST' })).status).toBe(200);
    expect([(await w1).status, (await w2).status]).toEqual([200, 200]);
    // The later write is the value, now and after a restart: its record is the log's last.
    expect(await (await fetch(`${first.base}/kv/k`)).text()).toBe('v2');
    expect(logSeqs(first.dir)).toEqual([1, 2]);
    expect(await stop(first.child)).toBe(0);
    const again = await start({}, first.dir);
    expect(await (await fetch(`${again.base}/kv/k`)).text()).toBe('v2');
    expect(await stats(again.base)).toMatchObject({ recovered: 2, appliedSeq: 2, truncatedBytes: 0 });
  });

  it('finishes the group commit being written before its own flush when a SIGTERM comes: every queued write is in the log, in order', async () => {
    const first = await start({ KV_TEST_HOLD_COMMIT_MS: HOLD_MS });
    // Their answers may be cut short by the exit: the log is what this checks.
    const writes = await commitUnderWay(first.base);
    for (const w of writes) void w.catch(() => undefined);
    expect(await stop(first.child)).toBe(0);
    expect(logSeqs(first.dir)).toEqual([1, 2]);
    const again = await start({}, first.dir);
    expect(await stats(again.base)).toMatchObject({ recovered: 2, appliedSeq: 2, truncatedBytes: 0 });
    expect(await (await fetch(`${again.base}/kv/k`)).text()).toBe('v2');
  });

  it('writes a batch that comes while a group commit is being written after that commit, not on the event loop before it', async () => {
    const { base, dir } = await start({ KV_TEST_HOLD_COMMIT_MS: HOLD_MS });
    const w1 = seqPut(base, 'k', 1);
    await until(base, (s) => s.committing === 1, 'the first write being written');
    const batch = encodeBatch('st', [
      { seq: 2, epoch: 1, method: 'PUT', path: '/kv/k', body: Buffer.from('v2') },
    ]);
    const res = await fetch(`${base}/_understudy/batch`, {
      method: 'POST',
      body: batch,
      headers: { 'content-type': 'application/x-understudy-batch' },
    });
    expect(res.status).toBe(200);
    expect((await w1).status).toBe(200);
    expect(logSeqs(dir)).toEqual([1, 2]);
    expect(await (await fetch(`${base}/kv/k`)).text()).toBe('v2');
    expect((await stats(base)).inlineCommits).toBe(0);
  });

  it('refuses a KV_TEST_HOLD_COMMIT_MS that is not a whole number of milliseconds, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'us-kv-example-'));
    const child = spawn(process.execPath, [server, '--port', '0', '--state', join(dir, 'kv-9')], {
      env: { ...process.env, KV_TEST_HOLD_COMMIT_MS: '1s' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    running.push({ child, dir });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const code = await new Promise((r) => child.once('close', r));
    expect(code).toBe(2);
    expect(stderr).toBe(
      'kv: KV_TEST_HOLD_COMMIT_MS must be a whole number of milliseconds (0-999999), got "1s"\n',
    );
  });

  it('consumes a write whose key does not decode (404) instead of holding every later seq', async () => {
    const { base } = await start();
    expect((await seqPut(base, '%E0%A4%A', 1)).status).toBe(404);
    expect((await seqPut(base, 'b', 2)).status).toBe(200);
    expect((await stats(base)).appliedSeq).toBe(2);
  });

  it('resumes its position from the log after a restart: earlier seqs are duplicates, not applied again', async () => {
    const first = await start();
    expect((await seqPut(first.base, 'a', 1)).status).toBe(200);
    expect((await seqPut(first.base, 'a', 2, { 'x-understudy-skip': '1' })).status).toBe(200);
    expect((await seqPut(first.base, 'b', 3)).status).toBe(200);
    const exited = new Promise((r) => first.child.once('exit', r));
    first.child.kill('SIGTERM');
    await exited;
    const again = await start({}, first.dir);
    expect(await stats(again.base)).toMatchObject({ appliedSeq: 3, stream: 'st', recovered: 3 });
    const dup = await seqPut(again.base, 'a', 2, { 'x-understudy-skip': '1' });
    expect([dup.status, dup.headers.get('x-understudy-outcome')]).toEqual([200, 'skip']);
    const replayed = await seqPut(again.base, 'c', 3);
    expect(((await replayed.json()) as { duplicate?: boolean }).duplicate).toBe(true);
    expect((await fetch(`${again.base}/kv/c`)).status).toBe(404);
    expect((await seqPut(again.base, 'c', 4)).status).toBe(200);
    expect(await (await fetch(`${again.base}/kv/c`)).text()).toBe('v4');
    expect((await stats(again.base)).appliedSeq).toBe(4);
  });
});
